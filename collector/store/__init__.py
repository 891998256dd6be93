"""Storage for the collector: `open_store(path)` returns the SQLite implementation of `Store`."""

from __future__ import annotations

from pathlib import Path

from collector.store.interface import (
    ApplyResult,
    DeviceDetail,
    DeviceSummary,
    HealthPoint,
    IngestStats,
    Reject,
    Rollup,
    RollupWindow,
    Store,
    StoreError,
    Transition,
)

__all__ = [
    "ApplyResult",
    "DeviceDetail",
    "DeviceSummary",
    "HealthPoint",
    "IngestStats",
    "Reject",
    "Rollup",
    "RollupWindow",
    "Store",
    "StoreError",
    "Transition",
    "open_store",
]


def open_store(path: str | Path, **options: object) -> Store:
    """Open (creating and migrating) the SQLite store at `path`."""
    from collector.store.sqlite import SqliteStore

    return SqliteStore(path, **options)  # type: ignore[arg-type]
