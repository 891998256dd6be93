"""Hand-built fleet snapshots for rule and engine tests (fakes of our own values)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from collector.alerts.model import DeviceState, FleetSnapshot

# 2026-06-01T00:00:00Z: every date in these tests is relative to this instant.
NOW = 1780272000.0
DAY = 86400.0


def device(device_id: str = "cam-1", **kw: Any) -> DeviceState:
    base = DeviceState(device_id=device_id, status="online", status_since=NOW - DAY, last_seen=NOW)
    return replace(base, **kw)


def fleet(*devices: DeviceState, taken_at: float = NOW, **kw: Any) -> FleetSnapshot:
    return FleetSnapshot(taken_at=taken_at, devices=tuple(devices), **kw)
