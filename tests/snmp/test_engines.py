"""The lean v1/v2c engine against the pysnmp engine on real agents, and against hostile ones."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.snmp import ber
from collector.snmp.poller import ENGINE_LEAN, ENGINE_PYSNMP, Poller, PollerConfig
from collector.snmp.service import PollService
from collector.snmp.simulator import SNMPREC_DEVICES, Snmpd, Snmpsim
from collector.snmp.targets import Target

pytestmark = pytest.mark.integration


def poll_both(target: Target) -> dict[str, Any]:
    """Raw poll and built report through each engine (same target, same agent)."""

    async def run(engine: str) -> tuple[Any, Any, Any]:
        async with Poller(config=PollerConfig(engine=engine)) as poller:
            raw = await poller.poll(target)
            rep = await PollService(poller).poll(target, inventory=True)
            vbs = await poller._request(  # the decoded varbinds themselves
                target, "bulk", [(1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1)], _Clock(), 1, 8
            )
            return raw, rep, vbs

    return {e: asyncio.run(run(e)) for e in (ENGINE_LEAN, ENGINE_PYSNMP)}


def _Clock() -> Any:  # noqa: N802 - the poller's private request counter
    from collector.snmp.poller import _Clock as Clock

    return Clock()


def _shape(value: Any) -> Any:
    """Names and types only: a live agent's counters and uptime move between two polls."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], ber.Value):
        return value[0], value[1].tag
    return type(value).__name__


def _same(a: Any, b: Any, live: bool = False) -> None:
    raw_a, rep_a, vbs_a = a
    raw_b, rep_b, vbs_b = b
    assert raw_a.outcome == raw_b.outcome == "ok", (raw_a.detail, raw_b.detail)
    assert len(vbs_a) > 1 and raw_a.requests == raw_b.requests
    assert rep_a.inventory == rep_b.inventory
    moving = {"uptime_s"} if live else set()
    assert {k: v for k, v in rep_a.identity.items() if k not in moving} == {
        k: v for k, v in rep_b.identity.items() if k not in moving
    }
    if live:
        assert _shape(vbs_a) == _shape(vbs_b)
        assert _shape(dict(raw_a.scalars)) == _shape(dict(raw_b.scalars))
        assert _shape(dict(raw_a.tables)) == _shape(dict(raw_b.tables))
        assert _shape(rep_a.health) == _shape(rep_b.health)
        return
    assert vbs_a == vbs_b
    assert raw_a.scalars == raw_b.scalars and raw_a.tables == raw_b.tables
    # Identical but for the boot time, computed from each poll's own clock.
    assert {k: v for k, v in rep_a.health.items() if k != "boot"} == {
        k: v for k, v in rep_b.health.items() if k != "boot"
    }


@pytest.mark.parametrize("name", SNMPREC_DEVICES)
def test_lean_and_pysnmp_agree_on_snmpsim_devices(snmpsim: Snmpsim, name: str) -> None:
    got = poll_both(snmpsim.device(name).v2c_target())
    _same(got[ENGINE_LEAN], got[ENGINE_PYSNMP])


def test_lean_and_pysnmp_agree_on_snmpd(snmpd: Snmpd) -> None:
    got = poll_both(snmpd.v2c_target())
    _same(got[ENGINE_LEAN], got[ENGINE_PYSNMP], live=True)


def test_lean_and_pysnmp_agree_on_v1(snmpsim: Snmpsim) -> None:
    target = snmpsim.device("gateway").v2c_target(version="1")

    async def run(engine: str) -> Any:
        async with Poller(config=PollerConfig(engine=engine)) as poller:
            return await poller.poll(target)

    lean, ref = asyncio.run(run(ENGINE_LEAN)), asyncio.run(run(ENGINE_PYSNMP))
    assert lean.outcome == ref.outcome == "ok"
    assert (lean.scalars, lean.tables, lean.requests) == (ref.scalars, ref.tables, ref.requests)


def test_v3_always_uses_pysnmp_and_v2c_the_lean_engine(snmpsim: Snmpsim) -> None:
    async def run() -> tuple[str, str, list[str]]:
        async with Poller() as poller:
            v2 = snmpsim.device("camera").v2c_target()
            v3 = snmpsim.device("camera").v3_target()
            rep2, rep3 = await asyncio.gather(poller.poll(v2), poller.poll(v3))
            assert rep2.outcome == rep3.outcome == "ok"
            assert rep2.scalars == rep3.scalars
            return poller.engine_name(v2), poller.engine_name(v3), sorted(poller._engines)

    assert asyncio.run(run()) == (ENGINE_LEAN, ENGINE_PYSNMP, [ENGINE_LEAN, ENGINE_PYSNMP])


def test_pysnmp_engine_not_built_without_v3_targets(snmpsim: Snmpsim) -> None:
    async def run() -> list[str]:
        async with Poller() as poller:
            await poller.prepare([snmpsim.device("nvr").v2c_target()])
            rep = await poller.poll(snmpsim.device("nvr").v2c_target())
            assert rep.outcome == "ok"
            return sorted(poller._engines)

    assert asyncio.run(run()) == [ENGINE_LEAN]


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine 'fast' is not one of lean, pysnmp"):
        PollerConfig(engine="fast")


# -- a hostile agent ------------------------------------------------------------------------

Answer = Callable[[ber.Message], list[bytes]]


