"""Liveness rules: a device gone offline, and telemetry lost on the way (seq gaps, agent drops)."""

from __future__ import annotations

from collections.abc import Iterator

from collector.alerts.config import AlertsConfig
from collector.alerts.model import Finding, FleetSnapshot

OFFLINE = "device.offline"
TELEMETRY_LOSS = "telemetry.loss"


class OfflineRule:
    """The collector's liveness says offline (last-will, or three reports missed)."""

    rule_ids = (OFFLINE,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for dev in snapshot.devices:
            if dev.status != "offline":
                continue
            since = dev.status_since
            if since is not None and snapshot.taken_at - since < config.offline_after:
                continue
            yield Finding(
                rule_id=OFFLINE,
                device_id=dev.device_id,
                severity=config.offline_severity,
                summary=f"{dev.device_id} is offline",
                evidence={"status": dev.status, "since": since, "last_seen": dev.last_seen},
            )


class TelemetryLossRule:
    """Reports missing in the loss window: seq gaps plus the agent's own outbox drops."""

    rule_ids = (TELEMETRY_LOSS,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for dev in snapshot.devices:
            loss = dev.loss
            if loss is None or loss.lost < config.telemetry_min_lost:
                continue
            expected = loss.accepted + loss.lost
            ratio = loss.lost / expected if expected else 1.0
            if ratio < config.telemetry_min_ratio:
                continue
            yield Finding(
                rule_id=TELEMETRY_LOSS,
                device_id=dev.device_id,
                severity="medium" if ratio < 0.1 else "high",
                summary=(
                    f"{dev.device_id} lost {loss.lost} of {expected} reports "
                    f"({ratio:.1%}: {loss.gap} gaps, {loss.dropped} dropped by the agent)"
                ),
                evidence={
                    "gap": loss.gap,
                    "dropped": loss.dropped,
                    "accepted": loss.accepted,
                    "ratio": round(ratio, 4),
                    "window_s": loss.window,
                },
            )
