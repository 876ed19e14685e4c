"""Who the CLI acts as: ``studio-brain login`` (a one-time code from the cockpit → a personal token stored
0600 in the user's config), ``logout``, ``whoami``, and ``login-link`` (a break-glass cockpit link).

The CLI acts as the person whose token is stored — no setting or flag chooses an identity. Without a
stored token it acts with the break-glass admin token, which it can read only on the studio machine
(STUDIO_BRAIN_HOME): read, create the first owner, invite, kill switch ON — never approve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import platformdirs
import typer

from studio_brain.adapters.admin_token import load_or_create_admin_token
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import EXIT_USAGE, fail, run, settings_or_exit
from studio_brain.domain.errors import ConfigError, ReasonCode, Unauthenticated
from studio_brain.domain.identity import Principal, break_glass_principal
from studio_brain.services.identity import IdentityService

CREDENTIALS_FILE = "credentials.json"


def credentials_path() -> Path:
    """``$XDG_CONFIG_HOME/studio-brain/credentials.json`` (platform equivalent elsewhere)."""
    return Path(platformdirs.user_config_dir("studio-brain", appauthor=False)) / CREDENTIALS_FILE


def stored_credentials() -> dict[str, Any] | None:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: run `studio-brain login` again") from err
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others; run `chmod 600 {path}`")
    return data if isinstance(data, dict) and isinstance(data.get("token"), str) else None


def store_credentials(data: dict[str, Any]) -> Path:
    """Write the token file 0600 (directory 0700), replacing any earlier one atomically."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)
    return path


def _identity(brain: Brain) -> IdentityService:
    return brain.identity


async def cli_principal(brain: Brain) -> Principal:
    """The person of the stored personal token; else the break-glass credential (studio machine only)."""
    stored = stored_credentials()
    if stored is not None:
        if stored.get("tenant") not in (None, brain.tenant_id):
            raise Unauthenticated(
                f"your stored login is for the studio {stored.get('tenant')!r}; run `studio-brain login`",
                reason_code=ReasonCode.AUTH_TENANT_MISMATCH,
            )
        principal = await _identity(brain).credentials.verify_token(str(stored["token"]))
        if principal is None:
            raise Unauthenticated(
                "your personal token is revoked or expired (or your account was removed); run `studio-brain login`",
                reason_code=ReasonCode.AUTH_TOKEN_INVALID,
            )
        return principal
    try:
        load_or_create_admin_token(brain.settings.admin_token, brain.settings.home)
    except ConfigError as err:
        raise Unauthenticated(
            f"not signed in and the admin token is not readable here ({err.message}); run `studio-brain login`",
            reason_code=ReasonCode.AUTH_REQUIRED,
        ) from err
    return break_glass_principal(brain.tenant_id)


def login(
    code: Annotated[
        str | None, typer.Option("--code", help="The one-time code shown on your Account page (else asked).")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="A name for this token, e.g. the computer.")] = "cli",
) -> None:
    """Sign the CLI in as yourself: exchange a one-time code from the cockpit for a personal token."""
    settings = settings_or_exit()
    given = code or typer.prompt("One-time code from the cockpit (Account page)", hide_input=True)
    if not given.strip():
        fail("a code is required", code=EXIT_USAGE)

    async def _main() -> tuple[str, str, str, str]:
        async with open_brain(settings, migrate=True) as brain:
            issued = await _identity(brain).credentials.redeem_cli_code(given, label=label)
            person = await _identity(brain).person(issued.token.person_id)
            store_credentials(
                {"version": 1, "tenant": brain.tenant_id, "person": person.id, "token": issued.raw}
            )
            return person.display_name, person.id, issued.token.id, f"{issued.token.expires_at:%Y-%m-%d}"

    name, person_id, token_id, until = run(_main())
    typer.echo(
        f"signed in as {name} ({person_id}); token {token_id} until {until}, stored in {credentials_path()}"
    )


def logout() -> None:
    """Revoke this CLI's personal token and forget it."""
    settings = settings_or_exit()
    stored = stored_credentials()
    if stored is None:
        typer.echo("not signed in")
        return

    async def _main() -> None:
        async with open_brain(settings, migrate=True) as brain:
            identity = _identity(brain)
            principal = await identity.credentials.verify_token(str(stored["token"]))
            if principal is not None and principal.credential_id is not None:
                await identity.credentials.revoke_token(
                    principal, principal.credential_id, "studio-brain logout"
                )

    try:
        run(_main())
    finally:
        credentials_path().unlink(missing_ok=True)
    typer.echo("signed out; the token is revoked")


def whoami() -> None:
    """Who the CLI acts as now."""
    settings = settings_or_exit()

    async def _main() -> Principal:
        async with open_brain(settings, migrate=True) as brain:
            return await cli_principal(brain)

    who = run(_main())
    if who.is_break_glass:
        typer.echo("break-glass admin token (not a person: read, invite, kill switch on; never approves)")
    else:
        typer.echo(f"{who.display_name} ({who.actor_id}), roles {', '.join(sorted(who.roles))}")


def login_link() -> None:
    """Print a one-time, minutes-long break-glass cockpit link (works on a running system; used once, ever)."""
    settings = settings_or_exit()

    async def _main() -> str:
        async with open_brain(settings, migrate=True) as brain:
            principal = await cli_principal(brain)
            if not principal.is_break_glass:
                principal = break_glass_principal(brain.tenant_id)
                load_or_create_admin_token(
                    settings.admin_token, settings.home
                )  # proves studio-machine access
            raw = await _identity(brain).credentials.issue_login_link(principal)
            return f"{settings.cockpit_url}/login?token={raw}"

    typer.echo(run(_main()))
    typer.echo(
        f"(break-glass: works once, for {settings.login_link_minutes} minutes; persons sign in with passkeys)"
    )


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.command("login-link")(login_link)
