"""Parts of the zero-setup job: broker choice, the embedded broker, the simulated fleet."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent import envelope as env
from collector.broker.embedded import EmbeddedBroker
from collector.broker.mosquitto import BrokerError
from collector.broker.select import (
    EmbeddedManaged,
    ExternalBroker,
    SupervisedMosquitto,
    choose,
    parse_url,
)
from collector.cli import build_parser
from collector.sim.fleet import CLASSES, SimError, build_fleet, health_body, inventory_hash
from collector.sim.snmprec import snmprec
from collector.stack import Credentials, StackConfig, StackError, local_device_id
from tests.support.services import require_tool, wait_until

REPO = Path(__file__).resolve().parents[2]


class _Client:
    """A paho v3.1.1 client that records what it receives."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.rc: list[mqtt.ReasonCode] = []
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"t-{user}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.subacks: list[int] = []
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.append(mid)
        self.c.username_pw_set(user, password)
        self.c.on_connect = lambda c, u, f, rc, p: self.rc.append(rc)
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        wait_until(lambda: self.rc, timeout=10, what="CONNACK")

    @property
    def ok(self) -> bool:
        return not self.rc[0].is_failure

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(
        workdir=tmp_path / "b", users={"collector": "c-pw", "dev-1": "d1", "dev-2": "d2"}
    )
    broker.start()
    yield broker
    broker.stop()


def test_embedded_broker_enforces_passwords_and_the_device_acl(embedded: EmbeddedBroker) -> None:
    coll = _Client(embedded.port, "collector", "c-pw")
    dev1 = _Client(embedded.port, "dev-1", "d1")
    wrong = _Client(embedded.port, "dev-1", "nope")
    try:
        assert coll.ok and dev1.ok and not wrong.ok
        coll.c.subscribe("dunewatch/v1/#", qos=1)
        dev1.c.subscribe("dunewatch/v1/#", qos=1)  # a device may not read: denied
        wait_until(lambda: coll.subacks and dev1.subacks, timeout=10, what="SUBACKs")
        dev1.c.publish("dunewatch/v1/dev-1/health", b"mine", qos=1).wait_for_publish(5)
        dev1.c.publish("dunewatch/v1/dev-2/health", b"forged", qos=1).wait_for_publish(5)
        coll.c.publish("dunewatch/v1/alerts/dev-1", b"alert", qos=1).wait_for_publish(5)
        wait_until(lambda: len(coll.got) >= 2, timeout=10, what="allowed messages")
        topics = [t for t, _ in coll.got]
        assert "dunewatch/v1/dev-1/health" in topics
        assert "dunewatch/v1/alerts/dev-1" in topics
        assert "dunewatch/v1/dev-2/health" not in topics
        assert dev1.got == []
    finally:
        for c in (coll, dev1, wrong):
            c.close()


def test_embedded_broker_accepts_devices_enrolled_while_running(embedded: EmbeddedBroker) -> None:
    late = _Client(embedded.port, "dev-9", "d9")
    late.close()
    assert not late.ok
    embedded.add_users({"dev-9": "d9"})
    again = _Client(embedded.port, "dev-9", "d9")
    again.close()
    assert again.ok


def test_embedded_broker_binds_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="loopback"):
        EmbeddedBroker(workdir=tmp_path, host="0.0.0.0")


def test_choose_prefers_a_url_then_mosquitto_then_embedded(tmp_path: Path) -> None:
    ext = choose(tmp_path, {}, url="mqtts://u:p%40ss@broker.example:8884?protocol=3.1.1")
    assert isinstance(ext, ExternalBroker)
    ep = ext.endpoint
    assert (ep.host, ep.port, ep.tls, ep.protocol, ep.username, ep.password) == (
        "broker.example",
        8884,
        True,
        "3.1.1",
        "u",
        "p@ss",
    )
    hidden = choose(tmp_path, {"collector": "x"}, path=str(tmp_path), search_sbin=False)
    assert isinstance(hidden, EmbeddedManaged)
    assert hidden.endpoint.protocol == "3.1.1"
    forced = choose(tmp_path, {}, url="embedded")
    assert isinstance(forced, EmbeddedManaged)
    with pytest.raises(BrokerError, match="mosquitto not found"):
        choose(tmp_path, {}, url="mosquitto", path=str(tmp_path), search_sbin=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1", "scheme must be mqtt"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "bad port"),
        ("mqtt://h:1?protocol=4", "protocol must be 5 or 3.1.1"),
    ],
)
def test_bad_broker_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(BrokerError, match=message):
        parse_url(url)


