"""Memory and swap use."""

from __future__ import annotations

from typing import Any

import psutil


class MemoryProbe:
    name = "mem"

    def collect(self) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        return {
            "mem": {
                "pct": round(vm.percent, 1),
                "total": vm.total,
                "avail": vm.available,
                "swap_pct": round(swap.percent, 1),
            }
        }
