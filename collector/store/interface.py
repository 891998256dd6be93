"""The storage axis: what ingest, liveness, SNMP polling, alerts and reports need from a store.

Narrow on purpose: every write goes through `apply` (agent envelopes, one transaction per batch),
`record_poll` (agentless devices), `record_rejects`, `ensure_device` and `record_transitions`; every
read returns frozen values. SQLite (sqlite.py) is the first implementation; a PostgreSQL one can
follow without touching ingest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from agent.envelope import Envelope
from collector.errors import CollectorError

# What apply() reads of a health report's body when it is given the raw payload (the stored
# message is that payload): ingest keeps only these keys of a validated report while it waits
# for its batch (collector/ingest/mqtt.py, slim_health).
HEALTH_BODY_KEYS: Final = ("interval", "agent")

if TYPE_CHECKING:
    from collector.liveness import LivenessPolicy

# Liveness states (collector/liveness.py decides the transitions).
STATUS_UNKNOWN = "unknown"
STATUS_ONLINE = "online"
STATUS_STALE = "stale"
STATUS_OFFLINE = "offline"
STATUSES = (STATUS_UNKNOWN, STATUS_ONLINE, STATUS_STALE, STATUS_OFFLINE)

# Outcomes of one agentless poll (record_poll).
POLL_OK = "ok"
POLL_TIMEOUT = "timeout"
POLL_AUTH_FAILURE = "auth_failure"
POLL_ERROR = "error"
POLL_OUTCOMES = (POLL_OK, POLL_TIMEOUT, POLL_AUTH_FAILURE, POLL_ERROR)

SOURCE_AGENT = "agent"
SOURCE_SNMP = "snmp"


class StoreError(CollectorError):
    """Base error of the storage axis (locked database, full disk, bad schema version...)."""


class StoreBusyError(StoreError):
    """The database stayed locked by another writer longer than the busy timeout; retry later."""


class StoreFullError(StoreError):
    """The disk (or the database's size cap) is full; nothing of the failed batch was stored."""


@dataclass(frozen=True)
class Reject:
    """One message refused at the edge, kept in a bounded table of recent rejects."""

    ts: float
    topic: str
    reason: str
    detail: str
    device_id: str | None = None
    size: int = 0


@dataclass(frozen=True)
class ApplyResult:
    """What one `apply` batch did; counts feed the metrics endpoint."""

    accepted: int = 0
    duplicates: int = 0
    gaps: int = 0
    dropped: int = 0  # seqs the agents reported as dropped (outbox_drop events)
    unenrolled: tuple[str, ...] = ()  # devices first seen in this batch without enrollment
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True)
class Transition:
    """A liveness change of one device, with the time it happened and why."""

    device_id: str
    ts: float
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class DeviceSummary:
    """One row of `dunewatch devices`: identity, placement, liveness and a hardware summary."""

    device_id: str
    status: str
    tags: Mapping[str, str]
    last_seen: float | None
    first_seen: float | None
    source: str
    enrolled: bool
    simulated: bool
    criticality: float | None = None
    agent_version: str | None = None
    interval: float | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    status_since: float | None = None


