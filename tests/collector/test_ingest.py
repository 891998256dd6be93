"""MQTT ingest against a real mosquitto: store, reject, dedupe, gaps, reconnect."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.config import IngestSettings
from collector.ingest.lean import LeanConsumer
from collector.metrics import Counters
from collector.store.sqlite import SqliteStore
from tests.collector.helpers import (
    Publisher,
    broker_settings,
    count,
    health,
    mosquitto_pub,
    running_consumer,
    stored_seqs,
)
from tests.support.services import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(params=["paho", "lean"])
def reader(request: pytest.FixtureRequest) -> str:
    """Both MQTT readers must behave the same: paho-mqtt and the lean 3.1.1 reader."""
    return str(request.param)


def test_valid_reports_are_stored_from_paho_and_mosquitto_pub(
    mosquitto: Any, tmp_path: Path, reader: str
) -> None:
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    now = time.time()
    with running_consumer(mosquitto.port, db, reader=reader) as (consumer, store):
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        pub.send_env(E.state("dev-1", boot, True, "birth", interval=10, agent_version="0.1.0"))
        for seq in range(1, 6):
            pub.send_env(health("dev-1", boot, seq, now + seq, cpu=float(seq)))
        inv = E.make(
            "dev-1",
            boot,
            6,
            "inventory",
            {"hardware": {"vendor": "Teltonika", "model": "RUTX11"}, "packages": []},
            ts=now,
        )
        pub.send_env(inv)
        env7 = health("dev-1", boot, 7, now + 7)
        mosquitto_pub(
            mosquitto.port, "dev-1", "dev-1-pw", "dunewatch/v1/dev-1/health", env7.encode()
        )
        wait_until(lambda: stored_seqs(db, "dev-1") == {1, 2, 3, 4, 5, 7}, 20, "7 reports stored")
        pub.close()
    with running_consumer(mosquitto.port, db, reader=reader) as (_, store):
        d = store.device("dev-1")
        assert d is not None
        assert d.summary.status == "online"
        assert d.summary.vendor == "Teltonika" and d.summary.model == "RUTX11"
        assert d.summary.agent_version == "0.1.0" and d.summary.interval == 10
        assert d.latest_health == {"interval": 10, "cpu": {"pct": 1.0}}
        assert d.stats.accepted == 8 and d.stats.gap == 0 and d.stats.duplicate == 0
        assert store.unenrolled() == ["dev-1"]  # it reported without enrollment: flagged


BAD: list[tuple[str, str, bytes]] = [
    ("not_json", "dunewatch/v1/dev-1/health", b"\xff\xfe not json"),
    ("bad_topic", "dunewatch/v1/dev-1/bogus", b"{}"),
    (
        "bad_version",
        "dunewatch/v1/dev-1/health",
        b'{"v":2,"device":"dev-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":10}}',
    ),
    (
        "bad_type",
        "dunewatch/v1/dev-1/health",
        b'{"v":1,"device":"dev-1","boot":"b","seq":"1","ts":1,"kind":"health","body":{"interval":10}}',
    ),
    (
        "missing_field",
        "dunewatch/v1/dev-1/health",
        b'{"v":1,"device":"dev-1","boot":"b","ts":1,"kind":"health","body":{"interval":10}}',
    ),
    (
        "device_mismatch",
        "dunewatch/v1/dev-1/health",
        b'{"v":1,"device":"dev-2","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":10}}',
    ),
    (
        "kind_mismatch",
        "dunewatch/v1/dev-1/event",
        b'{"v":1,"device":"dev-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":10}}',
    ),
    (
        "bad_body",
        "dunewatch/v1/dev-1/health",
        b'{"v":1,"device":"dev-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{}}',
    ),
    (
        "bad_field",
        "dunewatch/v1/dev-1/health",
        b'{"v":1,"device":"dev-1","boot":"b","seq":0,"ts":1,"kind":"health","body":{"interval":10}}',
    ),
    ("oversized", "dunewatch/v1/dev-1/health", b"{" + b" " * 5000 + b"}"),
]


def test_each_bad_payload_is_rejected_with_its_reason(
    mosquitto: Any, tmp_path: Path, reader: str
) -> None:
    db = tmp_path / "c.db"
    with running_consumer(
        mosquitto.port, db, IngestSettings(batch_ms=50, max_payload=4096), reader=reader
    ) as (
        consumer,
        store,
    ):
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        for _, topic, payload in BAD:
            pub.send(topic, payload)
        # and one good one, to show the stream goes on
        pub.send_env(health("dev-1", "b", 1, time.time()))
        wait_until(lambda: sum(store.reject_counts().values()) == len(BAD), 20, "all rejects")
        wait_until(lambda: stored_seqs(db, "dev-1") == {1}, 20, "the good report")
        pub.close()
        counts = store.reject_counts()
        assert counts == {reason: 1 for reason, _, _ in BAD}
        recent = {r.reason: r for r in store.recent_rejects(50)}
        assert recent["device_mismatch"].topic == "dunewatch/v1/dev-1/health"
        assert "dev-2" in recent["device_mismatch"].detail
        assert recent["oversized"].size > 4096
        assert store.ingest_stats("dev-1").rejected == len(BAD)
        assert consumer.counters.total("rejected") == len(BAD)


def test_duplicates_ignored_and_gaps_counted(mosquitto: Any, tmp_path: Path, reader: str) -> None:
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    now = time.time()
    with running_consumer(mosquitto.port, db, reader=reader) as (_, store):
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        for seq in (1, 2, 2, 3, 3, 3, 6, 7):  # 4 and 5 never sent
            pub.send_env(health("dev-1", boot, seq, now + seq))
        wait_until(lambda: store.ingest_stats("dev-1").duplicate == 3, 20, "3 duplicates")
        wait_until(lambda: store.ingest_stats("dev-1").accepted == 5, 20, "5 accepted")
        assert stored_seqs(db, "dev-1") == {1, 2, 3, 6, 7}
        assert store.ingest_stats("dev-1").gap == 2
        # the agent then reports it dropped 4..5 from a full outbox: accounted loss, not a gap
        drop = E.make(
            "dev-1",
            boot,
            8,
            "event",
            {"type": "outbox_drop", "count": 2, "first_seq": 4, "last_seq": 5},
            ts=now,
        )
        pub.send_env(drop)
        wait_until(lambda: store.ingest_stats("dev-1").dropped == 2, 20, "drop accounted")
        st = store.ingest_stats("dev-1")
        assert (st.gap, st.dropped, st.accepted) == (0, 2, 6)
        # a new boot starts a new sequence: no gap for seqs of the old boot
        pub.send_env(health("dev-1", E.new_boot_id(), 1, now + 20))
        wait_until(lambda: store.ingest_stats("dev-1").accepted == 7, 20, "new boot")
        assert store.ingest_stats("dev-1").gap == 0
        pub.close()


def test_broker_restart_then_ingest_resumes(
    mosquitto_factory: Any, tmp_path: Path, reader: str
) -> None:
    broker = mosquitto_factory({"dev-1": "dev-1-pw"})
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    now = time.time()
    with running_consumer(broker.port, db, reader=reader) as (consumer, store):
        pub = Publisher(broker.port, "dev-1", "dev-1-pw")
        pub.send_env(health("dev-1", boot, 1, now))
        wait_until(lambda: stored_seqs(db, "dev-1") == {1}, 20, "first report")
        pub.close()
        broker.stop()
        wait_until(lambda: consumer.counters.total("connected") == 0, 20, "disconnect seen")
        broker.start()  # same port, persistence on: the collector's session survives
        wait_until(lambda: consumer.counters.total("connected") == 1, 30, "reconnected")
        pub = Publisher(broker.port, "dev-1", "dev-1-pw")
        pub.send_env(health("dev-1", boot, 2, now + 1))
        wait_until(lambda: stored_seqs(db, "dev-1") == {1, 2}, 30, "report after restart")
        pub.close()
        assert consumer.counters.total("connects") >= 2


def test_messages_queued_while_collector_away_are_delivered(
    mosquitto: Any, tmp_path: Path, reader: str
) -> None:
    """Persistent session: what devices publish while the collector is stopped is not lost."""
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    now = time.time()
    with running_consumer(mosquitto.port, db, reader=reader):
        pass  # creates the session and subscription, then disconnects cleanly
    pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
    for seq in range(1, 51):
        pub.send_env(health("dev-1", boot, seq, now + seq))
    pub.close()
    with running_consumer(mosquitto.port, db, reader=reader):
        wait_until(lambda: stored_seqs(db, "dev-1") == set(range(1, 51)), 30, "backlog")
    assert count(db, "SELECT count(*) FROM health") == 50


class _CountingLean(LeanConsumer):
    """The lean reader, recording how many messages each read handed over."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.handed: list[int] = []

    def deliver_many(self, messages: list[tuple[str, bytes, int, int]]) -> None:
        self.handed.append(len(messages))
        super().deliver_many(messages)


