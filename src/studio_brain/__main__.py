"""``python -m studio_brain``: the same as the ``studio-brain`` command."""

from studio_brain.cli import main

main()
