"""Number of processes (a runaway fork loop or a leak shows up here first)."""

from __future__ import annotations

from typing import Any

import psutil


class ProcessesProbe:
    name = "procs"

    def collect(self) -> dict[str, Any]:
        return {"procs": len(psutil.pids())}
