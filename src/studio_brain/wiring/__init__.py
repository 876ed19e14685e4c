"""The composition root's parts: the Brain and its wiring scratchpad (``brain``) and one module per area
that needs more than a constructor call (``identity``, ``safety``, ``scheduler``). Only
:mod:`studio_brain.bootstrap` uses them; entry points import from there."""
