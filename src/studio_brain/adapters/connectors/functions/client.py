"""The Functions write connector (target ``firestore``): the studio's own Cloud Functions, called over HTTPS
as the brain's Firebase staff user, behind the shared HTTP machinery (deadline, breaker, allowlist,
error translation, secret hygiene).

Writes (read_write mode and allowlisted ``function:command`` pairs only; docs/cloud-writes.md):

| action | Function | body |
|---|---|---|
| ``ops_note.append`` | ``executeStudioBrainPilotAction`` | proposalId, approvedBy (approvers + attestation), approvedAt, idempotencyKey, actorUid, actionType, ownerUid, resourceCollection, resourceId, note |
| ``ops_note.rollback`` | ``rollbackStudioBrainPilotAction`` | proposalId (of the executed append), idempotencyKey (its key, read from its action doc), actorUid, reason |
| ``batch.close`` | ``pickedUpAndClose`` | batchId, notes (with the attestation) |

Every write carries the approval attestation (header ``X-Studio-Brain-Approval``, and in the stored
``approvedBy`` / ``notes``) and the proposal's stable execution key. Before anything is sent the target is
read through :class:`~studio_brain.adapters.connectors.functions.documents.CloudDocuments` (a missing
batch, another owner or an already-closed batch are refused with nothing sent); a dry run reads the same
and predicts the documents the Function will write. Reads (``functions.read``) probe that the Functions
are deployed and the credential works: a ``GET`` answered 405 (they take POST only).
"""

from __future__ import annotations

import contextvars
import json
import re
import time
from typing import Any

import httpx

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.base import HtmlJson, HttpConnector, HttpPolicy, HttpRequest
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import contract as fc
from studio_brain.adapters.connectors.functions import predict, proofs
from studio_brain.adapters.connectors.functions.documents import CloudDocuments
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.domain.connectors import (
    ConnectorCommand,
    ConnectorContext,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
    ErrorKind,
    WriteAllowlist,
    connector_error,
)
from studio_brain.domain.errors import CloudReadError, Conflict, ConnectorError, InputInvalid, Unauthenticated
from studio_brain.domain.outcomes import Observed
from studio_brain.ports import Clock

READ_PATHS = tuple(re.compile(re.escape(name)) for name in fc.FUNCTIONS)
WRITE_PATHS = READ_PATHS
ATTESTATION_HEADER = "X-Studio-Brain-Approval"
READ_ACTIONS = ("functions.read", "batch.read", "action.read")
#: the Function's own time limit: an action doc still missing this long after sending was never written
FUNCTION_TIMEOUT_SECONDS = 60
_ATTESTATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("attestation", default=None)


