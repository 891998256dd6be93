"""MQTT publisher (paho-mqtt 2.x): QoS 1, bounded in-flight window, birth/last-will, backoff.

Reusable beyond the agent: a simulated fleet runs one `MqttPublisher` per device in one process,
and the collector can publish alerts through it (`state_messages=False`).

Delivery is only "done" on PUBACK. Results are queued by paho's network thread and handed to the
owner through `drain()`, so the owner (the agent loop) touches its outbox from one thread only.
With MQTT 5 a PUBACK reason code >= 0x80 (e.g. 0x87 "Not authorized") is the only sign that the
broker's ACL refused a message: it comes back as a failed `Result` and is counted, never retried.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent import envelope as wire
from agent.errors import ConfigError
from agent.publish.interface import PublishError, Result

log = logging.getLogger("dunewatch.agent.mqtt")

_URL_RE = re.compile(r"^(mqtts?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?/?$")
PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}
# Unmatched PUBACKs (a result seen before its send() recorded the id) are kept this long.
_EARLY_TTL = 60.0


@dataclass(frozen=True)
class MqttSettings:
    """Everything needed to connect one device; validated here, no I/O until start()."""

    host: str
    port: int
    device_id: str
    boot_id: str = field(default_factory=wire.new_boot_id)
    root: str = wire.DEFAULT_ROOT
    username: str = ""  # default: device_id (the broker ACL pattern keys on the username)
    password: str | None = None
    client_id: str = ""  # default: dunewatch-agent-<device_id>
    protocol: str = "5"
    tls: bool = False
    ca_file: str = ""  # empty: the system trust store
    cert_file: str = ""
    key_file: str = ""
    keepalive: int = 30
    window: int = 100
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    state_messages: bool = True  # last-will `offline` + retained birth `online`
    birth_extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        try:
            wire.check_device_id(self.device_id)
            wire.check_root(self.root)
        except wire.EnvelopeError as exc:
            problems.append(exc.detail)
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} out of range")
        if self.protocol not in PROTOCOLS:
            problems.append(
                f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
        if not 1 <= self.window <= 60000:
            # message ids are 16-bit: more than 65,535 unacknowledged QoS 1 messages collide
            problems.append(f"window must be between 1 and 60000, got {self.window}")
        if not 0 < self.backoff_min <= self.backoff_max:
            problems.append("need 0 < backoff_min <= backoff_max")
        if bool(self.cert_file) != bool(self.key_file):
            problems.append("cert_file and key_file must be given together")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_url(cls, url: str, device_id: str, **kwargs: Any) -> MqttSettings:
        """mqtt://HOST:PORT or mqtts://HOST:PORT (TLS)."""
        m = _URL_RE.match(url)
        if m is None:
            raise ConfigError(
                f"broker url {url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT"
            )
        tls = m.group(1) == "mqtts"
        port = int(m.group(3)) if m.group(3) else (8883 if tls else 1883)
        return cls(host=m.group(2).strip("[]"), port=port, device_id=device_id, tls=tls, **kwargs)

    def topic(self, kind: str) -> str:
        return wire.topic(self.root, self.device_id, kind)


