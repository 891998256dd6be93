"""`once`: one health report and the inventory of this machine, without a broker or an outbox."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent import envelope as wire
from agent.config import load


def default_device_id() -> str:
    """The hostname, reduced to the characters a device id (and MQTT topic level) allows."""
    name = re.sub(r"[^A-Za-z0-9._:-]", "-", socket.gethostname()).strip("-.") or "device"
    if not name[0].isalnum():
        name = "d" + name
    return name[:128]


def once_report(
    path: Path | None = None,
    flags: Mapping[tuple[str, str], Any] | None = None,
    inventory: bool = True,
) -> dict[str, Any]:
    """Envelopes as the agent would publish them: {"health": ..., "inventory": ...}."""
    from agent.inventory_job import build_inventory
    from agent.probes import build_probes, run_probes

    flags = dict(flags or {})
    cfg = load(path, flags=flags, check_files=False) if path or flags else None
    if cfg is None or not cfg.agent.device_id:
        flags[("agent", "device_id")] = default_device_id()
        cfg = load(path, flags=flags, check_files=False)
    a, p = cfg.agent, cfg.probes
    boot = wire.new_boot_id()
    probes = build_probes(
        p.enabled, root=Path(a.host_root), mounts=p.mounts, interfaces=p.interfaces
    )
    out: dict[str, Any] = {
        "health": wire.make(
            a.device_id, boot, 1, wire.KIND_HEALTH, run_probes(probes, a.interval)
        ).to_dict()
    }
    if inventory:
        body = build_inventory(Path(a.host_root), cfg.device)
        out["inventory"] = wire.make(a.device_id, boot, 2, wire.KIND_INVENTORY, body).to_dict()
    return out


def render_text(report: Mapping[str, Any]) -> str:
    """A short human summary of a once_report()."""
    h = report["health"]["body"]
    lines = [f"device {report['health']['device']}"]
    if "cpu" in h:
        c = h["cpu"]
        lines.append(
            f"  cpu    {c.get('pct')} %  load {c.get('load1')} {c.get('load5')} {c.get('load15')}"
            f"  ({c.get('n')} cpus)"
        )
    if "mem" in h:
        m = h["mem"]
        lines.append(
            f"  memory {m.get('pct')} % of {m.get('total', 0) / 2**20:.0f} MiB"
            f"  swap {m.get('swap_pct')} %"
        )
    for mount, d in h.get("disk", {}).items():
        lines.append(f"  disk   {mount}: {d.get('pct')} % of {d.get('total', 0) / 2**30:.1f} GiB")
    for name, n in h.get("net", {}).items():
        lines.append(
            f"  net    {name}: rx {n.get('rx')} B tx {n.get('tx')} B"
            f" {'up' if n.get('up') else 'down'}"
        )
    for group, t in h.get("temp", {}).items():
        lines.append(f"  temp   {group}: {t} °C")
    if "uptime" in h:
        lines.append(f"  uptime {h['uptime']} s, {h.get('procs', '?')} processes")
    for probe, err in h.get("errors", {}).items():
        lines.append(f"  error  {probe}: {err}")
    inv = report.get("inventory", {}).get("body")
    if inv:
        os_name = inv.get("os", {}).get("pretty_name") or inv.get("os", {}).get("id", "?")
        lines.append(
            f"inventory: {os_name}, kernel {inv.get('kernel', {}).get('release', '?')}, "
            f"{len(inv.get('packages', []))} packages, hash {str(inv.get('hash'))[:12]}"
        )
        for key, err in inv.get("errors", {}).items():
            lines.append(f"  error  {key}: {err}")
    return "\n".join(lines) + "\n"
