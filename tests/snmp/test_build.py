"""Health and inventory bodies from raw answers; counter rates; reboot detection."""

from __future__ import annotations

from typing import Any

from agent.envelope import KIND_HEALTH, KIND_INVENTORY, make
from collector.snmp.build import (
    DeviceState,
    build_health,
    build_inventory,
    detect_reboot,
    inventory_hash,
)
from collector.snmp.oidmap import load_oidmap
from collector.snmp.poller import RawPoll
from firmware_db.fingerprint import Fingerprint

OIDMAP = load_oidmap()
RAM = "1.3.6.1.2.1.25.2.1.2"
DISK = "1.3.6.1.2.1.25.2.1.4"


def raw(ts: float, rx: int, tx: int, uptime: int = 1000, hc: bool = True) -> RawPoll:
    ifx: dict[str, dict[str, Any]] = {"2": {"ifName": "eth0"}}
    if hc:
        ifx["2"].update(ifHCInOctets=rx, ifHCOutOctets=tx)
    return RawPoll(
        device_id="d1",
        address="127.0.0.1:161",
        ts=ts,
        outcome="ok",
        scalars={"sysUpTime": uptime, "sysDescr": "Linux gw 5.10.0 #1 SMP aarch64"},
        tables={
            "hrProcessorTable": {"1": {"hrProcessorLoad": 10}, "2": {"hrProcessorLoad": 30}},
            "hrStorageTable": {
                "1": {
                    "hrStorageType": RAM,
                    "hrStorageDescr": "Physical memory",
                    "hrStorageAllocationUnits": 1024,
                    "hrStorageSize": 1000,
                    "hrStorageUsed": 250,
                },
                "31": {
                    "hrStorageType": DISK,
                    "hrStorageDescr": "/",
                    "hrStorageAllocationUnits": 4096,
                    "hrStorageSize": 100,
                    "hrStorageUsed": 40,
                },
            },
            "ifTable": {
                "2": {
                    "ifDescr": "eth0",
                    "ifOperStatus": 1,
                    "ifInOctets": rx % 2**32,
                    "ifOutOctets": tx % 2**32,
                    "ifInErrors": 1,
                    "ifOutErrors": 2,
                    "ifInDiscards": 0,
                    "ifOutDiscards": 3,
                    "ifPhysAddress": "02:00:00:00:00:01",
                }
            },
            "ifXTable": ifx,
        },
    )


def test_health_body_matches_the_wire_contract() -> None:
    body = build_health(raw(1000.0, 5000, 7000), OIDMAP, 30.0, DeviceState())
    assert body["cpu"] == {"pct": 20.0, "n": 2}
    assert body["mem"] == {"total": 1024000, "avail": 768000, "pct": 25.0}
    assert body["disk"] == {"/": {"pct": 40.0, "total": 409600, "free": 245760}}
    assert body["net"]["eth0"] == {"up": True, "rx": 5000, "tx": 7000, "err": 3, "drop": 3}
    assert body["uptime"] == 10 and body["boot"] == 990
    make("d1", "poll", 1, KIND_HEALTH, body)  # validates against the contract


def test_rates_between_polls_and_counter32_wrap() -> None:
    st = DeviceState()
    build_health(raw(1000.0, 1000, 2000), OIDMAP, 10, st)
    st.ts = 1000.0
    second = build_health(raw(1010.0, 11000, 2000 + 50_000), OIDMAP, 10, st)
    assert second["net"]["eth0"]["rx_rate"] == 1000.0
    assert second["net"]["eth0"]["tx_rate"] == 5000.0
    st2 = DeviceState()
    build_health(raw(0.0, 2**32 - 100, 0, hc=False), OIDMAP, 10, st2)
    st2.ts = 0.0
    wrapped = build_health(raw(10.0, 2**32 + 900, 0, hc=False), OIDMAP, 10, st2)
    assert wrapped["net"]["eth0"]["rx_rate"] == 100.0


def test_reboot_only_when_uptime_goes_backwards() -> None:
    assert not detect_reboot(None, None, 100.0, 50)
    assert not detect_reboot(100.0, 5000, 110.0, 6000)
    assert not detect_reboot(100.0, 5000, 110.0, 5000)  # frozen clock is not a reboot
    assert detect_reboot(100.0, 500_000, 110.0, 300)
    # TimeTicks wrap after 2^32 ticks (~497 days): small value right after is not a reboot.
    assert not detect_reboot(100.0, 2**32 - 200, 110.0, 800)


def test_inventory_from_entity_mib_fingerprint_and_packages() -> None:
    r = RawPoll(
        device_id="d1",
        address="127.0.0.1:161",
        ts=1.0,
        outcome="ok",
        scalars={
            "sysDescr": "Linux gw 5.10.0 #1 SMP aarch64",
            "sysName": "gw",
            "sysObjectID": "1.3.6.1.4.1.8072.3.2.10",
        },
        tables={
            "entPhysicalTable": {
                "1": {
                    "entPhysicalClass": 3,
                    "entPhysicalDescr": "router",
                    "entPhysicalSerialNum": "SN1",
                    "entPhysicalMfgName": "ACME",
                    "entPhysicalModelName": "R1",
                    "entPhysicalFirmwareRev": "1.2.3",
                },
                "2": {
                    "entPhysicalClass": 12,
                    "entPhysicalMfgName": "Qualcomm",
                    "entPhysicalModelName": "IPQ4018",
                },
                "3": {"entPhysicalClass": 10, "entPhysicalDescr": "port 1"},
            },
            "hrSWInstalledTable": {
                "1": {"hrSWInstalledName": "libc6_2.36-9+deb12u4_amd64"},
                "2": {"hrSWInstalledName": "busybox-1.36.1-1"},
                "10": {"hrSWInstalledName": "weird"},
            },
            "ifTable": {"1": {"ifPhysAddress": "02:00:00:00:00:01"}, "2": {"ifPhysAddress": ""}},
        },
    )
    inv = build_inventory(r, OIDMAP, Fingerprint())
    assert inv["source"] == "snmp"
    assert inv["hardware"]["vendor"] == "ACME" and inv["hardware"]["serial"] == "SN1"
    assert inv["firmware"]["version"] == "1.2.3"
    assert inv["kernel"] == {"release": "5.10.0", "arch": "aarch64"}
    assert inv["macs"] == ["02:00:00:00:00:01"]
    assert [(p["kind"], p["model"], p["evidence"]) for p in inv["parts"]] == [
        ("chassis", "R1", "snmp"),
        ("soc", "IPQ4018", "snmp"),
    ]
    assert inv["packages"] == [
        {"name": "libc6", "version": "2.36-9+deb12u4", "manager": "snmp", "arch": "amd64"},
        {"name": "busybox", "version": "1.36.1-1", "manager": "snmp"},
        {"name": "weird", "version": "", "manager": "snmp"},
    ]
    assert inv["hash"] == inventory_hash(inv)
    make("d1", "poll", 1, KIND_INVENTORY, inv)
    fp = Fingerprint(vendor="Teltonika", model="RUTX11", firmware_version="RUTX_R_1")
    inv2 = build_inventory(r, OIDMAP, fp)
    assert (inv2["hardware"]["vendor"], inv2["hardware"]["model"]) == ("Teltonika", "RUTX11")
    assert inv2["firmware"]["version"] == "RUTX_R_1"
    assert inv2["hash"] != inv["hash"]