class MqttPublisher:
    """One MQTT client for one device identity. Thread-safe send(); drain() on the owner thread."""

    def __init__(self, settings: MqttSettings, on_event: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._on_event = on_event
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[object, str]] = {}
        self._early: dict[int, tuple[ReasonCode, float]] = {}
        self._untracked: set[int] = set()
        self._denied_topics: dict[str, int] = {}
        # deque append/popleft are thread-safe; the `queue` module would cost ~100 KB RSS more
        self._results: deque[tuple[int, ReasonCode]] = deque()
        self._connected = threading.Event()
        self._attempt = 0
        self._ever_connected = False
        self._stopping = False
        self.reconnects = 0
        self.connect_failures = 0
        self.denied = 0
        self.last_error = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Configure the client and connect in the background (retrying with backoff)."""
        s = self.settings
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id or f"dunewatch-agent-{s.device_id}",
            protocol=PROTOCOLS[s.protocol],
        )
        client.username_pw_set(s.username or s.device_id, s.password)
        if s.tls:
            import ssl

            from agent import deferred

            deferred.load("ssl")  # a plain start left paho a stand-in (agent/deferred.py)
            try:
                client.tls_set(
                    ca_certs=s.ca_file or None,
                    certfile=s.cert_file or None,
                    keyfile=s.key_file or None,
                    cert_reqs=ssl.CERT_REQUIRED,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"TLS setup failed ({exc}); check ca_file, cert_file and key_file"
                ) from None
        # paho's own queue only ever holds our window (+ birth/offline); never let it grow beyond
        client.max_inflight_messages_set(s.window + 2)
        if s.state_messages:
            will = wire.state(s.device_id, s.boot_id, False, "will")
            client.will_set(s.topic(wire.KIND_STATE), will.encode(), qos=1, retain=True)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        self._client = client
        self._set_next_delay()
        client.connect_async(s.host, s.port, keepalive=s.keepalive)
        client.loop_start()

    def stop(self, offline: wire.Envelope | None = None, timeout: float = 5.0) -> None:
        """Publish `offline` (retained) if connected, wait for its PUBACK, then disconnect."""
        client, self._client = self._client, None
        if client is None:
            return
        if offline is not None and self._connected.is_set():
            info = client.publish(
                self.settings.topic(wire.KIND_STATE), offline.encode(), qos=1, retain=True
            )
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("offline state not acknowledged: %s", exc)
        self._stopping = True
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def free_slots(self) -> int:
        with self._lock:
            return self.settings.window - len(self._pending)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def stats(self) -> dict[str, int]:
        return {"reconnects": self.reconnects, "denied": self.denied}

    # -- sending ---------------------------------------------------------------------------

    def publish(self, env: wire.Envelope, token: object = None) -> None:
        """Send an envelope on its contract topic with the contract's retain flag."""
        topic = wire.topic(self.settings.root, env.device_id, env.kind)
        self.send(topic, env.encode(), retain=wire.RETAIN[env.kind], token=token)

    def send(self, topic: str, payload: bytes, retain: bool = False, token: object = None) -> None:
        """Queue one QoS 1 message; its Result comes back from drain() once the broker answers.

        Raises PublishError when not connected or the in-flight window is full, so the caller
        keeps the message (in its outbox) and tries again later.
        """
        client = self._client
        if client is None or not self._connected.is_set():
            raise PublishError("not connected to the broker")
        with self._lock:
            if len(self._pending) >= self.settings.window:
                raise PublishError(f"in-flight window of {self.settings.window} messages is full")
            info = client.publish(topic, payload, qos=1, retain=retain)
            # NO_CONN: paho keeps the message and sends it after the reconnect; still pending
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                raise PublishError(
                    f"publish on {topic} rejected by the client: {mqtt.error_string(info.rc)}"
                )
            self._pending[info.mid] = (token, topic)

    def drain(self) -> list[Result]:
        """Broker answers since the last call (call from the thread that owns the tokens)."""
        out: list[Result] = []
        now = time.monotonic()
        with self._lock:
            for mid, (rc, seen) in list(self._early.items()):
                if mid in self._pending:
                    del self._early[mid]
                    out.append(self._result(mid, rc))
                elif now - seen > _EARLY_TTL:
                    del self._early[mid]
            while True:
                try:
                    mid, rc = self._results.popleft()
                except IndexError:
                    break
                if mid in self._pending:
                    out.append(self._result(mid, rc))
                elif mid in self._untracked:
                    self._untracked.discard(mid)
                    if rc.is_failure:
                        log.error("broker refused our state message: %s", rc)
                else:
                    self._early[mid] = (rc, now)
        return out

    def _result(self, mid: int, rc: ReasonCode) -> Result:
        token, topic = self._pending.pop(mid)
        if rc.is_failure:
            self.denied += 1
            n = self._denied_topics[topic] = self._denied_topics.get(topic, 0) + 1
            if n == 1 or n % 100 == 0:  # log the first and then every 100th, not every report
                log.error(
                    "broker refused message on %s: %s (code 0x%02x, %d so far on that topic)",
                    topic,
                    rc,
                    rc.value,
                    n,
                )
            return Result(token, False, str(rc), topic)
        return Result(token, True, str(rc), topic)

    # -- paho callbacks (network thread: record and wake, never raise) ----------------------

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        s = self.settings
        if rc.is_failure:
            self.connect_failures += 1
            user = s.username or s.device_id
            self.last_error = f"broker {s.host}:{s.port} refused connection for user {user!r}: {rc}"
            tip = " (check username and password file)" if rc.value in (134, 135, 4, 5) else ""
            log.error("%s%s; retrying with backoff", self.last_error, tip)
            self._set_next_delay()
            return
        self._attempt = 0
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self.last_error = ""
        log.info("connected to %s:%s as %s", s.host, s.port, s.username or s.device_id)
        if s.state_messages:
            birth = wire.state(s.device_id, s.boot_id, True, "birth", **dict(s.birth_extra))
            info = client.publish(s.topic(wire.KIND_STATE), birth.encode(), qos=1, retain=True)
            with self._lock:
                self._untracked.add(info.mid)
        client.reconnect_delay_set(*self._delay_pair(0))
        self._connected.set()
        self._wake()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.connect_failures += 1
        s = self.settings
        self.last_error = f"cannot reach broker {s.host}:{s.port}"
        delay = self._set_next_delay()
        log.warning("%s; retrying in %.0f s", self.last_error, delay)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping:
            log.warning("disconnected from broker: %s", rc)
            self._set_next_delay()
        self._wake()

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Properties | None
    ) -> None:
        self._results.append((mid, rc))
        self._wake()

    # -- helpers ---------------------------------------------------------------------------

    def _delay_pair(self, attempt: int) -> tuple[int, int]:
        """Exponential backoff with jitter (a fleet coming back after an outage spreads out).

        paho takes whole seconds; min == max pins paho's next wait to our jittered value.
        """
        s = self.settings
        base = min(s.backoff_max, s.backoff_min * (2**attempt))
        delay = max(1, round(random.uniform(base / 2, base)))
        return delay, delay

    def _set_next_delay(self) -> float:
        pair = self._delay_pair(self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        if self._client is not None:
            self._client.reconnect_delay_set(*pair)
        return float(pair[0])

    def _wake(self) -> None:
        if self._on_event is not None:
            try:
                self._on_event()
            except Exception as exc:  # a waker must never break paho's network thread
                log.debug("wake callback failed: %s", exc)