def test_the_lean_reader_reads_a_trickle_in_handfuls(mosquitto: Any, tmp_path: Path) -> None:
    """A live stream is read a few tens of messages at a time, not woken for one by one."""
    store = SqliteStore(tmp_path / "c.db")
    counters = Counters(1)
    ingest = IngestSettings(reader="lean", batch_ms=400, read_pause_ms=150)
    c = _CountingLean(broker_settings(mosquitto.port, protocol="3.1.1"), ingest, store, counters)
    c.start()
    try:
        wait_until(lambda: counters.total("connected") == 1, 15, "collector connected")
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        boot, now = E.new_boot_id(), time.time()
        t0 = time.monotonic()
        for seq in range(1, 61):  # a message every 10 ms
            pub.send_env(health("dev-1", boot, seq, now + seq))
            time.sleep(0.01)
        took = time.monotonic() - t0
        wait_until(lambda: stored_seqs(tmp_path / "c.db", "dev-1") == set(range(1, 61)), 20, "60")
        pub.close()
    finally:
        c.stop()
        store.close()
    # each read is followed by a 150 ms pause: at most one read per pause, plus the first
    assert len(c.handed) <= took / 0.15 + 2, (took, c.handed)
    assert sum(c.handed) == 60


def test_mqtt_311_and_shared_subscription(mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    with running_consumer(mosquitto.port, db, protocol="3.1.1", share_group="g1") as (c, _):
        assert c.topic == "$share/g1/dunewatch/v1/+/+"
        pub = Publisher(mosquitto.port, "dev-2", "dev-2-pw")
        for seq in range(1, 4):
            pub.send_env(health("dev-2", boot, seq, time.time()))
        wait_until(lambda: stored_seqs(db, "dev-2") == {1, 2, 3}, 20, "3.1.1 shared ingest")
        pub.close()


def test_tls_with_credentials(mosquitto_factory: Any, tmp_path: Path, reader: str) -> None:
    from collector.broker.mosquitto import free_port
    from tests.collector.helpers import make_tls_files

    ca, cert, key = make_tls_files(tmp_path / "tls")
    tls_port = free_port()
    broker = mosquitto_factory(
        {"dev-1": "dev-1-pw"},
        extra_config=(
            f"listener {tls_port} 127.0.0.1",
            f"cafile {ca}",
            f"certfile {cert}",
            f"keyfile {key}",
        ),
    )
    db = tmp_path / "c.db"
    with running_consumer(
        tls_port, db, reader=reader, url=f"mqtts://127.0.0.1:{tls_port}", ca_file=str(ca)
    ) as (consumer, _):
        assert consumer.broker.tls
        pub = Publisher(broker.port, "dev-1", "dev-1-pw")  # the device on the plain listener
        pub.send_env(health("dev-1", "b", 1, time.time()))
        wait_until(lambda: stored_seqs(db, "dev-1") == {1}, 20, "report over TLS ingest")
        pub.close()


def test_huge_payload_is_rejected_without_stopping_the_stream(
    mosquitto: Any, tmp_path: Path, reader: str
) -> None:
    db = tmp_path / "c.db"
    settings = IngestSettings(batch_ms=50, max_payload=4096)
    with running_consumer(mosquitto.port, db, settings, reader=reader) as (consumer, store):
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        pub.send("dunewatch/v1/dev-1/health", b"{" + b" " * 3_000_000 + b"}")
        pub.send_env(health("dev-1", "b", 1, time.time()))
        wait_until(lambda: stored_seqs(db, "dev-1") == {1}, 30, "the report after it")
        wait_until(lambda: store.reject_counts() == {"oversized": 1}, 30, "the reject")
        pub.close()
        (rej,) = store.recent_rejects(5)
        assert rej.topic == "dunewatch/v1/dev-1/health" and rej.size >= 3_000_000
