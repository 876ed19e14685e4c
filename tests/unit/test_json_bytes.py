"""The orjson-encoded responses (web/encoding.py) carry the JSON value Starlette's JSONResponse would."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from studio_brain.web.encoding import dumps, json_response

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_a_body_is_the_same_json_value_as_starlettes(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(JSONResponse(value).body)


def test_what_orjson_refuses_is_encoded_exactly_as_starlette_does() -> None:
    for value in ({"big": 2**70, "text": "Töpferei ☕"}, {1: "an integer key"}, [-(2**65)]):
        assert dumps(value) == JSONResponse(value).body


def test_a_response_is_json_with_its_status_and_headers() -> None:
    response = json_response({"ok": True}, status_code=201, headers={"etag": '"v1"'})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"v1"'
    assert json.loads(response.body) == {"ok": True}
