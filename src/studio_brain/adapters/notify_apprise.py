"""The Notifier over Apprise (PyPI ``apprise``): e-mail, ntfy, Pushover, Telegram, Slack, webhooks ….

Targets are configured as ``name=apprise-url`` entries (STUDIO_BRAIN_NOTIFY_TARGETS). The URLs hold secrets
(passwords, bot tokens, webhook keys): they never leave this module. What others see is
:meth:`AppriseNotifier.display`, Apprise's own privacy rendering with the query dropped and long path
segments masked, and error text scrubbed of every fragment of the URL.

Apprise (and requests, oauthlib, smtplib under it) is imported when a target is configured or a message
sent, not when the brain is wired: with no targets (the default) the server never holds it (issue 18).
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from functools import cache
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.domain.notify import valid_target_name
from studio_brain.logging import get_logger, redact_text

log = get_logger(__name__)

# Apprise logs through the stdlib logger "apprise", sometimes with URLs: keep it out of our log stream.
_APPRISE_LOGGER = logging.getLogger("apprise")
_APPRISE_LOGGER.propagate = False
_APPRISE_LOGGER.addHandler(logging.NullHandler())
# ... and never below WARNING, whatever the root level: its DEBUG lines ("Loaded JSON URL: …") mask the
# password but keep the path, where webhook keys live; a handler attached to it directly must not see them
_APPRISE_LOGGER.setLevel(logging.WARNING)


@cache
def _load_plugins() -> None:
    """Apprise loads its plugins on first use; one of them imports the stdlib ``imghdr``, deprecated in
    Python 3.11: load them once here with that one warning silenced (the suite turns warnings into errors).
    Every use of Apprise below comes after this."""
    import apprise

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
        apprise.Apprise.instantiate("json://localhost", suppress_exceptions=True)


_WORD = re.compile(r"[A-Za-z0-9_\-.~%+]{4,}")


def parse_targets(text: str) -> dict[str, str]:
    """``name=url`` entries separated by whitespace or newlines → {name: url} (ConfigError on a bad one).

    Whitespace separates entries because Apprise URLs may hold commas and semicolons themselves.
    """
    targets: dict[str, str] = {}
    for n, entry in enumerate(text.split(), 1):
        name, sep, url = entry.partition("=")
        name = name.strip().lower()
        if not sep or not valid_target_name(name) or "://" not in url:
            raise ConfigError(
                f"STUDIO_BRAIN_NOTIFY_TARGETS: entry {n} must be name=apprise-url (name: lowercase letters, "
                "digits, - and _), e.g. staff=mailtos://user:pass@example.com"
            )
        if name in targets:
            raise ConfigError(f"STUDIO_BRAIN_NOTIFY_TARGETS: the target name {name!r} is given twice")
        targets[name] = url
    return targets


def _mask_path(path: str) -> str:
    return "/".join(seg if len(seg) <= 12 else seg[:2] + "…" for seg in path.split("/"))


def _understood(url: str) -> bool:
    import apprise

    _load_plugins()
    return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None


def _display(url: str) -> str:
    import apprise

    _load_plugins()
    server = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    scheme_only = url.split("://", 1)[0] + "://…"
    shown = str(server.url(privacy=True)) if server else scheme_only  # type: ignore[no-untyped-call]
    parts = urlsplit(shown)
    return urlunsplit(parts._replace(path=_mask_path(parts.path), query="", fragment=""))


def _secret_fragments(url: str) -> list[str]:
    """Every word-like fragment of the URL except its scheme: removed from any text we pass on."""
    body = url.split("://", 1)[-1]
    return sorted(set(_WORD.findall(body)), key=len, reverse=True)


class AppriseNotifier:
    def __init__(self, targets: Mapping[str, SecretStr], *, timeout_seconds: float = 20.0) -> None:
        self._urls = {name: secret.get_secret_value() for name, secret in targets.items()}
        self._timeout = timeout_seconds
        # each target is checked here, at start-up; with none, Apprise is never loaded
        for name, url in self._urls.items():
            if not _understood(url):
                raise ConfigError(
                    f"STUDIO_BRAIN_NOTIFY_TARGETS: target {name!r} is not a URL Apprise understands "
                    f"({url.split('://', 1)[0]}://…); see https://github.com/caronc/apprise/wiki"
                )
        self._shown = {name: _display(url) for name, url in self._urls.items()}

    @classmethod
    def from_text(cls, text: SecretStr | None, *, timeout_seconds: float = 20.0) -> AppriseNotifier:
        raw = parse_targets(text.get_secret_value()) if text is not None else {}
        return cls({k: SecretStr(v) for k, v in raw.items()}, timeout_seconds=timeout_seconds)

    def __repr__(self) -> str:
        return f"<AppriseNotifier targets={sorted(self._urls)!r}>"

    def targets(self) -> Sequence[str]:
        return sorted(self._urls)

    def display(self, target: str) -> str:
        return self._shown.get(target, "(unknown target)")

    def scrub(self, target: str, text: str) -> str:
        url = self._urls.get(target, "")
        for fragment in _secret_fragments(url):
            text = text.replace(fragment, "***")
        return redact_text(text)

    async def send(self, target: str, *, title: str, body: str) -> None:
        url = self._urls.get(target)
        if url is None:
            raise StudioBrainError(f"no notification target named {target!r}")
        try:
            ok, captured = await asyncio.wait_for(
                asyncio.to_thread(self._send_sync, url, title, body), timeout=self._timeout
            )
        except TimeoutError:
            raise StudioBrainError(f"{target}: no answer within {self._timeout:g} s") from None
        if not ok:
            lines = [line for line in captured.splitlines() if line.strip()][-3:]
            detail = self.scrub(target, " | ".join(lines)) or "the target refused the message"
            raise StudioBrainError(f"{target}: delivery failed: {detail[:400]}")

    @staticmethod
    def _send_sync(url: str, title: str, body: str) -> tuple[bool, str]:
        import apprise

        _load_plugins()
        sender = apprise.Apprise()
        sender.add(url)
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as output:  # type: ignore[no-untyped-call]
            try:
                ok = bool(sender.notify(title=title, body=body))
            except Exception as err:
                return False, f"{type(err).__name__}"
            text = output.getvalue()
        return ok, text
