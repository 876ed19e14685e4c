"""The ports of Studio Brain: Protocols that services depend on and adapters implement.

One module per concept; everything is re-exported here so ``from studio_brain.ports import X`` works.
"""

from studio_brain.ports.audit import (
    CheckpointSigner,
    CheckpointStore,
    EventStore,
    ExportReader,
    ExportWriter,
    SignatureVerifier,
)
from studio_brain.ports.cache import CacheStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.cloud import CloudReader, FinanceReader
from studio_brain.ports.connectors import Connector, ConnectorHealthStore
from studio_brain.ports.drafts import DraftSink, DraftStore, ProposalDrafter
from studio_brain.ports.gateway import ConnectorDirectory, GatewayStore, GatewayTransaction, ProposalFilter
from studio_brain.ports.jobs import JobLocks, LeaderLock
from studio_brain.ports.state import StateStore

__all__ = [
    "CacheStore",
    "CheckpointSigner",
    "CheckpointStore",
    "Clock",
    "CloudReader",
    "Connector",
    "ConnectorDirectory",
    "ConnectorHealthStore",
    "DraftSink",
    "DraftStore",
    "EventStore",
    "ExportReader",
    "ExportWriter",
    "FinanceReader",
    "GatewayStore",
    "GatewayTransaction",
    "IdFactory",
    "JobLocks",
    "LeaderLock",
    "ProposalDrafter",
    "ProposalFilter",
    "SignatureVerifier",
    "StateStore",
]