@dataclass(frozen=True)
class IngestStats:
    """Counters per device (or fleet totals when device_id is None)."""

    device_id: str | None
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    gap: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class DeviceDetail:
    """Everything `dunewatch device show` prints about one device."""

    summary: DeviceSummary
    latest_health: Mapping[str, Any] | None
    health_ts: float | None
    inventory: Mapping[str, Any] | None
    inventory_hash: str | None
    inventory_ts: float | None
    stats: IngestStats
    transitions: tuple[Transition, ...] = ()
    boot_id: str | None = None
    last_poll: Mapping[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class HealthHeadline:
    """A health report's headline figures (docs/protocol.md): CPU and memory percent, the
    fullest disk mount and the hottest temperature sensor (the first one on a tie). A figure
    that is absent or not a number is None."""

    device_id: str
    ts: float
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    disk_mount: str | None = None
    temperature: float | None = None
    temperature_sensor: str | None = None


@dataclass(frozen=True)
class HealthPoint:
    """One raw health report as stored (kept for the retention period)."""

    device_id: str
    ts: float
    boot_id: str
    seq: int
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Rollup:
    """Downsampled health metric over one bucket (5 minutes and 1 hour by default), kept much
    longer than raw health."""

    device_id: str
    bucket: float  # bucket start, unix seconds
    metric: str  # e.g. "cpu.pct", "mem.pct", "disk./.pct", "temp.cpu_thermal"
    n: int
    min: float
    avg: float
    max: float


@dataclass(frozen=True)
class RollupWindow:
    """One metric of one device summed over a window of rollups, with how many of its reports
    fell in fine buckets whose mean was at or over a level (sustained-saturation checks)."""

    device_id: str
    metric: str  # rollup metric name, e.g. "cpu.pct", "disk./data.pct"
    n: int  # reports
    over: int  # reports in fine buckets whose mean is at or over the level asked for
    avg: float
    max: float


class Store(Protocol):
    """Durable picture of the fleet; every method is safe to call from one thread at a time."""

    rollup_bucket: float  # width of the fine rollup tier, seconds

    def apply(
        self,
        envelopes: Sequence[Envelope],
        received: float,
        raw: Sequence[bytes | str] | None = None,
    ) -> ApplyResult:
        """Store one batch in one transaction: dedupe on (device, boot, seq), count gaps and
        agent drop events, upsert devices, latest health, history, inventory snapshot by hash and
        current inventory, state messages into liveness. `raw`, when given, holds each
        envelope's payload as received (saves re-encoding; a health envelope's body is then
        read for HEALTH_BODY_KEYS only). Raises StoreError and stores nothing of the batch when
        the transaction fails."""
        ...

    def record_rejects(self, rejects: Sequence[Reject]) -> None:
        """Count rejects per device (when known) and keep the most recent ones (bounded)."""
        ...

    def recent_rejects(self, limit: int = 100) -> list[Reject]: ...

    def record_poll(
        self,
        device_id: str,
        ts: float,
        outcome: str,
        *,
        health: Mapping[str, Any] | None = None,
        inventory: Mapping[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        """Result of polling an agentless device: outcome in POLL_OUTCOMES; health/inventory use
        the agent body format (docs/protocol.md), inventory["source"] == "snmp"."""
        ...

    def ensure_device(
        self,
        device_id: str,
        *,
        tags: Mapping[str, str] | None = None,
        enrolled: bool = False,
        source: str = SOURCE_AGENT,
        simulated: bool = False,
        criticality: float | None = None,
        interval: float | None = None,
    ) -> None:
        """Create the device if missing, else merge tags and set the given flags."""
        ...

    def devices(
        self, *, status: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[DeviceSummary]: ...

    def device(self, device_id: str) -> DeviceDetail | None: ...

    def current_inventory(self, device_id: str) -> dict[str, Any] | None: ...

    def latest_health(self, device_id: str) -> dict[str, Any] | None: ...

    def health_history(
        self, device_id: str, since: float, until: float | None = None
    ) -> list[HealthPoint]: ...

    def rollups(self, device_id: str, since: float, coarse: bool = False) -> list[Rollup]:
        """One tier of rollups: the fine one (kept weeks), or with `coarse` the long one."""
        ...

    def rollup_windows(
        self,
        device_ids: Sequence[str],
        since: float,
        metrics: Sequence[str],
        over: float,
    ) -> dict[str, list[RollupWindow]]:
        """Per device, each metric matching one of the GLOB patterns `metrics`, summed over the
        fine buckets from `since` on that have been rolled up; `over` counts the reports of
        buckets whose mean is at or over `over`. A metric none of whose reports reached `over`
        (since the start of the coarse bucket holding `since`) is absent, and so is a device
        without any metric left."""
        ...

    def saturation_rollups(
        self, device_ids: Sequence[str], since: float, levels: Mapping[str, float]
    ) -> dict[str, list[Rollup]]:
        """Per device, from the coarse bucket holding `since` on, the rollups of the metrics
        matching the GLOB patterns of `levels`: a metric's fine buckets in each coarse bucket
        in which it reached its level, the coarse bucket itself otherwise; in time order.
        Devices whose metrics reached no level are absent."""
        ...

    def rollup_mark(self) -> str:
        """A value that changes whenever the rollups do (each step of a fold), so a reader can
        keep what it summed from them until then."""
        ...

    def latest_health_points(self, device_ids: Sequence[str]) -> dict[str, HealthPoint]:
        """Latest health report of several devices, with its timestamp, in one read."""
        ...

    def latest_health_headlines(self, device_ids: Sequence[str]) -> dict[str, HealthHeadline]:
        """The headline figures of several devices' latest health reports, in one read: the
        alert pass needs four numbers of each of 100,000 devices every minute, and decoding
        whole reports for them was half its time."""
        ...

    def transitions(
        self, device_id: str | None = None, since: float | None = None
    ) -> list[Transition]: ...

    def sweep_liveness(self, now: float, policy: LivenessPolicy | None = None) -> list[Transition]:
        """Apply the silence rules (collector/liveness.py) to online/stale devices; store and
        return the transitions."""
        ...

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Store liveness changes decided outside `apply` (the periodic sweep)."""
        ...

    def ingest_stats(self, device_id: str | None = None) -> IngestStats:
        """Per-device counters, or fleet totals when device_id is None."""
        ...

    def current_inventories(self, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """current_inventory of several devices in one read (absent: none stored yet)."""
        ...

    def ingest_stats_by_device(self) -> dict[str, IngestStats]:
        """Every device's counters in one read (fleet-wide passes, instead of one per device)."""
        ...

    def status_counts(self) -> dict[str, int]:
        """Number of devices per liveness status (for metrics and `collector stats`)."""
        ...

    def reject_counts(self) -> dict[str, int]:
        """Rejected messages per reason code since the database was created."""
        ...

    def unenrolled(self) -> list[str]:
        """Agent devices that report without having been enrolled."""
        ...

    def rollup(self, received_before: float | None = None) -> int:
        """Fold new raw health into the bucketed rollups (only what was received before
        `received_before`, when given); return the number of raw rows read."""
        ...

    def checkpoint(self) -> None:
        """Housekeeping the serve loop runs every second (SQLite: WAL checkpoint)."""
        ...

    def prune(self, now: float) -> int:
        """Drop raw health past retention (rollups stay); return the number of rows removed."""
        ...

    def close(self) -> None: ...
