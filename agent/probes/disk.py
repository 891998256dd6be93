"""Usage per mounted filesystem and the machine's cumulative disk I/O counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psutil

# Enough for a gateway's real filesystems while keeping the health message under 1 KB.
MAX_MOUNTS = 6


class DiskProbe:
    name = "disk"

    def __init__(self, mounts: Sequence[str] = ()) -> None:
        self.mounts = tuple(mounts)

    def _mountpoints(self) -> list[str]:
        if self.mounts:
            return list(self.mounts)
        seen: set[str] = set()
        points: list[str] = []
        # all=False: only physical devices, so no /proc, tmpfs, cgroup or bind-mount noise
        for part in psutil.disk_partitions(all=False):
            if part.device in seen:
                continue
            seen.add(part.device)
            points.append(part.mountpoint)
        return sorted(points, key=lambda p: (p != "/", len(p), p))[:MAX_MOUNTS]

    def collect(self) -> dict[str, Any]:
        disks: dict[str, Any] = {}
        for mount in self._mountpoints():
            usage = psutil.disk_usage(mount)
            disks[mount] = {
                "pct": round(usage.percent, 1),
                "total": usage.total,
                "free": usage.free,
            }
        out: dict[str, Any] = {"disk": disks}
        io = psutil.disk_io_counters()
        if io is not None:  # None when the kernel exposes no block devices (containers, some VMs)
            out["diskio"] = {
                "rbytes": io.read_bytes,
                "wbytes": io.write_bytes,
                "rops": io.read_count,
                "wops": io.write_count,
            }
        return out
