"""The demo studio: a seeded, deterministic pottery studio evolving day by day, readable as a CloudReader.

It writes exactly the collections, fields and values the Monsoon Fire portal writes (reference:
firestore-model.md) and moves them through their real lifecycles: batches DRAFT → … → CLOSED_PICKED_UP,
reservations, kiln firings, community reports (now and then a high-severity safety report), agent
requests, materials orders and payments (a few failures and disputes), support requests.

Determinism: the state on a day depends only on ``(seed, epoch, day)``; each simulated day draws from its
own ``Random(f"{seed}:{day}")``, and every container is an insertion-ordered dict (never a set, whose order
varies with the interpreter's hash seed). :class:`DemoCloudReader` evaluates the *same* rule objects as
the Firestore adapter, in memory, so the contract test can compare the two on the same documents.
"""

from __future__ import annotations

import copy
import random
import string
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from typing import Any

from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import CloudRead, QueryResult, QueryStatus
from studio_brain.ports.clock import Clock

Document = dict[str, Any]
Collections = dict[str, dict[str, Document]]

DEMO_COLLECTIONS: tuple[str, ...] = (
    "batches",
    "reservations",
    "kilnFirings",
    "communityReports",
    "agentRequests",
    "materialsOrders",
    "payments",
    "supportRequests",
)
#: days the studio runs before the first day anyone looks at, so queues are in a steady state
WARMUP_DAYS = 90

# Lifecycles: state -> [(next state, probability per day)]. A state absent from the table is terminal.
_BATCH_FLOW: dict[str, list[tuple[str, float]]] = {
    "DRAFT": [("SUBMITTED", 0.55), ("CLOSED_OTHER", 0.02)],
    "SUBMITTED": [("SHELVED", 0.5)],
    "SHELVED": [("LOADED", 0.35)],
    "LOADED": [("FIRED", 0.6)],
    "FIRED": [("READY_FOR_PICKUP", 0.6)],
    # "ARCHIVED" is the portal's archive path: isClosed true, status CLOSED_OTHER, state left alone
    "READY_FOR_PICKUP": [("CLOSED_PICKED_UP", 0.3), ("ARCHIVED", 0.01)],
}
_RESERVATION_FLOW: dict[str, list[tuple[str, float]]] = {
    "REQUESTED": [("CONFIRMED", 0.45), ("WAITLISTED", 0.1), ("CANCELLED", 0.05)],
    "WAITLISTED": [("CONFIRMED", 0.2), ("CANCELLED", 0.1)],
    "CONFIRMED": [("CONFIRMED_ARRIVED", 0.3), ("CANCELLED", 0.03)],
    "CONFIRMED_ARRIVED": [("LOADED", 0.6)],
}
_FIRING_FLOW: dict[str, list[tuple[str, float]]] = {
    "scheduled": [("loading", 0.35), ("cancelled", 0.03)],
    "loading": [("firing", 0.6), ("in-progress", 0.15)],
    "in-progress": [("cooling", 0.8)],
    "firing": [("cooling", 0.8)],
    "cooling": [("unloading", 0.7)],
    "unloading": [("completed", 0.8)],
}
_REPORT_FLOW: dict[str, list[tuple[str, float]]] = {
    "open": [("triaged", 0.5), ("dismissed", 0.05)],
    "triaged": [("actioned", 0.4), ("resolved", 0.15)],
    "actioned": [("resolved", 0.5)],
}
_AGENT_FLOW: dict[str, list[tuple[str, float]]] = {
    "new": [("triaged", 0.6), ("rejected", 0.05), ("cancelled", 0.03)],
    "triaged": [("accepted", 0.5), ("rejected", 0.1)],
    "accepted": [("in_progress", 0.5)],
    "in_progress": [("ready", 0.4)],
    "ready": [("fulfilled", 0.6)],
}
_ORDER_FLOW: dict[str, list[tuple[str, float]]] = {
    "checkout_created": [("checkout_pending", 0.7), ("payment_failed", 0.03)],
    "checkout_pending": [("paid", 0.8), ("payment_failed", 0.05)],
    "payment_failed": [("paid", 0.2)],
    "paid": [("picked_up", 0.3), ("disputed", 0.005), ("refunded", 0.005)],
}
_PAYMENT_FLOW: dict[str, list[tuple[str, float]]] = {
    "checkout_created": [("checkout_completed", 0.7)],
    "checkout_completed": [("payment_succeeded", 0.85), ("payment_failed", 0.05)],
    "payment_failed": [("payment_succeeded", 0.2)],
    "invoice_payment_failed": [("invoice_paid", 0.25)],
    "payment_succeeded": [("charge_disputed", 0.004), ("charge_refunded", 0.004)],
    "charge_disputed": [("charge_refunded", 0.1)],
}
_SUPPORT_FLOW: dict[str, list[tuple[str, float]]] = {
    "new": [("open", 0.5)],
    "open": [("waiting", 0.2), ("blocked", 0.05), ("on_hold", 0.05), ("resolved", 0.3)],
    "waiting": [("open", 0.3), ("resolved", 0.2)],
    "blocked": [("open", 0.2)],
    "on_hold": [("open", 0.15)],
    "resolved": [("closed", 0.3)],
}
_FLOWS: dict[str, dict[str, list[tuple[str, float]]]] = {
    "batches": _BATCH_FLOW,
    "reservations": _RESERVATION_FLOW,
    "kilnFirings": _FIRING_FLOW,
    "communityReports": _REPORT_FLOW,
    "agentRequests": _AGENT_FLOW,
    "materialsOrders": _ORDER_FLOW,
    "payments": _PAYMENT_FLOW,
    "supportRequests": _SUPPORT_FLOW,
}
_STATE_FIELD = {c: ("state" if c == "batches" else "status") for c in DEMO_COLLECTIONS}
_KILNS = ("studio-electric-1", "studio-electric-2", "gas-reduction")
_ID_ALPHABET = string.ascii_letters + string.digits


