"""Run the simulated fleet's agents against a real broker.

Each simulated agent is one MQTT client with its own username and password, last-will, retained
birth and inventory, and periodic health, exactly as the wire contract says (envelopes are built
and validated by `agent.envelope`, the module the real agent ships). Devices chosen to go offline
drop their TCP connection without a DISCONNECT, so the broker publishes their last will, as it
would for a camera whose power was cut.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent import envelope as env
from collector.broker.select import PROTOCOL_V311, Endpoint
from collector.sim.fleet import SimDevice, SimError, health_body

log = logging.getLogger("dunewatch.sim")

Progress = Callable[[str], None]


@dataclass
class _Agent:
    """One simulated agent's connection and sequence state."""

    device: SimDevice
    client: mqtt.Client
    boot: str
    root: str
    seq: int = 0
    connected: threading.Event = field(default_factory=threading.Event)
    failed: str = ""
    gone: bool = False

    def publish(self, kind: str, body: Mapping[str, Any]) -> None:
        self.seq += 1
        e = env.make(self.device.device_id, self.boot, self.seq, kind, body)
        self.client.publish(
            env.topic(self.root, self.device.device_id, kind),
            e.encode(),
            qos=env.QOS[kind],
            retain=env.RETAIN[kind],
        )

    def publish_state(self, online: bool, reason: str) -> None:
        e = env.state(self.device.device_id, self.boot, online, reason, simulated=True)
        self.client.publish(
            env.topic(self.root, self.device.device_id, env.KIND_STATE),
            e.encode(),
            qos=1,
            retain=True,
        )


@dataclass
class RunStats:
    connected: int = 0
    failed: int = 0
    health_sent: int = 0
    went_offline: int = 0
    errors: list[str] = field(default_factory=list)


class FleetRunner:
    """Connects every agent-carrying simulated device and publishes until stopped."""

    def __init__(
        self,
        endpoint: Endpoint,
        devices: Sequence[SimDevice],
        passwords: Mapping[str, str],
        root: str = env.DEFAULT_ROOT,
        interval: float = 5.0,
        progress: Progress | None = None,
    ) -> None:
        if interval <= 0:
            raise SimError(f"simulated report interval must be > 0, got {interval}")
        missing = [d.device_id for d in devices if d.device_id not in passwords]
        if missing:
            raise SimError(f"no MQTT credentials for simulated devices: {', '.join(missing[:5])}")
        self.endpoint = endpoint
        self.devices = tuple(d for d in devices if not d.agentless)
        self.passwords = passwords
        self.root = env.check_root(root)
        self.interval = interval
        self.progress = progress or (lambda msg: None)
        self.stats = RunStats()
        self._agents: list[_Agent] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._duration: float | None = None

    def _client(self, dev: SimDevice, boot: str) -> mqtt.Client:
        proto = (
            MQTTProtocolVersion.MQTTv311
            if self.endpoint.protocol == PROTOCOL_V311
            else MQTTProtocolVersion.MQTTv5
        )
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev.device_id, protocol=proto)
        client.username_pw_set(dev.device_id, self.passwords[dev.device_id])
        if self.endpoint.tls:
            client.tls_set()
        will = env.state(dev.device_id, boot, False, "will", simulated=True)
        client.will_set(
            env.topic(self.root, dev.device_id, env.KIND_STATE), will.encode(), qos=1, retain=True
        )
        return client

    def start(self, duration: float | None = None) -> None:
        """Connect all agents (in the background) and start publishing."""
        self._started = time.monotonic()
        self._duration = duration
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)
        self._thread.start()

    def _connect_all(self) -> None:
        for dev in self.devices:
            if self._stop.is_set():
                return
            boot = env.new_boot_id()
            agent = _Agent(dev, self._client(dev, boot), boot, self.root)

            def on_connect(
                c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any, a: _Agent = agent
            ) -> None:
                if rc.is_failure:
                    a.failed = str(rc)
                else:
                    a.publish_state(True, "birth")
                a.connected.set()

            agent.client.on_connect = on_connect
            try:
                agent.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
            except OSError as exc:
                self.stats.failed += 1
                self.stats.errors.append(f"{dev.device_id}: {exc}")
                continue
            agent.client.loop_start()
            self._agents.append(agent)
        for agent in self._agents:
            agent.connected.wait(10.0)
            if agent.failed or not agent.connected.is_set():
                self.stats.failed += 1
                why = agent.failed or "no CONNACK"
                self.stats.errors.append(f"{agent.device.device_id}: {why}")
            else:
                self.stats.connected += 1
                agent.publish(env.KIND_INVENTORY, agent.device.inventory)
        self.progress(
            f"simulated fleet: {self.stats.connected} agents connected"
            + (f", {self.stats.failed} failed" if self.stats.failed else "")
        )

    def _run(self) -> None:
        try:
            self._connect_all()
        except Exception as exc:  # a daemon: log, count, keep the rest going
            log.exception("simulated fleet failed to start")
            self.stats.errors.append(str(exc))
            return
        tick = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            elapsed = time.monotonic() - self._started
            for agent in self._agents:
                if agent.gone or agent.failed:
                    continue
                off = agent.device.offline_after
                if off is not None and self._duration and elapsed >= off * self._duration:
                    self._drop(agent)
                    continue
                body = health_body(agent.device, tick, self.interval, elapsed + 3600)
                agent.publish(env.KIND_HEALTH, body)
                self.stats.health_sent += 1
            tick += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _drop(self, agent: _Agent) -> None:
        """Vanish without DISCONNECT: the broker publishes the last will."""
        agent.gone = True
        agent.client.loop_stop()
        sock = agent.client.socket()
        if sock is not None:
            sock.close()
        self.stats.went_offline += 1
        self.progress(f"simulated {agent.device.device_id} went offline (power cut)")

    def stop(self) -> None:
        """Clean shutdown of the agents still running: `offline` state, then DISCONNECT."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15.0)
        for agent in self._agents:
            if agent.gone:
                continue
            if agent.connected.is_set() and not agent.failed:
                agent.publish_state(False, "shutdown")
            agent.client.disconnect()
            agent.client.loop_stop()
        self._agents.clear()
