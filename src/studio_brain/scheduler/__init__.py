"""The headless scheduler entry point: ``python -m studio_brain.scheduler`` runs jobs without the HTTP server.

``serve``/``demo`` run the same loop (:mod:`studio_brain.services.scheduling`) beside the server; this
entry point is for a brain that only schedules (and for the two-process leader-election test).
"""