def demo_epoch(today: date) -> date:
    """The first simulated day: the first of the month at least :data:`WARMUP_DAYS` before ``today``.

    Stable for a whole month, so a demo restarted tomorrow recomputes nothing it already stored.
    """
    return (today - timedelta(days=WARMUP_DAYS)).replace(day=1)


class DemoStudio:
    """The studio's cloud documents, simulated from ``epoch`` up to any later day."""

    def __init__(self, *, seed: int, epoch: date, zone: tzinfo = UTC) -> None:
        self.seed = seed
        self.epoch = epoch
        self._zone = zone
        self._reset()

    def _reset(self) -> None:
        self._docs: Collections = {c: {} for c in DEMO_COLLECTIONS}
        # ids of documents not yet in a terminal state, per collection (insertion-ordered)
        self._open: dict[str, dict[str, None]] = {c: {} for c in DEMO_COLLECTIONS}
        self._day: date | None = None
        self._members = [f"member-{i:03d}" for i in range(1, 141)]
        self._legacy_added = False

    @property
    def day(self) -> date | None:
        """The last simulated day (its end-of-day state is what :meth:`view` shows)."""
        return self._day

    def advance_to(self, day: date) -> None:
        if day < self.epoch:
            raise ValueError(f"the demo studio starts on {self.epoch}; {day} is before it")
        if self._day is not None and day < self._day:
            self._reset()
        current = self.epoch if self._day is None else self._day + timedelta(days=1)
        while current <= day:
            self._step(current)
            self._day = current
            current += timedelta(days=1)

    def view(self, day: date) -> Mapping[str, Mapping[str, Document]]:
        """The documents at the end of ``day`` (a live view: do not keep it across advances)."""
        self.advance_to(day)
        return self._docs

    def documents_on(self, day: date) -> Collections:
        """A deep copy of every document at the end of ``day`` (to load into an emulator)."""
        self.advance_to(day)
        return copy.deepcopy(self._docs)

    # --- simulation -------------------------------------------------------------------------------
    def _at(self, day: date, rng: random.Random) -> datetime:
        moment = datetime.combine(day, clock_time(rng.randint(8, 20), rng.randint(0, 59)), tzinfo=self._zone)
        return moment.astimezone(UTC)

    def _new_id(self, rng: random.Random) -> str:
        return "".join(rng.choice(_ID_ALPHABET) for _ in range(20))

    def _add(self, collection: str, doc_id: str, doc: Document, *, open_: bool = True) -> None:
        self._docs[collection][doc_id] = doc
        if open_:
            self._open[collection][doc_id] = None

    def _step(self, day: date) -> None:
        # not for security: a reproducible stream per (seed, day)
        rng = random.Random(f"{self.seed}:{day.isoformat()}")  # noqa: S311
        if not self._legacy_added:
            # An old batch written before the portal set isClosed: no rule counts it, the diagnostics do.
            self._add(
                "batches",
                self._new_id(rng),
                {
                    "state": "CLOSED_PICKED_UP",
                    "ownerUid": "member-001",
                    "title": "Legacy import",
                    "createdAt": self._at(day, rng),
                },
                open_=False,
            )
            self._legacy_added = True
        for collection in DEMO_COLLECTIONS:
            self._advance(collection, day, rng)
        weekend = day.weekday() >= 5
        creators: tuple[tuple[Callable[[date, random.Random], None], int, int], ...] = (
            (self._new_batch, 1 if weekend else 3, 4 if weekend else 7),
            (self._new_reservation, 1 if weekend else 2, 3 if weekend else 6),
            (self._new_firing, 0, 0 if weekend else 2),
            (self._new_report, 0, 1),
            (self._new_agent_request, 0, 3),
            (self._new_order, 0, 2 if weekend else 4),
            (self._new_payment, 1, 4),
            (self._new_support_request, 0, 1 if weekend else 3),
        )
        for create, low, high in creators:
            for _ in range(rng.randint(low, high)):
                create(day, rng)
        if day.day == 1:
            self._monthly_invoices(day, rng)

    def _advance(self, collection: str, day: date, rng: random.Random) -> None:
        flow = _FLOWS[collection]
        field = _STATE_FIELD[collection]
        docs = self._docs[collection]
        still_open = self._open[collection]
        for doc_id in list(still_open):
            doc = docs[doc_id]
            nxt = _draw(flow.get(doc[field], []), rng)
            if collection == "communityReports" and doc["severity"] == "high" and nxt is None:
                # staff move high-severity reports along faster
                nxt = _draw(flow.get(doc[field], []), rng)
            if nxt is None:
                continue
            doc["updatedAt"] = self._at(day, rng)
            if collection == "batches" and nxt == "ARCHIVED":
                doc["isClosed"] = True
                doc["status"] = "CLOSED_OTHER"
            else:
                doc[field] = nxt
                if collection == "batches":
                    doc["isClosed"] = nxt.startswith("CLOSED_")
            if nxt not in flow:
                del still_open[doc_id]

    def _new_batch(self, day: date, rng: random.Random) -> None:
        self._add(
            "batches",
            self._new_id(rng),
            {
                "state": "DRAFT",
                "isClosed": False,
                "ownerUid": rng.choice(self._members),
                "title": rng.choice(("Mugs", "Bowls", "Planters", "Test tiles", "Vases", "Plates")),
                "firingType": rng.choice(("bisque", "glaze", "glaze", "raku")),
                "pieceCount": rng.randint(1, 14),
                "createdAt": self._at(day, rng),
            },
        )

    def _new_reservation(self, day: date, rng: random.Random) -> None:
        self._add(
            "reservations",
            self._new_id(rng),
            {
                "status": "REQUESTED",
                "ownerUid": rng.choice(self._members),
                "kilnId": rng.choice(_KILNS),
                "shelfCount": rng.randint(1, 3),
                "createdAt": self._at(day, rng),
            },
        )

    def _new_firing(self, day: date, rng: random.Random) -> None:
        self._add(
            "kilnFirings",
            self._new_id(rng),
            {
                "status": "scheduled",
                "kilnId": rng.choice(_KILNS),
                "cycle": rng.choice(("bisque", "cone6-glaze", "cone10-reduction")),
                "scheduledFor": self._at(day + timedelta(days=rng.randint(1, 6)), rng),
                "createdAt": self._at(day, rng),
            },
        )

    def _new_report(self, day: date, rng: random.Random) -> None:
        category = rng.choices(("safety", "conduct", "facility", "spam", "other"), (6, 15, 35, 20, 24))[0]
        severity = "high" if category == "safety" else rng.choices(("low", "medium", "high"), (60, 36, 4))[0]
        self._add(
            "communityReports",
            self._new_id(rng),
            {
                "status": "open",
                "severity": severity,
                "category": category,
                "reporterUid": rng.choice(self._members),
                "createdAt": self._at(day, rng),
            },
        )

    def _new_agent_request(self, day: date, rng: random.Random) -> None:
        self._add(
            "agentRequests",
            self._new_id(rng),
            {
                "status": "new",
                "kind": rng.choice(("firing", "pickup", "commission", "glaze-advice")),
                "requesterUid": rng.choice(self._members),
                "createdAt": self._at(day, rng),
            },
        )

    def _new_order(self, day: date, rng: random.Random) -> None:
        self._add(
            "materialsOrders",
            self._new_id(rng),
            {
                "status": "checkout_created",
                "ownerUid": rng.choice(self._members),
                "amountCents": rng.choice((1800, 2400, 3500, 4200, 6500, 12000)),
                "currency": "usd",
                "createdAt": self._at(day, rng),
            },
        )

    def _new_payment(self, day: date, rng: random.Random) -> None:
        self._add(
            "payments",
            self._new_id(rng),
            {
                "status": "checkout_created",
                "ownerUid": rng.choice(self._members),
                "amountCents": rng.choice((2500, 4000, 9500, 18000)),
                "kind": rng.choice(("firing_fee", "materials", "class")),
                "createdAt": self._at(day, rng),
            },
        )

    def _monthly_invoices(self, day: date, rng: random.Random) -> None:
        for member in self._members[: rng.randint(40, 60)]:
            failed = rng.random() < 0.06
            self._add(
                "payments",
                self._new_id(rng),
                {
                    "status": "invoice_payment_failed" if failed else "invoice_paid",
                    "ownerUid": member,
                    "amountCents": 15000,
                    "kind": "membership",
                    "createdAt": self._at(day, rng),
                },
                open_=failed,
            )

    def _new_support_request(self, day: date, rng: random.Random) -> None:
        self._add(
            "supportRequests",
            self._new_id(rng),
            {
                "status": "new",
                "urgency": rng.choices(("low", "normal", "high"), (30, 55, 15))[0],
                "topic": rng.choice(("billing", "kiln schedule", "pickup", "account", "classes")),
                "requesterUid": rng.choice(self._members),
                "createdAt": self._at(day, rng),
            },
        )


