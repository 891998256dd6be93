"""Uptime and boot time, read from <root>/proc/uptime so tests can point it at a fixture tree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.probes.interface import ProbeError


class UptimeProbe:
    name = "uptime"

    def __init__(self, root: Path = Path("/")) -> None:
        self.path = Path(root) / "proc" / "uptime"

    def collect(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise ProbeError(f"{type(exc).__name__}: {self.path}") from None
        try:
            seconds = float(text.split()[0])
        except (IndexError, ValueError):
            raise ProbeError(f"unparsable {self.path}: {text[:40]!r}") from None
        return {"uptime": int(seconds), "boot": int(time.time() - seconds)}
