"""What the SNMP poller needs from the outside world, and the errors it raises on purpose.

The poller never imports the collector store: it writes through `PollSink`, a two-method slice of
the store's interface, so tests and `poll-once` can use a fake or a real store alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from collector.errors import CollectorError

# Poll outcomes, as the collector store records them (liveness reads them).
OUTCOME_OK: Final = "ok"
OUTCOME_TIMEOUT: Final = "timeout"  # no answer: unreachable, or wrong v1/v2c community
OUTCOME_AUTH_FAILURE: Final = "auth_failure"  # SNMPv3: wrong key, unknown user, bad level
OUTCOME_ERROR: Final = "error"  # anything else (malformed answer, agent error status, ...)
OUTCOMES: Final = (OUTCOME_OK, OUTCOME_TIMEOUT, OUTCOME_AUTH_FAILURE, OUTCOME_ERROR)


class SnmpError(CollectorError):
    """Base of every error the SNMP package raises on purpose."""


class TargetError(SnmpError):
    """A target definition (file entry or CLI flags) that cannot be used."""


class OidMapError(SnmpError):
    """The declarative OID map data file is malformed."""


class SimulatorError(SnmpError):
    """snmpsim could not be started or did not answer."""


class PollSink(Protocol):
    """The part of the collector store the SNMP source writes to."""

    def ensure_device(
        self,
        device_id: str,
        *,
        tags: Mapping[str, str] | None = None,
        source: str = "agent",
        interval: float | None = None,
    ) -> Any: ...

    def record_poll(
        self,
        device_id: str,
        ts: float,
        outcome: str,
        *,
        health: Mapping[str, Any] | None = None,
        inventory: Mapping[str, Any] | None = None,
        detail: str = "",
    ) -> Any: ...