def _draw(choices: list[tuple[str, float]], rng: random.Random) -> str | None:
    roll = rng.random()
    for state, probability in choices:
        if roll < probability:
            return state
        roll -= probability
    return None


def evaluate(
    table: RuleTable, documents: Mapping[str, Mapping[str, Document]], *, source: str, read_at: datetime
) -> CloudRead:
    """Count every rule and total over in-memory documents with the rules' own ``matches``."""
    started = time.perf_counter()
    rule_counts = []
    for rule in table.rules:
        t0 = time.perf_counter()
        docs = documents.get(rule.collection, {})
        count = sum(1 for doc in docs.values() if rule.matches(doc))
        rule_counts.append(
            QueryResult(
                key=rule.target,
                collection=rule.collection,
                count=count,
                status=QueryStatus.OK,
                duration_ms=(time.perf_counter() - t0) * 1000,
            )
        )
    totals = tuple(
        QueryResult(
            key=c,
            collection=c,
            count=len(documents.get(c, {})),
            status=QueryStatus.OK,
            duration_ms=0.0,
        )
        for c in table.collections
    )
    return CloudRead(
        source=source,
        read_at=read_at,
        rule_counts=tuple(rule_counts),
        totals=totals,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


class DemoCloudReader:
    """A CloudReader over the demo studio on one fixed day."""

    source = "demo"

    def __init__(self, studio: DemoStudio, *, day: date, read_at: datetime) -> None:
        self._studio = studio
        self._day = day
        self._read_at = read_at

    async def read(self, table: RuleTable) -> CloudRead:
        return evaluate(table, self._studio.view(self._day), source=self.source, read_at=self._read_at)


class DemoCloud:
    """The demo studio as the brain's cloud: :meth:`read` shows today; :meth:`at` pins any past day."""

    source = "demo"

    def __init__(self, *, seed: int, clock: Clock, zone: tzinfo) -> None:
        self._seed = seed
        self._clock = clock
        self._zone = zone
        self._studio: DemoStudio | None = None

    def today(self) -> date:
        return self._clock.now().astimezone(self._zone).date()

    def studio(self) -> DemoStudio:
        epoch = demo_epoch(self.today())
        if self._studio is None or self._studio.epoch != epoch:
            self._studio = DemoStudio(seed=self._seed, epoch=epoch, zone=self._zone)
        return self._studio

    def at(self, day: date) -> DemoCloudReader:
        """A reader of ``day``'s end-of-day state, read "at" the end of that day (or now, for today)."""
        end_of_day = datetime.combine(day, clock_time(23, 59, 59), tzinfo=self._zone).astimezone(UTC)
        return DemoCloudReader(self.studio(), day=day, read_at=min(self._clock.now(), end_of_day))

    async def read(self, table: RuleTable) -> CloudRead:
        return await self.at(self.today()).read(table)