class FunctionsConnector(HttpConnector):
    read_paths = READ_PATHS
    write_paths = WRITE_PATHS
    #: Functions always answer application/json; HTML is a proxy or a login page
    html_json = HtmlJson.REFUSE
    #: a dry run reads the target and predicts the documents; nothing is sent
    dry_run_support = DryRunSupport.SIMULATED
    version = "functions-v1"

    def __init__(
        self,
        *,
        base_url: str,
        tokens: IdTokenSource,
        documents: CloudDocuments,
        attester: AttestationSigner,
        clock: Clock,
        breaker: CircuitBreaker,
        policy: HttpPolicy,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
        allowlist: WriteAllowlist | None = None,
        jwks_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connector_id: str = "functions",
    ) -> None:
        super().__init__(
            connector_id=connector_id,
            target="firestore",
            base_url=base_url,
            mode=mode,
            allowlist=allowlist or WriteAllowlist(),
            clock=clock,
            breaker=breaker,
            policy=policy,
        )
        self._tokens = tokens
        self._documents = documents
        self._attester = attester
        self._jwks_url = jwks_url
        self._transport = transport

    # --- hooks -------------------------------------------------------------------------------------
    def _authorise(self, request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
        # the Bearer token is added in _send: getting it may need an (async) exchange
        return {}, {"Accept": "application/json"}

    def _health_request(self) -> HttpRequest:
        return HttpRequest(method="GET", path=fc.EXECUTE_FUNCTION)

    async def _send(
        self, request: HttpRequest, *, params: dict[str, str], headers: dict[str, str], seconds: float
    ) -> httpx.Response:
        try:
            token = await self._tokens.token()
        except Unauthenticated as err:
            raise connector_error(ErrorKind.AUTH, f"{self.id}: {err.message}", sent=False) from err
        except CloudReadError as err:
            # no ID token, no Function call: provably not sent
            raise connector_error(ErrorKind.UNAVAILABLE, f"{self.id}: {err.message}", sent=False) from err
        body = request.body
        if body is not None and "actorUid" in body:
            # the brain's own Firebase uid: known once the token is
            body = {**body, "actorUid": token.uid or body["actorUid"]}
        headers = {**headers, "Authorization": f"Bearer {token.value.get_secret_value()}"}
        attestation = _ATTESTATION.get()
        if request.method == "POST" and attestation:
            headers[ATTESTATION_HEADER] = attestation
        async with httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(seconds, connect=min(seconds, self._policy.connect_timeout_seconds)),
            verify=self._verify,
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        ) as client:
            response = await client.request(request.method, request.path, headers=headers, json=body)
            if response.status_code == 401:
                # verifyIdToken refused it before the Function did anything: revoked early (or the
                # signing keys rotated) — exchange once more and send again; a second 401 is AUTH
                self._tokens.forget()
                try:
                    token = await self._tokens.token(force=True)
                except (Unauthenticated, CloudReadError):
                    return response
                headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
                response = await client.request(request.method, request.path, headers=headers, json=body)
        return response

    def _decode(self, request: HttpRequest, response: httpx.Response) -> Any:
        status = response.status_code
        where = f"{self.id}: {request.method} {request.path}"
        if request.method == "GET" and status == 405:
            # the probe: deployed (POST only) and the credential passed; the body must still be JSON
            payload = super()._decode(request, _as_ok(response))
            return {"reachable": True, "status": 405, "message": _message(payload)}
        if request.method == "POST" and status in (400, 404, 409, 429):
            payload = _json_or_none(response)
            retry = response.headers.get("retry-after")
            suffix = f" (retry after {retry}s)" if status == 429 and retry else ""
            raise connector_error(
                ErrorKind.REFUSED,
                f"{where} refused ({status}): {_message(payload)}{suffix}; nothing was written",
                sent=True,
            )
        if request.method == "POST" and status == 403:
            payload = _json_or_none(response)
            raise connector_error(
                ErrorKind.AUTH,
                f"{where} was refused (403: {_message(payload)}): the brain's Firebase user needs the staff claim",
            )
        return super()._decode(request, response)

    # --- reads ---------------------------------------------------------------------------------------
    async def _read(self, ctx: ConnectorContext, input: dict[str, Any]) -> dict[str, Any]:
        action = str(input.get("action") or "functions.read")
        if action == "functions.read":
            name = str(input.get("deviceId") or fc.EXECUTE_FUNCTION)
            if name not in fc.FUNCTIONS:
                raise InputInvalid(f"unknown Function {name!r}; known: {', '.join(fc.FUNCTIONS)}")
            probe = await self._get_json(ctx, name)
            return {
                "devices": [_function_device(f, probed=probe if f == name else None) for f in fc.FUNCTIONS]
            }
        if action == "batch.read":
            batch_id = _require_text(input, "batchId")
            return {"batchId": batch_id, "batch": await self._document(f"{fc.BATCHES_COLLECTION}/{batch_id}")}
        if action == "action.read":
            proposal_id = _require_text(input, "proposalId")
            return {"proposalId": proposal_id, "actions": await self._actions(proposal_id)}
        raise InputInvalid(f"unknown functions read action {action!r}; known: {', '.join(READ_ACTIONS)}")

    async def _document(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._documents.get(path)
        except CloudReadError as err:
            # a read of the target, before any write was sent
            raise connector_error(ErrorKind.UNAVAILABLE, f"{self.id}: {err.message}", sent=False) from err

    async def _actions(self, proposal_id: str) -> list[dict[str, Any]]:
        try:
            found = await self._documents.actions_for(proposal_id)
        except CloudReadError as err:
            raise connector_error(ErrorKind.UNAVAILABLE, f"{self.id}: {err.message}", sent=False) from err
        return [{"docId": doc_id, **doc} for doc_id, doc in found]

    # --- writes --------------------------------------------------------------------------------------
    def _action(self, command: ConnectorCommand) -> fc.ConnectorAction:
        action = fc.WRITE_ACTIONS.get(command.action)
        if action is None:
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: {command.action!r} is not a write action of this connector",
            )
        function = command.device_id or action.function
        name = command.command or action.command
        if (function, name) != (action.function, action.command):
            raise connector_error(
                ErrorKind.NOT_ALLOWED, f"{self.id}: {command.action} is {action.function}:{action.command}"
            )
        if not self.allowlist.allows(action.function, action.command):
            self._log.warning(
                "connector.write.refused", reason=ErrorKind.NOT_ALLOWED.value, action=command.action
            )
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: {action.function}:{action.command} is not on the write allowlist",
            )
        return action

    def _write_request(self, command: ConnectorCommand) -> HttpRequest:
        """The request, with what is known before sending (actorUid is filled in once the token is)."""
        action = self._action(command)
        args = command.args
        if action.action == "ops_note.append":
            body: dict[str, Any] = {
                "proposalId": command.approval.proposal_id if command.approval else "(this proposal)",
                "approvedBy": None,
                "approvedAt": command.approval.approved_at if command.approval else None,
                "idempotencyKey": "(the proposal's execution key)",
                "actorUid": "(the brain's Firebase user)",
                "actionType": "ops_note_append",
                "ownerUid": _require_text(args, "ownerUid"),
                "resourceCollection": fc.BATCHES_COLLECTION,
                "resourceId": _require_text(args, "batchId"),
                "note": _require_text(args, "note"),
            }
            _check_length(body["note"], "note", 5, 500)
        elif action.action == "ops_note.rollback":
            body = {
                "proposalId": _require_text(args, "proposalId"),
                "idempotencyKey": "(the executed proposal's key)",
                "actorUid": "(the brain's Firebase user)",
                "reason": _require_text(args, "reason"),
            }
            _check_length(body["reason"], "reason", 10, 500)
            if len(body["proposalId"]) < 8:
                raise InputInvalid("proposalId: at least 8 characters")
        else:
            notes = args.get("notes")
            if notes is not None and not isinstance(notes, str):
                raise InputInvalid("notes: expected a string")
            body = {"batchId": _require_text(args, "batchId"), "notes": notes or None}
        return HttpRequest(method="POST", path=action.function, body=body)

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        if not command.write:
            return await super().execute(ctx, command)
        started = time.perf_counter()
        # Safety order: read-only first, before anything is parsed, read or sent (dry runs included).
        if self._mode is not ConnectorMode.READ_WRITE:
            self._log.warning(
                "connector.write.refused", reason=ErrorKind.READ_ONLY_VIOLATION.value, action=command.action
            )
            raise connector_error(
                ErrorKind.READ_ONLY_VIOLATION,
                f"{self.id} is read-only; {command.action} was not sent "
                "(set STUDIO_BRAIN_FUNCTIONS_MODE=read_write to allow approved cloud writes)",
            )
        request = self._write_request(command)
        self._require_path(request.path, write=True)
        if ctx.idempotency_key is not None and ctx.idempotency_key in self._done:
            done = self._done[ctx.idempotency_key]
            if done.input_hash != self._input_hash(command.as_input()):
                raise Conflict(f"{self.id}: idempotency key reused for a different command; nothing was sent")
            self._log.info("connector.write.replayed", action=command.action, request_id=ctx.request_id)
            return done
        if ctx.dry_run:
            data = await self._predict(command, request)
            return self._respond(ctx, command.as_input(), data, started=started, dry_run=True)
        body = await self._final_body(ctx, command, request)
        sent = HttpRequest(method="POST", path=request.path, body=body)
        attestation = self._attestation(command)
        payload = await self._call_with_attestation(ctx, sent, attestation)
        data = self._result(command, payload, attestation)
        if command.action == "batch.close":
            await self._closed_or_unknown(str(body["batchId"]))
        response = self._respond(ctx, command.as_input(), data, started=started)
        self._log.info(
            "connector.write.sent", action=command.action, path=request.path, request_id=ctx.request_id
        )
        if ctx.idempotency_key is not None:
            self._done[ctx.idempotency_key] = response
            while len(self._done) > self._IDEMPOTENCY_MEMORY:
                self._done.popitem(last=False)
        return response

    async def reconcile(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse | None:
        """After an unknown outcome: the proven result, or None while it stays unknown.

        Proven by the cloud (:mod:`.proofs`) → executed, nothing sent. Otherwise an append or a rollback is
        sent again with the SAME key (the Function writes at most once, and replays a second rollback); a
        close never is (``pickedUpAndClose`` has no idempotency key)."""
        started = time.perf_counter()
        if self._mode is not ConnectorMode.READ_WRITE:
            raise connector_error(ErrorKind.READ_ONLY_VIOLATION, f"{self.id} is read-only; nothing was sent")
        action = self._action(command)
        if command.approval is None or ctx.idempotency_key is None:
            raise connector_error(
                ErrorKind.NOT_ALLOWED, f"{self.id}: reconciling needs the approval and the key"
            )
        proven = await proofs.proof_of(
            action,
            approval=command.approval,
            key=ctx.idempotency_key,
            args=command.args,
            document=self._document,
            actions=self._actions,
        )
        if proven is not None:
            data = {**proven, "attestation": self._attestation(command)}
            return self._respond(ctx, command.as_input(), data, started=started)
        if action.action == "batch.close":
            return None
        self._done.pop(ctx.idempotency_key, None)
        try:
            return await self.execute(ctx, command)
        except ConnectorError as err:
            if err.kind in (ErrorKind.TIMEOUT.value, ErrorKind.UNAVAILABLE.value):
                return None
            raise

    async def verify_outcome(self, ctx: ConnectorContext, command: ConnectorCommand) -> Observed | None:
        """Read-only proof for the execution-recovery job (issue 13): the effect in the cloud, or None.

        Never sends anything, and never proves ``failed``: a missing action doc may still be written by a
        Function that is running late (``reconcile`` settles that by sending again with the same key)."""
        action = fc.WRITE_ACTIONS.get(command.action)
        if action is None or command.approval is None or ctx.idempotency_key is None:
            return None  # without the proposal and its key there is nothing to look up
        proven = await proofs.proof_of(
            action,
            approval=command.approval,
            key=ctx.idempotency_key,
            args=command.args,
            document=self._document,
            actions=self._actions,
        )
        return None if proven is None else Observed(done=True, data=proven)

    # --- the pieces of a write --------------------------------------------------------------------------
    def _attestation(self, command: ConnectorCommand) -> str:
        if command.approval is None:
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: a cloud write needs the approved proposal's attestation; nothing was sent",
            )
        return self._attester.attest(command.approval)

    async def _final_body(
        self, ctx: ConnectorContext, command: ConnectorCommand, request: HttpRequest
    ) -> dict[str, Any]:
        """Check the target and complete the body; everything here happens before any byte is sent."""
        assert request.body is not None
        body = dict(request.body)
        approval = command.approval
        attestation = self._attestation(command)
        action = self._action(command)
        if action.action == "ops_note.append":
            batch = await self._document(f"{fc.BATCHES_COLLECTION}/{body['resourceId']}")
            if batch is None:
                raise InputInvalid(f"batch {body['resourceId']} does not exist; nothing was sent")
            if batch.get("ownerUid") != body["ownerUid"]:
                raise InputInvalid(
                    f"batch {body['resourceId']} belongs to another member than ownerUid; nothing was sent"
                )
            assert approval is not None
            body.update(
                proposalId=approval.proposal_id,
                approvedBy=self._approved_by(approval.approvers, attestation),
                approvedAt=approval.approved_at,
                # the gateway always passes the proposal's execution key; a direct caller's request id
                # stands in for it (stable across that caller's retries of one request)
                idempotencyKey=fc.function_key(ctx.idempotency_key or f"request-{ctx.request_id}"),
            )
        elif action.action == "ops_note.rollback":
            actions = await self._actions(body["proposalId"])
            active = [a for a in actions if a.get("rollbackState") != "rolled_back"] or actions
            if not active:
                raise InputInvalid(
                    f"proposal {body['proposalId']} has no pilot action in the cloud to roll back; nothing was sent"
                )
            body["idempotencyKey"] = str(active[0].get("idempotencyKey") or "")
        else:
            batch = await self._document(f"{fc.BATCHES_COLLECTION}/{body['batchId']}")
            if batch is None:
                raise InputInvalid(f"batch {body['batchId']} does not exist; nothing was sent")
            if batch.get("isClosed") is True:
                raise InputInvalid(f"batch {body['batchId']} is already closed; nothing was sent")
            body["notes"] = (
                f"{body['notes'] or fc.DEFAULT_CLOSE_NOTES}\n\nstudio-brain-approval: {attestation}"
            )
        return body

    async def _closed_or_unknown(self, batch_id: str) -> None:
        """Never ``executed`` without the effect: after a 200, the batch must read as closed. If it does
        not (or cannot be read), the outcome is unknown — the Function answered, the effect is not seen."""
        try:
            batch = await self._documents.get(f"{fc.BATCHES_COLLECTION}/{batch_id}")
        except CloudReadError as err:
            raise connector_error(
                ErrorKind.BAD_RESPONSE,
                f"{self.id}: closed, but the batch could not be read back ({err.message})",
                sent=True,
            ) from err
        if batch is None or batch.get("isClosed") is not True or batch.get("state") != fc.CLOSED_STATE:
            raise connector_error(
                ErrorKind.BAD_RESPONSE,
                f"{self.id}: pickedUpAndClose answered 200 but batch {batch_id} does not read as closed",
                sent=True,
            )

    def _approved_by(self, approvers: tuple[str, ...], attestation: str) -> str:
        """``approvedBy`` as the Function stores it (a string): the approvers and the attestation."""
        value: dict[str, Any] = {"approvers": list(approvers), "attestation": attestation}
        if self._jwks_url:
            value["jwks"] = self._jwks_url
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    async def _call_with_attestation(
        self, ctx: ConnectorContext, request: HttpRequest, attestation: str
    ) -> Any:
        # a context variable, not an attribute: concurrent executions each send their own
        reset = _ATTESTATION.set(attestation)
        try:
            return await self._call(ctx, request, write=True, retry=False)
        finally:
            _ATTESTATION.reset(reset)

    def _result(self, command: ConnectorCommand, payload: Any, attestation: str) -> dict[str, Any]:
        if not isinstance(payload, dict) or payload.get("ok") is not True:
            raise connector_error(
                ErrorKind.BAD_RESPONSE, f"{self.id}: {command.action} answered 200 without ok: true"
            )
        result: dict[str, Any] = {"ok": True, "replayed": bool(payload.get("replayed", False))}
        pointer = payload.get("resourcePointer")
        if isinstance(pointer, dict):
            result["resourcePointer"] = {
                "collection": pointer.get("collection"),
                "docId": pointer.get("docId"),
            }
        if command.action == "batch.close":
            result["resourcePointer"] = {
                "collection": fc.BATCHES_COLLECTION,
                "docId": command.args.get("batchId"),
            }
        result["attestation"] = attestation
        return result

    async def _predict(self, command: ConnectorCommand, request: HttpRequest) -> dict[str, Any]:
        """The documents the Function would write, and what the target looks like now. Sends nothing."""
        assert request.body is not None
        body = request.body
        if command.action == "ops_note.rollback":
            try:
                actions, problem = await self._actions(body["proposalId"]), None
            except ConnectorError as err:
                actions, problem = [], err.message
            effects, warnings = predict.rollback_effects(body, actions, problem)
        else:
            batch_id = body["resourceId"] if command.action == "ops_note.append" else body["batchId"]
            batch, problem = await self._try_read(f"{fc.BATCHES_COLLECTION}/{batch_id}")
            if command.action == "ops_note.append":
                check = predict.batch_check(batch_id, batch, problem, owner=body["ownerUid"])
                effects, warnings = predict.ops_note_effects(body, check)
            else:
                check = predict.batch_check(batch_id, batch, problem, owner=None)
                effects, warnings = predict.close_effects(body, check)
        return {
            "dryRun": True,
            "wouldSend": {"method": "POST", "function": request.path, "body": body},
            "effects": effects,
            "warnings": warnings,
        }

    async def _try_read(self, path: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return await self._document(path), None
        except ConnectorError as err:
            return None, err.message


def _as_ok(response: httpx.Response) -> httpx.Response:
    return httpx.Response(200, headers=response.headers, content=response.content, request=response.request)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])[:300]
    return "no message"


def _require_text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputInvalid(f"{name}: a non-empty string is required")
    return value


def _check_length(value: str, name: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise InputInvalid(f"{name}: between {low} and {high} characters")


def _function_device(name: str, *, probed: dict[str, Any] | None) -> dict[str, Any]:
    """A Function in the common device shape (the connector's "devices" are the endpoints it acts on)."""
    return {
        "id": name,
        "label": {
            fc.EXECUTE_FUNCTION: "Pilot action: ops note append",
            fc.ROLLBACK_FUNCTION: "Pilot action: rollback",
            fc.CLOSE_FUNCTION: "Batch close (picked up)",
        }[name],
        "room": None,
        "type": "cloud-function",
        "online": True if probed is not None else None,
        "battery": None,
        "attributes": {"method": "POST", "probed": probed is not None},
        "lastEventAt": None,
        "stale": None,
    }
