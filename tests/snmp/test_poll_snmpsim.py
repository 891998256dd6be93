"""Polling simulated devices (snmpsim on loopback): identity, inventory, health, failure states."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from collector.snmp.poller import Poller, PollerConfig
from collector.snmp.service import PollService, Scheduler
from collector.snmp.simulator import Snmpsim
from collector.snmp.targets import Target
from tests.snmp.conftest import DelayProxy, dead_port

pytestmark = pytest.mark.integration


def poll(target: Target, **kwargs: Any) -> Any:
    async def run() -> Any:
        async with Poller() as poller:
            return await PollService(poller).poll(target, **kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize("version", ["2c", "3"])
def test_camera_identity_parts_and_health(snmpsim: Snmpsim, version: str) -> None:
    dev = snmpsim.device("camera")
    target = dev.v2c_target() if version == "2c" else dev.v3_target()
    rep = poll(target)
    assert rep.outcome == "ok", rep.detail
    inv = rep.inventory
    assert inv is not None and inv["source"] == "snmp"
    # Fingerprint by enterprise number, model and firmware from the vendor OIDs.
    assert inv["hardware"]["vendor"] == "Hikvision"
    assert inv["hardware"]["model"] == "DS-2CD2143G2-I"
    assert inv["hardware"]["device_class"] == "camera"
    assert inv["firmware"]["version"] == "V5.7.3 build 220112"
    assert inv["hardware"]["serial"] == "SIMCAM0000000001"
    parts = {(p["kind"], p["vendor"], p["model"]) for p in inv["parts"]}
    assert ("soc", "HiSilicon", "Hi3516CV500") in parts
    assert ("image_sensor", "Sony", "IMX335") in parts
    assert all(p["evidence"] == "snmp" for p in inv["parts"])
    assert {p["name"] for p in inv["packages"]} == {"busybox", "openssl", "davinci"}
    h = rep.health
    assert h is not None
    assert h["cpu"]["pct"] == 23.0
    assert h["disk"]["/mnt/mtd"]["pct"] == 25.0
    assert h["net"]["eth0"]["up"] is True and h["net"]["eth0"]["rx"] == 9876543210
    assert h["uptime"] == 86400


def test_nvr_and_gateway_fingerprints(snmpsim: Snmpsim) -> None:
    nvr = poll(snmpsim.device("nvr").v3_target())
    assert nvr.outcome == "ok", nvr.detail
    assert nvr.identity["vendor"] == "Dahua" and nvr.identity["device_class"] == "nvr"
    assert nvr.health is not None and nvr.health["disk"]["HDD2"]["pct"] == 96.7
    gw = poll(snmpsim.device("gateway").v2c_target())
    assert gw.outcome == "ok", gw.detail
    assert (gw.identity["vendor"], gw.identity["model"], gw.identity["firmware"]) == (
        "Teltonika",
        "RUTX11",
        "RUTX_R_00.07.06.10",
    )
    assert gw.health is not None
    assert gw.health["cpu"]["load1"] == 0.35
    # UCD memory wins over hrStorage: avail = memAvailReal + buffers + cached
    assert gw.health["mem"]["avail"] == (60000 + 4000 + 26000) * 1024
    assert gw.inventory is not None
    radios = [p for p in gw.inventory["parts"] if p["kind"] == "radio"]
    assert [(p["vendor"], p["model"]) for p in radios] == [("Quectel", "EG06-E")]


def test_small_getbulk_answers_still_walk_every_row(snmpsim: Snmpsim) -> None:
    """A tiny response budget forces many continuation requests; the result must not change."""
    target = snmpsim.device("gateway").v2c_target()

    async def run(cfg: PollerConfig) -> Any:
        async with Poller(config=cfg) as poller:
            return await poller.poll(target)

    big = asyncio.run(run(PollerConfig()))
    small = asyncio.run(run(PollerConfig(max_varbinds=3, max_columns_per_request=4)))
    assert big.outcome == small.outcome == "ok"
    assert small.requests > big.requests
    assert small.tables == big.tables
    assert small.scalars == big.scalars


def test_wrong_community_is_a_timeout(snmpsim: Snmpsim) -> None:
    t = snmpsim.device("camera").v2c_target(community="wrong", timeout=0.3, retries=0)
    rep = poll(t)
    assert rep.outcome == "timeout"
    assert "wrong community" in rep.detail
    assert rep.health is None and rep.inventory is None


def test_wrong_v3_key_is_an_auth_failure_not_a_timeout(snmpsim: Snmpsim) -> None:
    t = snmpsim.device("camera").v3_target(auth_key="not-the-key", timeout=2.0, retries=2)
    start = time.monotonic()
    rep = poll(t)
    assert rep.outcome == "auth_failure"
    assert "authentication failed" in rep.detail
    # Answered at once (a wrong digest is reported), not after timeout x tries.
    assert time.monotonic() - start < 2.0


def test_dead_and_slow_devices_do_not_delay_the_others(
    snmpsim: Snmpsim, slow_proxy: DelayProxy
) -> None:
    fast = [snmpsim.device(n).v2c_target() for n in ("camera", "nvr", "gateway")]
    dead = Target(
        host="127.0.0.1",
        port=dead_port(),
        version="2c",
        community="x",
        timeout=1.0,
        retries=1,
        device_id="dead",
    )
    slow = Target(
        host="127.0.0.1",
        port=slow_proxy.port,
        version="2c",
        community="camera",
        timeout=5.0,
        retries=0,
        device_id="slow",
    )
    finished: dict[str, float] = {}

    async def run() -> list[Any]:
        async with Poller() as poller:
            start = time.monotonic()

            async def one(t: Target) -> Any:
                r = await poller.poll(t)
                finished[t.device_id] = time.monotonic() - start
                return r

            return await asyncio.gather(*(one(t) for t in [dead, slow, *fast]))

    results = {r.device_id: r for r in asyncio.run(run())}
    assert results["dead"].outcome == "timeout"
    assert results["slow"].outcome == "ok"  # slow, but within its own deadline
    for t in fast:
        assert results[t.device_id].outcome == "ok"
        # Every fast device finished before the slow relay even forwarded its request.
        assert finished[t.device_id] < slow_proxy.delay
    assert finished["slow"] >= slow_proxy.delay
    assert finished["dead"] >= 2.0  # 1 s timeout x 2 tries


class ListSink:
    def __init__(self) -> None:
        self.polls: list[tuple[str, str, str]] = []
        self.devices: dict[str, dict[str, Any]] = {}

    def ensure_device(self, device_id: str, **kwargs: Any) -> None:
        self.devices[device_id] = kwargs

    def record_poll(self, device_id: str, ts: float, outcome: str, **kwargs: Any) -> None:
        self.polls.append((device_id, outcome, kwargs.get("detail", "")))


def test_scheduler_keeps_polling_fast_devices_while_a_dead_one_hangs(snmpsim: Snmpsim) -> None:
    fast = snmpsim.device("camera").v2c_target(interval=0.2)
    dead = Target(
        host="127.0.0.1",
        port=dead_port(),
        version="2c",
        community="x",
        timeout=3.0,
        retries=1,
        interval=0.2,
        device_id="dead",
    )
    sink = ListSink()

    async def run() -> Scheduler:
        async with Poller() as poller:
            sched = Scheduler(PollService(poller), [fast, dead], sink, first_spread=0.0)
            stop = asyncio.Event()
            task = asyncio.create_task(sched.run(stop))
            deadline = time.monotonic() + 30
            while sum(1 for p in sink.polls if p[0] == fast.device_id) < 5:
                assert time.monotonic() < deadline, sink.polls
                await asyncio.sleep(0.05)
            stop.set()
            await task
            return sched

    sched = asyncio.run(run())
    assert all(o == "ok" for d, o, _ in sink.polls if d == fast.device_id)
    assert "dead" not in {d for d, _, _ in sink.polls}  # still in its first 6 s poll
    assert sched.stats["overruns"] >= 1  # the dead one was due again while running
    assert sink.devices[fast.device_id]["source"] == "snmp"


def test_snmp_v1_walks_with_getnext(snmpsim: Snmpsim) -> None:
    """v1 has no GETBULK: the same columns are walked with multi-varbind GETNEXTs."""
    rep = poll(snmpsim.device("gateway").v2c_target(version="1"))
    assert rep.outcome == "ok", rep.detail
    assert rep.requests > 3  # one row per round
    assert rep.identity["model"] == "RUTX11"
    assert rep.health is not None and rep.health["cpu"]["load5"] == 0.28
    assert rep.inventory is not None and len(rep.inventory["packages"]) == 3


def _counting(poller: Poller) -> list[int]:
    """Wrap the poller's requests to count the varbinds each answer carried."""
    sizes: list[int] = []
    inner = poller._request

    async def request(*args: Any, **kwargs: Any) -> Any:
        vbs = await inner(*args, **kwargs)
        sizes.append(len(vbs))
        return vbs

    poller._request = request  # type: ignore[method-assign]
    return sizes


