"""Health probes: one module per section, listed in one registry tuple."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.probes.cpu import CpuProbe
from agent.probes.disk import DiskProbe
from agent.probes.interface import Probe, ProbeError
from agent.probes.memory import MemoryProbe
from agent.probes.network import NetworkProbe
from agent.probes.processes import ProcessesProbe
from agent.probes.self import SelfProbe
from agent.probes.sensors import SensorsProbe
from agent.probes.uptime import UptimeProbe

# Every probe the agent knows, by name; the order is the order of sections in the health body.
PROBE_NAMES: tuple[str, ...] = ("cpu", "mem", "disk", "net", "sensors", "uptime", "procs", "agent")

# Longest error text per probe: a broken probe must not blow the 1 KB message budget.
MAX_ERROR_CHARS = 120

__all__ = ["PROBE_NAMES", "Probe", "ProbeError", "build_probes", "run_probes"]


def build_probes(
    names: Sequence[str] = PROBE_NAMES,
    root: Path = Path("/"),
    mounts: Sequence[str] = (),
    interfaces: Sequence[str] = (),
    agent_stats: Callable[[], Mapping[str, int | float]] | None = None,
) -> list[Probe]:
    """Instantiate the named probes (an explicit table, no name-to-class lookups by string)."""
    table: dict[str, Callable[[], Probe]] = {
        "cpu": CpuProbe,
        "mem": MemoryProbe,
        "disk": lambda: DiskProbe(mounts),
        "net": lambda: NetworkProbe(interfaces),
        "sensors": SensorsProbe,
        "uptime": lambda: UptimeProbe(root),
        "procs": ProcessesProbe,
        "agent": lambda: SelfProbe(agent_stats),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ProbeError(f"unknown probe(s): {', '.join(unknown)}; known: {', '.join(PROBE_NAMES)}")
    return [table[n]() for n in names]


def run_probes(probes: Sequence[Probe], interval: float) -> dict[str, Any]:
    """One health body: every probe's sections, failures named under `errors`."""
    # 10 rather than 10.0: every byte counts on a metered link
    body: dict[str, Any] = {"interval": int(interval) if float(interval).is_integer() else interval}
    errors: dict[str, str] = {}
    for probe in probes:
        try:
            body.update(probe.collect())
        except Exception as exc:  # a failing probe is data, never a crash
            text = str(exc) if isinstance(exc, ProbeError) else f"{type(exc).__name__}: {exc}"
            errors[probe.name] = text[:MAX_ERROR_CHARS]
    if errors:
        body["errors"] = errors
    return body
