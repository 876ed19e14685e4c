"""The record ledger's marks and the judgement they give: what a database writer cannot roll back.

A keyed row (a MAC or seal over its content) proves the brain wrote it, but not that it is the brain's
*newest* copy: a database writer can write back an older row, MAC and all — a logged-out session, a
revoked token, a removed passkey, a used login link, a demoted owner, a kill switch that was off — or
delete a row whose absence means "allowed" (the kill switch). The ledger is kept outside the database
(STUDIO_BRAIN_HOME, beside the keys) and holds, per record, the least any copy must show:

- ``ended``: the credential was ended (signed out, revoked, removed, used); any copy that does not say
  so is an older one written back;
- ``version``: the record's version reached this; a copy with a lower version is an older one, and —
  for records whose absence permits (``required``) — a missing row is a deleted one.

Marks are written after the database commit, so a reader never sees a mark ahead of the row it guards
(no false alarm while a write is in flight); a crash in between only leaves the previous mark in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: record kinds the ledger guards (the gateway's kinds are the keyed-record kinds of domain.records)
SESSION = "identity.session"
PERSONAL_TOKEN = "identity.personal_token"  # noqa: S105 - a record kind, not a secret
PASSKEY = "identity.passkey"
GRANT = "identity.grant"
PERSON = "identity.person"
KILL_SWITCH = "gateway.kill_switch"


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerMark:
    """The least a copy of one record must show from now on."""

    tenant_id: str
    kind: str
    record_id: str
    #: the record's version reached this (None: the mark is about ``ended`` only)
    version: int | None = None
    #: the record was ended for good
    ended: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tenant_id, self.kind, self.record_id)


@dataclass(frozen=True, slots=True)
class _Floor:
    version: int | None
    ended: bool


class LedgerView:
    """All marks folded into one floor per record (marks only ever raise a floor)."""

    __slots__ = ("_floors", "_versions")

    def __init__(self, marks: Iterable[LedgerMark] = ()) -> None:
        self._floors: dict[tuple[str, str, str], _Floor] = {}
        #: (tenant, kind) -> {record id: version floor}, for the rows that must exist
        self._versions: dict[tuple[str, str], dict[str, int]] = {}
        for mark in marks:
            self._raise(mark)

    def _raise(self, mark: LedgerMark) -> None:
        old = self._floors.get(mark.key) or _Floor(None, False)
        version = old.version
        if mark.version is not None and (version is None or mark.version > version):
            version = mark.version
        self._floors[mark.key] = _Floor(version, old.ended or mark.ended)
        if version is not None:
            self._versions.setdefault((mark.tenant_id, mark.kind), {})[mark.record_id] = version

    def with_marks(self, marks: Iterable[LedgerMark]) -> LedgerView:
        view = LedgerView()
        view._floors = dict(self._floors)
        view._versions = {k: dict(v) for k, v in self._versions.items()}
        for mark in marks:
            view._raise(mark)
        return view

    def __len__(self) -> int:
        return len(self._floors)

    def stale(
        self, tenant_id: str, kind: str, record_id: str, *, ended: bool, version: int | None = None
    ) -> str | None:
        """Why this copy of the record is older than the ledger allows, or None when it is not."""
        floor = self._floors.get((tenant_id, kind, record_id))
        if floor is None:
            return None
        if floor.ended and not ended:
            return "the ledger records that it was ended, but the row does not (an older copy written back)"
        if floor.version is not None and version is not None and version < floor.version:
            return (
                f"the row is version {version} but the ledger records version {floor.version}"
                " (an older copy written back)"
            )
        return None

    def versions(self, tenant_id: str, kind: str) -> dict[str, int]:
        """Every record of one kind and tenant with a version floor: those rows must exist."""
        return dict(self._versions.get((tenant_id, kind), {}))
