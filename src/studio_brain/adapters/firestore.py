"""The Firestore CloudReader: one server-side ``count()`` aggregation per rule and per collection total.

Never scans documents. Queries run concurrently under a bounded semaphore; each has a deadline that
really cancels it (``asyncio.wait_for`` cancels the gRPC call); only transient errors are retried, and the
library's own retry policy is switched off so the deadline and attempt count here are the whole story.

The emulator is used when ``FIRESTORE_EMULATOR_HOST`` is set (the official client's own switch, with
anonymous credentials); otherwise the project from settings is read with Application Default
Credentials, which should belong to a read-only identity (``roles/datastore.viewer``).

``google.cloud.firestore`` is imported lazily, inside :meth:`FirestoreReader.read`: it is heavy, and a
brain that never reads Firestore (demo, tests, the web process at idle) should not pay for it.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime
from typing import Any

from studio_brain.domain.errors import CloudReadError
from studio_brain.domain.rules import Filter, RuleTable
from studio_brain.domain.snapshot import CloudRead, QueryResult, QueryStatus
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"

# error kinds (recorded in diagnostics; decide the explanation when every query fails)
UNREACHABLE = "unreachable"
CREDENTIALS = "credentials"
NOT_FOUND = "not_found"
REJECTED = "rejected"
TIMEOUT = "timeout"
TOO_OLD = "too_old"


class FirestoreReader:
    """Counts a rule table against one Firestore project (or the emulator)."""

    source = "firestore"

    def __init__(
        self,
        *,
        project_id: str,
        clock: Clock,
        deadline_seconds: float = 60.0,
        max_concurrency: int = 8,
        attempts: int = 3,
        retry_wait_seconds: float = 0.2,
    ) -> None:
        if deadline_seconds <= 0 or max_concurrency < 1 or attempts < 1:
            raise ValueError("deadline_seconds > 0, max_concurrency >= 1 and attempts >= 1 are required")
        self._project = project_id
        self._clock = clock
        self._deadline = deadline_seconds
        self._concurrency = max_concurrency
        self._attempts = attempts
        self._retry_wait = retry_wait_seconds
        #: the most queries that were ever in flight at once during the last read (concurrency evidence)
        self.peak_in_flight = 0
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"FirestoreReader(project={self._project!r}, emulator={self.emulator_host!r})"

    @property
    def emulator_host(self) -> str | None:
        return os.environ.get(EMULATOR_ENV) or None

    def where(self) -> str:
        host = self.emulator_host
        return f"the Firestore emulator at {host}" if host else f"Firestore project {self._project!r}"

    async def read(self, table: RuleTable) -> CloudRead:
        return await self._read(table, read_time=None)

    async def read_as_of(self, table: RuleTable, at: datetime) -> CloudRead:
        """The counts as they were at ``at`` (Firestore ``read_time``; the daily close at the day boundary).

        Firestore keeps old versions for 1 hour (7 days with point-in-time recovery; the emulator keeps
        about 7 days): an older ``at`` fails every query and raises CloudReadError "too old".
        """
        # in UTC: the client's timestamp conversion ignores a non-UTC offset (it read hours off in a test)
        return await self._read(table, read_time=at.astimezone(UTC))

    async def _read(self, table: RuleTable, *, read_time: datetime | None) -> CloudRead:
        client = self._client()
        started = self._clock.monotonic()
        semaphore = asyncio.Semaphore(self._concurrency)
        self._in_flight = 0
        self.peak_in_flight = 0
        try:
            rule_tasks = [
                self._count(client, semaphore, r.target, r.collection, r.filters, read_time)
                for r in table.rules
            ]
            total_tasks = [self._count(client, semaphore, c, c, (), read_time) for c in table.collections]
            results = await asyncio.gather(*rule_tasks, *total_tasks)
        finally:
            await _close(client)
        read_at = self._clock.now()
        rule_counts = tuple(results[: len(rule_tasks)])
        totals = tuple(results[len(rule_tasks) :])
        if all(r.status is not QueryStatus.OK for r in results):
            raise CloudReadError(self._explain(results))
        failed = [r.key for r in results if r.status is not QueryStatus.OK]
        log.info(
            "firestore.read",
            where=self.where(),
            queries=len(results),
            failed=failed,
            peak_in_flight=self.peak_in_flight,
            seconds=round(self._clock.monotonic() - started, 3),
        )
        return CloudRead(
            source=self.source,
            read_at=read_at,
            rule_counts=rule_counts,
            totals=totals,
            duration_ms=(self._clock.monotonic() - started) * 1000,
        )

    # --- the client --------------------------------------------------------------------------------
    def _client(self) -> Any:
        if os.environ.get(EMULATOR_ENV) == "":
            # the client would treat an empty value as "use the emulator at ''"
            raise CloudReadError(f"{EMULATOR_ENV} is set but empty: unset it, or set it to host:port")
        import google.auth.exceptions
        from google.cloud import firestore

        try:
            return firestore.AsyncClient(project=self._project)
        except google.auth.exceptions.GoogleAuthError as err:
            raise CloudReadError(
                f"no Google credentials to read Firestore project {self._project!r}: run "
                "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
                f"read-only service-account key file, or set {EMULATOR_ENV} to use the emulator"
            ) from err

    # --- one query ---------------------------------------------------------------------------------
    async def _count(
        self,
        client: Any,
        semaphore: asyncio.Semaphore,
        key: str,
        collection: str,
        filters: tuple[Filter, ...],
        read_time: datetime | None = None,
    ) -> QueryResult:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = client.collection(collection)
        for f in filters:
            value = list(f.value) if isinstance(f.value, tuple) else f.value
            query = query.where(filter=FieldFilter(f.field, f.op.value, value))
        aggregation = query.count(alias="n")
        async with semaphore:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            t0 = self._clock.monotonic()
            try:
                count = await asyncio.wait_for(
                    self._get_with_retries(aggregation, read_time), timeout=self._deadline
                )
            except TimeoutError:
                return self._result(key, collection, None, QueryStatus.TIMED_OUT, t0, TIMEOUT)
            except _QueryFailed as failure:
                status = QueryStatus.TIMED_OUT if failure.kind == TIMEOUT else QueryStatus.FAILED
                return self._result(key, collection, None, status, t0, f"{failure.kind}: {failure.detail}")
            finally:
                self._in_flight -= 1
            return self._result(key, collection, count, QueryStatus.OK, t0, None)

    def _result(
        self, key: str, collection: str, count: int | None, status: QueryStatus, t0: float, error: str | None
    ) -> QueryResult:
        return QueryResult(
            key=key,
            collection=collection,
            count=count,
            status=status,
            duration_ms=(self._clock.monotonic() - t0) * 1000,
            error=error,
        )

    async def _get_with_retries(self, aggregation: Any, read_time: datetime | None = None) -> int:
        import google.auth.exceptions
        from google.api_core import exceptions as gexc

        transient = (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.Aborted, gexc.ResourceExhausted)
        for attempt in range(1, self._attempts + 1):
            try:
                # retry=None: the library would otherwise retry UNAVAILABLE for up to 60 s on its own
                if read_time is None:
                    results = await aggregation.get(retry=None, timeout=self._deadline)
                else:
                    results = await aggregation.get(retry=None, timeout=self._deadline, read_time=read_time)
                break
            except transient as err:
                if attempt == self._attempts:
                    raise _QueryFailed(_kind(err), type(err).__name__) from err
                log.debug("firestore.query.retry", attempt=attempt, error=type(err).__name__)
                # exponential backoff with full jitter, so concurrent queries do not retry in lockstep
                await asyncio.sleep(random.uniform(0, self._retry_wait * 2 ** (attempt - 1)))  # noqa: S311
            except gexc.GoogleAPICallError as err:
                raise _QueryFailed(_kind(err), type(err).__name__) from err
            except google.auth.exceptions.GoogleAuthError as err:
                raise _QueryFailed(CREDENTIALS, type(err).__name__) from err
        # the emulator answers an empty count as 0.0 (a double): counts are integers at our boundary
        return int(results[0][0].value)

    def _explain(self, results: list[QueryResult]) -> str:
        kinds = {(r.error or "").split(":", 1)[0] for r in results}
        where = self.where()
        if kinds <= {UNREACHABLE, TIMEOUT} and UNREACHABLE in kinds:
            if self.emulator_host:
                return (
                    f"{where} does not answer: start it (./scripts/start-firestore-emulator) "
                    f"or unset {EMULATOR_ENV} to read the real project"
                )
            return f"{where} is unreachable: check the network connection and the project id"
        if kinds == {TIMEOUT}:
            return (
                f"every query to {where} exceeded its {self._deadline:g} s deadline: raise "
                "STUDIO_BRAIN_FIRESTORE_QUERY_DEADLINE_SECONDS or check the connection"
            )
        if CREDENTIALS in kinds:
            return (
                f"{where} refused the credentials: use an identity with read access "
                "(roles/datastore.viewer) via `gcloud auth application-default login` or "
                "GOOGLE_APPLICATION_CREDENTIALS"
            )
        if TOO_OLD in kinds:
            return f"{where} no longer keeps versions that old (read_time too old)"
        if NOT_FOUND in kinds:
            return f"{where} has no (default) database: check STUDIO_BRAIN_FIRESTORE_PROJECT_ID"
        first = next((r.error for r in results if r.error), "unknown error")
        return f"every query to {where} failed ({first})"


class _QueryFailed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _kind(err: Exception) -> str:
    from google.api_core import exceptions as gexc

    if isinstance(err, gexc.ServiceUnavailable):
        return UNREACHABLE
    if isinstance(err, gexc.DeadlineExceeded):
        return TIMEOUT
    if isinstance(err, gexc.Unauthenticated | gexc.PermissionDenied):
        return CREDENTIALS
    if isinstance(err, gexc.NotFound):
        return NOT_FOUND
    if isinstance(err, gexc.FailedPrecondition) and "too old" in str(err):
        return TOO_OLD
    return REJECTED


async def _close(client: Any) -> None:
    # AsyncClient has no public close(); its gRPC channel must still be closed on the loop that opened it.
    transport = getattr(client, "_transport", None)
    if transport is not None:
        await transport.close()
