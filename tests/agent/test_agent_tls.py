"""TLS to a real mosquitto: CA file, client certificate and key, verification on; MQTT 3.1.1."""

from __future__ import annotations

import datetime
import ipaddress
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.broker.mosquitto import free_port, wait_for_port
from tests.agent.mqtt_support import AgentProc, Recorder, start_agent, write_config
from tests.agent.test_run_footprint import openssl_mapped
from tests.support.services import wait_until

pytestmark = pytest.mark.integration


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    sign_key: ec.EllipticCurvePrivateKey,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False
        )
    return b.sign(sign_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_path, key_path = path.with_suffix(".pem"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o644)  # mosquitto drops privileges before reading it
    return str(cert_path), str(key_path)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    d = tmp_path / "pki"
    d.mkdir()
    ca_key, srv_key, cli_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca = _cert("test CA", "test CA", ca_key, ca_key, ca=True)
    other_ca = _cert("other CA", "other CA", other_key, other_key, ca=True)
    out = {}
    out["ca"], _ = _write(d / "ca", ca, ca_key)
    out["other_ca"], _ = _write(d / "other-ca", other_ca, other_key)
    out["server"], out["server_key"] = _write(
        d / "server", _cert("127.0.0.1", "test CA", srv_key, ca_key, ip="127.0.0.1"), srv_key
    )
    out["client"], out["client_key"] = _write(
        d / "client", _cert("dev-1", "test CA", cli_key, ca_key), cli_key
    )
    return out


@pytest.fixture
def procs() -> Iterator[list[AgentProc]]:
    started: list[AgentProc] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.kill()


def tls_broker(mosquitto_factory: Callable[..., Any], pki: dict[str, str]) -> tuple[Any, int]:
    """A mosquitto requiring client certificates, plus a plain listener for the test's recorder."""
    plain = free_port()
    broker = mosquitto_factory(
        {"dev-1": "dev-1-pw"},
        extra_config=(
            f"cafile {pki['ca']}",
            f"certfile {pki['server']}",
            f"keyfile {pki['server_key']}",
            "require_certificate true",
            f"listener {plain} 127.0.0.1",
        ),
    )
    assert wait_for_port("127.0.0.1", plain, 15)
    return broker, plain


def client_tls(port: int, pki: dict[str, str]) -> dict[str, str]:
    """The agent's [broker] section for mutual TLS on `port`."""
    return {
        "url": f"mqtts://127.0.0.1:{port}",
        "ca_file": pki["ca"],
        "cert_file": pki["client"],
        "key_file": pki["client_key"],
    }


def test_agent_over_mutual_tls(
    mosquitto_factory: Callable[..., Any],
    pki: dict[str, str],
    procs: list[AgentProc],
    tmp_path: Path,
) -> None:
    broker, plain = tls_broker(mosquitto_factory, pki)
    rec = Recorder(plain).start()
    try:
        tls = client_tls(broker.port, pki)
        good = start_agent(
            write_config(tmp_path, broker.port, "dev-1", "dev-1-pw", broker=tls),
            tmp_path / "ok.log",
        )
        procs.append(good)
        wait_until(lambda: rec.of("dev-1", "health"), 30, "a report over TLS")
        assert good.terminate() == 0

        # a server certificate from another CA is refused: verification is on
        (tmp_path / "bad").mkdir()
        bad_tls = dict(tls, ca_file=pki["other_ca"])
        bad = start_agent(
            write_config(tmp_path / "bad", broker.port, "dev-1", "dev-1-pw", broker=bad_tls),
            tmp_path / "bad.log",
        )
        procs.append(bad)
        wait_until(lambda: "cannot reach broker" in bad.text(), 30, "a refused TLS handshake")
        n = len(rec.of("dev-1", "health"))
        assert bad.terminate() == 0
        assert "connected to" not in bad.text()
        assert len(rec.of("dev-1", "health")) == n
    finally:
        rec.stop()


def test_sighup_moves_a_plain_agent_to_tls(
    mosquitto_factory: Callable[..., Any],
    pki: dict[str, str],
    procs: list[AgentProc],
    tmp_path: Path,
) -> None:
    """A plain start leaves OpenSSL out of the process; a reload to mqtts:// brings it in."""
    broker, plain = tls_broker(mosquitto_factory, pki)
    rec = Recorder(plain).start()
    try:
        cfg = write_config(tmp_path, plain, "dev-1", "dev-1-pw")
        agent = start_agent(cfg, tmp_path / "agent.log")
        procs.append(agent)
        wait_until(lambda: rec.of("dev-1", "health"), 30, "a report over plain MQTT")
        assert openssl_mapped(agent.proc.pid) == []

        tls = client_tls(broker.port, pki)
        assert write_config(tmp_path, plain, "dev-1", "dev-1-pw", broker=tls) == cfg
        agent.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: f"connected to 127.0.0.1:{broker.port} " in agent.text(), 30, "TLS reconnect"
        )
        n = len(rec.of("dev-1", "health"))
        wait_until(lambda: len(rec.of("dev-1", "health")) >= n + 3, 30, "reports over TLS")
        assert any("libssl" in m for m in openssl_mapped(agent.proc.pid))
        assert "Traceback" not in agent.text()
        assert agent.terminate() == 0
    finally:
        rec.stop()


def test_agent_over_mqtt_311(
    mosquitto_factory: Callable[..., Any], procs: list[AgentProc], tmp_path: Path
) -> None:
    broker = mosquitto_factory({"dev-1": "dev-1-pw"})
    rec = Recorder(broker.port).start()
    try:
        cfg = write_config(tmp_path, broker.port, "dev-1", "dev-1-pw", broker={"protocol": "3.1.1"})
        agent = start_agent(cfg, tmp_path / "agent.log")
        procs.append(agent)
        wait_until(
            lambda: len(rec.of("dev-1", "health")) >= 2 and rec.of("dev-1", "inventory"),
            30,
            "reports",
        )
        assert "online/birth" in rec.states("dev-1")
        assert agent.terminate() == 0
        wait_until(lambda: "offline/shutdown" in rec.states("dev-1"), 15, "offline")
    finally:
        rec.stop()
