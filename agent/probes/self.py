"""The agent's own footprint and delivery counters, so the fleet view shows a struggling agent."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    # /proc/self/statm is cheaper than building a psutil.Process for one number
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


class SelfProbe:
    name = "agent"

    def __init__(self, stats: Callable[[], Mapping[str, int | float]] | None = None) -> None:
        self._stats = stats
        self._last: tuple[float, float] | None = None

    def collect(self) -> dict[str, Any]:
        now = time.monotonic()
        t = os.times()
        cpu_s = t.user + t.system
        if self._last is None:
            pct = 0.0
        else:
            wall = now - self._last[0]
            pct = 100.0 * (cpu_s - self._last[1]) / wall if wall > 0 else 0.0
        self._last = (now, cpu_s)
        out: dict[str, Any] = {"rss": round(_rss_bytes() / 1e6, 1), "cpu": round(pct, 3)}
        if self._stats is not None:
            out.update(self._stats())
        return {"agent": out}
