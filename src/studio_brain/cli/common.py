"""What every CLI command shares: settings loading, error reporting, running async code."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime, tzinfo
from typing import Any, NoReturn, TypeVar

import typer

from studio_brain.domain.errors import (
    ConfigError,
    DatabaseUnavailable,
    InputInvalid,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.logging import configure_logging, redact_text
from studio_brain.settings import Settings, load_settings

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, *, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line to stderr and exit: the way every command reports a problem."""
    typer.echo(f"studio-brain: {redact_text(message)}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as err:
        fail(f"configuration error: {err.message}")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    global _zone
    _zone = settings.zone
    global _where
    # said by run() once the command has done its work (see there)
    _where = where_notice(settings)
    return settings


#: which home and database, waiting to be said once by run() (None: the obvious default)
_where: str | None = None


def forget_where_notice() -> None:
    """Say nothing of the home and database at the end of run() (a process started by another that did)."""
    global _where
    _where = None


#: the studio's zone, set by settings_or_exit (issue 14: the CLI shows the cockpit's local times)
_zone: tzinfo = UTC


def studio_time(value: datetime, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """``value`` in the studio's local time, with its zone's abbreviation (``2026-11-25 09:00 MST``)."""
    return value.astimezone(_zone).strftime(fmt).strip()


def where_notice(settings: Settings) -> str | None:
    """One line naming the home and database in use when they are not the obvious ones (issue 14):
    a home other than the default, an external database, or a default home about to get a fresh database.
    None when the default home and its existing embedded database are used."""
    from studio_brain.settings import default_home, redact_url

    database = (
        f"external PostgreSQL at {redact_url(settings.database_url.get_secret_value())}"
        if settings.database_url is not None
        else f"embedded PostgreSQL in {settings.home / 'pgdata'}"
    )
    if settings.home != default_home():
        return f"home {settings.home} (STUDIO_BRAIN_HOME) · database: {database}"
    if settings.database_url is not None:
        return f"home {settings.home} (default) · database: {database}"
    if not (settings.home / "pgdata").exists():
        return (
            f"no database in the default home {settings.home} yet: creating one there "
            "(set STUDIO_BRAIN_HOME to use another home)"
        )
    return None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; our errors become one line and a meaningful exit code, never a traceback."""
    global _where
    try:
        result = asyncio.run(coro)
    except ConfigError as err:
        fail(f"configuration error: {err.message}")
    except DatabaseUnavailable as err:
        fail(f"{err.message}. Check STUDIO_BRAIN_DATABASE_URL, or run `studio-brain doctor`.")
    except (InputInvalid, NotFound) as err:
        fail(err.message, code=EXIT_USAGE if isinstance(err, InputInvalid) else EXIT_FAILURE)
    except (PolicyRefused, PermissionDenied, Unauthenticated) as err:
        fail(f"refused ({err.reason_code}): {err.message}")
    except StudioBrainError as err:
        fail(err.message)
    # said after the work, on stderr: an error stays the one line it is, and stdout stays parseable
    if _where:
        typer.echo(f"studio-brain: {_where}", err=True)
        _where = None
    return result


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def is_terminal() -> bool:
    return sys.stdout.isatty()
