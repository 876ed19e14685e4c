"""FiringReader on Firestore: the kilnFirings that are not finished (one ``in`` query, read-only).

Uses the official async client like :mod:`studio_brain.adapters.firestore` (the emulator when
``FIRESTORE_EMULATOR_HOST`` is set). Every failure is a CloudReadError: the safety watch then decides
nothing that needs the firings, rather than taking "no firing" for a fact.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from studio_brain.domain.errors import CloudReadError
from studio_brain.domain.safety import Firing

EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"
#: every status of reference/firestore-model.md except the final ones (completed, cancelled)
OPEN_STATUSES: tuple[str, ...] = ("scheduled", "loading", "in-progress", "firing", "cooling", "unloading")


def firing_from_document(doc_id: str, data: dict[str, Any]) -> Firing:
    scheduled = data.get("scheduledFor")
    if isinstance(scheduled, datetime) and scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=UTC)
    kiln = data.get("kilnId")
    return Firing(
        id=doc_id,
        status=str(data.get("status", "")),
        kiln_id=kiln if isinstance(kiln, str) else None,
        scheduled_for=scheduled if isinstance(scheduled, datetime) else None,
    )


class FirestoreFiringReader:
    def __init__(self, *, project_id: str, deadline_seconds: float = 20.0, limit: int = 500) -> None:
        self._project = project_id
        self._deadline = deadline_seconds
        self._limit = limit

    def __repr__(self) -> str:
        return f"FirestoreFiringReader(project={self._project!r})"

    async def current_firings(self) -> list[Firing]:
        if os.environ.get(EMULATOR_ENV) == "":
            raise CloudReadError(f"{EMULATOR_ENV} is set but empty: unset it, or set it to host:port")
        import google.auth.exceptions
        from google.api_core import exceptions as gexc
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        try:
            client = firestore.AsyncClient(project=self._project)
        except google.auth.exceptions.GoogleAuthError as err:
            raise CloudReadError(f"no Google credentials to read kilnFirings of {self._project!r}") from err
        try:
            query = (
                client.collection("kilnFirings")
                .where(filter=FieldFilter("status", "in", list(OPEN_STATUSES)))
                .limit(self._limit)
            )
            docs = await asyncio.wait_for(
                query.get(retry=None, timeout=self._deadline), timeout=self._deadline
            )
        except TimeoutError:
            raise CloudReadError(f"reading kilnFirings exceeded {self._deadline:g} s") from None
        except (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError) as err:
            raise CloudReadError(f"reading kilnFirings failed ({type(err).__name__})") from err
        finally:
            # AsyncClient has no public close(); its gRPC channel must be closed on the loop that opened it
            transport = getattr(client, "_transport", None)
            if transport is not None:
                await transport.close()
        return [firing_from_document(d.id, d.to_dict() or {}) for d in docs]
