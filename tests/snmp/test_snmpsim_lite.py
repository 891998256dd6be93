"""snmpsim's lightweight responder (the benchmark's fast simulator) answers like its full one.

The lite responder is started through a launcher that only restores names pysnmp 7 renamed
(collector/snmp/simulator.py); these tests hold it to the full responder's answers, request by
request and poll by poll, for the packaged camera, NVR and gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from collector.snmp import ber
from collector.snmp.engine_lean import LeanEngine
from collector.snmp.interface import GET, GET_BULK, GET_NEXT, Reply
from collector.snmp.oidmap import load_oidmap
from collector.snmp.poller import ALL_GROUPS, HEALTH_GROUPS, Poller, PollerConfig
from collector.snmp.service import PollService
from collector.snmp.simulator import (
    RESPONDER_LITE,
    SNMPREC_DEVICES,
    SimulatedDevice,
    Snmpsim,
    packaged_snmprec,
)
from collector.snmp.targets import Target
from tests.support.services import require_tool

pytestmark = pytest.mark.integration

Oid = tuple[int, ...]


def _oid(text: str) -> Oid:
    return tuple(int(p) for p in text.split("."))


SIM_ENV = {"PYPY_GC_NURSERY": "32MB"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Snmpsim, Snmpsim]]:
    """The full responder (tuned: its --max-var-binds honoured) and the lite one, same data."""
    require_tool("snmpsim-command-responder-lite", "snmpsim (pip)")
    devices = {n: packaged_snmprec(n) for n in SNMPREC_DEVICES}
    root = tmp_path_factory.mktemp("snmpsim-pair")
    full = Snmpsim(root / "full", devices, tuned=True)
    # An environment setting for the simulator (PyPy's GC nursery; CPython ignores it).
    lite = Snmpsim(root / "lite", devices, responder=RESPONDER_LITE, env=SIM_ENV)
    try:
        full.launch()
        lite.launch()
        full.wait_ready()
        lite.wait_ready()
        yield full, lite
    finally:
        full.stop()
        lite.stop()


def _ask(
    dev: SimulatedDevice, requests: Sequence[tuple[Any, ...]], version: str = "2c"
) -> list[Any]:
    """Send each (kind, oids, non_repeaters, max_repetitions) and return the decoded replies."""

    async def run() -> list[Any]:
        engine = LeanEngine()
        target = dev.v2c_target(version=version, timeout=2.0, retries=1)
        try:
            out: list[Any] = []
            for kind, oids, *bulk in requests:
                reply: Reply = await engine.request(target, kind, oids, *bulk)
                out.append(tuple(reply))
            return out
        finally:
            engine.close()

    return asyncio.run(run())


def _requests(name: str) -> list[tuple[Any, ...]]:
    """GET, GETNEXT and GETBULK cases: present and absent OIDs, the end of the data, the caps."""
    oids = [_oid(line.split("|", 1)[0]) for line in packaged_snmprec(name).splitlines() if line]
    last = oids[-1]
    m = load_oidmap()
    scalars = [s.oid for s in m.scalars]
    columns = [c.oid for c in m.columns_for(ALL_GROUPS)]
    return [
        (GET, [oids[0], oids[len(oids) // 2], last]),
        (GET, [_oid("1.3.6.1.2.1.1.99.0"), _oid("1.3.6.1.2.1.2.2.1"), _oid("1.3.6.1.9.9")]),
        (GET_NEXT, [s[:-1] for s in scalars]),
        (GET_NEXT, [last, _oid("1.3.6.1.9"), (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)]),
        # The poller's first request: every scalar as a non-repeater, every column repeated.
        (GET_BULK, [s[:-1] for s in scalars] + columns, len(scalars), 4),
        # Past the end of the data (endOfMibView), and capped by --max-var-binds (256 / R).
        (GET_BULK, [columns[-1], last], 0, 40),
        (GET_BULK, [(1, 3, 6, 1, 2, 1, 1)], 0, 300),
        (GET_BULK, [_oid("1.3.6.1.2.1.1.3"), *columns[:3]], 1, 100),
        (GET_BULK, [last], 2, 5),
    ]


@pytest.mark.parametrize("name", SNMPREC_DEVICES)
def test_lite_answers_every_request_like_the_full_responder(
    pair: tuple[Snmpsim, Snmpsim], name: str
) -> None:
    full, lite = pair
    requests = _requests(name)
    want = _ask(full.device(name), requests)
    got = _ask(lite.device(name), requests)
    for request, a, b in zip(requests, want, got, strict=True):
        assert a == b, request[:2]
    # The cases reach what they are meant to reach.
    tags = {val.tag for reply in want for _oid_, val in reply[2]}
    assert {ber.END_OF_MIB_VIEW, ber.NO_SUCH_INSTANCE} <= tags
    assert len(want[6][2]) == 256  # the --max-var-binds cap, not pysnmp's default 64


@pytest.mark.parametrize("name", SNMPREC_DEVICES)
def test_lite_answers_snmpv1_like_the_full_responder(
    pair: tuple[Snmpsim, Snmpsim], name: str
) -> None:
    full, lite = pair
    last = _oid(packaged_snmprec(name).splitlines()[-1].split("|", 1)[0])
    requests: list[tuple[Any, ...]] = [
        (GET, [_oid("1.3.6.1.2.1.1.5.0")]),
        (GET, [_oid("1.3.6.1.2.1.1.5.0"), _oid("1.3.6.1.2.1.1.99.0")]),  # noSuchName, index 2
        (GET_NEXT, [_oid("1.3.6.1.2.1.2.2.1.2")]),
        (GET_NEXT, [_oid("1.3.6.1.2.1.1.1"), last]),  # end of the data: noSuchName, index 2
    ]
    want = _ask(full.device(name), requests, version="1")
    got = _ask(lite.device(name), requests, version="1")
    assert want == got
    assert [r[0] for r in want] == [0, 2, 0, 2] and want[1][1] == want[3][1] == 2


def _polls(dev: SimulatedDevice, config: PollerConfig | None = None) -> list[Any]:
    """Raw first and repeat polls and the built reports, as `collector serve` makes them."""

    async def run() -> list[Any]:
        async with Poller(config=config) as poller:
            svc = PollService(poller)
            target = dev.v2c_target(device_id="sim-compare")
            out: list[Any] = []
            for groups, inventory in ((ALL_GROUPS, True), (HEALTH_GROUPS, False)):
                raw = await poller.poll(target, groups)
                rep = await svc.poll(target, inventory=inventory)
                assert raw.outcome == rep.outcome == "ok", (raw.detail, rep.detail)
                health = {k: v for k, v in (rep.health or {}).items() if k != "boot"}
                out.append(
                    (raw.scalars, raw.tables, raw.requests, rep.identity, rep.inventory, health)
                )
            return out

    return asyncio.run(run())


@pytest.mark.parametrize("name", SNMPREC_DEVICES)
def test_poller_builds_the_same_results_from_both_responders(
    pair: tuple[Snmpsim, Snmpsim], snmpsim: Snmpsim, name: str
) -> None:
    """Identity, inventory and health (all but the boot time, taken from each poll's clock) are
    the same from the full responder as tuned, the lite one and snmpsim as installed."""
    full, lite = pair
    want = _polls(full.device(name))
    assert _polls(lite.device(name)) == want
    stock = _polls(snmpsim.device(name))  # capped at 64 varbinds: may need more requests
    assert [p[:2] + p[3:] for p in stock] == [p[:2] + p[3:] for p in want]
    # A tiny response budget walks the same rows through many continuation requests.
    small = PollerConfig(max_varbinds=3, first_repetitions=1)
    tight = _polls(lite.device(name), small)
    assert [p[:2] + p[3:] for p in tight] == [p[:2] + p[3:] for p in want]
    assert tight[0][2] > want[0][2]


def test_lite_ignores_unknown_communities_like_the_full_responder(
    pair: tuple[Snmpsim, Snmpsim],
) -> None:
    async def run(sim: Snmpsim) -> str:
        assert sim.port is not None
        target = Target(
            host="127.0.0.1",
            port=sim.port,
            version="2c",
            community="nosuch",
            timeout=0.3,
            retries=0,
        )
        async with Poller() as poller:
            return (await poller.poll(target)).outcome

    full, lite = pair
    assert asyncio.run(run(lite)) == asyncio.run(run(full)) == "timeout"


def test_lite_command_has_no_v3_user_and_a_known_responder_is_required(tmp_path: Path) -> None:
    from collector.snmp.interface import SimulatorError

    lite = Snmpsim(tmp_path, {"camera": "x"}, port=1161, responder=RESPONDER_LITE)
    cmd = lite.command()
    assert "-c" in cmd and "snmpsim.commands.responder_lite" in cmd[cmd.index("-c") + 1]
    assert not [a for a in cmd if a.startswith("--v3-")]
    assert "--max-var-binds=256" in cmd
    full = Snmpsim(tmp_path, {"camera": "x"}, port=1161).command()
    assert [a for a in full if a.startswith("--v3-user=")]
    with pytest.raises(SimulatorError, match="responder 'fast' is not one of full, lite"):
        Snmpsim(tmp_path, {"camera": "x"}, responder="fast")


def test_simulator_process_gets_the_extra_environment(pair: tuple[Snmpsim, Snmpsim]) -> None:
    full, lite = pair
    assert lite.pid is not None and full.pid is not None
    environ = Path(f"/proc/{lite.pid}/environ").read_bytes().split(b"\0")
    assert b"PYPY_GC_NURSERY=32MB" in environ
    assert b"PYPY_GC_NURSERY=32MB" not in Path(f"/proc/{full.pid}/environ").read_bytes().split(
        b"\0"
    )