def test_supervised_mosquitto_comes_back_after_it_dies(tmp_path: Path) -> None:
    exe = require_tool("mosquitto", "mosquitto")
    sup = choose(tmp_path, {"collector": "c"}, path=str(Path(exe).parent))
    assert isinstance(sup, SupervisedMosquitto)
    sup.start()
    try:
        proc = sup.broker._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        wait_until(lambda: sup.restarts == 1 and sup.running(), timeout=20, what="restart")
        with socket.create_connection(("127.0.0.1", sup.endpoint.port), timeout=5):
            pass
    finally:
        sup.stop()
    assert not sup.running()


def test_fleet_is_deterministic_labelled_and_mixed() -> None:
    a, b = build_fleet(200, seed=3), build_fleet(200, seed=3)
    assert [d.inventory for d in a.devices] == [d.inventory for d in b.devices]
    assert build_fleet(200, seed=4).devices != a.devices
    assert all(c > 0 for c in a.counts().values()) and set(a.counts()) == set(CLASSES)
    for d in a.devices:
        assert d.device_id.startswith("sim-") and d.simulated
        assert d.tags["simulated"] == "true" and d.tags["district"]
        assert d.inventory["simulated"] is True
        assert d.inventory["hash"] == inventory_hash(d.inventory)
        env.make(d.device_id, "b", 1, env.KIND_INVENTORY, d.inventory)  # valid on the wire
        env.make(d.device_id, "b", 2, env.KIND_HEALTH, health_body(d, 0, 5.0, 100.0))
    eol = [d for d in a.devices if d.eol]
    assert eol and all(
        {"name": "openssl", "version": "1.0.2u", "manager": p["manager"]} == p
        for d in eol
        for p in d.inventory["packages"]
        if p["name"] == "openssl"
    )
    assert any(d.offline_after for d in a.devices)
    assert 1 <= len(a.agentless) < 30
    assert not any(d.offline_after for d in a.agentless)
    with pytest.raises(SimError):
        build_fleet(-1)


def test_snmprec_is_sorted_and_says_simulated() -> None:
    dev = build_fleet(40).agentless[0]
    text = snmprec(dev)
    oids = [tuple(int(x) for x in line.split("|")[0].split(".")) for line in text.splitlines()]
    assert oids == sorted(oids)
    assert "(simulated device)" in text.splitlines()[0]
    assert f"|4|{dev.inventory['hardware']['vendor']}" in text


def test_credentials_are_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    creds = Credentials.load(path)
    added = creds.ensure(["collector", local_device_id()])
    assert set(added) == {"collector", local_device_id()}
    assert path.stat().st_mode & 0o777 == 0o600
    again = Credentials.load(path)
    assert again.ensure(["collector"]) == {} and again.users == creds.users
    path.write_text("{not json")
    with pytest.raises(StackError, match="unreadable credentials"):
        Credentials.load(path)


def test_stack_config_rejects_nonsense() -> None:
    with pytest.raises(StackError, match="--duration"):
        StackConfig(duration=0)
    with pytest.raises(StackError, match="--devices"):
        StackConfig(devices=-1)
    assert env.DEVICE_ID_RE.match(local_device_id())


@pytest.mark.parametrize("cmd", ["up", "demo"])
def test_help_has_an_example_and_the_guide_documents_it(
    cmd: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([cmd, "--help"])
    assert exc.value.code == 0
    assert f"example: dunewatch {cmd}" in capsys.readouterr().out
    assert f"dunewatch {cmd}" in (REPO / "docs" / "deploy.md").read_text()
