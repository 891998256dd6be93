"""The probe axis: one small object per health section; one broken sensor never hides the rest."""

from __future__ import annotations

from typing import Any, Protocol

from agent.errors import AgentError


class ProbeError(AgentError):
    """A probe could not read what it measures; recorded under `errors` in the health body."""


class Probe(Protocol):
    """Reads one part of the machine's health.

    `collect()` returns top-level health sections (e.g. {"cpu": {...}}); it may raise anything,
    the loop records the failure under `errors[name]` and carries on with the other probes.
    """

    name: str

    def collect(self) -> dict[str, Any]: ...
