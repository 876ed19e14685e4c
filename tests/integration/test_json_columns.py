"""json/jsonb columns decode to exactly what the stdlib decoder gave (issue 18 swapped in orjson)."""

from __future__ import annotations

import json

from psycopg.types.json import Jsonb

from studio_brain.adapters.postgres.database import Database, json_loads

DOCUMENTS = [
    {"text": "Glaze firing at cone 6 — ünïcødé ✓", "n": 3, "ok": True, "none": None},
    {
        "big": 2**70 + 1,
        "negative_big": -(2**65) - 3,
        "max64": 2**63 - 1,
        "tiny": 5e-324,
        "float": 0.1,
        "exp": 1.5e300,
        "nested": [[], {}, [1, [2]]],
    },
    [1, 2.5, "x", None, False],
    "just a string",
    12345678901234567890123,
]


async def test_json_and_jsonb_columns_read_back_as_the_stdlib_decoder_reads_them(database: Database) -> None:
    async with database.connection() as conn:
        for document in DOCUMENTS:
            cursor = await conn.execute(
                "SELECT %s::jsonb AS b, %s::jsonb::text AS b_text, %s::json AS j",
                (Jsonb(document), Jsonb(document), json.dumps(document)),
            )
            row = await cursor.fetchone()
            assert row is not None
            # jsonb keeps numbers as numeric (1.5e300 comes back as 301 digits): what matters is that the
            # decoded value is the stdlib's decoding of the very text PostgreSQL sends
            assert row["b"] == json.loads(row["b_text"])
            assert type(row["b"]) is type(json.loads(row["b_text"]))
            assert row["j"] == json.loads(json.dumps(document))


def test_numbers_orjson_cannot_hold_fall_back_to_the_stdlib() -> None:
    assert json_loads(b'{"n": 123456789012345678901234567891}') == {"n": 123456789012345678901234567891}
    assert json_loads(b"[18446744073709551617]") == [18446744073709551617]
    assert json_loads(memoryview(b"[1e400]")) == [float("inf")]
    assert json_loads("[1, 2]") == [1, 2]
