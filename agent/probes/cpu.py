"""CPU utilisation, load average, logical CPU count and current frequency."""

from __future__ import annotations

from typing import Any

import psutil


class CpuProbe:
    name = "cpu"

    def __init__(self) -> None:
        self._primed = False

    def collect(self) -> dict[str, Any]:
        # psutil measures utilisation between calls; the very first call only sets the baseline.
        pct = psutil.cpu_percent(interval=0.1 if not self._primed else None)
        self._primed = True
        load1, load5, load15 = psutil.getloadavg()
        out: dict[str, Any] = {
            "pct": round(pct, 1),
            "load1": round(load1, 2),
            "load5": round(load5, 2),
            "load15": round(load15, 2),
            "n": psutil.cpu_count() or 0,
        }
        try:
            freq = psutil.cpu_freq()
        except (OSError, NotImplementedError):  # absent on many ARM boards and in some VMs
            freq = None
        if freq is not None and freq.current:
            out["mhz"] = round(freq.current)
        return {"cpu": out}
