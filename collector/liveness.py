"""Liveness: one state machine per device fusing birth/will, heartbeat age and poll outcomes.

States: unknown (never heard), online, stale, offline. Rules (interval = the device's own
reporting interval, from its birth or health messages, or the poll interval for agentless ones):

- birth `online` or any report (health, inventory, event, successful poll) -> online
- last-will or clean-shutdown `offline` -> offline at once
- silence longer than `stale_after` intervals (default 1.5: one report missed plus jitter) -> stale
- silence longer than `offline_after` intervals (default 3: three reports missed) -> offline
- a failed poll -> stale; `offline_polls` failed polls in a row (default 3) -> offline

The store applies these inside its transactions (so every transition is stored with its time);
the serve loop calls `Store.sweep_liveness` periodically for the silence rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import CollectorError
from collector.store.interface import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_STALE,
    STATUS_UNKNOWN,
)

REASON_BIRTH = "birth"
REASON_REPORT = "report"
REASON_WILL = "will"
REASON_SHUTDOWN = "shutdown"
REASON_SILENT = "silent"
REASON_POLL_OK = "poll_ok"
REASON_POLL_FAILED = "poll_failed"


class LivenessConfigError(CollectorError):
    """Liveness thresholds that cannot work (offline before stale, non-positive interval)."""


@dataclass(frozen=True)
class LivenessPolicy:
    """Thresholds in multiples of each device's reporting interval."""

    stale_after: float = 1.5
    offline_after: float = 3.0
    default_interval: float = 10.0
    offline_polls: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.stale_after < self.offline_after:
            raise LivenessConfigError(
                f"liveness: need 0 < stale_after ({self.stale_after}) < offline_after "
                f"({self.offline_after})"
            )
        if self.default_interval <= 0:
            raise LivenessConfigError("liveness: default_interval must be positive")
        if self.offline_polls < 1:
            raise LivenessConfigError("liveness: offline_polls must be at least 1")

    def by_age(self, status: str, age: float, interval: float | None) -> str:
        """Status after `age` seconds of silence; only online/stale devices decay."""
        if status not in (STATUS_ONLINE, STATUS_STALE):
            return status
        iv = interval if interval and interval > 0 else self.default_interval
        if age > self.offline_after * iv:
            return STATUS_OFFLINE
        if age > self.stale_after * iv:
            return STATUS_STALE
        return status


def on_state(online: bool, reason: str) -> tuple[str, str]:
    """New status and transition reason for a birth/will/shutdown message."""
    if online:
        return STATUS_ONLINE, REASON_BIRTH
    return STATUS_OFFLINE, REASON_SHUTDOWN if reason == REASON_SHUTDOWN else REASON_WILL


def on_poll(ok: bool, consecutive_failures: int, policy: LivenessPolicy) -> tuple[str, str]:
    """New status after a poll; `consecutive_failures` includes this one when it failed."""
    if ok:
        return STATUS_ONLINE, REASON_POLL_OK
    if consecutive_failures >= policy.offline_polls:
        return STATUS_OFFLINE, REASON_POLL_FAILED
    return STATUS_STALE, REASON_POLL_FAILED


__all__ = [
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "STATUS_STALE",
    "STATUS_UNKNOWN",
    "LivenessConfigError",
    "LivenessPolicy",
    "on_poll",
    "on_state",
]
