"""A faulty device: the fake Maker API, except that it *acts* on a command and then answers badly.

That is the fault that matters for honest outcomes: the switch really changed, and the answer is a 200
with malformed JSON, an HTML page, a 500, or no answer at all. ``on_write`` runs inside the request,
after the device acted and before it answers (e.g. to cut the database at exactly that moment).
"""

from __future__ import annotations

from collections.abc import Callable

from studio_brain.adapters.connectors.fakes import FakeMakerApi
from studio_brain.adapters.connectors.fakes.server import Incoming, Reply

AFTER_ACTING = ("malformed_json", "html_page", "server_error", "no_answer")


class FaultyMakerApi(FakeMakerApi):
    after_act: str | None = None
    on_write: Callable[[], None] | None = None

    def _serve(self, incoming: Incoming) -> Reply | None:
        reply = super()._serve(incoming)  # the command is carried out here
        if reply is None or not self.is_write(incoming):
            return reply
        if self.on_write is not None:
            self.on_write()
        match self.after_act:
            case "malformed_json":
                return Reply(status=200, body=b'{"id": "21", "label": "Kiln', content_type="application/json")
            case "html_page":
                return Reply(status=200, body="<html><body>Hub login</body></html>", content_type="text/html")
            case "server_error":
                return Reply(status=500, body={"message": "internal error after switching"})
            case "no_answer":
                return None
        return reply

    def switch(self, device_id: str) -> str:
        return str(self.devices[device_id].attributes["switch"][0])
