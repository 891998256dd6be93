"""Helpers for collector tests: publish contract messages as a device, run ingest in-process."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent import envelope as E
from collector.config import BrokerSettings, IngestSettings
from collector.ingest.mqtt import Consumer, make_consumer
from collector.metrics import Counters
from collector.store.sqlite import SqliteStore
from tests.support.services import require_tool, wait_until


def health(
    device: str, boot: str, seq: int, ts: float, cpu: float = 1.0, interval: float = 10.0
) -> E.Envelope:
    return E.make(device, boot, seq, "health", {"interval": interval, "cpu": {"pct": cpu}}, ts=ts)


class Publisher:
    """A device's own MQTT connection (paho), QoS 1 with every PUBACK awaited."""

    def __init__(
        self,
        port: int,
        user: str,
        password: str,
        will: bytes | None = None,
        root: str = "dunewatch",
        keepalive: int = 30,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{user}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, password)
        if will is not None:
            self.client.will_set(f"{root}/v1/{user}/state", will, qos=1, retain=True)
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.connect("127.0.0.1", port, keepalive=keepalive)
        self.client.loop_start()
        assert self._connected.wait(15), "publisher did not connect"

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == 0
        info.wait_for_publish(15)

    def send_env(self, env: E.Envelope, root: str = "dunewatch") -> None:
        self.send(E.topic(root, env.device_id, env.kind), env.encode(), retain=E.RETAIN[env.kind])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def kill(self) -> None:
        """Drop the socket without DISCONNECT so the broker publishes the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def mosquitto_pub(port: int, user: str, password: str, topic: str, payload: bytes) -> None:
    """Publish with the mosquitto client tools: an independent MQTT implementation."""
    exe = require_tool("mosquitto_pub", "mosquitto-clients")
    subprocess.run(
        [
            exe,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-u",
            user,
            "-P",
            password,
            "-q",
            "1",
            "-t",
            topic,
            "-s",
        ],
        input=payload,
        check=True,
        timeout=30,
    )


def broker_settings(port: int, **kw: Any) -> BrokerSettings:
    base: dict[str, Any] = {
        "url": f"mqtt://127.0.0.1:{port}",
        "username": "collector",
        "password": "collector-pw",
        "client_id": "test-collector",
    }
    base.update(kw)
    return BrokerSettings(**base)


@contextmanager
def running_consumer(
    port: int,
    db: Path,
    ingest: IngestSettings | None = None,
    busy_timeout: float = 10.0,
    reader: str = "paho",
    **broker_kw: Any,
) -> Iterator[tuple[Consumer, SqliteStore]]:
    """An in-process consumer with the given reader (the lean one speaks MQTT 3.1.1)."""
    store = SqliteStore(db, busy_timeout=busy_timeout)
    counters = Counters(1)
    settings = replace(ingest or IngestSettings(batch_ms=50), reader=reader)
    if reader == "lean":
        broker_kw["protocol"] = "3.1.1"
    consumer = make_consumer(broker_settings(port, **broker_kw), settings, store, counters)
    consumer.start()
    try:
        wait_until(lambda: counters.total("connected") == 1, 15, "collector connected")
        yield consumer, store
    finally:
        consumer.stop()
        store.close()


def stored_seqs(db: Path, device: str) -> set[int]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT seq FROM health WHERE device_id = ?", (device,))}
    finally:
        conn.close()


def count(db: Path, sql: str, params: Iterable[Any] = ()) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, tuple(params)).fetchone()[0])
    finally:
        conn.close()


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dunewatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    for p in paths:
        p.chmod(0o644)
    return paths
