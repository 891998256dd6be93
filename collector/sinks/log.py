"""Log sink: one line per notification on the dunewatch.alerts.sink logger (stderr, or JSON)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.alerts.model import Notification
from collector.sinks.common import check_keys, check_severity, get_str

_LEVEL = {
    "info": logging.INFO,
    "low": logging.INFO,
    "medium": logging.WARNING,
    "high": logging.WARNING,
    "critical": logging.ERROR,
    "emergency": logging.CRITICAL,
}


@dataclass(frozen=True)
class LogSink:
    name: str = "log"
    min_severity: str = "info"
    logger: str = "dunewatch.alerts.sink"
    max_attempts: int = 1

    type_name = "log"

    def __post_init__(self) -> None:
        check_severity(self.min_severity, f"sink {self.name}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], where: str) -> LogSink:
        check_keys(cfg, {"name", "min_severity", "logger"}, where)
        return cls(
            name=get_str(cfg, "name", where, "log"),
            min_severity=get_str(cfg, "min_severity", where, "info"),
            logger=get_str(cfg, "logger", where, "dunewatch.alerts.sink"),
        )

    def start(self) -> None:
        """Nothing to connect."""

    def send(self, notification: Notification) -> int:
        a = notification.alert
        level = logging.INFO if notification.event.event == "resolved" else _LEVEL[a.severity]
        logging.getLogger(self.logger).log(
            level,
            "alert %s #%d [%s] %s %s: %s",
            notification.event.event,
            a.id,
            a.severity,
            a.rule_id,
            notification.target,
            a.summary,
        )
        return 1

    def stop(self) -> None:
        """Nothing to close."""
