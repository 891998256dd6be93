"""Turn raw SNMP answers into the same health and inventory bodies agents send (docs/protocol.md).

Counter rates and reboot detection need the previous poll of the same device: `DeviceState`
keeps that, one per device, owned by whoever schedules the polls.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from collector.snmp.oidmap import OidMap
from collector.snmp.poller import RawPoll
from firmware_db.fingerprint import Fingerprint

TICKS_WRAP: Final = 2**32  # TimeTicks and Counter32 are 32-bit
COUNTER64: Final = 2**64
_LINUX_RE: Final = re.compile(
    r"^Linux \S+ (?P<release>\S+)(?: .*?(?P<arch>x86_64|aarch64|armv\w+|mips\w*|i[3-6]86))?"
)
_MAC_RE: Final = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


@dataclass
class DeviceState:
    """What the previous poll of one device left behind (mutable, per device)."""

    ts: float | None = None
    uptime: int | None = None  # sysUpTime ticks (1/100 s)
    counters: dict[str, tuple[int, int, bool]] = field(default_factory=dict)  # if -> rx, tx, 64-bit
    inventory_ts: float | None = None
    inventory_hash: str | None = None
    reboots: int = 0


@dataclass(frozen=True)
class PollReport:
    """One device's poll, ready to store or print."""

    device_id: str
    address: str
    ts: float
    outcome: str
    detail: str = ""
    duration: float = 0.0
    requests: int = 0
    rebooted: bool = False
    identity: Mapping[str, Any] = field(default_factory=dict)
    health: Mapping[str, Any] | None = None
    inventory: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "address": self.address,
            "ts": self.ts,
            "outcome": self.outcome,
            "detail": self.detail,
            "duration": round(self.duration, 4),
            "requests": self.requests,
            "rebooted": self.rebooted,
            "identity": dict(self.identity),
            "health": self.health,
            "inventory": self.inventory,
        }


def detect_reboot(
    prev_ts: float | None, prev_uptime: int | None, ts: float, uptime: int | None
) -> bool:
    """sysUpTime went backwards (a 32-bit wrap after ~497 days is not a reboot)."""
    if prev_ts is None or prev_uptime is None or uptime is None or uptime >= prev_uptime:
        return False
    elapsed_ticks = max(0.0, ts - prev_ts) * 100
    wrapped = prev_uptime + elapsed_ticks >= TICKS_WRAP and uptime <= elapsed_ticks + 6000
    return not wrapped


def _rate(now: int, before: int, width64: bool, seconds: float) -> float | None:
    if seconds <= 0:
        return None
    delta = now - before
    if delta < 0:
        delta += COUNTER64 if width64 else TICKS_WRAP
    return round(delta / seconds, 1)


