"""Canonical hashing (domain/hashing.py): the documented rules, and their properties under Hypothesis."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from studio_brain.domain.errors import CanonicalisationError, InputInvalid
from studio_brain.domain.hashing import (
    MAX_SAFE_INTEGER,
    CanonicalShape,
    canonical_json,
    general_canonical_json,
    is_sha256_hex,
    sha256_bytes_hex,
    sha256_hex,
    to_json_value,
)

nfc_text = st.text(max_size=12).map(lambda s: unicodedata.normalize("NFC", s))
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | nfc_text
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(nfc_text, children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(nfc_text, json_values, min_size=1, max_size=6)


def reorder(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: reorder(value[k], data) for k in keys}
    if isinstance(value, list):
        return [reorder(v, data) for v in value]
    return value


def decompose(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFD", value)
    if isinstance(value, dict):
        return {unicodedata.normalize("NFD", k): decompose(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decompose(v) for v in value]
    return value


def changed_leaf(value: Any) -> Any:
    if value is None:
        return 0
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 if value < MAX_SAFE_INTEGER else value - 1
    if isinstance(value, float):
        return value + 1.0 if abs(value) < 1e15 else value / 2
    assert isinstance(value, str)
    return value + "x"


def mutate(value: Any, data: st.DataObject) -> Any:
    """``value`` with exactly one leaf (or one key) changed."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        if data.draw(st.booleans()):
            renamed = key + "~"
            if renamed not in value:
                return {(renamed if k == key else k): v for k, v in value.items()}
        return {**value, key: mutate(value[key], data)}
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutate(value[index], data), *value[index + 1 :]]
    if isinstance(value, dict | list):
        return {"added": 1} if isinstance(value, dict) else [1]
    return changed_leaf(value)


@settings(max_examples=100, deadline=None)
@given(value=json_objects, data=st.data())
def test_key_order_never_changes_the_hash(value: dict[str, Any], data: st.DataObject) -> None:
    assert sha256_hex(reorder(value, data)) == sha256_hex(value)


@settings(max_examples=100, deadline=None)
@given(value=json_objects, indent=st.sampled_from([None, 0, 2, 7, "\t"]), sep=st.sampled_from([", ", ","]))
def test_whitespace_in_the_json_text_never_changes_the_hash(
    value: dict[str, Any], indent: Any, sep: str
) -> None:
    spaced = json.loads(json.dumps(value, indent=indent, separators=(sep, " : ")))
    assert sha256_hex(spaced) == sha256_hex(value)


@settings(max_examples=100, deadline=None)
@given(value=json_objects)
def test_equivalent_unicode_forms_never_change_the_hash(value: dict[str, Any]) -> None:
    assert sha256_hex(decompose(value)) == sha256_hex(value)


@settings(max_examples=100, deadline=None)
@given(value=json_objects, data=st.data())
def test_any_change_of_a_value_changes_the_hash(value: dict[str, Any], data: st.DataObject) -> None:
    assert sha256_hex(mutate(value, data)) != sha256_hex(value)


def test_the_digest_is_sha256_of_rfc8785_bytes() -> None:
    assert (
        canonical_json({"b": [1, 2.5, "é"], "a": None, "c": True})
        == b'{"a":null,"b":[1,2.5,"\xc3\xa9"],"c":true}'
    )
    assert sha256_hex({"a": 1}) == sha256_bytes_hex(b'{"a":1}')
    assert is_sha256_hex(sha256_hex({"a": 1}))


@pytest.mark.parametrize(
    "bad",
    [
        2**53,
        -(2**53),
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        datetime(2026, 1, 1),  # naive: which instant?
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
        {1: "non-string key"},
        {"e\u0301": 1, "\u00e9": 2},  # two keys that are one key after NFC
        object(),
        {1, 2},
    ],
)
def test_values_outside_the_rules_are_refused_with_an_input_error(bad: Any) -> None:
    with pytest.raises(CanonicalisationError) as caught:
        sha256_hex({"value": bad})
    assert isinstance(caught.value, InputInvalid)


def test_the_largest_safe_integers_are_accepted() -> None:
    assert sha256_hex(MAX_SAFE_INTEGER) != sha256_hex(-MAX_SAFE_INTEGER)


def test_booleans_are_not_numbers() -> None:
    assert sha256_hex(True) != sha256_hex(1)
    assert sha256_hex(False) != sha256_hex(0)


@settings(max_examples=100, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones())
)
def test_a_datetime_hashes_as_its_utc_instant_in_full_iso_8601(when: datetime) -> None:
    text = json.loads(canonical_json(when))
    assert len(text) == 27
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) == when.astimezone(UTC)


def test_years_before_1000_are_zero_padded() -> None:
    assert canonical_json(datetime(1, 1, 1, tzinfo=UTC)) == b'"0001-01-01T00:00:00.000000Z"'


