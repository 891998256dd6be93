"""Publishers: one module per transport, listed in one registry tuple."""

from __future__ import annotations

from agent.publish.interface import Publisher, PublishError, Result

# Transports the agent can publish through (module names under agent.publish).
TRANSPORTS: tuple[str, ...] = ("mqtt",)

__all__ = ["TRANSPORTS", "PublishError", "Publisher", "Result"]
