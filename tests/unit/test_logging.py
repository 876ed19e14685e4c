"""Log lines carry dotted events and never a secret."""

import io
import json
import logging

import pytest

from studio_brain.logging import configure_logging, get_logger, redact_text


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("GET http://hub/apps/api/12/devices/all?access_token=abc-123-def", "abc-123-def"),
        ("postgresql://brain:hunter2@db:5432/x", "hunter2"),
        ("authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGciOiJSUzI1NiJ9.payload.sig"),
        ("key sk_live_51Habcdef was pasted", "51Habcdef"),
        ("http://x/?a=1&password=pa55&b=2", "pa55"),
    ],
)
def test_secret_shaped_text_is_redacted(raw: str, secret: str) -> None:
    assert secret not in redact_text(raw)
    assert "***" in redact_text(raw)


def _capture() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream)
    return stream


def test_json_lines_carry_the_dotted_event_and_bound_context() -> None:
    stream = _capture()
    get_logger("t", proposal_id="p-1").info("proposal.approved", approver="staff-2")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "proposal.approved"
    assert line["proposal_id"] == "p-1"
    assert line["approver"] == "staff-2"
    assert line["level"] == "info"


def test_secret_keys_and_secret_text_are_redacted_in_structlog_events() -> None:
    stream = _capture()
    get_logger("t").warning(
        "connector.request",
        url="http://hub/apps/api/1/devices?access_token=tok-999",
        token="tok-999",
        headers={"Authorization": "Bearer tok-999"},
    )
    output = stream.getvalue()
    assert "tok-999" not in output
    assert "connector.request" in output


def test_stdlib_loggers_and_tracebacks_are_redacted_too() -> None:
    stream = _capture()
    try:
        raise RuntimeError("failed calling http://hub/?access_token=tok-777")
    except RuntimeError:
        logging.getLogger("somelib").exception("boom with password=pw-555")
    output = stream.getvalue()
    assert "tok-777" not in output
    assert "pw-555" not in output
    assert "RuntimeError" in output


def test_httpx_request_urls_are_not_logged_at_info() -> None:
    _capture()
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
