"""Draft-only swarms (issue 8): ops anomalies, finance flags, marketing copy — each emits drafts, nothing else."""
