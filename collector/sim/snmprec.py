"""snmpsim data files for the simulated fleet's agentless devices.

Each file answers the MIB-2 system group (sysDescr says "simulated"), host resources (storage,
processor load, installed software) and an ENTITY-MIB table naming the chassis, SoC, sensor and
radio with their makers, so the SNMP poller builds the same inventory an agent would send.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from collector.sim.fleet import SimDevice

_ENT = "1.3.6.1.2.1.47.1.1.1.1"
_CLASS_CODE = {"chassis": 3, "soc": 12, "image_sensor": 9, "radio": 9, "module": 9}
_NET_SNMP = (
    "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's Linux sysObjectID, as many embedded devices report
)


def community(dev: SimDevice) -> str:
    """The snmpsim community (data file name) of a simulated device."""
    return dev.device_id


def snmprec(dev: SimDevice) -> str:
    """The `.snmprec` text for one simulated agentless device (rows sorted by OID)."""
    inv: Mapping[str, Any] = dev.inventory
    rng = random.Random(dev.seed)
    hw, fw = inv["hardware"], inv["firmware"]
    label = {"camera": "IP camera", "nvr": "network video recorder", "gateway": "IoT gateway"}
    descr = (
        f"{hw['vendor']} {hw['model']} {label[dev.klass]} (simulated device), "
        f"firmware {fw['version']}, Linux {inv['kernel']['release']}"
    )
    rows: list[tuple[str, str, str]] = [
        ("1.3.6.1.2.1.1.1.0", "4", descr),
        ("1.3.6.1.2.1.1.2.0", "6", _NET_SNMP),
        ("1.3.6.1.2.1.1.3.0", "67", str(rng.randrange(10**6, 10**9))),
        ("1.3.6.1.2.1.1.4.0", "4", "ops@example.org"),
        ("1.3.6.1.2.1.1.5.0", "4", dev.device_id),
        ("1.3.6.1.2.1.1.6.0", "4", f"{dev.tags['site']} (simulated)"),
        ("1.3.6.1.2.1.25.2.3.1.1.1", "2", "1"),
        ("1.3.6.1.2.1.25.2.3.1.2.1", "6", "1.3.6.1.2.1.25.2.1.2"),
        ("1.3.6.1.2.1.25.2.3.1.3.1", "4", "Physical memory"),
        ("1.3.6.1.2.1.25.2.3.1.4.1", "2", "1024"),
        ("1.3.6.1.2.1.25.2.3.1.5.1", "2", "262144"),
        ("1.3.6.1.2.1.25.2.3.1.6.1", "2", str(rng.randrange(60000, 200000))),
        ("1.3.6.1.2.1.25.3.3.1.2.768", "2", str(rng.randrange(5, 60))),
    ]
    for i, pkg in enumerate(inv.get("packages", ()), start=1):
        rows += [
            (f"1.3.6.1.2.1.25.6.3.1.1.{i}", "2", str(i)),
            (f"1.3.6.1.2.1.25.6.3.1.2.{i}", "4", f"{pkg['name']}-{pkg['version']}"),
            (f"1.3.6.1.2.1.25.6.3.1.4.{i}", "2", "4"),
        ]
    entities: list[dict[str, str]] = [
        {
            "descr": f"{label[dev.klass]} chassis",
            "kind": "chassis",
            "contained": "0",
            "name": "chassis",
            "hw": "A0",
            "fw": str(fw["version"]),
            "serial": str(hw.get("serial", "")),
            "mfg": str(hw["vendor"]),
            "model": str(hw["model"]),
        }
    ]
    for part in inv.get("parts", ()):
        kind = str(part["kind"])
        entities.append(
            {
                "descr": {
                    "soc": "SoC",
                    "image_sensor": "CMOS image sensor",
                    "radio": "radio module",
                }.get(kind, kind),
                "kind": kind,
                "contained": "1",
                "name": kind,
                "hw": "",
                "fw": "",
                "serial": "",
                "mfg": str(part["vendor"]),
                "model": str(part.get("model") or ""),
            }
        )
    columns = (
        (2, "descr"),
        (4, "contained"),
        (5, None),
        (7, "name"),
        (8, "hw"),
        (9, "fw"),
        (11, "serial"),
        (12, "mfg"),
        (13, "model"),
    )
    for col, key in columns:
        for idx, ent in enumerate(entities, start=1):
            if key is None:
                rows.append((f"{_ENT}.{col}.{idx}", "2", str(_CLASS_CODE.get(ent["kind"], 9))))
            elif key == "contained":
                rows.append((f"{_ENT}.{col}.{idx}", "2", ent[key]))
            else:
                rows.append((f"{_ENT}.{col}.{idx}", "4", ent[key]))
    rows.sort(key=lambda r: tuple(int(x) for x in r[0].split(".")))
    return "".join(f"{oid}|{tag}|{val}\n" for oid, tag, val in rows)
