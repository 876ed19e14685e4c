"""The public half of the approval-attestation key, as a JWKS: ``GET /.well-known/jwks.json`` (and
``/api/v1/attestations/jwks``). Unauthenticated on purpose: it is what the studio (or anyone holding a
pilot action from Firestore) verifies an approval attestation with; it holds no secret."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from studio_brain.bootstrap import Brain, attestation_signer

router = APIRouter(tags=["attestations"])


@router.get("/.well-known/jwks.json", summary="JWKS of the approval-attestation key")
@router.get("/api/v1/attestations/jwks", summary="JWKS of the approval-attestation key")
async def jwks(request: Request) -> JSONResponse:
    brain: Brain = request.app.state.brain
    document = attestation_signer(brain.settings).jwks()
    # a key changes rarely; a verifier may keep it for an hour
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})
