"""What the command line accepts: no argument may hold a credential shape or unstorable text.

Rationales, notes, reasons and ids typed on the command line end up in audit rows, so they pass the same
checks as the HTTP input guard (:mod:`studio_brain.domain.secrets`, :mod:`studio_brain.domain.text`)
before any command runs: a hit stops the program with exit code 2 and a message naming the argument's
position and the kind of credential — never its value. (Nothing is audited: no command has opened the
database or verified an identity yet; the refusal is logged, redacted.)
"""

from __future__ import annotations

from collections.abc import Sequence

from studio_brain.domain.secrets import describe, find_secrets
from studio_brain.domain.text import text_problem


def argument_problem(arguments: Sequence[str]) -> str | None:
    """Why these command-line arguments are refused, or None."""
    for position, argument in enumerate(arguments, start=1):
        where = f"argument {position}"
        problem = text_problem(argument)
        if problem:
            return f"{where} {problem}"
        findings = find_secrets(argument, location=where)
        if findings:
            return describe(findings)
    return None
