"""A simulated city fleet: cameras, NVRs and gateways spread over districts, labelled simulated.

Devices are built from `data/profiles.json` (supplier names from firmware_db's sourced supplier
table, SoC families from cited firmware descriptions, real upstream release versions of the
kernel, BusyBox and OpenSSL). Generation is deterministic for a seed, so a demo is repeatable.
Every device id starts with `sim-`, every inventory carries `"simulated": true` and every device
is tagged `simulated=true`: nothing made here can pass for a real device.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from collector.errors import CollectorError

SIM_PREFIX = "sim-"
SIM_TAG = "simulated"
CLASSES = ("camera", "nvr", "gateway")
AGENT_VERSION = "0.1.0-sim"

# Behaviour mix (fractions of the fleet); the rest run normally.
SHARE_OFFLINE = 0.06  # drop off the network mid-run (the broker then sends their last will)
SHARE_EOL = 0.15  # ship end-of-life firmware: old release date, EOL OpenSSL/kernel
SHARE_HOT = 0.05  # run saturated (capacity aging)
SHARE_AGENTLESS = 0.05  # no agent: answered over SNMP by snmpsim


class SimError(CollectorError):
    """The simulated fleet could not be built or run."""


@dataclass(frozen=True)
class SimDevice:
    """One simulated device: identity, placement, inventory body and how it behaves."""

    device_id: str
    klass: str
    tags: Mapping[str, str]
    criticality: float
    inventory: Mapping[str, Any]
    offline_after: float | None = None  # fraction of the run after which it vanishes
    eol: bool = False
    hot: bool = False
    agentless: bool = False
    seed: int = 0

    @property
    def simulated(self) -> bool:
        return True


@dataclass(frozen=True)
class Fleet:
    devices: tuple[SimDevice, ...]
    seed: int
    profiles_about: str = field(default="", repr=False)

    @property
    def agents(self) -> tuple[SimDevice, ...]:
        return tuple(d for d in self.devices if not d.agentless)

    @property
    def agentless(self) -> tuple[SimDevice, ...]:
        return tuple(d for d in self.devices if d.agentless)

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in CLASSES}
        for d in self.devices:
            out[d.klass] += 1
        return out


def load_profiles() -> dict[str, Any]:
    text = resources.files("collector.sim").joinpath("data/profiles.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def inventory_hash(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of every key but `hash` (docs/protocol.md)."""
    rest = {k: v for k, v in body.items() if k != "hash"}
    canon = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def _mac(rng: random.Random) -> str:
    # locally administered unicast (x2:...), so a simulated MAC never collides with a vendor OUI
    octets = [0x02] + [rng.randrange(256) for _ in range(5)]
    return ":".join(f"{o:02x}" for o in octets)


def _pick_class(rng: random.Random, profiles: Mapping[str, Any]) -> str:
    classes = profiles["classes"]
    r = rng.random()
    acc = 0.0
    for name in CLASSES:
        acc += float(classes[name]["share"])
        if r < acc:
            return name
    return CLASSES[0]


