from __future__ import annotations

import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.broker.passwords import acl_text, hash_password, verify_password
from tests.support.services import require_tool


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = require_tool("mosquitto_passwd", "mosquitto")
    pw = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pw), "alice", "s3cret"], check=True)
    hashed = pw.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", hashed)
    assert not verify_password("wrong", hashed)
    assert verify_password("x", hash_password("x"))


def test_acl_lets_devices_write_only_their_own_topics() -> None:
    text = acl_text("dunewatch", ["collector"])
    assert "pattern write dunewatch/v1/%u/#" in text
    assert all(not line.split("#")[0].strip().endswith(" ") for line in text.splitlines())


def _connect(port: int, user: str, pw: str) -> mqtt.ReasonCode:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, pw)
    result: list[mqtt.ReasonCode] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect("127.0.0.1", port)
    while not result:
        client.loop(0.1)
    client.disconnect()
    return result[0]


def test_broker_accepts_enrolled_and_rejects_wrong_password(mosquitto: object) -> None:
    port = mosquitto.port  # type: ignore[attr-defined]
    assert not _connect(port, "dev-1", "dev-1-pw").is_failure
    assert _connect(port, "dev-1", "nope").is_failure
