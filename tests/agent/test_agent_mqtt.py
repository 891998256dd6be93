"""The agent against a real mosquitto on loopback: delivery, state, credentials, ACL, outages."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as wire
from agent.publish.mqtt import MqttPublisher, MqttSettings
from tests.agent.mqtt_support import (
    AgentProc,
    Recorder,
    missing_seqs,
    retained_state,
    start_agent,
    write_config,
)
from tests.support.services import wait_until

pytestmark = pytest.mark.integration

USERS = {"dev-1": "dev-1-pw", "dev-2": "dev-2-pw"}


@pytest.fixture
def broker(mosquitto_factory: Callable[..., Any]) -> Any:
    return mosquitto_factory(USERS)


@pytest.fixture
def procs() -> Iterator[list[AgentProc]]:
    started: list[AgentProc] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.kill()


@pytest.fixture
def recorder(broker: Any) -> Iterator[Recorder]:
    rec = Recorder(broker.port).start()
    yield rec
    rec.stop()


def outbox_depth(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:  # the agent has created the file but not yet the table
        return 0
    finally:
        con.close()


def test_reports_arrive_with_valid_envelopes_and_clean_stop_says_offline(
    broker: Any, recorder: Recorder, procs: list[AgentProc], tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path, broker.port, "dev-1", "dev-1-pw", device={"vendor": "Acme", "model": "GW-1"}
    )
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    wait_until(lambda: len(recorder.of("dev-1", "health")) >= 3, 30, "three health reports")
    wait_until(lambda: recorder.of("dev-1", "inventory"), 30, "the inventory")
    assert recorder.rejects == []
    health = recorder.of("dev-1", "health")
    boot = health[0].boot_id
    assert {e.boot_id for e in health} == {boot}
    assert all(len(e.encode()) <= 1024 for e in health)
    assert (
        health[0].body["interval"] == 0.5 and "cpu" in health[0].body and "agent" in health[0].body
    )
    inv = recorder.of("dev-1", "inventory")[0].body
    assert inv["hardware"]["vendor"] == "Acme" and inv["hardware"]["model"] == "GW-1"
    assert len(inv["hash"]) == 64
    assert recorder.states("dev-1")[0] == "online/birth"
    # seqs of one boot are 1, 2, 3, ... across health and inventory
    seqs = sorted(s.env.seq for s in recorder.snapshot() if s.env.seq)
    assert seqs == list(range(1, len(seqs) + 1))

    assert agent.terminate() == 0
    wait_until(lambda: "offline/shutdown" in recorder.states("dev-1"), 15, "offline on SIGTERM")
    retained = retained_state(broker.port, "dev-1")
    assert retained is not None and retained.body["reason"] == "shutdown"
    assert outbox_depth(tmp_path / "dev-1-outbox.db") == 0


def test_broker_down_at_start_buffers_then_delivers(
    broker: Any, procs: list[AgentProc], tmp_path: Path
) -> None:
    broker.stop()
    cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw", agent={"interval": 0.2})
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    outbox = tmp_path / "dev-1-outbox.db"
    wait_until(lambda: outbox.exists() and outbox_depth(outbox) >= 5, 30, "buffered reports")
    assert "cannot reach broker" in agent.text()
    broker.start()
    rec = Recorder(broker.port).start()
    try:
        wait_until(lambda: outbox_depth(outbox) <= 2, 30, "the backlog to drain")
        assert agent.terminate() == 0
        wait_until(lambda: "offline/shutdown" in rec.states("dev-1"), 15, "retained offline")
    finally:
        rec.stop()


def test_sigkill_leaves_the_retained_last_will(
    broker: Any, recorder: Recorder, procs: list[AgentProc], tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw")
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    wait_until(lambda: "online/birth" in recorder.states("dev-1"), 30, "birth")
    agent.kill()
    wait_until(lambda: "offline/will" in recorder.states("dev-1"), 15, "last will")
    retained = retained_state(broker.port, "dev-1")
    assert retained is not None
    assert retained.body == {"state": "offline", "reason": "will"}


def test_wrong_password_gives_a_clear_error_and_backs_off(
    broker: Any, procs: list[AgentProc], tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path,
        broker.port,
        "dev-1",
        "not-the-password",
        broker={"backoff_min": 1.0, "backoff_max": 4.0},
    )
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    wait_until(lambda: "refused connection" in agent.text(), 30, "the refusal in the log")
    t0 = time.monotonic()
    # keeps trying (no exit) but slowly: attempts are 1, 1-2, 2-4, 2-4 s apart
    wait_until(lambda: time.monotonic() - t0 > 8, 20, "8 s of retries")
    assert agent.proc.poll() is None
    text = agent.text()
    assert (
        "refused connection for user 'dev-1': Not authorized (check username and password file)"
        in text
    )
    attempts = text.count("refused connection")
    assert 2 <= attempts <= 7, text


def test_acl_denial_is_detected_by_reason_code(
    broker: Any, recorder: Recorder, procs: list[AgentProc], tmp_path: Path
) -> None:
    # library level: dev-1's credentials, a message under dev-2's topic
    settings = MqttSettings(
        host="127.0.0.1", port=broker.port, device_id="dev-1", password="dev-1-pw"
    )
    pub = MqttPublisher(settings)
    pub.start()
    try:
        assert pub.wait_connected(15)
        own = wire.make("dev-1", settings.boot_id, 1, "health", {"interval": 10})
        other = wire.make("dev-2", settings.boot_id, 2, "health", {"interval": 10})
        pub.publish(own, token="own")
        pub.publish(other, token="other")
        results: dict[object, Any] = {}

        def collect() -> bool:
            results.update({r.token: r for r in pub.drain()})
            return len(results) == 2

        wait_until(collect, 15, "both PUBACKs")
        assert results["own"].ok
        assert not results["other"].ok and "Not authorized" in results["other"].reason
        assert pub.stats()["denied"] == 1
    finally:
        pub.stop()
    # agent level: an agent logged in as dev-1 but claiming to be dev-2 gets nothing through
    cfg = write_config(tmp_path, broker.port, "dev-2", "dev-1-pw", broker={"username": "dev-1"})
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    wait_until(
        lambda: "refused message on dunewatch/v1/dev-2/health" in agent.text(), 30, "denial log"
    )
    wait_until(lambda: recorder.of("dev-1", "health"), 10, "dev-1's own report")
    assert agent.terminate() == 0
    assert recorder.of("dev-2", "health") == [] and recorder.of("dev-2", "event") == []
    assert (
        outbox_depth(tmp_path / "dev-2-outbox.db") == 0
    )  # refused messages are not retried forever


def test_corrupt_outbox_is_replaced_and_reported(
    broker: Any, recorder: Recorder, procs: list[AgentProc], tmp_path: Path
) -> None:
    (tmp_path / "dev-1-outbox.db").write_bytes(b"\x00garbage" * 512)
    cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw")
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)

    def reset_events() -> list[wire.Envelope]:
        return [
            e for e in recorder.of("dev-1", "event") if e.body["type"] == wire.EVENT_OUTBOX_RESET
        ]

    wait_until(reset_events, 30, "outbox_reset event")
    assert "corrupt" in reset_events()[0].body["detail"]
    assert list(tmp_path.glob("dev-1-outbox.db.corrupt-*"))
    wait_until(lambda: recorder.of("dev-1", "health"), 30, "health after the reset")


def test_sighup_reloads_the_configuration(
    broker: Any, recorder: Recorder, procs: list[AgentProc], tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw")
    agent = start_agent(cfg, tmp_path / "agent.log")
    procs.append(agent)
    wait_until(lambda: recorder.of("dev-1", "health"), 30, "first report")
    cfg.write_text(cfg.read_text().replace("interval = 0.5", "interval = 0.25"))
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: any(e.body["interval"] == 0.25 for e in recorder.of("dev-1", "health")),
        30,
        "new interval",
    )
    assert "configuration reloaded" in agent.text()
    # a broken file on reload is refused and the agent keeps going
    cfg.write_text(cfg.read_text() + "bogus = 1\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload rejected" in agent.text(), 30, "rejected reload")
    n = len(recorder.of("dev-1", "health"))
    wait_until(
        lambda: len(recorder.of("dev-1", "health")) > n + 2, 30, "reports after a bad reload"
    )
    assert agent.terminate() == 0


def test_small_outbox_drops_oldest_health_and_says_so(
    broker: Any, procs: list[AgentProc], tmp_path: Path
) -> None:
    # a persistent session: what the agent sends before this subscriber is back gets queued
    recorder = Recorder(broker.port, client_id="drop-collector", persistent=True).start()
    try:
        cfg = write_config(
            tmp_path,
            broker.port,
            "dev-1",
            "dev-1-pw",
            agent={"interval": 0.1},
            outbox={"max_bytes": 16384},
        )
        agent = start_agent(cfg, tmp_path / "agent.log")
        procs.append(agent)
        wait_until(
            lambda: len(recorder.of("dev-1", "health")) >= 3, 30, "reports before the outage"
        )
        boot = recorder.of("dev-1", "health")[0].boot_id
        broker.stop()
        wait_until(lambda: "dropped" in agent.text(), 60, "drops while the broker is down")
        broker.start()

        def drops() -> list[wire.Envelope]:
            return [e for e in recorder.of("dev-1", "event") if e.body["type"] == wire.EVENT_DROP]

        wait_until(drops, 60, "an outbox_drop event")
        assert agent.terminate() == 0
        envs = [s.env for s in recorder.snapshot() if s.env.device_id == "dev-1"]
        last = max(e.seq for e in envs if e.boot_id == boot)
        wait_until(
            lambda: not missing_seqs([s.env for s in recorder.snapshot()], boot, last),
            30,
            "all seqs",
        )
        d = drops()[0].body
        assert d["count"] > 0 and d["first_seq"] <= d["last_seq"] and d["first_ts"] <= d["last_ts"]
        assert d["boot"] == boot and "over 16384 bytes" in d["reason"]
    finally:
        recorder.stop()


@pytest.mark.slow
def test_sixty_second_outage_with_agent_restart_loses_nothing(
    mosquitto_factory: Callable[..., Any], procs: list[AgentProc], tmp_path: Path
) -> None:
    broker = mosquitto_factory(USERS)
    rec = Recorder(broker.port, client_id="outage-collector", persistent=True).start()
    try:
        cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw", agent={"interval": 1.0})
        outbox = tmp_path / "dev-1-outbox.db"
        first = start_agent(cfg, tmp_path / "agent-1.log")
        procs.append(first)
        wait_until(lambda: len(rec.of("dev-1", "health")) >= 3, 30, "reports before the outage")
        boot1 = rec.of("dev-1", "health")[0].boot_id
        broker.stop()
        down_at = time.monotonic()
        # restart the agent half way through the outage: its outbox must survive
        wait_until(lambda: time.monotonic() - down_at > 25, 40, "25 s of outage")
        assert first.terminate() == 0
        kept = outbox_depth(outbox)
        assert kept >= 20, first.text()
        second = start_agent(cfg, tmp_path / "agent-2.log")
        procs.append(second)
        wait_until(lambda: time.monotonic() - down_at > 60, 60, "60 s of outage")
        broker.start()
        wait_until(
            lambda: len({e.boot_id for e in rec.of("dev-1", "health")}) == 2, 60, "second boot"
        )
        boot2 = next(e.boot_id for e in rec.of("dev-1", "health") if e.boot_id != boot1)
        wait_until(lambda: outbox_depth(outbox) <= 2, 60, "the outbox to drain")
        assert second.terminate() == 0
        envs = [s.env for s in rec.snapshot()]
        for boot in (boot1, boot2):
            last = max(e.seq for e in envs if e.boot_id == boot)

            def complete(b: str = boot, n: int = last) -> bool:
                return not missing_seqs([s.env for s in rec.snapshot()], b, n)

            wait_until(
                complete,
                30,
                "seqs",
            )
        last1 = max(e.seq for e in envs if e.boot_id == boot1)
        assert last1 >= 25  # the first agent's outage reports (about one a second) all arrived
        assert rec.rejects == []
    finally:
        rec.stop()