def _device(index: int, klass: str, rng: random.Random, profiles: Mapping[str, Any]) -> SimDevice:
    prof = profiles["classes"][klass]
    vendor = rng.choice(prof["vendors"])
    platform = rng.choice(prof["platforms"])
    eol = rng.random() < SHARE_EOL
    kernel = rng.choice(platform["kernels"])
    busybox = rng.choice(platform["busybox"])
    openssl = "1.0.2u" if eol else rng.choice([v for v in prof["openssl"] if v != "1.0.2u"])
    district = rng.choice(profiles["districts"])
    site = rng.choice(profiles["sites"])
    short = {"camera": "cam", "nvr": "nvr", "gateway": "gw"}[klass]
    device_id = f"{SIM_PREFIX}{short}-{index:05d}"
    year = rng.randrange(2016, 2019) if eol else rng.randrange(2023, 2026)
    release = f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    major, minor, patch = rng.randrange(1, 6), rng.randrange(0, 10), rng.randrange(0, 100)
    fw_version = f"V{major}.{minor}.{patch}-{release.replace('-', '')}"
    model = f"SIM-{short.upper()}-{rng.randrange(100, 999)}"
    parts: list[dict[str, Any]] = [
        {
            "kind": "soc",
            "vendor": platform["soc_vendor"],
            "model": platform["soc"],
            "evidence": "declared",
            "confidence": "high",
        }
    ]
    if prof["sensors"]:
        sensor_vendor = rng.choice(prof["sensors"])
        parts.append(
            {
                "kind": "image_sensor",
                "vendor": sensor_vendor,
                "model": rng.choice(profiles["sensor_models"][sensor_vendor]),
                "evidence": "declared",
                "confidence": "medium",
            }
        )
    if "radio" in platform:
        parts.append(
            {
                "kind": "radio",
                "vendor": platform["radio"][0],
                "model": platform["radio"][1],
                "evidence": "declared",
                "confidence": "high",
            }
        )
    if "os" in platform:
        os_id, os_ver = platform["os"]
        os_doc = {"id": os_id, "name": os_id.capitalize(), "version_id": os_ver}
    else:
        os_doc = {"id": prof["os"]["id"], "name": prof["os"]["name"], "version_id": kernel}
    os_doc["pretty_name"] = f"{os_doc['name']} {os_doc['version_id']} (simulated)"
    os_doc["source"] = "declared"
    mgr = prof["package_manager"]
    packages = [
        {"name": "busybox", "version": busybox, "manager": mgr},
        {"name": "openssl", "version": openssl, "manager": mgr},
        {"name": "libssl", "version": openssl, "manager": mgr},
    ]
    body: dict[str, Any] = {
        "source": "agent",
        "simulated": True,
        "agent": {"version": AGENT_VERSION, "python": "3.11"},
        "hostname": device_id,
        "machine_id": hashlib.md5(device_id.encode(), usedforsecurity=False).hexdigest(),
        "macs": [_mac(rng)],
        "os": os_doc,
        "kernel": {"release": kernel, "arch": "x86_64" if "Atom" in platform["soc"] else "armv7l"},
        "hardware": {
            "vendor": vendor,
            "model": model,
            "serial": f"SIM{rng.randrange(10**9):09d}",
            "source": "declared",
        },
        "firmware": {
            "vendor": vendor,
            "version": fw_version,
            "release_date": release,
            "source": "declared",
        },
        "parts": parts,
        "packages": packages,
    }
    body["hash"] = inventory_hash(body)
    tags = {
        "district": district,
        "site": f"{district} {site}",
        "class": klass,
        SIM_TAG: "true",
    }
    return SimDevice(
        device_id=device_id,
        klass=klass,
        tags=tags,
        criticality=float(rng.choice(prof["criticality"])),
        inventory=body,
        offline_after=rng.uniform(0.3, 0.6) if rng.random() < SHARE_OFFLINE else None,
        eol=eol,
        hot=rng.random() < SHARE_HOT,
        seed=rng.randrange(2**31),
    )


def build_fleet(n: int, seed: int = 8, agentless: int | None = None) -> Fleet:
    """n simulated devices; `agentless` of them (default ~5 %, at least 1 for n >= 5) use SNMP."""
    if n < 0:
        raise SimError(f"--devices must be >= 0, got {n}")
    profiles = load_profiles()
    rng = random.Random(seed)
    devices = [_device(i + 1, _pick_class(rng, profiles), rng, profiles) for i in range(n)]
    default_snmp = max(1, round(n * SHARE_AGENTLESS)) if n >= 5 else 0
    n_snmp = agentless if agentless is not None else default_snmp
    n_snmp = min(n_snmp, n)
    # agentless: the first n_snmp devices that are not set to go offline
    chosen = 0
    for i, dev in enumerate(devices):
        if chosen >= n_snmp:
            break
        if dev.offline_after is None:
            devices[i] = SimDevice(
                device_id=dev.device_id,
                klass=dev.klass,
                tags={**dev.tags, "source": "snmp"},
                criticality=dev.criticality,
                inventory=dev.inventory,
                eol=dev.eol,
                hot=False,
                agentless=True,
                seed=dev.seed,
            )
            chosen += 1
    return Fleet(devices=tuple(devices), seed=seed, profiles_about=str(profiles["about"]))


def health_body(dev: SimDevice, tick: int, interval: float, uptime: float) -> dict[str, Any]:
    """A plausible health report for tick `tick`; hot devices run saturated."""
    rng = random.Random(dev.seed * 1_000_003 + tick)
    base_cpu = 92.0 if dev.hot else {"camera": 35.0, "nvr": 55.0, "gateway": 15.0}[dev.klass]
    cpu = min(100.0, max(0.0, base_cpu + rng.uniform(-6, 6)))
    mem_total = {"camera": 256, "nvr": 4096, "gateway": 512}[dev.klass] * 1024 * 1024
    mem_pct = min(99.0, (88.0 if dev.hot else 45.0) + rng.uniform(-5, 5))
    disk_total = {"camera": 64, "nvr": 8 * 1024 * 1024, "gateway": 4096}[dev.klass] * 1024 * 1024
    disk_pct = (96.0 if dev.hot else 80.0 if dev.klass == "nvr" else 40.0) + rng.uniform(-2, 2)
    temp = (78.0 if dev.hot else 52.0) + rng.uniform(-3, 3)
    return {
        "interval": interval,
        "simulated": True,
        "cpu": {"pct": round(cpu, 1), "load1": round(cpu / 50, 2), "n": 2},
        "mem": {
            "pct": round(mem_pct, 1),
            "total": mem_total,
            "avail": int(mem_total * (1 - mem_pct / 100)),
        },
        "disk": {
            "/": {
                "pct": round(disk_pct, 1),
                "total": disk_total,
                "free": int(disk_total * (1 - disk_pct / 100)),
            }
        },
        "temp": {"soc": round(temp, 1)},
        "uptime": int(uptime),
    }
