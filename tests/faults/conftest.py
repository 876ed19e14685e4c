"""Fixtures of the fault suite: a loopback TCP proxy in front of this test's PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.faults.proxy import TcpProxy


@dataclass(frozen=True)
class ProxiedDatabase:
    proxy: TcpProxy
    #: the test's database, reached through the proxy
    url: str
    #: the same database, reached directly (to look at it while the proxy is cut)
    direct_url: str


@pytest.fixture
def proxied(database_url: str) -> Iterator[ProxiedDatabase]:
    with TcpProxy.for_url(database_url) as proxy:
        yield ProxiedDatabase(proxy=proxy, url=proxy.url(database_url), direct_url=database_url)
