"""The MAC of a keyed (format 2) audit event: HMAC-SHA256, with a key kept outside the database, over
the event's hash — which covers its canonical form, its ``seq`` and its link (``prevHash``), its key id
and its format. A database writer without the key cannot make one, so cannot forge, alter, renumber or
re-chain an event without the verifier seeing it."""

from __future__ import annotations

from studio_brain.domain.audit.event import AuditEvent
from studio_brain.domain.records import Keyring, MacKey

#: what the MAC covers is prefixed with this, so an event MAC is never another record's MAC
EVENT_MAC_DOMAIN = b"studio-brain.audit-event/2\n"


def event_mac(key: MacKey, event_hash: str) -> str:
    """The MAC a keyed event with hash ``event_hash`` carries."""
    return key.mac(EVENT_MAC_DOMAIN + event_hash.encode("ascii"))


def mac_ok(keyring: Keyring, event: AuditEvent) -> bool:
    """True only when ``event``'s MAC was made by one of ``keyring``'s keys over its stored hash."""
    hash_ = event.hash
    if not isinstance(hash_, str) or not hash_.isascii():
        return False
    return keyring.verify(event.key_id, EVENT_MAC_DOMAIN + hash_.encode("ascii"), event.mac)
