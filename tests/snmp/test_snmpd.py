"""Debian's net-snmp agent as the real peer: v2c, v3 authPriv (SHA/AES), failures, reboots."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collector.snmp.poller import Poller
from collector.snmp.service import PollService
from collector.snmp.simulator import Snmpd
from collector.snmp.targets import Target
from tests.support.services import wait_until

pytestmark = pytest.mark.integration


def poll_with(service: PollService, target: Target) -> Any:
    async def run() -> Any:
        await service.poller.open()
        try:
            return await service.poll(target)
        finally:
            service.poller.close()

    return asyncio.run(run())


@pytest.mark.parametrize("version", ["2c", "3"])
def test_snmpd_inventory_and_health(snmpd: Snmpd, version: str) -> None:
    target = snmpd.v2c_target() if version == "2c" else snmpd.v3_target()
    rep = poll_with(PollService(Poller()), target)
    assert rep.outcome == "ok", rep.detail
    inv = rep.inventory
    assert inv is not None
    assert inv["hostname"] == "sim-snmpd"
    assert inv["snmp"]["sysObjectID"] == "1.3.6.1.4.1.8072.3.2.10"
    assert inv["hardware"]["device_class"] == "linux"
    assert inv["kernel"]["release"]  # from "Linux <host> <release> ..."
    # net-snmp lists dpkg packages as name_version_arch; they come back split.
    pkgs = {p["name"]: p for p in inv["packages"]}
    assert "snmpd" in pkgs
    assert pkgs["snmpd"]["version"].startswith("5.9") and pkgs["snmpd"]["manager"] == "snmp"
    h = rep.health
    assert h is not None
    assert 0 <= h["mem"]["pct"] <= 100 and h["mem"]["total"] > 0
    assert "/" in h["disk"]
    assert "lo" in h["net"] and h["net"]["lo"]["up"] is True
    assert "load1" in h["cpu"]


def test_snmpd_wrong_key_wrong_user_and_wrong_community_are_distinct(snmpd: Snmpd) -> None:
    svc = PollService(Poller())
    wrong_key = poll_with(svc, snmpd.v3_target(auth_key="wrong-auth-key", device_id="k"))
    wrong_user = poll_with(svc, snmpd.v3_target(user="nobody", device_id="u"))
    wrong_comm = poll_with(
        svc, snmpd.v2c_target(community="guess", timeout=0.3, retries=0, device_id="c")
    )
    assert wrong_key.outcome == "auth_failure" and "digest" in wrong_key.detail.lower()
    assert wrong_user.outcome == "auth_failure"
    assert wrong_comm.outcome == "timeout"


def test_reboot_detected_when_sysuptime_goes_back(snmpd: Snmpd) -> None:
    target = snmpd.v2c_target()
    svc = PollService(Poller())

    def uptime_ticks() -> int:
        rep = poll_with(svc, target)
        assert rep.outcome == "ok"
        return int(rep.health["uptime"]) if rep.health else 0

    # Let the agent run a while so a restarted one is measurably "younger".
    wait_until(lambda: uptime_ticks() >= 2, timeout=30, what="snmpd uptime >= 2 s")
    first_state = svc.states[target.device_id]
    assert first_state.reboots == 0
    snmpd.stop()
    snmpd.start()  # same port, fresh sysUpTime
    rep = poll_with(svc, target)
    assert rep.outcome == "ok"
    assert rep.rebooted is True and rep.detail == "rebooted"
    assert svc.states[target.device_id].reboots == 1
    again = poll_with(svc, target)
    assert again.rebooted is False
