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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent import envelope as env
from agent.errors import AgentError
from agent.publish.interface import PublishError
from agent.publish.mqtt import MqttPublisher, MqttSettings
from collector.broker.select import Endpoint
from collector.sim.fleet import SimDevice, SimError, health_body

log = logging.getLogger("dunewatch.sim")

Progress = Callable[[str], None]


@dataclass
class _Agent:
    """One simulated agent: the agent's own MQTT publisher plus its sequence counter."""

    device: SimDevice
    pub: MqttPublisher
    seq: int = 0
    gone: bool = False

    @property
    def boot(self) -> str:
        return self.pub.settings.boot_id

    def publish(self, kind: str, body: Mapping[str, Any]) -> bool:
        self.seq += 1
        e = env.make(self.device.device_id, self.boot, self.seq, kind, body)
        try:
            self.pub.publish(e)
        except PublishError:
            return False
        self.pub.drain()  # results only free the in-flight window here; nothing to keep
        return True


class _QuietSimClients(logging.Filter):
    """Hundreds of simulated clients connecting and leaving would drown the log: keep errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "-sim-" not in (record.threadName or "")


_QUIET = _QuietSimClients()
_PUB_LOG = logging.getLogger("dunewatch.agent.mqtt")


@dataclass
class RunStats:
    connected: int = 0
    failed: int = 0
    health_sent: int = 0
    not_sent: int = 0  # window full or disconnected at that moment
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

    def _settings(self, dev: SimDevice) -> MqttSettings:
        return MqttSettings(
            host=self.endpoint.host,
            port=self.endpoint.port,
            device_id=dev.device_id,
            root=self.root,
            username=dev.device_id,
            password=self.passwords[dev.device_id],
            client_id=dev.device_id,
            protocol=self.endpoint.protocol,
            tls=self.endpoint.tls,
            window=20,
            birth_extra={"simulated": True},
        )

    def start(self, duration: float | None = None) -> None:
        """Connect all agents (in the background) and start publishing."""
        self._started = time.monotonic()
        self._duration = duration
        _PUB_LOG.addFilter(_QUIET)
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)
        self._thread.start()

    def _connect_all(self) -> None:
        for dev in self.devices:
            if self._stop.is_set():
                return
            agent = _Agent(dev, MqttPublisher(self._settings(dev)))
            try:
                agent.pub.start()
            except AgentError as exc:
                self.stats.failed += 1
                self.stats.errors.append(f"{dev.device_id}: {exc}")
                continue
            self._agents.append(agent)
        deadline = time.monotonic() + 20.0
        for agent in self._agents:
            if self._stop.is_set():
                return
            if agent.pub.wait_connected(max(0.0, deadline - time.monotonic())):
                self.stats.connected += 1
                agent.publish(env.KIND_INVENTORY, agent.device.inventory)
            else:
                self.stats.failed += 1
                why = agent.pub.last_error or "no CONNACK"
                self.stats.errors.append(f"{agent.device.device_id}: {why}")
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
                if agent.gone or not agent.pub.connected:
                    continue
                off = agent.device.offline_after
                if off is not None and self._duration and elapsed >= off * self._duration:
                    self._drop(agent)
                    continue
                body = health_body(agent.device, tick, self.interval, elapsed + 3600)
                if agent.publish(env.KIND_HEALTH, body):
                    self.stats.health_sent += 1
                else:
                    self.stats.not_sent += 1
            tick += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _drop(self, agent: _Agent) -> None:
        """Vanish without DISCONNECT, as a camera whose power is cut: the broker sends the will."""
        agent.gone = True
        client = agent.pub._client  # the simulation needs the raw socket; agents never do this
        agent.pub._client = None
        if client is not None:
            client.loop_stop()
            sock = client.socket()
            if sock is not None:
                sock.close()
        self.stats.went_offline += 1
        self.progress(f"simulated {agent.device.device_id} went offline (power cut)")

    def stop(self) -> None:
        """Clean shutdown of the agents still running: retained `offline`, then DISCONNECT."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)

        def goodbye(agent: _Agent) -> None:
            bye = env.state(agent.device.device_id, agent.boot, False, "shutdown", simulated=True)
            agent.pub.stop(offline=bye, timeout=2.0)

        # each stop waits for its PUBACK: in parallel, or a slow broker makes this minutes long
        live = [a for a in self._agents if not a.gone]
        with ThreadPoolExecutor(max_workers=32, thread_name_prefix="sim-stop") as pool:
            list(pool.map(goodbye, live))
        self._agents.clear()
        _PUB_LOG.removeFilter(_QUIET)
