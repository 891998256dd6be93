"""The loop with a fake publisher (our own interface): order, acks, inventory re-send on change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import envelope as wire
from agent.config import AgentConfig, load
from agent.loop import Agent
from agent.publish.interface import PublishError, Result
from tests.support.services import wait_until


@dataclass
class FakePublisher:
    """Accepts everything, acknowledges on the next drain; `online` can be toggled by the test."""

    wake: Callable[[], None]
    online: bool = True
    sent: list[tuple[str, bytes, bool]] = field(default_factory=list)
    _unacked: list[tuple[object, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopped_with: wire.Envelope | None = None

    @property
    def connected(self) -> bool:
        return self.online

    def start(self) -> None:
        pass

    def free_slots(self) -> int:
        return 10

    def send(self, topic: str, payload: bytes, retain: bool = False, token: object = None) -> None:
        if not self.online:
            raise PublishError("offline")
        with self._lock:
            self.sent.append((topic, payload, retain))
            self._unacked.append((token, topic))
        self.wake()

    def publish(self, env: wire.Envelope, token: object = None) -> None:
        self.send(wire.topic("dunewatch", env.device_id, env.kind), env.encode(), token=token)

    def drain(self) -> list[Result]:
        with self._lock:
            out = [Result(t, True, "Success", topic) for t, topic in self._unacked]
            self._unacked.clear()
        return out

    def stats(self) -> dict[str, int]:
        return {"reconnects": 0, "denied": 0}

    def stop(self, offline: wire.Envelope | None = None, timeout: float = 5.0) -> None:
        self.stopped_with = offline

    def envelopes(self) -> list[wire.Envelope]:
        with self._lock:
            return [wire.parse(p, t) for t, p, _ in self.sent]


def config(tmp_path: Path, flags: dict[tuple[str, str], Any] | None = None) -> AgentConfig:
    base = {
        ("agent", "device_id"): "gw-1",
        ("agent", "interval"): 0.2,
        ("agent", "inventory_check"): 1.0,
        ("outbox", "path"): str(tmp_path / "outbox.db"),
        ("device", "vendor"): "Acme",
    }
    base.update(flags or {})
    return load(None, env={}, flags=base)


def run_agent(
    cfg: AgentConfig, inventory: Callable[[AgentConfig], dict[str, Any]]
) -> tuple[Agent, list[FakePublisher], threading.Thread]:
    pubs: list[FakePublisher] = []

    def factory(c: AgentConfig, boot: str, wake: Callable[[], None]) -> FakePublisher:
        pubs.append(FakePublisher(wake))
        return pubs[-1]

    agent = Agent(cfg, publisher_factory=factory, inventory_fn=inventory)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    wait_until(lambda: pubs, 10, "publisher")
    return agent, pubs, thread


def test_inventory_is_resent_only_when_its_hash_changes(tmp_path: Path) -> None:
    calls: list[int] = []

    def inventory(cfg: AgentConfig) -> dict[str, Any]:
        calls.append(1)
        version = "1" if len(calls) < 3 else "2"  # changes on the third check
        return {
            "hash": f"h{version}",
            "source": "agent",
            "packages": [{"name": "busybox", "version": version, "manager": "opkg"}],
        }

    agent, pubs, thread = run_agent(config(tmp_path), inventory)
    pub = pubs[0]
    wait_until(lambda: len(calls) >= 4, 15, "four inventory checks")
    agent.stop()
    thread.join(10)
    invs = [e for e in pub.envelopes() if e.kind == "inventory"]
    assert [e.body["hash"] for e in invs] == ["h1", "h2"]
    seqs = [e.seq for e in pub.envelopes()]
    assert seqs == list(range(1, len(seqs) + 1))  # FIFO, one sequence over all kinds
    assert pub.stopped_with is not None and pub.stopped_with.body["reason"] == "shutdown"
    assert agent.outbox is not None and agent.outbox.depth == 0


def test_health_waits_in_the_outbox_while_offline_and_replays_in_order(tmp_path: Path) -> None:
    agent, pubs, thread = run_agent(config(tmp_path), lambda c: {"hash": "h", "packages": []})
    pub = pubs[0]
    wait_until(lambda: len(pub.sent) >= 2, 10, "first reports")
    pub.online = False
    wait_until(lambda: agent.outbox is not None and agent.outbox.depth >= 5, 10, "queued reports")
    before = len(pub.sent)
    pub.online = True
    pub.wake()
    wait_until(lambda: len(pub.sent) >= before + 5, 10, "replay")
    agent.stop()
    thread.join(10)
    health = [e for e in pub.envelopes() if e.kind == "health"]
    assert [e.seq for e in health] == sorted(e.seq for e in health)
    assert all(e.body["agent"]["drops"] == 0 for e in health)
    assert any(e.body["agent"]["outbox"] >= 4 for e in health)  # the self probe saw the backlog


ROOTS = Path(__file__).resolve().parents[1] / "data" / "rootfs"


def test_encoded_inventory_from_the_child_is_the_envelope_the_agent_would_build() -> None:
    from agent.inventory_job import build_inventory, encode_in_child

    cfg = load(None, env={}, flags={("agent", "device_id"): "gw-1", ("device", "model"): "GW"})
    inv = encode_in_child(ROOTS / "openwrt", cfg.device, "gw-1", "b" * 32, 7)
    env = wire.parse(inv.payload, wire.topic(cfg.agent.root, "gw-1", wire.KIND_INVENTORY))
    expected = build_inventory(ROOTS / "openwrt", cfg.device)
    assert (env.device_id, env.boot_id, env.seq, env.kind) == ("gw-1", "b" * 32, 7, "inventory")
    assert env.ts == inv.ts and inv.seq == 7
    assert dict(env.body) == expected and inv.hash == expected["hash"]
    assert inv.packages == len(expected["packages"]) > 0
    assert env.body["hardware"]["model"] == "GW"


def test_default_inventory_is_stored_encoded_in_sequence_and_once_per_hash(tmp_path: Path) -> None:
    pubs: list[FakePublisher] = []

    def factory(c: AgentConfig, boot: str, wake: Callable[[], None]) -> FakePublisher:
        pubs.append(FakePublisher(wake))
        return pubs[-1]

    cfg = config(tmp_path, {("agent", "host_root"): str(ROOTS / "alpine")})
    agent = Agent(cfg, publisher_factory=factory)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    wait_until(lambda: pubs, 10, "publisher")
    pub = pubs[0]
    wait_until(lambda: len(pub.sent) >= 12, 30, "health reports over several inventory checks")
    agent.stop()
    thread.join(10)
    envs = pub.envelopes()
    invs = [e for e in envs if e.kind == "inventory"]
    assert len(invs) == 1 and invs[0].boot_id == agent.boot_id  # unchanged root: sent once
    assert invs[0].body["os"]["id"] == "alpine" and len(invs[0].body["hash"]) == 64
    assert [t for t, _, r in pub.sent if r] == [wire.topic(cfg.agent.root, "gw-1", "inventory")]
    seqs = [e.seq for e in envs]
    assert seqs == list(range(1, len(seqs) + 1))  # the child's seq fits the one sequence
