"""Alert thresholds and windows: one frozen value, validated when built (from TOML or by hand).

Every threshold has a default that is safe for a first run; a TOML file overrides any of them:

    [alerts.health.cpu]
    warn = 85
    crit = 95
    [alerts.saturation]
    window = "6h"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.alerts.interface import AlertsError
from collector.alerts.model import SEVERITIES

HEALTH_METRICS = ("cpu", "memory", "disk", "temperature")
SATURATION_METRICS = ("cpu", "memory", "disk")
GRADES = ("A", "B", "C", "D", "E")
DIMENSIONS = ("jurisdiction", "vendor")
LAYER_NAMES = ("soc", "firmware", "os", "crypto", "sensor_radio", "db_runtime", "application")

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object, where: str = "duration") -> float:
    """Seconds from a number or a string such as '90s', '5m', '6h', '30d', '2w'."""
    if isinstance(value, bool):
        raise AlertsError(f"{where}: expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise AlertsError(
            f"{where}: expected a duration like '30s', '5m', '6h' or '7d', got {value!r}"
        )
    if seconds < 0:
        raise AlertsError(f"{where}: duration must not be negative, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Threshold:
    """Percent (or degrees C for temperature): >= warn is 'medium', >= crit is 'high'."""

    warn: float
    crit: float

    def __post_init__(self) -> None:
        if not self.warn <= self.crit:
            raise AlertsError(f"threshold warn {self.warn} must not exceed crit {self.crit}")


def _default_health() -> Mapping[str, Threshold]:
    return MappingProxyType(
        {
            "cpu": Threshold(90.0, 98.0),
            "memory": Threshold(90.0, 97.0),
            "disk": Threshold(90.0, 97.0),
            "temperature": Threshold(80.0, 90.0),
        }
    )


@dataclass(frozen=True)
class AlertsConfig:
    """Thresholds and windows of every rule; durations in seconds, shares in [0, 1]."""

    disabled: frozenset[str] = frozenset()
    offline_after: float = 0.0  # the device must have been offline this long
    offline_severity: str = "high"
    health: Mapping[str, Threshold] = field(default_factory=_default_health)
    saturation_window: float = 6 * 3600.0
    saturation_threshold: float = 90.0
    saturation_fraction: float = 0.8  # share of samples in the window at or over the threshold
    saturation_min_points: int = 6
    saturation_metrics: tuple[str, ...] = SATURATION_METRICS
    firmware_min_versions_behind: int = 1
    firmware_max_age: float | None = 730 * 86400.0  # no firmware release for this long
    eol_approaching: float = 180 * 86400.0
    vuln_min_cvss: float = 0.0
    dune_grade: str = "E"
    critical_layers: tuple[str, ...] = ("soc", "firmware", "os", "crypto")
    concentration_max_hhi: float = 2500.0
    concentration_max_top1: float | None = None
    concentration_dimensions: tuple[str, ...] = ("jurisdiction",)
    # Buckets that are not a controlling party: a fleet "concentrated" on open-source community
    # projects or on suppliers nobody identified is not a supply dependence to alert on.
    concentration_ignore: tuple[str, ...] = ("community", "unknown")
    telemetry_window: float = 3600.0
    telemetry_min_lost: int = 1
    telemetry_min_ratio: float = 0.01

    def __post_init__(self) -> None:
        from collector.alerts.rules import ALL_RULE_IDS

        unknown = sorted(set(self.disabled) - set(ALL_RULE_IDS))
        if unknown:
            raise AlertsError(
                f"disabled: unknown rule id(s) {', '.join(unknown)}; "
                f"known: {', '.join(ALL_RULE_IDS)}"
            )
        if self.offline_severity not in SEVERITIES:
            raise AlertsError(f"offline.severity: {self.offline_severity!r} not in {SEVERITIES}")
        missing = sorted(set(HEALTH_METRICS) - set(self.health))
        extra = sorted(set(self.health) - set(HEALTH_METRICS))
        if missing or extra:
            raise AlertsError(
                f"health: needs exactly {', '.join(HEALTH_METRICS)} "
                f"(missing {missing}, unknown {extra})"
            )
        for name in ("saturation_fraction", "telemetry_min_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise AlertsError(f"{name}: must be within 0..1, got {value}")
        if self.saturation_fraction == 0.0:  # every device would be "saturated"
            raise AlertsError("saturation_fraction: must be above 0")
        if self.concentration_max_top1 is not None and not 0.0 < self.concentration_max_top1 <= 1.0:
            raise AlertsError(
                "concentration.max_top1_share: must be within 0..1, "
                f"got {self.concentration_max_top1}"
            )
        if not 0.0 <= self.concentration_max_hhi <= 10000.0:
            raise AlertsError(
                f"concentration.max_hhi: must be within 0..10000, got {self.concentration_max_hhi}"
            )
        bad_metrics = sorted(set(self.saturation_metrics) - set(SATURATION_METRICS))
        if bad_metrics:
            raise AlertsError(
                f"saturation.metrics: unknown {bad_metrics}; use {SATURATION_METRICS}"
            )
        if self.dune_grade not in GRADES:
            raise AlertsError(f"dune.grade: {self.dune_grade!r} not one of {GRADES}")
        bad_layers = sorted(set(self.critical_layers) - set(LAYER_NAMES))
        if bad_layers:
            raise AlertsError(f"dune.critical_layers: unknown {bad_layers}; use {LAYER_NAMES}")
        bad_dims = sorted(set(self.concentration_dimensions) - set(DIMENSIONS))
        if bad_dims:
            raise AlertsError(f"concentration.dimensions: unknown {bad_dims}; use {DIMENSIONS}")
        for name in (
            "saturation_min_points",
            "firmware_min_versions_behind",
            "telemetry_min_lost",
        ):
            if getattr(self, name) < 1:
                raise AlertsError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.saturation_window <= 0 or self.telemetry_window <= 0:
            raise AlertsError("saturation.window and telemetry.window must be positive")

    def enabled(self, rule_id: str) -> bool:
        return rule_id not in self.disabled


# TOML layout: section -> {key: (field name, converter)}
def _num(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AlertsError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AlertsError(f"{where}: expected an integer, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise AlertsError(f"{where}: expected a string, got {value!r}")
    return value


def _strs(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AlertsError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _optional_duration(value: object, where: str) -> float | None:
    if value in (0, "0", "off", False):
        return None
    return parse_duration(value, where)


def _optional_share(value: object, where: str) -> float | None:
    share = _num(value, where)
    return None if share == 0 else share


_SECTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "offline": {"after": ("offline_after", parse_duration), "severity": ("offline_severity", _str)},
    "saturation": {
        "window": ("saturation_window", parse_duration),
        "threshold": ("saturation_threshold", _num),
        "fraction": ("saturation_fraction", _num),
        "min_points": ("saturation_min_points", _int),
        "metrics": ("saturation_metrics", _strs),
    },
    "firmware": {
        "min_versions_behind": ("firmware_min_versions_behind", _int),
        "max_age": ("firmware_max_age", _optional_duration),
    },
    "eol": {"approaching": ("eol_approaching", parse_duration)},
    "vulnerability": {"min_cvss": ("vuln_min_cvss", _num)},
    "dune": {"grade": ("dune_grade", _str), "critical_layers": ("critical_layers", _strs)},
    "concentration": {
        "max_hhi": ("concentration_max_hhi", _num),
        "max_top1_share": ("concentration_max_top1", _optional_share),
        "dimensions": ("concentration_dimensions", _strs),
        "ignore": ("concentration_ignore", _strs),
    },
    "telemetry": {
        "window": ("telemetry_window", parse_duration),
        "min_lost": ("telemetry_min_lost", _int),
        "min_ratio": ("telemetry_min_ratio", _num),
    },
}


def config_from_mapping(data: Mapping[str, Any], where: str = "alerts config") -> AlertsConfig:
    """Build a config from parsed TOML (the `[alerts]` table, or a document holding one)."""
    if "alerts" in data and isinstance(data["alerts"], Mapping):
        data = data["alerts"]
    kwargs: dict[str, Any] = {}
    health = dict(_default_health())
    for key, value in data.items():
        here = f"{where}: alerts.{key}"
        if key == "disabled":
            kwargs["disabled"] = frozenset(_strs(value, here))
        elif key == "health":
            if not isinstance(value, Mapping):
                raise AlertsError(f"{here}: expected a table")
            for metric, limits in value.items():
                if metric not in HEALTH_METRICS or not isinstance(limits, Mapping):
                    raise AlertsError(
                        f"{here}.{metric}: expected a table for one of {', '.join(HEALTH_METRICS)}"
                    )
                unknown = sorted(set(limits) - {"warn", "crit"})
                if unknown:
                    raise AlertsError(f"{here}.{metric}: unknown key(s) {unknown}; use warn, crit")
                old = health[metric]
                try:
                    health[metric] = Threshold(
                        _num(limits.get("warn", old.warn), f"{here}.{metric}.warn"),
                        _num(limits.get("crit", old.crit), f"{here}.{metric}.crit"),
                    )
                except AlertsError as exc:
                    raise AlertsError(f"{here}.{metric}: {exc}") from None
        elif key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise AlertsError(f"{here}: expected a table")
            spec = _SECTIONS[key]
            for sub, sub_value in value.items():
                if sub not in spec:
                    raise AlertsError(
                        f"{here}.{sub}: unknown key; known: {', '.join(sorted(spec))}"
                    )
                name, convert = spec[sub]
                kwargs[name] = convert(sub_value, f"{here}.{sub}")
        else:
            known = sorted(["disabled", "health", *_SECTIONS])
            raise AlertsError(f"{here}: unknown section; known: {', '.join(known)}")
    kwargs["health"] = MappingProxyType(health)
    try:
        return AlertsConfig(**kwargs)
    except AlertsError as exc:
        raise AlertsError(f"{where}: {exc}") from None


def load_config(path: str | Path | None) -> AlertsConfig:
    """Config from a TOML file, or the defaults when no path is given."""
    if path is None:
        return AlertsConfig()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertsError(f"cannot read alerts config {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertsError(f"{p}: not valid TOML: {exc}") from None
    return config_from_mapping(data, where=str(p))


def config_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(AlertsConfig))
