"""Config checks shared by the sink implementations (one line per problem, naming the key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.alerts.model import SEVERITIES
from collector.sinks.interface import SinkError


def check_keys(cfg: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(cfg) - allowed - {"type"})
    if unknown:
        raise SinkError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def get_str(cfg: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = cfg.get(key, default)
    if not isinstance(value, str) or not value:
        raise SinkError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def get_num(cfg: Mapping[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise SinkError(f"{where}: '{key}' must be a number >= {minimum}, got {value!r}")
    return float(value)


def get_int(cfg: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SinkError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def check_severity(value: str, where: str) -> str:
    if value not in SEVERITIES:
        raise SinkError(f"{where}: min_severity {value!r} not one of {', '.join(SEVERITIES)}")
    return value
