"""The safety watch end to end: the real Hubitat connector over HTTP against the fake Maker API, kiln
firings from the official client against the Firestore emulator, PostgreSQL, and alerts through Apprise to a
loopback SMTP server (aiosmtpd) and a loopback webhook receiver.

A kiln outlet drawing power with no firing gives exactly one alert per target, a drafted (never executed)
switch-off proposal and an audited delivery; a firing in progress, or a stale reading, gives no kiln alert.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from studio_brain.adapters.connectors.fakes.maker_api import FakeMakerApi
from studio_brain.adapters.notify_inbox import WebhookInbox
from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.identity import system_principal
from studio_brain.domain.proposals import Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.scheduling import scheduler_running
from studio_brain.settings import Settings, load_settings
from studio_brain.web.app import create_app
from tests.fixtures.firestore import wipe_firestore

pytestmark = pytest.mark.postgres

PROJECT = "sb-safety-test"
WEBHOOK_PASSWORD = "hook-pw-7f3a9c21"
OUTLET = "21"


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(make_header(decode_header(m["Subject"]))) for m in self.messages]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def inbox() -> Iterator[WebhookInbox]:
    receiver = WebhookInbox().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hub() -> Iterator[FakeMakerApi]:
    fake = FakeMakerApi(token="maker-token-" + uuid.uuid4().hex[:8])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def emulator(firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host, PROJECT)
    yield firestore_emulator_host
    wipe_firestore(firestore_emulator_host, PROJECT)


async def seed_firings(*firings: dict[str, Any]) -> None:
    from google.cloud import firestore

    client = firestore.AsyncClient(project=PROJECT)
    try:
        for i, doc in enumerate(firings):
            await client.collection("kilnFirings").document(f"firing-{i}").set(doc)
    finally:
        transport = getattr(client, "_transport", None)
        if transport is not None:
            await transport.close()


async def audit_events(world: World, action: str) -> list[Any]:
    page = await world.brain.events.query(world.brain.tenant_id, AuditQuery(action_prefix=action, limit=100))
    return [e for e in page.events if e.action == action]


@dataclass
class World:
    brain: Brain
    hub: FakeMakerApi
    mailbox: Mailbox
    inbox: WebhookInbox

    async def tick(self, times: int = 1) -> list[dict[str, Any]]:
        """What the scheduler does every minute: run the safety-watch job once."""
        summaries = []
        for _ in range(times):
            [run] = await self.brain.jobs.run("safety-watch", trigger="schedule")
            assert run.status.value == "succeeded", run.error
            summaries.append(run.summary)
        return summaries

    def alerts(self) -> tuple[list[str], list[str]]:
        return (
            [s for s in self.mailbox.subjects() if s.startswith("[")],
            [m.title for m in self.inbox.messages if m.title.startswith("[")],
        )


def settings_for(
    database_url: str, home: Path, hub: FakeMakerApi, smtp_port: int, inbox: WebhookInbox, **extra: Any
) -> Settings:
    webhook = f"json://brain:{WEBHOOK_PASSWORD}@127.0.0.1:{inbox.port}/hook"
    mail = f"mailto://127.0.0.1:{smtp_port}?from=brain@studio.test&to=staff@studio.test&mode=insecure"
    values: dict[str, Any] = {
        "database_url": database_url,
        "home": home,
        "admin_token": "test-admin-token-0123456789",
        "state_source": "firestore",
        "firestore_project_id": PROJECT,
        "hubitat_url": hub.hub_url,
        "hubitat_app_id": hub.app_id,
        "hubitat_token": hub.token,
        "safety_kiln_outlet": "Kiln Room Outlet",
        "safety_door_devices": "Back Door Contact",
        # open all day: the door rule stays out of these tests unless a test wants it
        "studio_hours": "mon-sun 00:00-24:00",
        "notify_targets": f"staff={mail} ops={webhook}",
        "notify_backoff_base_seconds": 0.2,
        "notify_backoff_cap_seconds": 0.5,
        **extra,
    }
    return load_settings(**values)


@pytest.fixture
async def world_factory(
    database_url: str,
    tmp_path: Path,
    hub: FakeMakerApi,
    smtp: tuple[Mailbox, int],
    inbox: WebhookInbox,
    emulator: str,
) -> AsyncIterator[Any]:
    mailbox, port = smtp
    opened: list[Any] = []

    async def make(**extra: Any) -> World:
        settings = settings_for(database_url, tmp_path, hub, port, inbox, **extra)
        context = open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None))
        brain = await context.__aenter__()
        opened.append(context)
        return World(brain=brain, hub=hub, mailbox=mailbox, inbox=inbox)

    yield make
    for context in reversed(opened):
        await context.__aexit__(None, None, None)


async def test_a_kiln_left_on_with_no_firing_alerts_each_target_exactly_once_and_drafts_a_switch_off(
    world_factory: Any,
) -> None:
    await seed_firings(
        {"status": "completed", "kilnId": "studio-electric-1"},
        {
            "status": "scheduled",
            "kilnId": "studio-electric-1",
            "scheduledFor": datetime.now(UTC) + timedelta(days=2),
        },
    )
    world: World = await world_factory()
    world.hub.set_power(OUTLET, 1480.0)

    summaries = await world.tick(3)

    assert summaries[0]["conditions"] == ["safety.kiln_power_without_firing:21"]
    assert len(summaries[0]["opened"]) == 1
    assert summaries[1]["opened"] == summaries[2]["opened"] == []
    mails, hooks = world.alerts()
    assert mails == ["[HIGH] Kiln outlet drawing power with no firing in progress"]
    assert hooks == ["[HIGH] Kiln outlet drawing power with no firing in progress"]
    body = world.inbox.messages[0].message
    assert "Kiln Room Outlet draws 1480 W and no firing is in progress" in body
    assert "switch-off proposal is drafted" in body

    [finding] = await world.brain.safety.findings(status="open")
    assert finding.severity.value == "high"
    assert finding.rule_id == "safety.kiln_power_without_firing"
    assert finding.evidence["readings"][0]["attributes"]["power"] == 1480.0
    assert finding.evidence["readings"][0]["lastEventAt"]
    assert [f["status"] for f in finding.evidence["firings"]] == ["scheduled"]
    assert finding.evidence["rulesHash"] == world.brain.safety.table.hash

    # the drafted proposal: a switch-off of the outlet, waiting for a person; nothing was sent to the hub
    assert finding.proposal_id is not None
    [proposal] = await world.brain.gateway.list_proposals(
        system_principal(world.brain.tenant_id), ProposalFilter(status=Status.DRAFT)
    )
    assert proposal.id == finding.proposal_id
    assert proposal.capability_id == "hubitat.switch.set"
    assert proposal.input == {"deviceId": "21", "state": "off"}
    assert world.hub.writes == []
    assert finding.draft_id is not None

    # every delivery audited, naming the target but never its secret
    events = await audit_events(world, "notification.sent")
    assert sorted(e.metadata["target"] for e in events) == ["ops", "staff"]
    for e in events:
        assert WEBHOOK_PASSWORD not in str(e.metadata)
        assert WEBHOOK_PASSWORD not in e.rationale
    opened = await audit_events(world, "safety.finding.opened")
    assert len(opened) == 1


async def test_no_alert_while_a_firing_of_the_kiln_is_in_progress(world_factory: Any) -> None:
    await seed_firings({"status": "firing", "kilnId": "studio-electric-1"})
    world: World = await world_factory()
    world.hub.set_power(OUTLET, 1480.0)

    summaries = await world.tick(2)

    assert summaries[0]["firings"] == 1
    assert summaries[0]["conditions"] == []
    assert world.alerts() == ([], [])
    assert await world.brain.safety.findings() == []


async def test_a_stale_outlet_reading_gives_no_kiln_alert_and_is_never_taken_as_off(
    world_factory: Any,
) -> None:
    await seed_firings({"status": "firing", "kilnId": "studio-electric-1"})
    world: World = await world_factory(notify_routes="high=*")
    # the outlet last reported 1480 W an hour ago, then 0 W ... and went silent
    world.hub.set_power(OUTLET, 0.0)
    world.hub.go_silent(OUTLET)
    world.hub.set_last_event(OUTLET, datetime.now(UTC) - timedelta(hours=1))

    [summary] = await world.tick()

    assert summary["conditions"] == ["safety.device_stale:21"]
    assert world.alerts() == ([], []), "a stale reading raised a high alert"
    [finding] = await world.brain.safety.findings(status="open")
    assert finding.rule_id == "safety.device_stale"
    assert "silent for 60 min" in finding.summary


async def test_a_refused_delivery_is_retried_with_back_off_and_each_attempt_audited(
    world_factory: Any,
) -> None:
    await seed_firings()
    world: World = await world_factory()
    world.inbox.refuse_next(1)
    world.hub.set_power(OUTLET, 1480.0)

    [first] = await world.tick()
    assert first["notifications"] == {"sent": 1, "retrying": 1, "failed": 0}
    await asyncio.sleep(0.4)
    [second] = await world.tick()
    assert second["notifications"] == {"sent": 1, "retrying": 0, "failed": 0}

    _, hooks = world.alerts()
    assert len(hooks) == 1
    failed = await audit_events(world, "notification.failed")
    assert [e.metadata["target"] for e in failed] == ["ops"]
    assert failed[0].metadata["final"] is False
    assert WEBHOOK_PASSWORD not in str(failed[0].metadata)
    rows = await world.brain.notifications.recent()
    ops = next(n for n in rows if n.target == "ops")
    assert ops.status.value == "sent"
    assert ops.attempts == 2
    assert WEBHOOK_PASSWORD not in ops.target_display
    assert ops.target_display.startswith("json://brain:")


async def test_quiet_hours_hold_a_medium_alert_but_send_a_high_one(world_factory: Any) -> None:
    await seed_firings()
    local = datetime.now(UTC).astimezone(load_settings().zone)
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    world: World = await world_factory(notify_quiet_hours=f"{start}-{end}")
    world.hub.set_power(OUTLET, 1480.0)
    world.hub.go_silent("31")
    world.hub.set_last_event("31", datetime.now(UTC) - timedelta(hours=1))

    [summary] = await world.tick()

    # the back-door contact has been silent for an hour: a medium finding, held; the kiln: high, sent
    assert len(summary["opened"]) == 2
    mails, hooks = world.alerts()
    assert mails == hooks == ["[HIGH] Kiln outlet drawing power with no firing in progress"]
    held = [n for n in await world.brain.notifications.recent() if n.severity.value == "medium"]
    assert {n.status.value for n in held} == {"pending"}
    assert all(n.next_attempt_at is not None and n.next_attempt_at > datetime.now(UTC) for n in held)


async def test_the_morning_brief_reports_approvals_findings_and_unhealthy_devices_once_a_day(
    world_factory: Any,
) -> None:
    await seed_firings()
    world: World = await world_factory(safety_watched_devices="Storage Room Contact")
    world.hub.set_power(OUTLET, 1480.0)
    await world.tick()

    first = await world.brain.brief.send()
    again = await world.brain.brief.send()

    assert first["queued"] == 2
    assert again["queued"] == 0
    [brief] = [m for m in world.inbox.messages if m.title.startswith("Studio brief")]
    assert brief.title.endswith("1 waiting for approval, 1 open safety findings")
    text = brief.message
    assert "Waiting for approval" in text
    assert "draft hubitat.switch.set" in text
    assert "Open safety findings" in text
    assert "[high] Kiln Room Outlet draws 1480 W and no firing is in progress" in text
    assert "Unhealthy devices and connectors" in text
    assert "Storage Room Contact: offline" in text
    assert "Jobs" in text
    assert f"Cockpit: {world.brain.settings.cockpit_url}/brief" in text
    assert any(s.startswith("Studio brief") for s in world.mailbox.subjects())


async def test_the_cockpit_safety_page_shows_the_finding_and_masked_targets(world_factory: Any) -> None:
    await seed_firings()
    world: World = await world_factory()
    world.hub.set_power(OUTLET, 1480.0)
    await world.tick()
    from studio_brain.web.auth import Authenticator
    from tests.integration.test_cockpit_pages import BASE

    app = create_app(brain=world.brain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        auth: Authenticator = app.state.auth
        assert (await client.get(await auth.login_url(BASE))).status_code == 303
        page = await client.get("/safety")
        brief = await client.get("/brief")

    assert page.status_code == 200
    assert "Kiln Room Outlet draws 1480 W and no firing is in progress" in page.text
    assert "draft switch-off" in page.text
    assert 'href="/safety"' in page.text
    assert WEBHOOK_PASSWORD not in page.text
    assert "json://brain:" in page.text
    assert brief.status_code == 200
    assert "Waiting for approval" in brief.text


async def test_the_scheduler_leader_runs_the_watch_and_alerts_once_within_the_interval(
    world_factory: Any,
) -> None:
    await seed_firings()
    world: World = await world_factory(schedule_safety_watch="every 2s")
    assert world.brain.jobs.get("safety-watch").schedule is not None
    world.hub.set_power(OUTLET, 1480.0)

    async with scheduler_running(
        world.brain.jobs, world.brain.leader_lock, world.brain.clock, leader_check_seconds=1
    ):
        for _ in range(60):
            await asyncio.sleep(0.25)
            if world.alerts() != ([], []) and len(world.alerts()[0]) and len(world.alerts()[1]):
                break
        await asyncio.sleep(4.5)  # two more ticks: still one alert

    mails, hooks = world.alerts()
    assert mails == ["[HIGH] Kiln outlet drawing power with no firing in progress"]
    assert hooks == ["[HIGH] Kiln outlet drawing power with no firing in progress"]


def rules_file(tmp_path: Path, cooldowns: dict[str, float] | None = None, **for_minutes: float) -> Path:
    """The packaged table with some rules' ``for_minutes`` (and cooldowns) changed (a studio's own file)."""
    from importlib import resources

    text = resources.files("studio_brain").joinpath("rules", "safety_rules.toml").read_text(encoding="utf-8")
    blocks = text.split("[[rules]]")
    for kind, minutes in for_minutes.items():
        for i, block in enumerate(blocks):
            if f'kind = "{kind}"' in block:
                lines = [
                    f"for_minutes = {minutes}" if line.startswith("for_minutes") else line
                    for line in block.splitlines()
                ]
                blocks[i] = "\n".join(lines) + "\n"
    for kind, minutes in (cooldowns or {}).items():
        for i, block in enumerate(blocks):
            if f'kind = "{kind}"' in block:
                lines = [
                    f"cooldown_minutes = {minutes}" if line.startswith("cooldown_minutes") else line
                    for line in block.splitlines()
                ]
                blocks[i] = "\n".join(lines) + "\n"
    path = tmp_path / "safety_rules.toml"
    path.write_text("[[rules]]".join(blocks).replace('version = "', 'version = "test-'), encoding="utf-8")
    return path


async def test_a_door_open_outside_studio_hours_is_a_high_alert(world_factory: Any, tmp_path: Path) -> None:
    await seed_firings()
    world: World = await world_factory(
        studio_hours="mon-sun closed", safety_rules_file=rules_file(tmp_path, door_open_after_hours=0)
    )
    world.hub.set_power(OUTLET, 0.0)
    world.hub.set_contact("31", "open")

    [summary] = await world.tick()

    assert summary["conditions"] == ["safety.door_open_after_hours:31"]
    assert summary["rulesVersion"].startswith("test-")
    mails, hooks = world.alerts()
    assert mails == hooks == ["[HIGH] Door open or unlocked outside studio hours"]
    world.hub.set_contact("31", "closed")
    [after] = await world.tick()
    assert len(after["resolved"]) == 1
    assert await audit_events(world, "safety.finding.resolved")


async def test_a_firing_with_a_fresh_zero_reading_for_the_rule_time_is_a_medium_alert(
    world_factory: Any, tmp_path: Path
) -> None:
    await seed_firings({"status": "in-progress", "kilnId": "studio-electric-1"})
    world: World = await world_factory(safety_rules_file=rules_file(tmp_path, firing_without_power=0.01))
    world.hub.set_power(OUTLET, 0.0)

    [first] = await world.tick()
    assert first["conditions"] == ["safety.firing_without_power:21"]
    assert first["opened"] == [], "the condition has not held its 0.6 s yet"
    await asyncio.sleep(1.0)
    [second] = await world.tick()

    assert len(second["opened"]) == 1
    mails, hooks = world.alerts()
    assert mails == hooks == ["[MEDIUM] Firing in progress but the kiln outlet draws no power"]
    [finding] = await world.brain.safety.findings(status="open")  # type: ignore[union-attr]
    assert finding.proposal_id is None, "only a kiln left on drafts a switch-off"


async def test_a_target_that_keeps_refusing_is_marked_failed_after_its_attempts(world_factory: Any) -> None:
    await seed_firings()
    world: World = await world_factory(notify_attempts=2, notify_routes="high=ops")
    world.inbox.refuse_next(5)
    world.hub.set_power(OUTLET, 1480.0)

    await world.tick()
    await asyncio.sleep(0.4)
    [second] = await world.tick()

    assert second["notifications"] == {"sent": 0, "retrying": 0, "failed": 1}
    [row] = await world.brain.notifications.recent()  # type: ignore[union-attr]
    assert row.status.value == "failed"
    assert row.attempts == 2
    assert "503" in (row.last_error or "") or "delivery failed" in (row.last_error or "")
    failed = await audit_events(world, "notification.failed")
    assert [e.metadata["final"] for e in failed] == [False, True]
    assert world.mailbox.messages == [], "the route sent high alerts to ops only"


async def test_unreadable_firings_blind_only_the_kiln_rules_and_say_so(
    world_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world: World = await world_factory(
        studio_hours="mon-sun closed", safety_rules_file=rules_file(tmp_path, door_open_after_hours=0)
    )
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "")  # the client refuses it: the cloud read fails
    world.hub.set_power(OUTLET, 1480.0)
    world.hub.set_contact("31", "open")

    [summary] = await world.tick()

    assert summary["firings"] is None
    assert "FIRESTORE_EMULATOR_HOST" in summary["firingsError"]
    assert summary["conditions"] == ["safety.door_open_after_hours:31"], "no kiln verdict without firings"
    brief = await world.brain.brief.compose()  # type: ignore[union-attr]
    assert "kiln firings unreadable" in brief.text()
    from tests.integration.test_cockpit_pages import BASE

    app = create_app(brain=world.brain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        assert (await client.get(await app.state.auth.login_url(BASE))).status_code == 303
        page = await client.get("/safety")
    assert "The kiln rules cannot read the kiln firings" in page.text


async def test_a_route_naming_an_unknown_target_stops_start_up(world_factory: Any) -> None:
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_NOTIFY_ROUTES names target"):
        await world_factory(notify_routes="high=pager")


async def test_a_watched_device_on_another_connector_is_read_there_and_a_silent_vacuum_is_a_finding(
    world_factory: Any,
) -> None:
    from studio_brain.adapters.connectors.fakes.homeassistant import FakeHomeAssistant

    await seed_firings()
    with FakeHomeAssistant(token="ha-token-" + uuid.uuid4().hex[:8]) as ha:
        assert isinstance(ha, FakeHomeAssistant)
        ha.set_reported_at(datetime.now(UTC) - timedelta(hours=2))
        world: World = await world_factory(
            roborock_ha_url=ha.url,
            roborock_ha_token=ha.token,
            roborock_entity_id=ha.entity_id,
            safety_watched_devices=f"roborock:{ha.entity_id}, nowhere:sensor-9",
            notify_routes="high=*",
        )
        world.hub.set_power(OUTLET, 0.0)

        [summary] = await world.tick()

    assert summary["conditions"] == [f"safety.device_stale:{ha.entity_id}", "safety.device_stale:sensor-9"]
    findings = {f.subject: f for f in await world.brain.safety.findings(status="open")}  # type: ignore[union-attr]
    assert "silent for 120 min" in findings[ha.entity_id].summary
    assert findings[ha.entity_id].evidence["readings"][0]["connector"] == "roborock"
    # an unknown connector is unreadable, not silently skipped: a condition now, a finding after 15 min
    assert "sensor-9" not in findings


async def test_the_brief_compares_with_yesterdays_recorded_close_and_names_calendar_days(
    world_factory: Any, tmp_path: Path
) -> None:
    from studio_brain.domain.state import CloseKind, DailyClose
    from tests.e2e.seed import seed_snapshots

    await seed_firings()
    today = datetime.now(UTC).astimezone(load_settings().zone).date()
    calendar = tmp_path / "calendar.toml"
    calendar.write_text(
        f'version = 1\n[[days]]\ndate = {today + timedelta(days=2)}\nkind = "closure"\nlabel = "Kiln service"\n',
        encoding="utf-8",
    )
    world: World = await world_factory(calendar_file=calendar)
    brain = world.brain
    runs = await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=today, days=3)
    await brain.state_store.record_close(
        DailyClose(
            tenant_id=brain.tenant_id,
            close_date=today - timedelta(days=1),
            kind=CloseKind.LATE,
            run_id=runs[-2].id,
            closed_at=datetime.now(UTC),
            reason="the brain was off at midnight",
        )
    )

    brief = await brain.brief.compose()  # type: ignore[union-attr]

    [since] = [s for s in brief.sections if s.heading.startswith("Since yesterday's close")]
    assert since.heading.endswith(", late)")
    assert not since.quiet
    assert all("→" in line for line in since.lines)
    [days] = [s for s in brief.sections if s.heading.startswith("Studio calendar")]
    assert days.lines == (f"{today + timedelta(days=2)} closure: Kiln service",)


async def test_two_deliverers_at_the_same_moment_send_each_message_once(world_factory: Any) -> None:
    world: World = await world_factory()
    notifications = world.brain.notifications
    assert notifications is not None
    queued = await notifications.enqueue_brief(
        day=datetime.now(UTC).date(), title="Studio brief test", body="b"
    )
    assert queued == 2

    results = await asyncio.gather(*(notifications.deliver_due() for _ in range(4)))

    assert sum(r["sent"] for r in results) == 2
    assert [m.title for m in world.inbox.messages] == ["Studio brief test"]
    assert world.mailbox.subjects() == ["Studio brief test"]


async def test_a_kiln_left_on_again_after_the_cooldown_is_a_new_finding_with_its_own_draft_and_alert(
    world_factory: Any, tmp_path: Path
) -> None:
    await seed_firings()
    rules = rules_file(tmp_path, cooldowns={"kiln_power_without_firing": 0.01})
    world: World = await world_factory(safety_rules_file=rules)
    world.hub.set_power(OUTLET, 1480.0)
    await world.tick()
    world.hub.set_power(OUTLET, 0.0)
    [off] = await world.tick()
    assert len(off["resolved"]) == 1
    await asyncio.sleep(1.0)  # past the 0.6 s cooldown
    world.hub.set_power(OUTLET, 1500.0)

    [again] = await world.tick()

    assert len(again["opened"]) == 1
    mails, hooks = world.alerts()
    assert len(mails) == len(hooks) == 2
    findings = await world.brain.safety.findings()  # type: ignore[union-attr]
    assert len({f.proposal_id for f in findings}) == 2
    assert all(f.proposal_id for f in findings)


async def test_within_the_cooldown_the_same_condition_coming_back_opens_nothing(world_factory: Any) -> None:
    await seed_firings()
    world: World = await world_factory()
    world.hub.set_power(OUTLET, 1480.0)
    await world.tick()
    world.hub.set_power(OUTLET, 0.0)
    await world.tick()
    world.hub.set_power(OUTLET, 1480.0)

    [again] = await world.tick()

    assert again["conditions"] == ["safety.kiln_power_without_firing:21"]
    assert again["opened"] == []
    mails, hooks = world.alerts()
    assert len(mails) == len(hooks) == 1


async def test_a_studio_without_a_hub_gets_no_device_alarms_and_is_told_nothing_is_watched(
    world_factory: Any,
) -> None:
    await seed_firings()
    world: World = await world_factory(hubitat_url=None, hubitat_app_id=None, hubitat_token=None)

    summaries = await world.tick(2)

    assert summaries[-1]["conditions"] == []
    assert summaries[-1]["devices"] == 0
    assert summaries[-1]["unconfigured"][0].startswith("hubitat: ")
    assert world.alerts() == ([], [])
    brief = await world.brain.brief.compose()  # type: ignore[union-attr]
    assert "not watched — hubitat" in brief.text()
