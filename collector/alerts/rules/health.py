"""Health rules: thresholds on the latest report, and sustained saturation as capacity aging."""

from __future__ import annotations

from collections.abc import Iterator

from collector.alerts.config import AlertsConfig
from collector.alerts.model import Finding, FleetSnapshot, HealthSample, MetricWindow

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
    """A metric at or over the threshold for most of the window: the device is outgrown.

    Judged from the 5-minute rollups (`DeviceState.health_windows`): a report counts as over
    when its bucket's mean is, so short spikes inside a calm bucket do not, and the pass costs
    the same whatever the reporting rate. Disk is judged per mount; the worst one is reported.
    """

    rule_ids = (SATURATION,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for dev in snapshot.devices:
            worst: dict[str, MetricWindow] = {}
            for w in dev.health_windows:
                if w.metric not in config.saturation_metrics:
                    continue
                if w.threshold != config.saturation_threshold:
                    raise ValueError(
                        f"{dev.device_id} {w.metric}: window read for {w.threshold:g}%, "
                        f"the rule's threshold is {config.saturation_threshold:g}%"
                    )
                if w.reports < config.saturation_min_points:
                    continue
                if w.share < config.saturation_fraction:
                    continue
                best = worst.get(w.metric)
                if best is None or (w.share, w.mean) > (best.share, best.mean):
                    worst[w.metric] = w
            for metric, w in sorted(worst.items()):
                where = f" ({w.mount})" if w.mount else ""
                yield Finding(
                    rule_id=SATURATION,
                    device_id=dev.device_id,
                    severity="medium",
                    summary=(
                        f"{dev.device_id} {metric}{where} at or over "
                        f"{config.saturation_threshold:g}% in {w.share:.0%} of {w.reports} "
                        f"reports over {config.saturation_window / 3600:g} h"
                    ),
                    evidence={
                        "metric": metric,
                        "share": round(w.share, 4),
                        "samples": w.reports,
                        "threshold": config.saturation_threshold,
                        "window_s": config.saturation_window,
                        "mean": round(w.mean, 2),
                        "peak": round(w.peak, 2),
                        **({"mount": w.mount} if w.mount else {}),
                    },
                    key=metric,
                )
