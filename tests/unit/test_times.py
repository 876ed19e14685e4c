"""The one ISO-8601 pair (domain/times.py): the shapes each caller relied on before it was shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from studio_brain.domain.times import iso, parse_iso

PHOENIX = timezone(timedelta(hours=-7))
NOON = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def test_utc_is_written_with_a_z_and_microseconds_only_when_present() -> None:
    assert iso(NOON) == "2026-03-04T12:00:00Z"
    assert iso(NOON.replace(microsecond=1500)) == "2026-03-04T12:00:00.001500Z"


def test_none_is_written_as_none() -> None:
    assert iso(None) is None
    assert iso(None, utc=False, z=False) is None


def test_another_offset_is_converted_to_utc_unless_asked_to_keep_it() -> None:
    afternoon_in_phoenix = NOON.astimezone(PHOENIX)
    assert iso(afternoon_in_phoenix) == "2026-03-04T12:00:00Z"
    assert iso(afternoon_in_phoenix, utc=False) == "2026-03-04T05:00:00-07:00"


def test_z_false_keeps_pythons_plus_zero_offset() -> None:
    assert iso(NOON, utc=False, z=False) == "2026-03-04T12:00:00+00:00"


def test_z_and_an_offset_parse_to_the_same_instant() -> None:
    assert parse_iso("2026-03-04T12:00:00Z") == NOON
    assert parse_iso("2026-03-04T05:00:00-07:00") == NOON
    assert parse_iso("2026-03-04T05:00:00-07:00").utcoffset() == timedelta(hours=-7)  # type: ignore[union-attr]
    assert parse_iso("2026-03-04T05:00:00-07:00", utc=True).utcoffset() == timedelta(0)  # type: ignore[union-attr]


def test_what_is_not_iso_text_parses_to_none() -> None:
    for bad in (None, "", "yesterday", 1700000000, "2026-13-01T00:00:00Z"):
        assert parse_iso(bad) is None


def test_text_without_an_offset_is_refused_read_as_utc_or_kept_naive_as_asked() -> None:
    assert parse_iso("2026-03-04T12:00:00") is None
    assert parse_iso("2026-03-04T12:00:00", naive="utc") == NOON
    kept = parse_iso("2026-03-04T12:00:00", naive="keep")
    assert kept is not None
    assert kept.tzinfo is None
    assert kept == datetime(2026, 3, 4, 12, 0, 0)


def test_surrounding_whitespace_is_ignored_only_when_asked() -> None:
    assert parse_iso(" 2026-03-04T12:00:00Z ") is None
    assert parse_iso(" 2026-03-04T12:00:00Z ", strip=True) == NOON
    assert parse_iso("   ", strip=True) is None


def test_formatting_and_parsing_round_trip() -> None:
    moment = datetime(2026, 3, 4, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_iso(iso(moment)) == moment
