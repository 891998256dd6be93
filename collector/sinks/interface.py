"""The sinks axis: where alert notifications go (log, webhook, MQTT topic; more later).

A sink is built from validated config, does its I/O only from `start()` on, and delivers one
notification per `send()`: it returns the number of attempts it took, or raises SinkError saying
how many attempts failed and whether retrying later can help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from collector.errors import CollectorError

if TYPE_CHECKING:
    from collector.alerts.model import Notification


class SinkError(CollectorError):
    """A notification could not be delivered (or a sink is misconfigured)."""

    def __init__(
        self, message: str, *, attempts: int = 1, permanent: bool = False, tip: str = ""
    ) -> None:
        super().__init__(message, tip)
        self.attempts = attempts
        self.permanent = permanent


class Sink(Protocol):
    name: str  # unique per configured sink; keys its delivery cursor
    min_severity: str  # events of alerts below this severity are skipped
    max_attempts: int  # failed attempts per event, over all passes, before it is given up

    def start(self) -> None: ...

    def send(self, notification: Notification) -> int: ...

    def stop(self) -> None: ...
