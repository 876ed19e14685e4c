"""What the gateway's CLI groups share: the ``--json`` and ``--reason`` options and running one use case
against the gateway as the signed-in person (``with_gateway``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import run
from studio_brain.cli.login import cli_principal
from studio_brain.domain.identity import Principal
from studio_brain.services.gateway import GatewayService
from studio_brain.settings import Settings

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ReasonOption = Annotated[str, typer.Option("--reason", "--rationale", help="Why (at least 10 characters).")]


def with_gateway(settings: Settings, use: Callable[[GatewayService, Principal], Awaitable[T]]) -> T:
    """Open the brain, identify the CLI's caller and run ``use`` with the gateway (issue 11: a person)."""

    async def _main() -> T:
        async with open_brain(settings, migrate=True) as brain:
            return await use(_gateway(brain), await cli_principal(brain))

    return run(_main())


def _gateway(brain: Brain) -> GatewayService:
    return brain.gateway
