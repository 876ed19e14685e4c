"""CLI of staff accounts (issue 11): ``staff create-owner|invite|list|roles|remove|link-firebase|reinvite``
and ``sessions list|revoke``. Acts as the signed-in person (``studio-brain login``), or break-glass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import EXIT_USAGE, fail, print_json, run, settings_or_exit
from studio_brain.cli.login import cli_principal
from studio_brain.domain.identity import PersonStatus, Principal, break_glass_principal
from studio_brain.services.identity import IdentityService, Invitation

T = TypeVar("T")

staff_app = typer.Typer(
    help="Staff accounts: the first owner, invites, roles, removal.", no_args_is_help=True
)
sessions_app = typer.Typer(help="Cockpit sessions: list and end them.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


def _with(use: Callable[[IdentityService, Principal, Brain], Awaitable[T]]) -> T:
    settings = settings_or_exit()

    async def _main() -> T:
        async with open_brain(settings, migrate=True) as brain:
            return await use(brain.identity, await cli_principal(brain), brain)

    return run(_main())


def _print_invitation(invitation: Invitation, brain_url: str) -> None:
    p = invitation.person
    typer.echo(f"{p.display_name} ({p.id}), roles {', '.join(sorted(r.value for r in p.roles))}")
    typer.echo(f"  enrolment link (one use, {invitation.expires_in_minutes} minutes; shown once):")
    typer.echo(f"  {invitation.url(brain_url)}")


@staff_app.command("create-owner")
def create_owner(name: str) -> None:
    """Create the studio's first owner (break-glass; refused once an owner exists) and print their invite."""
    settings = settings_or_exit()
    invitation = _with(lambda identity, who, _b: identity.create_first_owner(who, name))
    _print_invitation(invitation, settings.cockpit_url)


@staff_app.command("invite")
def invite(
    name: str,
    role: Annotated[str, typer.Option("--role", help="staff or owner.")] = "staff",
) -> None:
    """Create a staff account for NAME and print its one-time, short-lived enrolment link."""
    if role not in {"staff", "owner"}:
        fail("--role must be staff or owner", code=EXIT_USAGE)
    settings = settings_or_exit()
    invitation = _with(lambda identity, who, _b: identity.invite(who, name, [role]))
    _print_invitation(invitation, settings.cockpit_url)


@staff_app.command("reinvite")
def reinvite(person_id: str) -> None:
    """A new enrolment link for an existing person (another device, a lost passkey)."""
    settings = settings_or_exit()
    invitation = _with(lambda identity, who, _b: identity.reinvite(who, person_id))
    _print_invitation(invitation, settings.cockpit_url)


@staff_app.command("list")
def staff_list(as_json: JsonOption = False) -> None:
    """Every staff account of this studio."""

    async def use(identity: IdentityService, _who: Principal, _b: Brain) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for p in await identity.persons():
            rows.append(
                {
                    "id": p.id,
                    "name": p.display_name,
                    "roles": sorted(r.value for r in p.roles),
                    "status": p.status.value,
                    "firebaseUid": p.firebase_uid,
                    "passkeys": len(await identity.passkeys_of(p.id)),
                }
            )
        return rows

    rows = _with(use)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo('no staff accounts yet: run `studio-brain staff create-owner "Your Name"`')
    for r in rows:
        typer.echo(
            f"{r['id']:<28} {r['status']:<8} {'+'.join(r['roles']):<12} {r['passkeys']} passkey(s)  {r['name']}"
        )


@staff_app.command("roles")
def roles(person_id: str, role: Annotated[str, typer.Option("--role", help="staff or owner.")]) -> None:
    """Change a person's role."""
    changed = _with(lambda identity, who, _b: identity.set_roles(who, person_id, [role]))
    typer.echo(f"{changed.display_name}: {', '.join(sorted(r.value for r in changed.roles))}")


@staff_app.command("remove")
def remove(person_id: str, reason: ReasonOption) -> None:
    """Remove a person: their sessions and tokens end now, their passkeys stop working."""
    removed = _with(lambda identity, who, _b: identity.remove(who, person_id, reason))
    typer.echo(f"{removed.display_name} removed; sessions and tokens ended")


@staff_app.command("link-firebase")
def link_firebase(
    person_id: str,
    uid: Annotated[str | None, typer.Argument(help="The Firebase uid (omit with --unlink).")] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="Remove the link.")] = False,
) -> None:
    """Link a person's Firebase uid, so Portal and cockpit approvals are one person."""
    if (uid is None) != unlink:
        fail("give a UID, or --unlink", code=EXIT_USAGE)
    changed = _with(lambda identity, who, _b: identity.link_firebase(who, person_id, uid))
    typer.echo(f"{changed.display_name}: Firebase uid {changed.firebase_uid or '(none)'}")


