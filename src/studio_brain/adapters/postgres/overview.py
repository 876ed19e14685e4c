"""The mark of the Portal's capabilities card on PostgreSQL (issue 18): which row versions a read of the
newest proposals, the kill switch and the exemptions saw, and the tenant's audit chain head.

A row's version is named by its system columns ``xmin`` (the transaction that wrote it) and ``ctid``
(where it lies): an UPDATE, a DELETE and INSERT, a restore or a rewrite of the table each leave another
pair, and no two live row versions share one — so equal marks mean the same rows, without reading,
decoding or checking a single record. Each kind gets its own letter (two tables may hold a row at the
same place written by one transaction); the set is sorted (bytewise in SQL, ``COLLATE "C"``, and again in
Python) so the one statement and the rows read one by one spell it alike. The chain head is read before
the rows: heads only move forward, so a mark is never matched again once anything was audited after it.
"""

from __future__ import annotations

from collections.abc import Iterable


def _version(kind: str) -> str:
    return f"'{kind}' || xmin::text || '@' || ctid::text"


def row_mark(kind: str) -> str:
    """A select-list column naming the row's version (``record_`` keeps it out of the record's fields)."""
    return f"{_version(kind)} AS record_mark"


#: the tenant's newest audit seq (0 for an empty chain), on the (tenant_id, seq) index
HEAD_SEQ = "SELECT coalesce(max(seq), 0) AS head FROM audit_events WHERE tenant_id = %s"


def mark_statement(proposals_where: str) -> str:
    """One statement: the head and the sorted marks of the newest proposals (``proposals_where`` with its
    ``LIMIT %s`` placeholder last), the kill switch's rows and the exemptions. Parameters: the tenant,
    the proposal clauses' and the limit, the tenant twice more."""
    return (
        f"SELECT ({HEAD_SEQ}) AS head,"
        """ (SELECT coalesce(string_agg(m, ' ' ORDER BY m COLLATE "C"), '') FROM ("""
        f"(SELECT {_version('p')} AS m FROM gateway_proposals WHERE {proposals_where})"
        f" UNION ALL SELECT {_version('k')} FROM gateway_kill_switch WHERE tenant_id = %s"
        f" UNION ALL SELECT {_version('e')} FROM gateway_exemptions WHERE tenant_id = %s"
        ") AS read_rows) AS marks"
    )


def mark_of(head: int, row_marks: Iterable[str]) -> tuple[int, str]:
    """The mark of a read: the head it began with and its rows' versions, spelled as
    :func:`mark_statement` spells them."""
    return head, " ".join(sorted(row_marks))  # a ctid holds a comma: spaces part them