@pytest.mark.parametrize("name", ["camera", "gateway"])
def test_repeat_poll_probes_known_rows_with_the_same_result(snmpsim: Snmpsim, name: str) -> None:
    target = snmpsim.device(name).v2c_target()

    async def run() -> tuple[Any, Any, list[int], list[int]]:
        async with Poller(config=PollerConfig(probe_known_rows=True)) as poller:
            sizes = _counting(poller)
            first = await poller.poll(target)
            n_first = list(sizes)
            sizes.clear()
            second = await poller.poll(target)
            return first, second, n_first, list(sizes)

    first, second, n_first, n_second = asyncio.run(run())
    assert first.outcome == second.outcome == "ok"
    assert second.tables == first.tables and second.scalars == first.scalars
    # Each known column costs rows + 1 varbinds: less for the agent, in one request.
    assert second.requests == 1
    assert sum(n_second) < sum(n_first)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda rows: rows[1:],  # a row the last poll did not see
        lambda rows: rows + ((999,),),  # a row that has gone since
        lambda rows: ((0,),) + rows[::2],  # shifted and sparse
        lambda rows: (),  # the column was empty last time
    ],
)
def test_stale_row_knowledge_still_walks_every_row(snmpsim: Snmpsim, mangle: Any) -> None:
    target = snmpsim.device("gateway").v2c_target()

    async def run() -> tuple[Any, Any]:
        async with Poller(config=PollerConfig(probe_known_rows=True)) as poller:
            fresh = await poller.poll(target)
            shapes = poller._shapes[target.device_id]
            for col, rows in list(shapes.items()):
                shapes[col] = mangle(rows)
            return fresh, await poller.poll(target)

    fresh, again = asyncio.run(run())
    assert again.outcome == "ok"
    assert again.tables == fresh.tables and again.scalars == fresh.scalars


def test_row_probing_is_off_by_default(snmpsim: Snmpsim) -> None:
    target = snmpsim.device("camera").v2c_target()

    async def run() -> tuple[int, int]:
        async with Poller() as poller:
            first = await poller.poll(target)
            again = await poller.poll(target)
            assert poller._shapes == {}
            return first.requests, again.requests

    first, again = asyncio.run(run())
    assert first == again
