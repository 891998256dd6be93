"""The ingest-source axis: something that feeds the store until stopped (MQTT, SNMP polling...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collector.errors import CollectorError
from collector.store.interface import Store


class IngestError(CollectorError):
    """Base error of ingest sources (bad settings, broker refused us...)."""


@dataclass(frozen=True)
class StoreOpener:
    """How a worker process opens its own connection to the same store (picklable)."""

    path: Path
    options: Mapping[str, Any] = field(default_factory=dict)

    def open(self) -> Store:
        from collector.store import open_store

        return open_store(self.path, **dict(self.options))


class IngestSource(Protocol):
    """Started by `collector serve` with the shared store; runs in its own threads or processes."""

    name: str

    def start(self, store: Store) -> None:
        """Connect and begin feeding `store`; must return promptly (work runs in background)."""
        ...

    def stop(self) -> None:
        """Flush what was received, release resources; safe to call twice."""
        ...
