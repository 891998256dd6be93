"""A small simulated fleet written into a real collector SQLite store through `Store.apply`.

Inventories follow docs/protocol.md; suppliers, owners and lifecycles are looked up by the real
SBOM builder in the shipped firmware_db reference data. The devices are simulated (flagged so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.envelope import Envelope, make

CAMERA: dict[str, Any] = {
    "hash": "cam",
    "source": "agent",
    "hostname": "cam-1",
    "os": {"id": "linux", "name": "Linux", "version_id": "3.18", "source": "declared"},
    "kernel": {"release": "3.18.20", "arch": "armv7l"},
    "hardware": {"vendor": "Hikvision", "model": "DS-2CD2143G0-I", "source": "declared"},
    "firmware": {
        "vendor": "Hikvision",
        "version": "V5.5.0",
        "release_date": "2019-06-01",
        "source": "declared",
    },
    "parts": [
        {
            "kind": "soc",
            "vendor": "HiSilicon",
            "model": "Hi3516DV300",
            "evidence": "declared",
            "confidence": "medium",
        }
    ],
    "packages": [
        {"name": "openssl", "version": "1.0.2k", "manager": "opkg"},
        {"name": "busybox", "version": "1.26.2", "manager": "opkg"},
    ],
}
GATEWAY: dict[str, Any] = {
    "hash": "gw",
    "source": "agent",
    "hostname": "gw-1",
    "os": {
        "id": "openwrt",
        "name": "OpenWrt",
        "version_id": "21.02.1",
        "source": "etc/openwrt_release",
    },
    "kernel": {"release": "5.4.154", "arch": "armv7l"},
    "hardware": {
        "vendor": "Teltonika",
        "model": "RUTX11",
        "source": "device-tree",
        "compatible": ["teltonika,rutx", "qcom,ipq4018"],
    },
    "firmware": {"vendor": "Teltonika", "version": "RUTX_R_00.07.01", "source": "declared"},
    "parts": [
        {
            "kind": "soc",
            "vendor": "Qualcomm",
            "model": "IPQ4018",
            "evidence": "device-tree",
            "confidence": "high",
        }
    ],
    "packages": [
        {"name": "openssl", "version": "3.0.13", "manager": "opkg"},
        {"name": "dropbear", "version": "2022.82-2", "manager": "opkg"},
    ],
}


def saturated_hour(device_id: str, now: float) -> list[Envelope]:
    """Health reports with cpu at 97 % every minute for the last 80 minutes: sustained
    saturation, also in the rollups (the bucket under way is not rolled up yet)."""
    return [
        make(
            device_id,
            "b1",
            2 + i,
            "health",
            {"interval": 60, "cpu": {"pct": 97.0}},
            ts=now - 4800 + 60 * i,
        )
        for i in range(81)
    ]


def make_store(path: Path, now: float) -> Path:
    from collector.store import open_store

    store = open_store(path)
    try:
        store.ensure_device(
            "cam-1", tags={"district": "north"}, simulated=True, criticality=2.0, enrolled=True
        )
        store.ensure_device("gw-1", tags={"district": "south"}, simulated=True, enrolled=True)
        store.ensure_device("nvr-9", tags={"district": "south"}, simulated=True, enrolled=True)
        envs = [
            make("cam-1", "b1", 1, "inventory", CAMERA, ts=now),
            make("gw-1", "b1", 1, "inventory", GATEWAY, ts=now),
        ]
        store.apply(envs, now)
        for env in saturated_hour("gw-1", now):
            store.apply([env], env.ts + 1)  # received as sent
    finally:
        store.close()
    return path
