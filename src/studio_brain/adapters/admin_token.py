"""The local admin token: from settings, or generated once and kept 0600 in the data home."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from studio_brain.domain.errors import ConfigError
from studio_brain.logging import get_logger

log = get_logger(__name__)

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
#: a generated token: 32 random bytes, URL-safe
_MIN_LENGTH = 16


def load_or_create_admin_token(configured: SecretStr | None, home: Path) -> SecretStr:
    """The configured token, else the one stored in ``home/admin-token``, else a new one written there 0600."""
    if configured is not None:
        value = configured.get_secret_value().strip()
        if len(value) < _MIN_LENGTH:
            raise ConfigError(f"STUDIO_BRAIN_ADMIN_TOKEN: must be at least {_MIN_LENGTH} characters")
        return SecretStr(value)
    path = home / ADMIN_TOKEN_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = None
    except OSError as err:
        raise ConfigError(f"cannot read the admin token file {path}: {err.strerror}") from err
    if existing is not None:
        if len(existing) < _MIN_LENGTH:
            raise ConfigError(
                f"the admin token file {path} is shorter than {_MIN_LENGTH} characters; delete it"
            )
        return SecretStr(existing)
    token = secrets.token_urlsafe(32)
    try:
        home.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together never overwrite each other's token
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its token
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as err:
        raise ConfigError(f"cannot create the admin token file {path}: {err.strerror}") from err
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    log.info("auth.admin_token.generated", path=str(path))
    return SecretStr(token)
