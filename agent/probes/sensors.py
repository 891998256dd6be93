"""Temperatures and fans when the hardware exposes them (virtual machines usually have none)."""

from __future__ import annotations

from typing import Any

import psutil


class SensorsProbe:
    name = "sensors"

    def collect(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        temps_fn = getattr(psutil, "sensors_temperatures", None)
        if temps_fn is not None:
            temps = {
                group: round(max(e.current for e in entries), 1)
                for group, entries in temps_fn().items()
                if entries
            }
            if temps:
                out["temp"] = temps
        fans_fn = getattr(psutil, "sensors_fans", None)
        if fans_fn is not None:
            fans = {
                group: max(e.current for e in entries)
                for group, entries in fans_fn().items()
                if entries
            }
            if fans:
                out["fan"] = fans
        return out
