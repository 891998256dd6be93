"""Per-interface traffic, errors, drops and link state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psutil

# Loopback and the kernel's placeholder devices say nothing about the device's links.
_SKIP_PREFIXES = ("lo", "ifb", "dummy", "sit", "tunl", "ip6tnl", "gre", "erspan")
MAX_INTERFACES = 6


class NetworkProbe:
    name = "net"

    def __init__(self, interfaces: Sequence[str] = ()) -> None:
        self.interfaces = tuple(interfaces)

    def collect(self) -> dict[str, Any]:
        counters = psutil.net_io_counters(pernic=True)
        stats = psutil.net_if_stats()
        if self.interfaces:
            names = [n for n in self.interfaces if n in counters]
        else:
            names = sorted(n for n in counters if not n.startswith(_SKIP_PREFIXES))[:MAX_INTERFACES]
        net: dict[str, Any] = {}
        for name in names:
            c = counters[name]
            st = stats.get(name)
            net[name] = {
                "rx": c.bytes_recv,
                "tx": c.bytes_sent,
                "err": c.errin + c.errout,
                "drop": c.dropin + c.dropout,
                "up": bool(st.isup) if st is not None else None,
            }
        return {"net": net}
