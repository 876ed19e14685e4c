"""Credential shapes: find, refuse and redact secrets in any text or JSON value that enters the brain.

The one detector set of Studio Brain. Every boundary (HTTP API and Portal paths via the web input
guard, the CLI, swarm drafts, the MCP server) calls :func:`ensure_no_secrets` before a value reaches a
service, and log redaction (``studio_brain.logging``) uses :func:`redact`, so what is refused at the door
is also what is masked in a log line.

Why our own patterns rather than ``detect-secrets``' plugins at run time: the plugins import ``requests``
(for their optional verification) and keep process-global settings, which the pure domain may not do, and
they miss shapes the seed names (Stripe restricted/test keys of any length, ``whsec_`` webhook secrets,
Google API keys). The patterns below are the plugins' (Stripe, JWT, private key) widened; a unit test
checks that every sample detect-secrets flags is flagged here too.

A finding names the *kind* and *where*, never the value: messages and audit rows may quote findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.reasons import ReasonCode


class SecretKind(StrEnum):
    STRIPE_KEY = "stripe secret or restricted key"
    STRIPE_WEBHOOK_SECRET = "stripe webhook signing secret"  # noqa: S105 - a description
    GOOGLE_API_KEY = "google api key"
    GOOGLE_SERVICE_ACCOUNT = "google service-account key file"
    PRIVATE_KEY = "pem private key"
    JWT = "json web token"
    BEARER_TOKEN = "bearer token"  # noqa: S105 - a description
    AGENT_TOKEN = "studio brain agent or personal token"  # noqa: S105 - a description
    URL_PASSWORD = "password in a url"  # noqa: S105 - a description


#: (kind, pattern, group to mask): group 0 masks the whole match; a named prefix group stays readable in logs
_DETECTORS: tuple[tuple[SecretKind, re.Pattern[str]], ...] = (
    # sk_live_/sk_test_/rk_live_/rk_test_ + the key body (detect-secrets: live keys of 24 only)
    (SecretKind.STRIPE_KEY, re.compile(r"(?<![A-Za-z0-9])(?P<keep>[sr]k_(?:live|test)_)[0-9A-Za-z]{8,}")),
    (SecretKind.STRIPE_WEBHOOK_SECRET, re.compile(r"(?<![A-Za-z0-9])(?P<keep>whsec_)[0-9A-Za-z+/=]{16,}")),
    (SecretKind.GOOGLE_API_KEY, re.compile(r"(?<![A-Za-z0-9])(?P<keep>AIza)[0-9A-Za-z_\-]{35}")),
    # the PEM armour of any private key, also inside a JSON string where newlines are "\n"
    (
        SecretKind.PRIVATE_KEY,
        re.compile(
            r"(?P<keep>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"
            r"(?:[\s\\nA-Za-z0-9+/=:,-]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"
        ),
    ),
    # a service-account key file pasted whole (its private_key is caught above too)
    (
        SecretKind.GOOGLE_SERVICE_ACCOUNT,
        re.compile(r"(?P<keep>\"type\"\s*:\s*)\"service_account\"(?=[\s\S]*\"private_key)"),
    ),
    # header.payload.signature, header and payload base64url JSON objects ("eyJ" = '{"')
    (
        SecretKind.JWT,
        re.compile(r"(?<![A-Za-z0-9_-])(?P<keep>eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    ),
    (SecretKind.AGENT_TOKEN, re.compile(r"(?<![A-Za-z0-9])(?P<keep>sb[ap]t_)[A-Za-z0-9_-]{16,}")),
    (
        SecretKind.BEARER_TOKEN,
        # a digit somewhere, so prose ("Basic understanding of glazes") is not a token
        re.compile(
            r"(?P<keep>\b(?:Bearer|Basic)\s+)(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE
        ),
    ),
    (
        SecretKind.URL_PASSWORD,
        re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(?=@)", re.IGNORECASE),
    ),
)

REDACTED = "***"

#: every detector above needs one of these: text without any is skipped after one search (most text)
_ANCHORS = re.compile(
    r"[sr]k_(?:live|test)_|whsec_|AIza|PRIVATE KEY|service_account|eyJ|sb[ap]t_|://|(?i:bearer|basic)"
)
#: the same anchors in raw bytes of a JSON or form body, plus what can hide them (``\u`` escapes, ``%``
#: encoding, ``\/`` for ``/``): a body without any holds no credential shape in any of its strings
BODY_ANCHORS = re.compile(
    rb"[sr]k_(?:live|test)_|whsec_|AIza|PRIVATE KEY|service_account|eyJ|sb[ap]t_|:/|:\\/"
    rb"|(?i:bearer|basic)|\\u|%[0-9A-Fa-f]{2}"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretFinding:
    """One credential-shaped span: its kind and where it sits (``location`` names a field, not a value)."""

    kind: SecretKind
    location: str
    start: int
    end: int


def find_secrets(text: str, *, location: str = "text") -> list[SecretFinding]:
    """Every credential-shaped span of ``text``, in order of position."""
    if len(text) < 8 or _ANCHORS.search(text) is None:
        return []
    found = [
        SecretFinding(kind=kind, location=location, start=m.start(), end=m.end())
        for kind, pattern in _DETECTORS
        for m in pattern.finditer(text)
    ]
    return sorted(found, key=lambda f: (f.start, f.end))


def contains_secret(text: str) -> bool:
    return (
        len(text) >= 8
        and _ANCHORS.search(text) is not None
        and any(pattern.search(text) for _, pattern in _DETECTORS)
    )


def redact(text: str, *, mark: str = REDACTED) -> str:
    """``text`` with each secret's body replaced by ``mark`` (a harmless prefix such as ``sk_live_`` stays
    readable, so a log says what kind of thing was there)."""
    if len(text) < 8 or _ANCHORS.search(text) is None:
        return text
    for _, pattern in _DETECTORS:
        text = pattern.sub(lambda m: (m.group("keep") or "") + mark, text)
    return text


def scan(value: Any, *, location: str = "body") -> list[SecretFinding]:
    """Findings in a JSON-like value: every string, and every mapping *key* (a key can hold a secret too)."""
    return list(_walk(value, location))


def _walk(value: Any, location: str) -> Iterator[SecretFinding]:
    if isinstance(value, str):
        yield from find_secrets(value, location=location)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            here = f"{location}.{_safe_name(name)}"
            yield from find_secrets(name, location=f"{location} (a field name)")
            yield from _walk(item, here)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _walk(item, f"{location}[{index}]")


def _safe_name(name: str) -> str:
    # the location goes into messages and audit rows: never let a field name carry a secret or run long
    return redact(name)[:64]


class SecretInPayload(InputInvalid):
    """A caller sent something shaped like a credential; refused before any service sees it (HTTP 400)."""

    code = ReasonCode.SECRET_IN_PAYLOAD

    def __init__(self, findings: list[SecretFinding]) -> None:
        self.findings = tuple(findings)
        super().__init__(describe(findings), reason_code=ReasonCode.SECRET_IN_PAYLOAD)


def describe(findings: list[SecretFinding]) -> str:
    """A message naming each finding's kind and location (never its value)."""
    where = "; ".join(sorted({f"{f.kind.value} in {f.location}" for f in findings}))
    return (
        f"refused: this looks like a credential ({where}). Studio Brain never stores secrets; "
        "remove it and send the request again"
    )


def ensure_no_secrets(value: Any, *, location: str = "body") -> None:
    """Raise :class:`SecretInPayload` if ``value`` (text or a JSON-like value) holds a credential shape.

    The one call every entry point makes before handing caller input to a service.
    """
    findings = scan(value, location=location)
    if findings:
        raise SecretInPayload(findings)


def redact_value(value: Any) -> Any:
    """A JSON-like value with every string (and key) redacted — for audit rows about a refused input."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value
