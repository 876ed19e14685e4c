"""The in-process scheduler: jobs, leader election, catch-up (issue 8; empty until then)."""
