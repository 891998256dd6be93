"""Sinks against real peers: a local http.server for the webhook, real mosquitto for MQTT."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.alerts.config import AlertsConfig
from collector.alerts.engine import dispatch, process
from collector.alerts.store import AlertStore
from collector.broker.mosquitto import free_port
from collector.sinks import LogSink, MqttSink, WebhookSink, load_sinks
from collector.sinks.interface import SinkError
from collector.sinks.mqtt import MqttSinkConfig
from tests.alerts.snap import NOW, device, fleet
from tests.support.services import wait_until

CFG = AlertsConfig()


class Hook:
    """A local webhook receiver that answers the scripted statuses first, then 200."""

    def __init__(self, port: int = 0, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[dict[str, Any]] = []
        self.calls = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls += 1
                status = hook.script.pop(0) if hook.script else 200
                if status == 200:
                    assert self.headers["Content-Type"] == "application/json"
                    hook.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _open(store: AlertStore, *device_ids: str, t: float = NOW) -> int:
    """Open one offline alert per device (in one pass); returns the event cursor before it."""
    start = store.max_event_id()
    devices = [device(d, status="offline") for d in device_ids or ("cam-1",)]
    process(fleet(*devices, taken_at=t), store, CFG, t)
    return start


def test_webhook_retries_with_backoff_then_delivers(store: AlertStore, hook: Hook) -> None:
    hook.script = [500, 503]
    sleeps: list[float] = []
    sink = WebhookSink(url=hook.url, name="oncall", retries=3, backoff=0.01, sleep=sleeps.append)
    start = _open(store)
    (out,) = dispatch(store, [sink], NOW, start_cursor=start)
    assert (out.delivered, out.failed, out.pending) == (1, 0, 0)
    assert hook.calls == 3 and sleeps == [0.01, 0.02]  # exponential backoff
    (msg,) = hook.received
    assert msg["event"] == "opened" and msg["alert"]["device_id"] == "cam-1"
    (row,) = store.deliveries("oncall")
    assert (row["ok"], row["attempts"]) == (1, 3)


def test_webhook_down_then_recovers_on_a_later_pass(store: AlertStore) -> None:
    port = free_port()
    sink = WebhookSink(
        url=f"http://127.0.0.1:{port}/a", name="oncall", retries=1, backoff=0.0, timeout=2
    )
    start = _open(store, "cam-1", "cam-2")
    (out,) = dispatch(store, [sink], NOW, start_cursor=start)  # nobody listening: refused
    assert (out.delivered, out.failed, out.pending) == (0, 1, 2)
    assert "failed" in (out.last_error or "")
    (fail,) = store.deliveries("oncall")
    assert (fail["ok"], fail["attempts"]) == (0, 2) and fail["error"]
    status = {s["sink"]: s for s in store.sink_status()}["oncall"]
    assert status["failed"] == 1 and status["last_error"]
    # the receiver comes up (answering 500 once more first): the backlog is delivered, in order
    h = Hook(port=port, script=[500])
    try:
        (out2,) = dispatch(store, [sink], NOW + 60)
        assert (out2.delivered, out2.pending) == (2, 0)
        assert [m["alert"]["device_id"] for m in h.received] == ["cam-1", "cam-2"]
    finally:
        h.close()
    oks = [d for d in store.deliveries("oncall") if d["ok"]]
    assert [d["attempts"] for d in oks] == [2, 1]


def test_webhook_permanent_error_is_given_up_and_recorded(store: AlertStore, hook: Hook) -> None:
    hook.script = [400]
    sink = WebhookSink(url=hook.url, name="oncall", backoff=0.0)
    start = _open(store, "cam-1", "cam-2")
    (out,) = dispatch(store, [sink], NOW, start_cursor=start)
    assert (out.delivered, out.failed, out.pending) == (1, 1, 0)
    assert hook.calls == 2  # no retry of a 400
    assert [m["alert"]["device_id"] for m in hook.received] == ["cam-2"]
    assert "HTTP 400" in store.deliveries("oncall")[0]["error"]


def test_webhook_gives_up_after_max_attempts(store: AlertStore) -> None:
    sink = WebhookSink(
        url=f"http://127.0.0.1:{free_port()}/", name="w", retries=0, backoff=0.0, max_attempts=2
    )
    start = _open(store)
    assert dispatch(store, [sink], NOW, start_cursor=start)[0].pending == 1
    assert dispatch(store, [sink], NOW + 1)[0].pending == 0  # second failure: given up
    assert dispatch(store, [sink], NOW + 2)[0].failed == 0  # nothing left
    assert len(store.deliveries("w")) == 2


def test_webhook_config_errors_name_the_problem() -> None:
    with pytest.raises(SinkError, match="url must be http"):
        WebhookSink(url="ftp://x/")
    with pytest.raises(SinkError, match="min_severity 'urgent'"):
        WebhookSink(url="http://127.0.0.1/", min_severity="urgent")


def test_log_sink_writes_one_line(store: AlertStore, caplog: pytest.LogCaptureFixture) -> None:
    start = _open(store)
    with caplog.at_level(logging.INFO, logger="dunewatch.alerts.sink"):
        dispatch(store, [LogSink()], NOW, start_cursor=start)
    (rec,) = [r for r in caplog.records if r.name == "dunewatch.alerts.sink"]
    assert rec.levelno == logging.WARNING
    assert "alert opened #1 [high] device.offline cam-1: cam-1 is offline" in rec.getMessage()


def test_load_sinks_from_toml(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    f = tmp_path / "sinks.toml"
    f.write_text(
        '[[sink]]\ntype = "log"\n\n'
        '[[sink]]\ntype = "webhook"\nname = "oncall"\nurl = "http://127.0.0.1:9/x"\n'
        'retries = 2\nmin_severity = "high"\n\n'
        f'[[sink]]\ntype = "mqtt"\nurl = "mqtt://127.0.0.1:1883"\nusername = "collector"\n'
        f'password_file = "{pw}"\n'
    )
    log, web, mq = load_sinks(f)
    assert isinstance(web, WebhookSink) and web.retries == 2 and web.min_severity == "high"
    assert isinstance(mq, MqttSink) and mq.config.password == "secret"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sink]]\ntype = "webhook"\nurl = "http://x/"\nretrys = 2\n')
    with pytest.raises(SinkError, match=r"bad.toml: sink #1: unknown key\(s\) retrys"):
        load_sinks(bad)
    bad.write_text('[[sink]]\ntype = "pager"\n')
    with pytest.raises(SinkError, match="type 'pager' not one of log, webhook, mqtt"):
        load_sinks(bad)
    bad.write_text('[[sink]]\ntype = "log"\n[[sink]]\ntype = "log"\n')
    with pytest.raises(SinkError, match="repeated: log"):
        load_sinks(bad)


@pytest.mark.integration
def test_mqtt_sink_publishes_to_the_alerts_topic(store: AlertStore, mosquitto: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    got: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="watcher",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    sub.username_pw_set("collector", "collector-pw")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("dunewatch/v1/alerts/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    sink = MqttSink(
        MqttSinkConfig(
            url=mosquitto.url,
            username="collector",
            password="collector-pw",
            client_id="alerts-test",
        )
    )
    try:
        assert subscribed.wait(30)
        sink.start()
        start = _open(store, "dev-1")
        (out,) = dispatch(store, [sink], NOW, start_cursor=start)
        assert out.delivered == 1
        wait_until(lambda: got, 30, "alert on the MQTT topic")
        topic, doc = got[0]
        assert topic == "dunewatch/v1/alerts/dev-1"
        assert doc["event"] == "opened" and doc["alert"]["rule_id"] == "device.offline"
    finally:
        sink.stop()
        sub.disconnect()
        sub.loop_stop()


@pytest.mark.integration
def test_mqtt_sink_with_bad_password_fails_and_keeps_the_event(
    store: AlertStore, mosquitto: Any
) -> None:
    sink = MqttSink(
        MqttSinkConfig(url=mosquitto.url, username="collector", password="nope", timeout=2)
    )
    sink.start()
    try:
        start = _open(store)
        (out,) = dispatch(store, [sink], NOW, start_cursor=start)
        assert (out.delivered, out.pending) == (0, 1)
        assert "not connected" in (out.last_error or "")
    finally:
        sink.stop()
