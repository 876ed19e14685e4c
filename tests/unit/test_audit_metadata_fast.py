"""The one-walk normalisation of audit metadata (issue 18) is the general one: the same plain JSON for
every value, and for every value it refuses, the same refusal naming the same field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from studio_brain.domain.audit.validation import (
    _check_metadata_values,
    normalise_metadata,
)
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.hashing import MAX_SAFE_INTEGER, canonical_json, to_json_value


def _general(metadata: dict[str, Any]) -> Any:
    converted = to_json_value(metadata, _path="metadata")
    assert isinstance(converted, dict)
    _check_metadata_values(converted, "metadata")
    return converted


def _outcome(fn: Any, value: Any) -> tuple[str, Any]:
    try:
        result = fn(value)
    except StudioBrainError as err:
        return "refused", (type(err).__name__, str(err))
    return "ok", (canonical_json(result), result)


_text = st.text(alphabet=st.characters() | st.sampled_from(["\x00", "\u0301", "\ud800"])) | st.sampled_from(
    ["e\u0301", "caf\u00e9", "nul\x00", "ascii"]
)
_keys = st.one_of(st.text(max_size=8), st.sampled_from(["a", "é", "e\u0301", "k\x00", "proposalId"]))
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    _text,
    st.binary(max_size=4),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))])),
    st.datetimes(),  # naive: refused
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_the_one_walk_path_equals_the_general_path(metadata: dict[str, Any]) -> None:
    fast = _outcome(normalise_metadata, metadata)
    general = _outcome(_general, metadata)
    assert fast[0] == general[0]
    if fast[0] == "ok":
        assert fast[1] == general[1]
    else:  # the same refusal; normalise_metadata wraps nothing else
        assert fast[1][1] == general[1][1]


def test_a_proposal_shaped_event_is_converted_alike() -> None:
    at = datetime(2026, 12, 1, 23, 59, 59, 123456, tzinfo=UTC)
    metadata = {
        "proposalId": "0190",
        "proposal": {
            "id": "0190",
            "version": 3,
            "input": {"text": "bench 1"},
            "createdAt": at,
            "tags": ("a",),
        },
        "amount": Decimal("1.50"),
    }
    assert normalise_metadata(metadata) == _general(metadata)
    assert normalise_metadata({"proposal": {"createdAt": at}})["proposal"] == {
        "createdAt": "2026-12-01T23:59:59.123456Z"
    }
