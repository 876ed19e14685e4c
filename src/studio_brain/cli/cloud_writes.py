"""The demo's cloud-write step (issue 15): the fake Functions server on loopback over an in-memory copy of
the demo studio's batches (the demo's cloud), the real Functions connector aimed at it read-write, and one
ops note drafted for approval — so a newcomer can approve, execute and see a cloud write with its
attestation."""

from __future__ import annotations

import atexit
import secrets

import typer
from pydantic import SecretStr

from studio_brain.adapters.connectors.functions import MemoryDocuments
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import MemoryPilotStore
from studio_brain.adapters.connectors.registry import functions_from_settings
from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.identity import system_principal
from studio_brain.logging import get_logger

log = get_logger(__name__)
DEMO_ALLOWLIST = "executeStudioBrainPilotAction:ops_note_append,rollbackStudioBrainPilotAction:rollback,pickedUpAndClose:close"


async def prepare_demo_cloud_writes(brain: Brain) -> FakeFunctions:
    """Start the fake Functions (stopped when the demo ends), aim the connector at it, draft one note."""
    s = brain.settings
    store = MemoryPilotStore()
    cloud = DemoCloud(seed=s.demo_seed, clock=brain.clock, zone=s.zone)
    today = brain.clock.now().astimezone(s.zone).date()
    batches = cloud.studio().documents_on(today)["batches"]
    for doc_id, doc in batches.items():
        store.put(f"batches/{doc_id}", doc)
    open_batches = [(doc_id, doc) for doc_id, doc in batches.items() if doc.get("isClosed") is False]
    fake = FakeFunctions(
        store=store, project_id=s.firestore_project_id, refresh_token=secrets.token_urlsafe(32)
    )
    fake.start()
    atexit.register(fake.stop)
    settings = s.model_copy(
        update={
            "functions_base_url": fake.url,
            "functions_token_url": fake.token_url,
            "functions_refresh_token": SecretStr(fake.token),
            "functions_mode": "read_write",
            "functions_write_allowlist": DEMO_ALLOWLIST,
        }
    )
    brain.connectors.replace(
        functions_from_settings(settings, brain.clock, documents=MemoryDocuments(store.store))
    )
    lines = [
        f"  cloud     : fake Cloud Functions {fake.url} over the demo's batches (read-write, allowlisted)"
    ]
    if open_batches and brain.gateway is not None:
        batch_id, batch = open_batches[0]
        try:
            created = await brain.gateway.create_proposal(
                system_principal(s.tenant_id),
                "firestore.ops_note.append",
                {
                    "batchId": batch_id,
                    "ownerUid": str(batch.get("ownerUid")),
                    "note": f"Demo: {batch.get('title', 'batch')} moved to the top shelf before the glaze firing.",
                },
                "Demo: an ops note on a member's batch, written through the studio's own Function once approved",
                idempotency_key="demo-cloud-write-ops-note",
            )
            lines.append(
                f"  cloud     : proposal {created.proposal.id} (ops note on batch {batch_id}) waits for approval: "
                "approve and execute it in the cockpit, then see its resource pointer and attestation"
            )
        except StudioBrainError as err:
            log.warning("demo.cloud_write.not_drafted", error=err.message)
    lines.append(
        "  cloud     : JWKS of the attestation key at /.well-known/jwks.json; check one with "
        "`studio-brain attestations verify -` (paste it on stdin)"
    )
    for line in lines:
        typer.echo(line)
    return fake
