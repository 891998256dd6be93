"""Values of the alerts axis: the read-only fleet snapshot rules look at, and what they produce.

Rules never touch a database or a knowledge base: they read one `FleetSnapshot` and return
`Finding`s, so each rule can be tested alone with a snapshot built by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# Ordered, lowest first. "emergency" is kept for the unfixable case:
# end of life plus an exploited CVE.
SEVERITIES: Final = ("info", "low", "medium", "high", "critical", "emergency")

STATUS_OPEN: Final = "open"
STATUS_ACKNOWLEDGED: Final = "acknowledged"
STATUS_RESOLVED: Final = "resolved"
ALERT_STATUSES: Final = (STATUS_OPEN, STATUS_ACKNOWLEDGED, STATUS_RESOLVED)
ACTIVE_STATUSES: Final = (STATUS_OPEN, STATUS_ACKNOWLEDGED)

# What happened to an alert; the events table is the history and the sinks' outbox.
EVENT_OPENED: Final = "opened"
EVENT_ESCALATED: Final = "escalated"
EVENT_UPDATED: Final = "updated"
EVENT_ACKNOWLEDGED: Final = "acknowledged"
EVENT_RESOLVED: Final = "resolved"
EVENT_UNSILENCED: Final = "unsilenced"

# Topic level used for fleet-wide alerts (device ids must start with a letter or digit).
FLEET_TARGET: Final = "_fleet"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def max_severity(*severities: str) -> str:
    return max(severities, key=severity_rank)


# ---------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class HealthSample:
    """The few health figures rules use, flattened from one health body (docs/protocol.md)."""

    ts: float
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None  # fullest mount, percent
    disk_mount: str | None = None
    temperature: float | None = None  # hottest sensor, degrees C
    temperature_sensor: str | None = None

    def metric(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class MetricWindow:
    """One health metric of one device over the saturation window, from the 5-minute rollups:
    its reports, and how many of them fell in buckets whose mean was at or over `threshold`."""

    metric: str  # cpu | memory | disk
    reports: int
    over: int
    threshold: float
    mean: float
    peak: float
    mount: str | None = None  # disk: one window per mount

    @property
    def share(self) -> float:
        return self.over / self.reports if self.reports else 0.0


@dataclass(frozen=True)
class VulnRef:
    id: str
    severity: str | None = None  # as the feed says (CRITICAL, HIGH, ...), informational
    cvss: float | None = None
    kev: bool = False
    kev_date: str | None = None
    fixed_version: str | None = None


@dataclass(frozen=True)
class ComponentState:
    """One classified component (or the device model itself, layer 'device') with its lifecycle."""

    name: str
    version: str | None
    layer: str
    status: str = "unknown"  # supported | approaching_eol | eol | unknown
    eol: str | None = None  # ISO date
    cycle: str | None = None
    latest: str | None = None
    versions_behind: int | None = None
    source: str | None = None
    vulns: tuple[VulnRef, ...] = ()


@dataclass(frozen=True)
class LayerGrade:
    """DDI grade of one device layer with the component that drives it."""

    layer: str
    grade: str  # A..E
    exposure: float
    driver: str | None = None
    supplier: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class LossCounts:
    """Telemetry accounting over the loss window: messages stored, seqs missing, seqs dropped."""

    accepted: int = 0
    gap: int = 0
    dropped: int = 0
    window: float | None = None  # seconds covered; None = since the device was first seen

    @property
    def lost(self) -> int:
        return self.gap + self.dropped


@dataclass(frozen=True)
class DeviceState:
    device_id: str
    status: str = "unknown"  # unknown | online | stale | offline
    status_since: float | None = None
    last_seen: float | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    criticality: float | None = None
    simulated: bool = False
    vendor: str | None = None
    model: str | None = None
    latest_health: HealthSample | None = None
    health_windows: tuple[MetricWindow, ...] = ()
    loss: LossCounts | None = None
    firmware_version: str | None = None
    firmware_latest: str | None = None
    firmware_versions_behind: int | None = None
    firmware_release_date: str | None = None  # ISO date
    support_status: str = "unknown"  # supported | unsupported | unknown
    support_detail: str | None = None
    support_end: str | None = None
    components: tuple[ComponentState, ...] = ()
    layer_grades: tuple[LayerGrade, ...] = ()


@dataclass(frozen=True)
class Concentration:
    """One fleet concentration figure: a layer along jurisdictions or vendors."""

    layer: str
    dimension: str  # jurisdiction | vendor
    hhi: float
    top1: str | None = None
    top1_share: float = 0.0
    n50: int | None = None


@dataclass(frozen=True)
class FleetSnapshot:
    taken_at: float
    devices: tuple[DeviceState, ...] = ()
    concentration: tuple[Concentration, ...] = ()
    simulated: bool = False
    # Devices whose data could not be assembled this pass: their alerts are kept as they are.
    incomplete: frozenset[str] = frozenset()


# ---------------------------------------------------------------- findings and alerts


@dataclass(frozen=True)
class Finding:
    """A rule's statement that a condition holds now; `dedupe_key` identifies it across passes."""

    rule_id: str
    device_id: str | None
    severity: str
    summary: str
    evidence: Mapping[str, Any]
    key: str = ""  # distinguishes several findings of one rule on one device (component, layer...)

    @property
    def dedupe_key(self) -> str:
        return f"{self.rule_id}|{self.device_id or FLEET_TARGET}|{self.key}"


@dataclass(frozen=True)
class Alert:
    id: int
    dedupe_key: str
    rule_id: str
    device_id: str | None
    severity: str
    status: str
    summary: str
    evidence: Mapping[str, Any]
    first_seen: float
    last_seen: float
    count: int = 1
    acked_at: float | None = None
    acked_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    silenced_by: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "device_id": self.device_id,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "acked_at": self.acked_at,
            "acked_by": self.acked_by,
            "resolved_at": self.resolved_at,
            "resolved_by": self.resolved_by,
            "silenced_by": self.silenced_by,
            "dedupe_key": self.dedupe_key,
        }


@dataclass(frozen=True)
class AlertEvent:
    """One line of an alert's history; events with `notify` go to the sinks in id order."""

    id: int
    alert_id: int
    ts: float
    event: str
    severity: str
    detail: Mapping[str, Any]
    notify: bool


@dataclass(frozen=True)
class Notification:
    """What a sink sends: one event with the alert as it stood after the event."""

    event: AlertEvent
    alert: Alert

    @property
    def target(self) -> str:
        return self.alert.device_id or FLEET_TARGET

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "event": self.event.event,
            "event_id": self.event.id,
            "ts": self.event.ts,
            "detail": dict(self.event.detail),
            "alert": self.alert.to_dict(),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Silence:
    """Mutes notifications for one device or every device carrying a tag, until a time."""

    id: int
    created_at: float
    until: float
    reason: str = ""
    created_by: str | None = None
    device_id: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None

    def matches(self, device_id: str | None, tags: Mapping[str, str], now: float) -> bool:
        if now >= self.until or device_id is None:
            return False
        if self.device_id is not None:
            return self.device_id == device_id
        return self.tag_key is not None and tags.get(self.tag_key) == self.tag_value

    def describe(self) -> str:
        if self.device_id is not None:
            return f"device {self.device_id}"
        return f"tag {self.tag_key}={self.tag_value}"
