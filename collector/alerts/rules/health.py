"""Health rules: thresholds on the latest report, and sustained saturation as capacity aging."""

from __future__ import annotations

from collections.abc import Iterator

from collector.alerts.config import AlertsConfig
from collector.alerts.model import Finding, FleetSnapshot, HealthSample

HEALTH_CPU = "health.cpu"
HEALTH_MEMORY = "health.memory"
HEALTH_DISK = "health.disk"
HEALTH_TEMPERATURE = "health.temperature"
SATURATION = "health.saturation"

_RULE_BY_METRIC = {
    "cpu": HEALTH_CPU,
    "memory": HEALTH_MEMORY,
    "disk": HEALTH_DISK,
    "temperature": HEALTH_TEMPERATURE,
}
_UNIT = {"cpu": "%", "memory": "%", "disk": "%", "temperature": " °C"}


def _where(sample: HealthSample, metric: str) -> dict[str, str]:
    if metric == "disk" and sample.disk_mount:
        return {"mount": sample.disk_mount}
    if metric == "temperature" and sample.temperature_sensor:
        return {"sensor": sample.temperature_sensor}
    return {}


class HealthThresholdRule:
    """CPU, memory, disk and temperature of the latest report against warn/crit thresholds."""

    rule_ids = tuple(_RULE_BY_METRIC.values())

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for dev in snapshot.devices:
            sample = dev.latest_health
            # An offline device's last report says nothing about now; the offline rule covers it.
            if sample is None or dev.status == "offline":
                continue
            for metric, rule_id in _RULE_BY_METRIC.items():
                value = sample.metric(metric)
                limits = config.health[metric]
                if value is None or value < limits.warn:
                    continue
                severity = "high" if value >= limits.crit else "medium"
                unit = _UNIT[metric]
                yield Finding(
                    rule_id=rule_id,
                    device_id=dev.device_id,
                    severity=severity,
                    summary=f"{dev.device_id} {metric} at {value:g}{unit} (warn {limits.warn:g}"
                    f"{unit}, crit {limits.crit:g}{unit})",
                    evidence={
                        "value": value,
                        "warn": limits.warn,
                        "crit": limits.crit,
                        "ts": sample.ts,
                        **_where(sample, metric),
                    },
                )


class SaturationRule:
    """A metric at or over the threshold for most of the window: the device is outgrown."""

    rule_ids = (SATURATION,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        start = snapshot.taken_at - config.saturation_window
        for dev in snapshot.devices:
            window = [s for s in dev.health_window if s.ts >= start]
            for metric in config.saturation_metrics:
                values = [v for s in window if (v := s.metric(metric)) is not None]
                if len(values) < config.saturation_min_points:
                    continue
                over = sum(1 for v in values if v >= config.saturation_threshold)
                share = over / len(values)
                if share < config.saturation_fraction:
                    continue
                yield Finding(
                    rule_id=SATURATION,
                    device_id=dev.device_id,
                    severity="medium",
                    summary=(
                        f"{dev.device_id} {metric} at or over {config.saturation_threshold:g}% in "
                        f"{share:.0%} of {len(values)} reports over "
                        f"{config.saturation_window / 3600:g} h"
                    ),
                    evidence={
                        "metric": metric,
                        "share": round(share, 4),
                        "samples": len(values),
                        "threshold": config.saturation_threshold,
                        "window_s": config.saturation_window,
                        "mean": round(sum(values) / len(values), 2),
                    },
                    key=metric,
                )
