"""What the SNMP poller needs from the outside world, and the errors it raises on purpose.

The poller never imports the collector store: it writes through `PollSink`, a two-method slice of
the store's interface, so tests and `poll-once` can use a fake or a real store alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from collector.errors import CollectorError

if TYPE_CHECKING:
    from collector.snmp.ber import Oid, Value
    from collector.snmp.targets import Target

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


class PollFailed(SnmpError):
    """One request of a poll failed; `outcome` is what the device state becomes."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


# Request kinds an engine sends.
GET: Final = "get"
GET_NEXT: Final = "next"
GET_BULK: Final = "bulk"


class Reply(NamedTuple):
    """An agent's answer to one request: error status/index and the varbinds as plain values."""

    error_status: int
    error_index: int
    varbinds: list[tuple[Oid, Value]]


class RequestEngine(Protocol):
    """Sends one SNMP request and returns the agent's answer (an axis: see ENGINES in poller).

    Raises PollFailed for a timeout or an SNMPv3 authentication failure; the caller handles the
    error status, the per-agent in-flight limit and the per-poll deadline.
    """

    name: str

    async def prepare(self, targets: Sequence[Target]) -> None: ...

    async def request(
        self,
        target: Target,
        kind: str,
        oids: Sequence[Oid],
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> Reply: ...

    def close(self) -> None: ...


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