@sessions_app.command("list")
def sessions_list(
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Live cockpit sessions."""

    async def use(identity: IdentityService, who: Principal, _b: Brain) -> list[dict[str, object]]:
        found = (
            await identity.all_sessions()
            if person is None
            else await identity.credentials.sessions(who, person)
        )
        if person is None and not (who.is_owner or who.is_break_glass):
            found = [s for s in found if s.person_id == who.person_id]
        return [
            {
                "id": s.id,
                "personId": s.person_id,
                "credentialKind": s.credential_kind.value,
                "createdAt": s.created_at.isoformat(),
                "expiresAt": s.expires_at.isoformat(),
                "lastSeenAt": s.last_seen_at.isoformat(),
            }
            for s in found
            if s.revoked_at is None
        ]

    rows = _with(use)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no live sessions")
    for r in rows:
        typer.echo(
            f"{r['id']}  {r['personId'] or 'break-glass':<28} {r['credentialKind']:<12} last seen {r['lastSeenAt']}"
        )


@sessions_app.command("revoke")
def sessions_revoke(
    session_id: Annotated[str | None, typer.Argument(help="One session (see `sessions list`).")] = None,
    person: Annotated[str | None, typer.Option("--person", help="Every session of this person.")] = None,
    break_glass: Annotated[bool, typer.Option("--break-glass", help="Every break-glass session.")] = False,
    reason: ReasonOption = "ended from the command line",
) -> None:
    """End sessions now: their cookies stop working at once."""
    if [session_id is not None, person is not None, break_glass].count(True) != 1:
        fail("give exactly one of SESSION_ID, --person or --break-glass", code=EXIT_USAGE)

    async def use(identity: IdentityService, who: Principal, _b: Brain) -> int:
        if session_id is not None:
            await identity.credentials.revoke_session(who, session_id, reason)
            return 1
        return await identity.credentials.revoke_sessions_of(who, person, reason)

    typer.echo(f"{_with(use)} session(s) ended")


#: the demo's two people: an owner who proposes and a manager who approves (a distinct, signed-in person)
DEMO_PEOPLE = (("Ada Owner", "owner", "owner"), ("Grace Manager", "staff", "manager"))


async def sign_in_lines(brain: Brain, *, demo: bool) -> list[str]:
    """What ``serve``/``demo`` print about signing in: the passkey page, a first-owner hint on a brain
    without owners (an upgraded one), a break-glass link, and in the demo an enrolment link per person."""
    identity = brain.identity
    if identity is None:  # pragma: no cover - bootstrap always wires it
        return []
    base = brain.settings.cockpit_url
    admin = break_glass_principal(brain.tenant_id)
    lines = [f"  sign in   : {base}/login  (staff sign in with their passkeys)"]
    if demo:
        lines += await _demo_people(identity, admin, base)
    elif not await identity.owners_exist():
        lines.append(
            '  first run : no owner yet: run `studio-brain staff create-owner "Your Name"` and open its link'
        )
    link = await identity.credentials.issue_login_link(admin)
    lines.append(f"  break-glass: {base}/login?token={link}")
    lines.append(
        f"              (one use, {brain.settings.login_link_minutes} minutes; read, invite, kill switch on; never approves)"
    )
    return lines


async def _demo_people(identity: IdentityService, admin: Principal, base: str) -> list[str]:
    """Create (once) the demo owner and manager; print a fresh enrolment link for whoever has no passkey."""
    existing = {p.display_name: p for p in await identity.persons() if p.status is not PersonStatus.REMOVED}
    lines = []
    for name, role, label in DEMO_PEOPLE:
        person = existing.get(name)
        if person is None:
            invitation = (
                await identity.create_first_owner(admin, name)
                if role == "owner" and not await identity.owners_exist()
                else await identity.invite(admin, name, [role])
            )
        elif person.status is PersonStatus.INVITED:
            invitation = await identity.reinvite(admin, person.id)
        else:
            lines.append(f"  demo {label:<7}: {name} is enrolled; sign in with their passkey")
            continue
        lines.append(f"  demo {label:<7}: {name}: enrol a passkey at {invitation.url(base)}")
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")
    app.add_typer(sessions_app, name="sessions")
