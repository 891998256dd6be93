"""The publishing axis: how envelopes leave the device (today MQTT; tests may substitute fakes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.envelope import Envelope
from agent.errors import AgentError


class PublishError(AgentError):
    """A message was not accepted for sending (not connected, window full, client error)."""


@dataclass(frozen=True)
class Result:
    """What the broker said about one tracked message: ok, or refused (e.g. ACL denial)."""

    token: object
    ok: bool
    reason: str
    topic: str


class Publisher(Protocol):
    """Delivers messages at QoS 1; results come back through `drain()` on the owner's thread."""

    @property
    def connected(self) -> bool: ...

    def start(self) -> None: ...

    def free_slots(self) -> int: ...

    def send(
        self, topic: str, payload: bytes, retain: bool = False, token: object = None
    ) -> None: ...

    def publish(self, env: Envelope, token: object = None) -> None: ...

    def drain(self) -> list[Result]: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self, offline: Envelope | None = None, timeout: float = 5.0) -> None: ...
