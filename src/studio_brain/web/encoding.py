"""JSON response bodies encoded with orjson (issue 18): the hot read paths build plain dicts and return
them as bytes, instead of a pydantic response model re-validating them and the stdlib encoding them.

The JSON value is the one Starlette's ``JSONResponse`` would send (tests/unit/test_json_bytes.py); what
orjson does not take (an integer beyond 64 bits, a non-string key) goes to the stdlib's encoder, with
``JSONResponse``'s own options, so such a body is exactly what it was.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Response


def dumps(content: Any) -> bytes:
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_response(content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``content`` (plain JSON values: dicts, lists, strings, numbers, booleans, None) as a JSON response."""
    return Response(
        content=dumps(content), status_code=status_code, media_type="application/json", headers=headers
    )