def _num(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def build_health(
    raw: RawPoll, oidmap: OidMap, interval: float, state: DeviceState | None
) -> dict[str, Any]:
    """Health body: cpu, mem, disk, net (with rates since the previous poll), uptime."""
    s = raw.scalars
    t = raw.tables
    body: dict[str, Any] = {"interval": interval}
    cpu: dict[str, Any] = {}
    loads = [_num(r.get("hrProcessorLoad")) for r in t.get("hrProcessorTable", {}).values()]
    loads_ok = [v for v in loads if v is not None]
    if loads_ok:
        cpu["pct"] = round(sum(loads_ok) / len(loads_ok), 1)
        cpu["n"] = len(loads_ok)
    elif _num(s.get("ssCpuIdle")) is not None:
        cpu["pct"] = float(100 - s["ssCpuIdle"])
    la = t.get("laTable", {})
    for idx, key in (("1", "load1"), ("2", "load5"), ("3", "load15")):
        val = _num(la.get(idx, {}).get("laLoadInt"))
        if val is not None:
            cpu[key] = val / 100
    if cpu:
        body["cpu"] = cpu

    ram_type = oidmap.constants.get("hrStorageRam")
    disk_type = oidmap.constants.get("hrStorageFixedDisk")
    mem: dict[str, Any] = {}
    total_kb, avail_kb = _num(s.get("memTotalReal")), _num(s.get("memAvailReal"))
    if total_kb:
        avail = (avail_kb or 0) + (_num(s.get("memBuffer")) or 0) + (_num(s.get("memCached")) or 0)
        avail = min(avail, total_kb)
        mem = {"total": total_kb * 1024, "avail": avail * 1024}
        mem["pct"] = round(100 * (1 - avail / total_kb), 1)
        swap_total, swap_avail = _num(s.get("memTotalSwap")), _num(s.get("memAvailSwap"))
        if swap_total:
            mem["swap_pct"] = round(100 * (1 - (swap_avail or 0) / swap_total), 1)
    disk: dict[str, Any] = {}
    for row in t.get("hrStorageTable", {}).values():
        unit, size, used = (
            _num(row.get("hrStorageAllocationUnits")),
            _num(row.get("hrStorageSize")),
            _num(row.get("hrStorageUsed")),
        )
        if not unit or not size or used is None:
            continue
        if row.get("hrStorageType") == ram_type and not mem:
            mem = {"total": size * unit, "avail": (size - used) * unit}
            mem["pct"] = round(100 * used / size, 1)
        elif row.get("hrStorageType") == disk_type and row.get("hrStorageDescr"):
            disk[str(row["hrStorageDescr"])] = {
                "pct": round(100 * used / size, 1),
                "total": size * unit,
                "free": (size - used) * unit,
            }
    if mem:
        body["mem"] = mem
    if disk:
        body["disk"] = disk

    net: dict[str, Any] = {}
    new_counters: dict[str, tuple[int, int, bool]] = {}
    ifx = t.get("ifXTable", {})
    for idx, row in t.get("ifTable", {}).items():
        xrow = ifx.get(idx, {})
        name = str(xrow.get("ifName") or row.get("ifDescr") or f"if{idx}")
        hc_rx, hc_tx = _num(xrow.get("ifHCInOctets")), _num(xrow.get("ifHCOutOctets"))
        width64 = hc_rx is not None and hc_tx is not None
        rx = hc_rx if width64 else _num(row.get("ifInOctets"))
        tx = hc_tx if width64 else _num(row.get("ifOutOctets"))
        entry: dict[str, Any] = {"up": row.get("ifOperStatus") == 1}
        if rx is not None and tx is not None:
            entry["rx"], entry["tx"] = rx, tx
            new_counters[name] = (rx, tx, width64)
            prev = state.counters.get(name) if state else None
            if (
                prev is not None
                and state is not None
                and state.ts is not None
                and prev[2] == width64
            ):
                seconds = raw.ts - state.ts
                entry["rx_rate"] = _rate(rx, prev[0], width64, seconds)
                entry["tx_rate"] = _rate(tx, prev[1], width64, seconds)
        err = [_num(row.get(k)) for k in ("ifInErrors", "ifOutErrors")]
        drop = [_num(row.get(k)) for k in ("ifInDiscards", "ifOutDiscards")]
        if any(v is not None for v in err):
            entry["err"] = sum(v or 0 for v in err)
        if any(v is not None for v in drop):
            entry["drop"] = sum(v or 0 for v in drop)
        net[name] = entry
    if net:
        body["net"] = net
    uptime = _num(s.get("sysUpTime"))
    if uptime is not None:
        body["uptime"] = uptime // 100
        body["boot"] = int(raw.ts - uptime / 100)
    if state is not None:
        state.counters = new_counters
    return body


def _package(name: str, oidmap: OidMap) -> dict[str, Any]:
    for pat in oidmap.package_patterns:
        m = pat.match(name)
        if m:
            pkg: dict[str, Any] = {
                "name": m.group("name"),
                "version": m.groupdict().get("version") or "",
                "manager": "snmp",
            }
            if m.groupdict().get("arch"):
                pkg["arch"] = m.group("arch")
            return pkg
    return {"name": name, "version": "", "manager": "snmp"}


def inventory_hash(body: Mapping[str, Any]) -> str:
    canon = json.dumps(
        {k: v for k, v in body.items() if k != "hash"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canon.encode()).hexdigest()


def build_inventory(raw: RawPoll, oidmap: OidMap, fp: Fingerprint) -> dict[str, Any]:
    """Inventory body with source "snmp": identity, hardware, firmware, parts, packages."""
    s = raw.scalars
    descr = str(s.get("sysDescr") or "")
    body: dict[str, Any] = {"source": "snmp"}
    if s.get("sysName"):
        body["hostname"] = s["sysName"]
    body["snmp"] = {
        k: s.get(k)
        for k in ("sysDescr", "sysObjectID", "sysName", "sysLocation", "sysContact")
        if s.get(k) not in (None, "")
    }
    entities = raw.tables.get("entPhysicalTable", {})
    chassis: Mapping[str, Any] = {}
    for idx in sorted(entities, key=lambda i: tuple(int(p) for p in i.split("."))):
        if entities[idx].get("entPhysicalClass") == 3:
            chassis = entities[idx]
            break
    vendor = fp.vendor or chassis.get("entPhysicalMfgName") or None
    model = fp.model or chassis.get("entPhysicalModelName") or None
    hardware: dict[str, Any] = {"source": "snmp"}
    for key, val in (
        ("vendor", vendor),
        ("model", model),
        ("serial", chassis.get("entPhysicalSerialNum")),
        ("hw_revision", chassis.get("entPhysicalHardwareRev")),
        ("device_class", fp.device_class),
        ("fingerprint", fp.source),
        ("confidence", fp.confidence if fp.source else None),
    ):
        if val:
            hardware[key] = val
    body["hardware"] = hardware
    fw_version = fp.firmware_version or chassis.get("entPhysicalFirmwareRev") or None
    if fw_version:
        body["firmware"] = {
            "vendor": vendor,
            "version": fw_version,
            "release_date": None,
            "source": "snmp",
        }
    m = _LINUX_RE.match(descr)
    if m:
        body["kernel"] = {"release": m.group("release"), "arch": m.group("arch")}
    macs = sorted(
        {
            str(r.get("ifPhysAddress"))
            for r in raw.tables.get("ifTable", {}).values()
            if _MAC_RE.match(str(r.get("ifPhysAddress") or ""))
            and r.get("ifPhysAddress") != "00:00:00:00:00:00"
        }
    )
    if macs:
        body["macs"] = macs
    parts = []
    for idx in sorted(entities, key=lambda i: tuple(int(p) for p in i.split("."))):
        row = entities[idx]
        text = " ".join(
            str(row.get(k) or "")
            for k in ("entPhysicalDescr", "entPhysicalName", "entPhysicalModelName")
        )
        kind = oidmap.part_kind(_num(row.get("entPhysicalClass")), text)
        if kind is None:
            continue
        part: dict[str, Any] = {
            "kind": kind,
            "vendor": row.get("entPhysicalMfgName") or None,
            "model": row.get("entPhysicalModelName") or row.get("entPhysicalDescr") or None,
            "evidence": "snmp",
            "confidence": "high" if row.get("entPhysicalModelName") else "medium",
            "oid_index": idx,
        }
        for key, col in (
            ("serial", "entPhysicalSerialNum"),
            ("hw_revision", "entPhysicalHardwareRev"),
            ("fw_revision", "entPhysicalFirmwareRev"),
        ):
            if row.get(col):
                part[key] = row[col]
        parts.append(part)
    body["parts"] = parts
    names = [
        str(r.get("hrSWInstalledName"))
        for _i, r in sorted(
            raw.tables.get("hrSWInstalledTable", {}).items(),
            key=lambda kv: tuple(int(p) for p in kv[0].split(".")),
        )
        if r.get("hrSWInstalledName")
    ]
    body["packages"] = [_package(n, oidmap) for n in names]
    body["hash"] = inventory_hash(body)
    return body


def identity(raw: RawPoll, fp: Fingerprint) -> dict[str, Any]:
    """The short who-is-this summary printed by poll-once and logged on discovery."""
    s = raw.scalars
    return {
        "sysName": s.get("sysName"),
        "sysDescr": s.get("sysDescr"),
        "sysObjectID": s.get("sysObjectID"),
        "sysLocation": s.get("sysLocation"),
        "uptime_s": (s["sysUpTime"] // 100) if _num(s.get("sysUpTime")) is not None else None,
        "vendor": fp.vendor,
        "model": fp.model,
        "firmware": fp.firmware_version,
        "device_class": fp.device_class,
    }