class FakeAgent:
    """A UDP agent on loopback that answers each request with whatever `answer` returns."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.requests += 1
            for out in self.answer(ber.decode_message(data)):
                self.sock.sendto(out, peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def reply(req: ber.Message, **changes: Any) -> bytes:
    fields = {
        "version": req.version,
        "community": req.community,
        "pdu": ber.RESPONSE,
        "request_id": req.request_id,
        "varbinds": [(o + (0,), ber.Value(ber.OCTET_STRING, b"ok")) for o in _names(req)],
        "error_status": 0,
        "error_index": 0,
    }
    fields.update(changes)
    return ber.encode_message(**fields)


def _names(req: ber.Message) -> list[ber.Oid]:
    return [o for o, _ in req.varbinds]


@pytest.fixture
def agent_factory() -> Iterator[Callable[[Answer], FakeAgent]]:
    agents: list[FakeAgent] = []

    def make(answer: Answer) -> FakeAgent:
        agent = FakeAgent(answer)
        agents.append(agent)
        return agent

    yield make
    for a in agents:
        a.stop()


def get(port: int, timeout: float = 0.5, retries: int = 0) -> tuple[Any, dict[str, int]]:
    target = Target(
        host="127.0.0.1",
        port=port,
        version="2c",
        community="public",
        timeout=timeout,
        retries=retries,
        device_id="fake",
    )

    async def run() -> tuple[Any, dict[str, int]]:
        async with Poller() as poller:
            try:
                got: Any = await poller.get(target, ["1.3.6.1.2.1.1.5.0"])
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                got = exc
            return got, poller.dropped

    return asyncio.run(run())


def test_hostile_datagrams_are_dropped_and_counted_then_the_real_answer_wins(
    agent_factory: Callable[[Answer], FakeAgent],
) -> None:
    def answer(req: ber.Message) -> list[bytes]:
        good = reply(req)
        return [
            b"\x30\x03\x02\x01",  # truncated
            b"\x30\x84\x7f\xff\xff\xff" + good[2:],  # huge length
            good[:-3],  # cut short
            reply(req, request_id=req.request_id ^ 0x55),  # someone else's request
            reply(req, community=b"other"),  # wrong community
            reply(req, pdu=ber.GET),  # not a response
            good,
        ]

    agent = agent_factory(answer)
    got, dropped = get(agent.port)
    assert got == {"1.3.6.1.2.1.1.5.0": "ok"}
    assert dropped == {
        "malformed": 3,
        "unknown request-id": 1,
        "wrong version or community": 1,
        "not a response": 1,
    }


def test_only_garbage_is_a_timeout_not_a_crash(
    agent_factory: Callable[[Answer], FakeAgent],
) -> None:
    agent = agent_factory(lambda req: [b"\xff" * 40, reply(req)[:10]])
    got, dropped = get(agent.port, timeout=0.3, retries=1)
    assert isinstance(got, Exception) and "no answer" in str(got) and "after 2 tries" in str(got)
    assert agent.requests == 2  # one retry
    assert dropped == {"malformed": 4}


def test_a_retry_recovers_a_lost_answer(agent_factory: Callable[[Answer], FakeAgent]) -> None:
    seen: list[int] = []

    def answer(req: ber.Message) -> list[bytes]:
        seen.append(req.request_id)
        return [] if len(seen) == 1 else [reply(req)]

    agent = agent_factory(answer)
    got, _ = get(agent.port, timeout=0.3, retries=1)
    assert got == {"1.3.6.1.2.1.1.5.0": "ok"}
    assert len(seen) == 2 and seen[0] == seen[1]  # the same message resent


def test_error_status_is_reported_with_the_failing_oid(
    agent_factory: Callable[[Answer], FakeAgent],
) -> None:
    agent = agent_factory(lambda req: [reply(req, error_status=5, error_index=1)])
    target = Target(
        host="127.0.0.1", port=agent.port, version="2c", community="public", device_id="f"
    )

    async def run() -> Any:
        async with Poller() as poller:
            return await poller.poll(target)

    raw = asyncio.run(run())
    assert raw.outcome == "error"
    assert raw.detail == "agent returned error status genErr at 1.3.6.1.2.1.1.1"


# -- choosing the engine ---------------------------------------------------------------------


def test_poll_once_engine_flag_gives_the_same_report(
    snmpsim: Snmpsim, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.cli import main

    addr = f"127.0.0.1:{snmpsim.port}"
    reports = {}
    for engine in ("lean", "pysnmp"):
        code = main(["snmp", "poll-once", addr, "--community", "nvr", "--json", "--engine", engine])
        out = capsys.readouterr().out
        assert code == 0
        reports[engine] = json.loads(out)
    assert reports["lean"]["identity"] == reports["pysnmp"]["identity"]
    assert reports["lean"]["inventory"] == reports["pysnmp"]["inventory"]
    assert reports["lean"]["requests"] == reports["pysnmp"]["requests"]


def test_source_config_engine_key(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from collector.snmp.interface import SnmpError
    from collector.snmp.source import source_factory

    config = SimpleNamespace(store=SimpleNamespace(path=str(tmp_path / "d.db")))
    src = source_factory({"type": "snmp", "engine": "pysnmp"}, config, None)
    assert src.poller_config.engine == ENGINE_PYSNMP
    assert source_factory({"type": "snmp"}, config, None).poller_config.engine == ENGINE_LEAN
    with pytest.raises(SnmpError, match="engine 'turbo' is not one of lean, pysnmp"):
        source_factory({"type": "snmp", "engine": "turbo"}, config, None)
