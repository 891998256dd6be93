"""Helpers for agent tests against a real mosquitto: a recording collector and agent processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent import envelope as wire


@dataclass
class Seen:
    topic: str
    retain: bool
    env: wire.Envelope


@dataclass
class Recorder:
    """A collector-side subscriber that parses every message with the contract's own parser."""

    port: int
    client_id: str = "test-collector"
    persistent: bool = False
    messages: list[Seen] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: mqtt.Client | None = None

    def start(self) -> Recorder:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=not self.persistent,
        )
        client.username_pw_set("collector", "collector-pw")
        client.reconnect_delay_set(1, 1)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("dunewatch/v1/#", qos=1)
        client.on_message = self._on_message
        client.connect("127.0.0.1", self.port, keepalive=10)
        client.loop_start()
        self._client = client
        return self

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            env = wire.parse(bytes(msg.payload), msg.topic)
        except wire.EnvelopeError as exc:
            with self._lock:
                self.rejects.append(f"{msg.topic}: {exc}")
            return
        with self._lock:
            self.messages.append(Seen(msg.topic, bool(msg.retain), env))

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.messages)

    def of(self, device: str, kind: str) -> list[wire.Envelope]:
        return [s.env for s in self.snapshot() if s.env.device_id == device and s.env.kind == kind]

    def states(self, device: str) -> list[str]:
        return [
            str(e.body.get("state")) + "/" + str(e.body.get("reason"))
            for e in self.of(device, "state")
        ]


def retained_state(port: int, device: str, timeout: float = 10.0) -> wire.Envelope | None:
    """What a collector connecting now gets as the device's retained state."""
    got: list[wire.Envelope] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{os.getpid()}")
    client.username_pw_set("collector", "collector-pw")

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(wire.parse(bytes(msg.payload), msg.topic))
            done.set()

    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"dunewatch/v1/{device}/state", qos=1)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return got[-1] if got else None


def write_config(
    tmp_path: Path, port: int, dev: str, password: str, **extra: dict[str, Any]
) -> Path:
    """A TOML file the way an operator writes one."""
    pw = tmp_path / f"{dev}.password"
    pw.write_text(password + "\n")
    sections: dict[str, dict[str, Any]] = {
        "agent": {"device_id": dev, "interval": 0.5, "inventory_check": 3600},
        "broker": {
            "url": f"mqtt://127.0.0.1:{port}",
            "password_file": str(pw),
            "backoff_min": 0.5,
            "backoff_max": 2.0,
        },
        "outbox": {"path": str(tmp_path / f"{dev}-outbox.db")},
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for key, val in values.items():
            lines.append(f"{key} = {_toml(val)}")
    path = tmp_path / f"{dev}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(val: Any) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, (int, float)):
        return repr(val)
    if isinstance(val, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in val) + "]"
    return '"' + str(val).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class AgentProc:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def start_agent(config: Path, log: Path, *args: str) -> AgentProc:
    cmd = [sys.executable, "-m", "agent", "run", "--config", str(config), *args]
    fh = log.open("ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    fh.close()
    return AgentProc(proc, log)


def missing_seqs(envs: list[wire.Envelope], boot: str, last: int) -> set[int]:
    """Seqs 1..last of one boot neither received nor covered by an outbox_drop event."""
    have = {e.seq for e in envs if e.boot_id == boot}
    for e in envs:
        is_drop = e.kind == "event" and e.body.get("type") == wire.EVENT_DROP
        if is_drop and e.body.get("boot", e.boot_id) == boot:
            have.update(range(int(e.body["first_seq"]), int(e.body["last_seq"]) + 1))
    return set(range(1, last + 1)) - have