def test_one_instant_hashes_alike_in_every_timezone() -> None:
    utc = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    phoenix = utc.astimezone(timezone(timedelta(hours=-7)))
    assert canonical_json(utc) == canonical_json(phoenix) == b'"2026-11-25T12:00:00.123456Z"'


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (Decimal("12.50"), b'"12.50"'),
        (b"\x00\xff", b'"00ff"'),
        (date(2026, 11, 25), b'"2026-11-25"'),
        (UUID("12345678-1234-5678-1234-567812345678"), b'"12345678-1234-5678-1234-567812345678"'),
        ((1, "two"), b'[1,"two"]'),
    ],
)
def test_non_json_types_convert_by_their_documented_rule(value: Any, canonical: bytes) -> None:
    assert canonical_json(value) == canonical


@pytest.mark.parametrize("text", ["", "abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, None, 123])
def test_only_64_lowercase_hex_characters_count_as_a_sha256_digest(text: Any) -> None:
    assert not is_sha256_hex(text)


# --- the one encoder's fast path against the rfc8785 package (issue 20 item 5) ----------------------

# not NFC-normalised (half of them decomposed on purpose): the encoder must normalise
any_text = st.text(max_size=10) | st.text(st.sampled_from("aeoAÅéñ\u0301\u0308\u212b"), max_size=6).map(
    lambda s: unicodedata.normalize("NFD", s)
)
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
fast_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.integers(min_value=MAX_SAFE_INTEGER + 1)
    | st.integers(max_value=-MAX_SAFE_INTEGER - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
    | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones())
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.binary(max_size=4)
    | st.uuids()
)
fast_values = st.recursive(
    fast_leaves,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.lists(kids, max_size=3).map(tuple)
        | st.dictionaries(ascii_keys | any_text, kids, max_size=4)
    ),
    max_leaves=16,
)


def rfc8785_reference(value: Any) -> bytes | type[CanonicalisationError]:
    """What the rfc8785 package writes for ``value`` after the documented conversions (or the refusal)."""
    try:
        return bytes(rfc8785.dumps(to_json_value(value)))
    except CanonicalisationError:
        return CanonicalisationError


def encoded(encode: Any, value: Any) -> bytes | type[CanonicalisationError]:
    try:
        return bytes(encode(value))
    except CanonicalisationError:
        return CanonicalisationError


@settings(max_examples=400, deadline=None)
@given(value=fast_values)
def test_the_fast_path_writes_exactly_what_the_rfc8785_package_writes(value: Any) -> None:
    assert encoded(canonical_json, value) == rfc8785_reference(value)
    assert encoded(general_canonical_json, value) == rfc8785_reference(value)


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(ascii_keys, min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_a_fixed_shape_writes_exactly_what_the_rfc8785_package_writes(
    keys: list[str], data: st.DataObject
) -> None:
    values = [data.draw(fast_values) for _ in keys]
    shape = CanonicalShape(keys)
    assert encoded(lambda v: shape.encode(v), values) == rfc8785_reference(
        dict(zip(keys, values, strict=True))
    )


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(ascii_keys, min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_a_fixed_shape_with_declared_text_writes_what_rfc8785_writes_even_when_a_value_breaks_it(
    keys: list[str], data: st.DataObject
) -> None:
    text = data.draw(st.lists(st.sampled_from(keys), unique=True))
    optional = data.draw(st.lists(st.sampled_from([k for k in keys if k not in text] or ["-"]), unique=True))
    optional = [k for k in optional if k in keys and k not in text]  # "-" may be a real key, in ``text``
    rest = [k for k in keys if k not in text and k not in optional]
    times = data.draw(st.lists(st.sampled_from(rest or ["-"]), unique=True))
    times = [k for k in times if k in rest]
    moments = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
    values = []
    for key in keys:
        if key in text:  # text, but now and then not (a tampered row)
            values.append(data.draw(any_text | fast_leaves if data.draw(st.booleans()) else any_text))
        elif key in optional:
            values.append(data.draw(st.none() | any_text))
        elif key in times:  # a time, but now and then not
            values.append(data.draw(moments | fast_leaves if data.draw(st.booleans()) else moments))
        else:
            values.append(data.draw(fast_values))
    shape = CanonicalShape(keys, text=text, optional_text=optional, times=times)
    assert encoded(lambda v: shape.encode(v), values) == rfc8785_reference(
        dict(zip(keys, values, strict=True))
    )


def test_a_fixed_shape_escapes_braces_quotes_and_backslashes_in_its_keys() -> None:
    keys = ['{"a}', "b\\c", "%s", "d'e"]
    shape = CanonicalShape(keys, text=["%s"])
    values = ["x", 1, "y", None]
    assert shape.encode(values) == rfc8785_reference(dict(zip(keys, values, strict=True)))


def test_a_fixed_shape_escapes_percent_signs_in_its_keys_and_refuses_a_wrong_arity() -> None:
    shape = CanonicalShape(["b%s", "a"])
    assert shape.encode(["x", 1]) == b'{"a":1,"b%s":"x"}'
    with pytest.raises(ValueError, match="expected 2 values"):
        shape.encode(["x"])
    with pytest.raises(ValueError, match="distinct ASCII keys"):
        CanonicalShape(["é"])
