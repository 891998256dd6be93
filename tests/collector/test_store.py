"""The SQLite store on real database files: dedupe, gaps, liveness, rollups, faults."""

from __future__ import annotations

import contextlib
import fnmatch
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import envelope as E
from collector.store import open_store
from collector.store.interface import (
    HealthHeadline,
    Reject,
    StoreBusyError,
    StoreError,
    StoreFullError,
)
from collector.store.sqlite import MAX_RANGES, SqliteStore, _Stream

NOW = 1_795_400_000.0


def h(seq: int, ts: float, cpu: float = 1.0, boot: str = "b1", dev: str = "d1") -> E.Envelope:
    body = {
        "interval": 10,
        "cpu": {"pct": cpu},
        "disk": {"/": {"pct": cpu * 2}},
        "temp": {"soc": 40},
    }
    return E.make(dev, boot, seq, "health", body, ts=ts)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "s.db")
    yield s  # type: ignore[misc]
    s.close()


def test_wal_and_versioned_schema(tmp_path: Path) -> None:
    s = open_store(tmp_path / "a.db")
    s.apply([h(1, NOW)], NOW)
    s.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()
    s2 = SqliteStore(tmp_path / "a.db")  # reopening migrates nothing and keeps the data
    assert s2.ingest_stats("d1").accepted == 1
    s2.close()


def test_ingest_stats_of_every_device_in_one_read(store: SqliteStore) -> None:
    store.apply([h(1, NOW), h(3, NOW + 1), h(3, NOW + 1), h(1, NOW, dev="d2")], NOW)
    store.record_rejects([Reject(NOW, "dunewatch/v1/d3/health", "not_json", "x", "d3", 5)])
    every = store.ingest_stats_by_device()
    assert set(every) == {"d1", "d2", "d3"}
    assert every["d1"] == store.ingest_stats("d1")
    assert (every["d1"].accepted, every["d1"].duplicate, every["d1"].gap) == (2, 1, 1)
    assert (every["d3"].accepted, every["d3"].rejected) == (0, 1)


def test_bulk_reads_equal_the_per_device_reads(store: SqliteStore) -> None:
    pkg = {"name": "busybox", "version": "1.36", "manager": "opkg"}
    inv = {"hash": "i" * 64, "packages": [pkg]}
    store.apply([E.make("d1", "b1", 9, "inventory", inv, ts=NOW)], NOW)
    store.apply([h(i, NOW + i, cpu=float(i)) for i in (1, 2, 3)], NOW + 3)
    store.apply([h(1, NOW, dev="d2"), E.make("d3", "b", 1, "event", {"type": "x"}, ts=NOW)], NOW)
    ids = ["d1", "d2", "d3", "nobody"]
    assert store.current_inventories(ids) == {"d1": store.current_inventory("d1")}
    latest = store.latest_health_points(ids)
    assert {d: p.body for d, p in latest.items()} == {
        d: store.latest_health(d) for d in ("d1", "d2")
    }
    assert (latest["d1"].ts, latest["d1"].seq, latest["d1"].body["cpu"]) == (
        NOW + 3,
        3,
        {"pct": 3.0},
    )
    assert store.latest_health_points([]) == {}
    heads = store.latest_health_headlines(ids)
    assert set(heads) == {"d1", "d2"}
    assert heads["d1"] == HealthHeadline("d1", NOW + 3, 3.0, None, 6.0, "/", 40.0, "soc")
    assert store.latest_health_headlines([]) == {}


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
_key = st.text(max_size=4)  # any text: dots, quotes, backslashes, the empty key
_body = st.fixed_dictionaries(
    {"interval": st.just(10)},
    optional={
        "cpu": st.dictionaries(st.sampled_from(["pct", "load1"]), _leaf, max_size=2),
        "mem": st.dictionaries(st.sampled_from(["pct", "total"]), _leaf, max_size=2),
        "disk": st.dictionaries(
            _key,
            st.one_of(_leaf, st.dictionaries(st.sampled_from(["pct", "free"]), _leaf)),
            max_size=4,
        ),
        "temp": st.dictionaries(_key, st.one_of(_leaf, st.just([1, 2])), max_size=4),
    },
)


def _headline(dev: str, ts: float, body: dict[str, Any]) -> HealthHeadline:
    def num(v: object) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    def pct(section: object) -> float | None:
        return num(section.get("pct")) if isinstance(section, dict) else None

    def top(section: object, value: Any) -> tuple[float | None, str | None]:
        best, name = None, None
        for key, v in section.items() if isinstance(section, dict) else ():
            if (x := value(v)) is not None and (best is None or x > best):
                best, name = x, key
        return best, name

    disk, mount = top(body.get("disk"), pct)
    temp, sensor = top(body.get("temp"), num)
    cpu, mem = pct(body.get("cpu")), pct(body.get("mem"))
    return HealthHeadline(dev, ts, cpu, mem, disk, mount, temp, sensor)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(_body, min_size=1, max_size=6))
def test_health_headlines_equal_the_reports_read_in_python(
    tmp_path_factory: pytest.TempPathFactory, bodies: list[dict[str, Any]]
) -> None:
    # the alert pass's read against a plain Python reading of the same reports
    s = SqliteStore(tmp_path_factory.mktemp("heads") / "h.db")
    try:
        envs = [E.make(f"d{i}", "b", 1, "health", b, ts=NOW + i) for i, b in enumerate(bodies)]
        s.apply(envs, NOW)
        ids = [f"d{i}" for i in range(len(bodies))]
        heads = s.latest_health_headlines(ids)
        for d, point in s.latest_health_points(ids).items():
            h = heads[d]
            assert h == _headline(d, point.ts, point.body)
            for v in (h.cpu, h.memory, h.disk, h.temperature):
                assert v is None or type(v) is float
    finally:
        s.close()


def test_out_of_order_arrivals_fill_gaps(store: SqliteStore) -> None:
    r = store.apply([h(1, NOW), h(3, NOW + 2), h(5, NOW + 4)], NOW)
    assert (r.accepted, r.gaps) == (3, 2)
    assert store.ingest_stats("d1").gap == 2
    r = store.apply([h(2, NOW + 1), h(4, NOW + 3), h(4, NOW + 3)], NOW + 5)
    assert (r.accepted, r.duplicates, r.gaps) == (2, 1, -2)
    st = store.ingest_stats("d1")
    assert (st.accepted, st.duplicate, st.gap) == (5, 1, 0)
    assert [p.seq for p in store.health_history("d1", 0)] == [1, 2, 3, 4, 5]
    assert store.latest_health("d1") == h(5, 0).body  # newest by agent time, not arrival


def test_streams_of_many_devices_and_boots_in_one_batch(store: SqliteStore) -> None:
    """Each (device, boot) stream is read back as its own: boots of other devices in the
    same batch and other boots of the same device do not mix in."""
    devs = [f"d{i}" for i in range(40)]
    first = [h(s, NOW + s, dev=d, boot=f"boot-{d}") for d in devs for s in (1, 2, 3)]
    first += [h(1, NOW, dev=d, boot="shared") for d in devs[:5]]
    r = store.apply(first, NOW + 10)
    assert (r.accepted, r.duplicates, r.gaps) == (125, 0, 0)
    again = [h(s, NOW + s, dev=d, boot=f"boot-{d}") for d in devs for s in (3, 4)]
    again += [h(1, NOW, dev=d, boot=f"boot-{devs[-1 - k]}") for k, d in enumerate(devs[:5])]
    again += [h(3, NOW, dev=d, boot="shared") for d in devs[:5]]
    r = store.apply(again, NOW + 20)
    # seq 3 of each own boot is a duplicate; another device's boot id is a new stream of this one
    assert (r.accepted, r.duplicates, r.gaps) == (50, 40, 5)
    assert store.ingest_stats("d0").duplicate == 1 and store.ingest_stats("d0").gap == 1
    assert store.ingest_stats("d39").gap == 0


def test_a_device_last_boot_stream_is_read_with_the_device(store: SqliteStore) -> None:
    """The stream of a device's last boot comes with its row; other boots are looked up on
    their own, and a last boot the batch does not continue is left as it was."""

    def streams() -> dict[str, tuple[str, float]]:
        rows = store.conn.execute("SELECT boot_id, covered, last_received FROM streams")
        return {b: (c, t) for b, c, t in rows}

    store.apply([h(1, NOW), h(2, NOW + 1)], NOW + 1)  # d1's last boot: b1
    birth = E.make("d1", "b2", 0, "state", {"state": "online", "reason": "birth"}, ts=NOW + 2)
    store.apply([birth], NOW + 2)  # last boot b2, which has no stream (state messages: seq 0)
    assert streams() == {"b1": ("[[1,2]]", NOW + 1)}
    # a late b1 report and b2's first: b1 is found by its own lookup, b2 starts a stream
    r = store.apply([h(4, NOW + 3), h(1, NOW + 3, boot="b2"), h(2, NOW + 3)], NOW + 3)
    assert (r.accepted, r.duplicates, r.gaps) == (2, 1, 1)
    assert streams() == {"b1": ("[[1,2],[4,4]]", NOW + 3), "b2": ("[[1,1]]", NOW + 3)}
    # the last boot (b2) continued, b1 not touched: its row keeps its last arrival
    r = store.apply([h(2, NOW + 4, boot="b2"), h(2, NOW + 4, boot="b2")], NOW + 4)
    assert (r.accepted, r.duplicates, r.gaps) == (1, 1, 0)
    assert streams() == {"b1": ("[[1,2],[4,4]]", NOW + 3), "b2": ("[[1,2]]", NOW + 4)}
    # another state message: the device's last boot stream is read but not written
    store.apply([E.make("d1", "b2", 0, "state", {"state": "offline"}, ts=NOW + 5)], NOW + 5)
    assert streams()["b2"] == ("[[1,2]]", NOW + 4)
    st = store.ingest_stats("d1")
    assert (st.accepted, st.duplicate, st.gap) == (7, 2, 1)


def test_stream_ranges_stay_bounded() -> None:
    s = _Stream()
    for seq in range(1, 4 * MAX_RANGES, 2):  # every other seq missing
        s.cover(seq, seq)
    assert len(s.ranges) <= MAX_RANGES
    assert s.missing() == 2 * MAX_RANGES - 1
    # the oldest holes were written off as lost: a late seq there is not new (a duplicate)...
    assert s.contains(2) and s.cover(2, 2) == 0
    assert s.missing() == 2 * MAX_RANGES - 1
    # ...while a hole still tracked is filled and no longer missing
    assert not s.contains(1000) and s.cover(1000, 1000) == 1
    assert s.missing() == 2 * MAX_RANGES - 2


def test_state_messages_and_retained_redelivery(store: SqliteStore) -> None:
    birth = E.make(
        "d1", "b1", 0, "state", {"state": "online", "reason": "birth", "interval": 5}, ts=NOW
    )
    r = store.apply([birth], NOW)
    assert r.transitions[0].new == "online" and r.unenrolled == ("d1",)
    r = store.apply([birth], NOW + 1)  # retained copy after a reconnect
    assert (r.accepted, r.duplicates, r.transitions) == (0, 1, ())
    d = store.device("d1")
    assert d is not None and d.summary.interval == 5
    assert d.summary.status == "online"


def test_rollups_and_retention_keep_the_numbers(store: SqliteStore) -> None:
    old = NOW - 8 * 86400  # past the 7-day raw retention
    base = old - old % 300
    cpus = [10.0, 20.0, 30.0, 60.0]
    store.apply([h(i + 1, base + 10 * i, cpu=c) for i, c in enumerate(cpus)], base + 50)
    store.apply([h(5, NOW, cpu=5.0)], NOW)
    assert store.rollup() == 5
    ru = {(r.bucket, r.metric): r for r in store.rollups("d1", 0)}
    cpu = ru[(base, "cpu.pct")]
    assert (cpu.n, cpu.min, cpu.avg, cpu.max) == (4, 10.0, 30.0, 60.0)
    assert ru[(base, "disk./.pct")].max == 120.0
    assert ru[(base, "temp.soc")].avg == 40.0
    # a late report for the same old bucket merges into the rollup exactly once
    store.apply([h(6, base + 100, cpu=40.0)], NOW)
    removed = store.prune(NOW)
    assert removed == 4  # raw rows stored more than 7 days ago; the two stored now stay
    assert [p.seq for p in store.health_history("d1", 0)] == [6, 5]
    # the serve loop's pass folds only what arrived before the current bucket began, so each
    # (device, bucket) group is merged about once: the late report waits for the next bucket
    cpu = {(r.bucket, r.metric): r for r in store.rollups("d1", 0)}[(base, "cpu.pct")]
    assert cpu.n == 4
    assert store.prune(NOW + 300) == 0
    cpu = {(r.bucket, r.metric): r for r in store.rollups("d1", 0)}[(base, "cpu.pct")]
    assert (cpu.n, cpu.min, cpu.avg, cpu.max) == (5, 10.0, 32.0, 60.0)
    assert store.prune(NOW + 300) == 0 and store.rollup() == 0  # idempotent


def test_rollups_fold_every_metric_and_numbers_only(store: SqliteStore) -> None:
    # one parse per report feeds every metric; a true, a string, null or an object where a
    # number belongs is no sample (true must not count as 1), and ints, negatives and
    # exponents are numbers
    base = NOW - NOW % 300
    bodies: list[dict[str, Any]] = [
        {
            "interval": 10,
            "cpu": {"pct": 12, "load1": 0.5},
            "mem": {"pct": 40.5, "swap_pct": -0.0},
            "procs": 80,
            "agent": {"rss": 1.5e1},
            "disk": {"/": {"pct": 50}, "/data": {"pct": 70.25}, "/odd": {"pct": "full"}},
            "temp": {"soc": 41, "board": True},
        },
        {
            "interval": 10,
            "cpu": {"pct": True, "load1": "high"},
            "mem": {"pct": None, "swap_pct": {"x": 1}},
            "procs": 90,
            "agent": {"rss": 16},
            "disk": {"/": {"pct": 60}, "/data": 5},
            "temp": {"soc": -5.5, "board": "n/a"},
        },
        {"interval": 10, "cpu": {"pct": 30.0}, "disk": {"/": {"pct": False}}, "temp": {}},
    ]
    store.apply(
        [E.make("d1", "b1", i + 1, "health", b, ts=base + 10 * i) for i, b in enumerate(bodies)],
        base + 40,
    )
    assert store.rollup() == 3
    got = {r.metric: (r.n, r.min, r.avg, r.max) for r in store.rollups("d1", 0)}
    assert got == {
        "cpu.pct": (2, 12.0, 21.0, 30.0),
        "cpu.load1": (1, 0.5, 0.5, 0.5),
        "mem.pct": (1, 40.5, 40.5, 40.5),
        "mem.swap_pct": (1, 0.0, 0.0, 0.0),
        "procs": (2, 80.0, 85.0, 90.0),
        "agent.rss": (2, 15.0, 15.5, 16.0),
        "disk./.pct": (2, 50.0, 55.0, 60.0),
        "disk./data.pct": (1, 70.25, 70.25, 70.25),
        "temp.soc": (2, -5.5, 17.75, 41.0),
    }
    coarse = {r.metric: (r.n, r.min, r.avg, r.max) for r in store.rollups("d1", 0, coarse=True)}
    assert coarse == got


def test_a_rollup_pass_can_stop_at_a_receive_time(store: SqliteStore) -> None:
    base = NOW - NOW % 300
    store.apply([h(1, base + 1, cpu=10.0), h(2, base + 31, cpu=30.0)], base + 40)
    store.apply([h(3, base + 61, cpu=50.0)], base + 70)
    assert store.rollup(received_before=base + 40) == 0
    assert store.rollup(received_before=base + 41) == 2
    cpu = {(r.bucket, r.metric): r for r in store.rollups("d1", 0)}[(base, "cpu.pct")]
    assert (cpu.n, cpu.max) == (2, 30.0)
    assert store.rollup(received_before=base + 71) == 1 and store.rollup() == 0
    cpu = {(r.bucket, r.metric): r for r in store.rollups("d1", 0)}[(base, "cpu.pct")]
    assert (cpu.n, cpu.min, cpu.avg, cpu.max) == (3, 10.0, 30.0, 50.0)


def test_rejects_table_is_bounded(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "r.db", rejects_keep=5)
    s.record_rejects([Reject(NOW + i, "t", "not_json", f"#{i}", "d1") for i in range(12)])
    recent = s.recent_rejects(100)
    assert [r.detail for r in recent] == [f"#{i}" for i in range(11, 6, -1)]
    assert s.reject_counts() == {"not_json": 12}
    assert s.ingest_stats("d1").rejected == 12
    s.close()


def test_polls_drive_liveness_of_agentless_devices(store: SqliteStore) -> None:
    inv = {"source": "snmp", "hardware": {"vendor": "Hikvision", "model": "DS-2CD"}, "packages": []}
    store.record_poll("cam-1", NOW, "ok", inventory=inv, health={"interval": 60, "uptime": 5})
    for i in range(1, 4):
        store.record_poll("cam-1", NOW + 60 * i, "timeout", detail="no response")
    store.record_poll("cam-1", NOW + 300, "ok")
    steps = [(t.new, t.reason) for t in store.transitions("cam-1")]
    assert steps == [
        ("online", "poll_ok"),
        ("stale", "poll_failed"),
        ("offline", "poll_failed"),
        ("online", "poll_ok"),
    ]
    d = store.device("cam-1")
    assert d is not None and d.summary.source == "snmp" and d.summary.vendor == "Hikvision"
    assert store.current_inventory("cam-1") == inv
    with pytest.raises(Exception, match="outcome 'maybe'"):
        store.record_poll("cam-1", NOW, "maybe")


def test_device_queries_by_status_and_tag(store: SqliteStore) -> None:
    store.ensure_device("d1", tags={"district": "north"}, enrolled=True)
    store.ensure_device("d1", tags={"site": "s1"})
    store.ensure_device("d2", tags={"district": "south"}, simulated=True, criticality=0.8)
    store.apply([h(1, NOW)], NOW)
    assert [d.device_id for d in store.devices(tags={"district": "north"})] == ["d1"]
    assert store.devices(tags={"district": "north"})[0].tags == {"district": "north", "site": "s1"}
    assert [d.device_id for d in store.devices(status="online")] == ["d1"]
    assert [d.device_id for d in store.devices(status="unknown")] == ["d2"]
    assert store.devices(status="unknown")[0].simulated
    assert store.unenrolled() == []
    assert store.status_counts()["online"] == 1


def test_locked_database_is_a_clear_error_and_nothing_half_stored(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "l.db", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreBusyError, match="locked"):
        s.apply([h(1, NOW)], NOW)
    other.execute("ROLLBACK")
    other.close()
    assert s.apply([h(1, NOW)], NOW).accepted == 1
    s.close()


def test_full_disk_is_a_clear_error_without_corruption(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "f.db")
    s.apply([h(1, NOW)], NOW)
    pages = s.conn.execute("PRAGMA page_count").fetchone()[0]
    s.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL after two more pages
    big = [h(i, NOW + i, cpu=float(i)) for i in range(2, 3000)]
    with pytest.raises(StoreFullError, match="full"):
        s.apply(big, NOW)
    assert s.ingest_stats("d1").accepted == 1  # the failed batch left nothing behind
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s.conn.execute("PRAGMA max_page_count = 1073741823")
    assert s.apply(big, NOW).accepted == len(big)  # space is back: the same batch goes in
    s.close()


def test_sweep_uses_each_devices_interval(store: SqliteStore) -> None:
    store.apply([h(1, NOW, dev="fast")], NOW)  # interval 10
    slow = E.make("slow", "b", 1, "health", {"interval": 60}, ts=NOW)
    store.apply([slow], NOW)
    out = store.sweep_liveness(NOW + 40)
    assert [(t.device_id, t.new, t.ts) for t in out] == [("fast", "offline", NOW + 30)]
    assert store.sweep_liveness(NOW + 40) == []


def test_reports_keep_status_since_and_bring_a_silent_device_back(store: SqliteStore) -> None:
    store.apply([h(1, NOW)], NOW)
    store.apply([h(2, NOW + 10)], NOW + 10)  # online stays online: status_since unchanged
    d = store.device("d1")
    assert d is not None and (d.summary.status, d.summary.status_since) == ("online", NOW)
    assert [t.new for t in store.sweep_liveness(NOW + 60)] == ["offline"]
    store.apply([h(3, NOW + 70)], NOW + 70)  # a report after silence: the row moves back
    d = store.device("d1")
    assert d is not None and (d.summary.status, d.summary.status_since) == ("online", NOW + 70)
    assert store.devices(status="online")[0].device_id == "d1"
    assert [t.new for t in store.transitions("d1")] == ["online", "offline", "online"]


def test_will_of_a_known_device_is_kept_against_late_reports(store: SqliteStore) -> None:
    store.apply([h(1, NOW)], NOW)  # the device exists, online
    will = E.make("d1", "b1", 0, "state", {"state": "offline", "reason": "will"}, ts=NOW - 5)
    store.apply([will], NOW + 1)
    store.apply([h(2, NOW + 2)], NOW + 2)  # late report of the same boot
    d = store.device("d1")
    assert d is not None and d.summary.status == "offline"
    birth = E.make("d1", "b1", 0, "state", {"state": "online", "reason": "birth"}, ts=NOW + 3)
    store.apply([birth], NOW + 3)
    assert [t.reason for t in store.transitions("d1")] == ["report", "will", "birth"]


def _database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database made by an older dunewatch: the schema as of `version`, no data yet."""
    from collector.store.migrations import MIGRATIONS

    conn = sqlite3.connect(path, isolation_level=None)
    for _, script in MIGRATIONS[:version]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version={version}")
    return conn


def test_version_1_database_is_migrated_with_its_latest_health(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    conn = _database_at(db, 1)
    conn.execute("INSERT INTO devices (device_id, status) VALUES ('d1', 'online'), ('d2', 'stale')")
    old = h(7, NOW).encode().decode()
    conn.execute(
        "INSERT INTO health (device_id, ts, received, boot_id, seq, msg) VALUES (?, ?, ?, ?, ?, ?)",
        ("d1", NOW, NOW, "b1", 7, old),
    )
    conn.execute(
        "INSERT INTO health_latest (device_id, ts, received, boot_id, seq, msg) "
        "VALUES ('d1', ?, ?, 'b1', 7, ?), ('d2', ?, ?, 'b1', 3, ?)",
        (NOW, NOW, old, NOW - 9, NOW - 9, h(3, NOW - 9, dev="d2").encode().decode()),
    )
    conn.close()
    s = SqliteStore(db)
    assert s.schema_version() == 4
    assert s.latest_health("d1") == h(7, NOW).body
    assert s.latest_health("d2") == h(3, 0, dev="d2").body  # kept though history had lost it
    assert [p.seq for p in s.health_history("d1", 0)] == [7]  # not duplicated
    s.close()


def test_retention_keeps_each_devices_latest_health(store: SqliteStore) -> None:
    old = NOW - 30 * 86400
    store.apply([h(1, old, dev="quiet")], old)  # a device silent for a month
    store.apply([h(1, old), h(2, old + 10)], old)
    store.apply([h(3, NOW)], NOW)
    assert store.prune(NOW) == 2  # d1's old rows go; quiet's only report stays
    assert store.latest_health("quiet") == h(1, 0, dev="quiet").body
    assert [p.seq for p in store.health_history("d1", 0)] == [3]
    # and the latest pointer only moves forward in agent time
    store.apply([h(9, NOW - 100)], NOW)
    assert store.latest_health("d1") == h(3, 0).body


def test_drop_event_credits_the_boot_it_names(store: SqliteStore) -> None:
    # boot b1 lost 2..3 while the broker was away; the agent restarted (boot b2) and then
    # reported the drop from its persistent outbox: the loss belongs to b1, not to b2
    store.apply([h(1, NOW), h(4, NOW + 3)], NOW)
    assert store.ingest_stats("d1").gap == 2
    drop = E.make(
        "d1",
        "b2",
        1,
        "event",
        {"type": "outbox_drop", "count": 2, "first_seq": 2, "last_seq": 3, "boot": "b1"},
        ts=NOW + 5,
    )
    store.apply([drop, h(2, NOW + 6, boot="b2")], NOW + 6)
    st = store.ingest_stats("d1")
    assert (st.gap, st.dropped) == (0, 2)


def test_hourly_rollups_when_configured(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "h.db", rollup_bucket=3600)
    hour = NOW - NOW % 3600
    # one report every 5 minutes for an hour, then the first of the next hour
    s.apply([h(i + 1, hour + 300 * i, cpu=float(i)) for i in range(13)], hour + 3700)
    s.rollup()
    cpu = [r for r in s.rollups("d1", 0) if r.metric == "cpu.pct"]
    assert [(r.bucket, r.n, r.min, r.max) for r in cpu] == [
        (hour, 12, 0.0, 11.0),
        (hour + 3600, 1, 12.0, 12.0),
    ]
    s.close()


def test_both_rollup_tiers_hold_the_same_numbers(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "t.db")  # 5-minute and hourly tiers by default
    hour = NOW - NOW % 3600
    # one report every 5 minutes for an hour, then the first of the next hour
    s.apply([h(i + 1, hour + 300 * i, cpu=float(i)) for i in range(13)], hour + 3700)
    assert s.rollup() == 13
    fine = [r for r in s.rollups("d1", 0) if r.metric == "cpu.pct"]
    coarse = [r for r in s.rollups("d1", 0, coarse=True) if r.metric == "cpu.pct"]
    assert [(r.bucket, r.n) for r in fine] == [(hour + 300 * i, 1) for i in range(13)]
    assert [(r.bucket, r.n, r.min, r.avg, r.max) for r in coarse] == [
        (hour, 12, 0.0, 5.5, 11.0),
        (hour + 3600, 1, 12.0, 12.0, 12.0),
    ]
    # a late report merges into both tiers once
    s.apply([h(14, hour + 10, cpu=100.0)], hour + 3800)
    assert s.rollup() == 1 and s.rollup() == 0
    by_metric = {r.metric: r for r in s.rollups("d1", hour, coarse=True) if r.bucket == hour}
    assert (by_metric["cpu.pct"].n, by_metric["cpu.pct"].max) == (13, 100.0)
    assert by_metric["disk./.pct"].max == 200.0
    assert by_metric["temp.soc"].avg == 40.0
    s.close()


def _windows_from_fine_buckets(
    s: SqliteStore, dev: str, since: float, metrics: tuple[str, ...], over: float
) -> list[tuple[str, int, int, float, float]]:
    """What rollup_windows must answer, summed from the 5-minute tier bucket by bucket: the
    metrics with a report at or over `over` since the hour holding `since` began."""
    reached = {r.metric for r in s.rollups(dev, since - since % 3600) if r.max >= over}
    sums: dict[str, list[float]] = {}
    for r in s.rollups(dev, since):
        if any(fnmatch.fnmatchcase(r.metric, m) for m in metrics):
            n, o, total, peak = sums.setdefault(r.metric, [0, 0, 0.0, float("-inf")])
            over_n = r.n if r.avg * r.n >= over * r.n else 0
            sums[r.metric] = [n + r.n, o + over_n, total + r.avg * r.n, max(peak, r.max)]
    return [
        (m, int(n), int(o), round(total / n, 6), peak)
        for m, (n, o, total, peak) in sorted(sums.items())
        if m in reached
    ]


def test_rollup_windows_equal_the_fine_buckets_summed(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "w.db")
    hour = NOW - NOW % 3600 - 4 * 3600
    rnd = random.Random(5)
    # four hours, a report a minute: d1 always over 90 (hours settle over), d2 always under
    # (settle under), d3 anywhere (hours cross 90 and are read 5 minutes at a time)
    level = {"d1": lambda: rnd.uniform(91, 100), "d2": lambda: rnd.uniform(0, 40)}
    envs = [
        h(k + 1, hour + 60 * k, cpu=level.get(dev, lambda: rnd.uniform(40, 55))(), dev=dev)
        for dev in ("d1", "d2", "d3")
        for k in range(4 * 60)
    ]
    s.apply(envs, hour + 4 * 3600)
    s.rollup()
    metrics = ("cpu.pct", "disk.*.pct")
    for since in (hour, hour + 1, hour + 25 * 60, hour + 3600, hour + 3 * 3600 + 600, NOW):
        got = s.rollup_windows(["d1", "d2", "d3", "nobody"], since, metrics, 90.0)
        for dev in ("d1", "d2", "d3"):
            want = _windows_from_fine_buckets(s, dev, since, metrics, 90.0)
            have = [(w.metric, w.n, w.over, round(w.avg, 6), w.max) for w in got.get(dev, [])]
            assert have == want, (dev, since - hour)
        assert "nobody" not in got
    first = s.rollup_windows(["d1", "d2", "d3"], hour + 25 * 60, metrics, 90.0)
    by = {(w.device_id, w.metric): w for ws in first.values() for w in ws}
    assert by["d1", "cpu.pct"].over == by["d1", "cpu.pct"].n == 215  # from 25 min in
    assert ("d2", "cpu.pct") not in by  # never near 90: nothing to count
    assert by["d3", "disk./.pct"].over > 0  # disk is twice the cpu: 80..110
    crossing = [
        r for r in s.rollups("d3", hour, coarse=True) if r.metric == "disk./.pct" and r.min < 90
    ]
    assert crossing and all(r.max >= 90 for r in crossing)  # hours read 5 minutes at a time
    assert s.rollup_windows([], hour, metrics, 90.0) == {}
    s.close()


def test_saturation_rollups_are_fine_only_where_a_level_was_reached(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db")
    hour = NOW - NOW % 3600 - 3 * 3600
    # a report a minute: cpu 95 in the first hour, 20 in the second, 20 with one 99 in the third
    cpu = [95.0] * 60 + [20.0] * 60 + [20.0] * 30 + [99.0] + [20.0] * 29
    s.apply([h(k + 1, hour + 60 * k, cpu=v) for k, v in enumerate(cpu)], hour + 3 * 3600)
    s.apply([h(k + 1, hour + 60 * k, cpu=50.0, dev="calm") for k in range(180)], hour + 3 * 3600)
    s.rollup()
    levels = {"cpu.pct": 90.0, "disk.*.pct": 250}
    got = s.saturation_rollups(["d1", "calm", "nobody"], hour + 600, levels)
    assert list(got) == ["d1"]  # nothing of `calm` reached a level: no run to look for
    cpu_rows = [(r.bucket - hour, r.n, r.avg) for r in got["d1"] if r.metric == "cpu.pct"]
    fine = [(300.0 * k, 5, 95.0) for k in range(12)]  # the hour holding `since`, whole
    calm = [(3600.0, 60, 20.0)]  # no report reached 90: the hour in one row
    spiky = [(7200.0 + 300 * k, 5, 20.0) for k in range(12) if k != 6] + [(9000.0, 5, 35.8)]
    assert cpu_rows == sorted(fine + calm + spiky)
    # a metric that reached no level comes an hour at a time, beside the one that did
    disk = [(r.bucket - hour, r.n) for r in got["d1"] if r.metric == "disk./.pct"]
    assert disk == [(0.0, 60), (3600.0, 60), (7200.0, 60)]
    assert s.saturation_rollups(["d1"], hour, {}) == {}
    s.close()


def test_rollup_widths_belong_to_the_database(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    SqliteStore(db, rollup_bucket=600, coarse_bucket=7200).close()
    # an open that names no widths (an alert pass, a report) adopts the database's
    s = SqliteStore(db)
    assert (s.rollup_bucket, s.coarse_bucket) == (600.0, 7200.0)
    s.close()
    # one naming others is refused: buckets of two widths in one table are wrong figures
    with pytest.raises(StoreError, match="rollups are in 600 s and 7200 s buckets, asked for 300"):
        SqliteStore(db, rollup_bucket=300, coarse_bucket=3600)
    SqliteStore(db, rollup_bucket=600, coarse_bucket=7200).close()
    # a database no open has named widths for is read with the defaults, and not pinned
    fresh = tmp_path / "f.db"
    SqliteStore(fresh).close()
    s = SqliteStore(fresh, rollup_bucket=900)
    assert (s.rollup_bucket, s.coarse_bucket) == (900.0, 3600.0)
    s.close()


def test_each_rollup_tier_has_its_own_retention(tmp_path: Path) -> None:
    s = SqliteStore(
        tmp_path / "r.db", rollup_retention_days=30, coarse_retention_days=400, retention_days=7
    )
    ages = (10, 100, 500)  # days
    s.apply([h(i + 1, NOW - d * 86400) for i, d in enumerate(ages)], NOW)
    s.rollup()
    s.prune(NOW)

    def days(coarse: bool) -> set[int]:
        return {round((NOW - r.bucket) / 86400) for r in s.rollups("d1", 0, coarse=coarse)}

    assert days(coarse=False) == {10}  # the 5-minute tier: 30 days
    assert days(coarse=True) == {10, 100}  # the hourly tier: 400 days
    s.close()


def test_version_2_rollups_are_folded_into_the_coarse_tier(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    conn = _database_at(db, 2)
    hour = NOW - NOW % 3600
    conn.executemany(
        "INSERT INTO rollups (device_id, bucket, metric, n, min, max, sum) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("d1", hour, "cpu.pct", 2, 1.0, 3.0, 4.0),
            ("d1", hour + 300, "cpu.pct", 1, 9.0, 9.0, 9.0),
            ("d1", hour + 3600, "cpu.pct", 1, 5.0, 5.0, 5.0),
        ],
    )
    conn.close()
    s = SqliteStore(db)
    assert s.schema_version() == 4
    coarse = [(r.bucket, r.n, r.min, r.avg, r.max) for r in s.rollups("d1", 0, coarse=True)]
    assert coarse == [(hour, 3, 1.0, 13.0 / 3, 9.0), (hour + 3600, 1, 5.0, 5.0, 5.0)]
    assert len(s.rollups("d1", 0)) == 3  # the fine tier is left as it was
    s.close()


def test_rollup_in_chunks_equals_rollup_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.store.sqlite as sqlite_store

    envs = [h(i + 1, NOW + 97 * i, cpu=float(i % 7), dev=f"d{i % 3}") for i in range(40)]
    stores = []
    # groups merged per transaction, and reports grouped per read phase
    for chunk, read in ((sqlite_store.ROLLUP_CHUNK, sqlite_store.ROLLUP_READ_MAX), (3, 7)):
        monkeypatch.setattr(sqlite_store, "ROLLUP_CHUNK", chunk)
        monkeypatch.setattr(sqlite_store, "ROLLUP_READ_MAX", read)
        s = SqliteStore(tmp_path / f"c{chunk}.db")
        for e in envs:  # one transaction per report: ids 1..40
            s.apply([e], NOW)
        assert s.rollup() == 40 and s.rollup() == 0
        stores.append(s)
    for coarse in (False, True):
        whole, chunked = (
            [s.rollups(d, 0, coarse=coarse) for d in ("d0", "d1", "d2")] for s in stores
        )
        assert whole == chunked and all(whole)
    for s in stores:
        s.close()


def test_a_failing_rollup_raises_a_store_error(store: SqliteStore) -> None:
    # the serve loop catches StoreError and goes on; a bare sqlite3 error would end it
    store.apply([h(1, NOW)], NOW)
    store.conn.execute("DROP VIEW health_latest")
    store.conn.execute("ALTER TABLE health RENAME TO health_moved")
    with pytest.raises(StoreError, match="no such table: health"):
        store.rollup()


def _fleet_reports() -> list[E.Envelope]:
    return [h(i + 1, NOW + 97 * i, cpu=float(i % 7), dev=f"d{i % 3}") for i in range(40)]


def _all_rollups(s: SqliteStore) -> list[list[Any]]:
    return [s.rollups(d, 0, coarse=c) for c in (False, True) for d in ("d0", "d1", "d2")]


def test_a_pass_cut_short_resumes_without_counting_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.store.sqlite as sqlite_store

    ref = SqliteStore(tmp_path / "ref.db")
    ref.apply(_fleet_reports(), NOW)
    assert ref.rollup() == 40
    monkeypatch.setattr(sqlite_store, "ROLLUP_CHUNK", 4)  # several merge steps
    s = SqliteStore(tmp_path / "cut.db")
    s.apply(_fleet_reports(), NOW)
    real_write = SqliteStore._write
    calls = []

    @contextlib.contextmanager
    def dying_write(self: SqliteStore) -> Iterator[sqlite3.Connection]:
        calls.append(1)
        if len(calls) == 3:  # the process dies before its third merge step
            raise StoreError("killed")
        with real_write(self) as conn:
            yield conn

    monkeypatch.setattr(SqliteStore, "_write", dying_write)
    with pytest.raises(StoreError, match="killed"):
        s.rollup()
    monkeypatch.setattr(SqliteStore, "_write", real_write)
    s.close()
    s = SqliteStore(tmp_path / "cut.db")  # a new process: only the database remembers
    progress = s._rollup_progress()
    assert progress is not None and progress.key is not None and s._rolled_id() == 0
    assert _all_rollups(s) != _all_rollups(ref)  # half merged
    assert s.rollup() == 40 and s.rollup() == 0
    assert _all_rollups(s) == _all_rollups(ref)
    assert s._rollup_progress() is None
    s.close()
    ref.close()


def test_two_processes_rolling_up_at_once_count_each_report_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.store.sqlite as sqlite_store

    ref = SqliteStore(tmp_path / "ref.db")
    ref.apply(_fleet_reports(), NOW)
    ref.rollup()
    monkeypatch.setattr(sqlite_store, "ROLLUP_CHUNK", 4)
    a = SqliteStore(tmp_path / "both.db")
    a.apply(_fleet_reports(), NOW)
    b = SqliteStore(tmp_path / "both.db")
    real_merge = SqliteStore._merge_groups
    raced = []

    def merge_after_the_other(self: SqliteStore, pass_: Any) -> bool:
        if self is a and not raced:  # a has grouped the range; b rolls it all up first
            raced.append(b.rollup())
        return real_merge(self, pass_)

    monkeypatch.setattr(SqliteStore, "_merge_groups", merge_after_the_other)
    assert a.rollup() == 0 and raced == [40]
    assert _all_rollups(a) == _all_rollups(ref)
    for s in (a, b, ref):
        s.close()


# one step of a random history: a batch of reports (device, seq, ts offset), a poll, a prune
_step = st.one_of(
    st.tuples(
        st.just("batch"),
        st.lists(
            st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.integers(1, 12), st.integers(-5, 40)),
            min_size=1,
            max_size=6,
        ),
    ),
    st.tuples(st.just("poll"), st.sampled_from(["d1", "cam"]), st.integers(-5, 40)),
    st.tuples(st.just("prune"), st.integers(0, 40)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=1, max_size=10), since=st.integers(-5, 40))
def test_health_history_along_the_chain_equals_a_scan_of_the_table(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]], since: int
) -> None:
    # raw history has no (device, ts) index: each row points to its device's previous one.
    # Whatever arrives (several reports of a device per batch, duplicates, agent time going
    # backwards, polled health, retention cuts), the chain must find what a full scan finds.
    day = 86400.0
    s = SqliteStore(tmp_path_factory.mktemp("chain") / "c.db", retention_days=1)
    try:
        clock = NOW
        for step in steps:
            clock += 1
            if step[0] == "batch":
                s.apply([h(seq, NOW + off * day / 10, dev=d) for d, seq, off in step[1]], clock)
            elif step[0] == "poll":
                s.record_poll(step[1], NOW + step[2] * day / 10, "ok", health={"interval": 60})
            else:
                clock += step[1] * day / 10
                s.prune(clock)
        lo = NOW + since * day / 10
        for dev in ("d1", "d2", "d3", "cam", "nobody"):
            scan = s.conn.execute(
                "SELECT seq, ts FROM health WHERE device_id = ? AND ts >= ? ORDER BY ts, seq",
                (dev, lo),
            ).fetchall()
            assert [(p.seq, p.ts) for p in s.health_history(dev, lo)] == [tuple(r) for r in scan]
        assert not s.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = 'health'"
        ).fetchall()
    finally:
        s.close()


def test_version_3_history_stays_readable_until_retention_retires_the_index(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    conn = _database_at(db, 3)
    conn.execute("INSERT INTO devices (device_id) VALUES ('d1'), ('d2')")
    rows = [("d1", 1), ("d2", 1), ("d1", 2), ("d1", 3), ("d2", 2)]
    for dev, seq in rows:
        conn.execute(
            "INSERT INTO health (device_id, ts, received, boot_id, seq, msg) "
            "VALUES (?, ?, ?, 'b1', ?, ?)",
            (dev, NOW + seq, NOW + seq, seq, h(seq, NOW + seq, dev=dev).encode().decode()),
        )
    conn.close()
    s = SqliteStore(db)  # no row is rewritten: reports before this schema are not chained
    assert s.schema_version() == 4
    chained = "SELECT count(*) FROM health WHERE prev_id IS NOT NULL"
    assert s.conn.execute(chained).fetchone() == (0,)
    assert [p.seq for p in s.health_history("d1", 0)] == [1, 2, 3]
    assert [p.seq for p in s.health_history("d2", 0)] == [1, 2]
    s.apply([h(4, NOW + 4), h(3, NOW + 3, dev="d2")], NOW + 5)  # the chains go on
    assert [p.seq for p in s.health_history("d1", 0)] == [1, 2, 3, 4]
    assert [p.seq for p in s.health_history("d2", NOW + 2)] == [2, 3]

    def index() -> list[Any]:
        return s.conn.execute(
            "SELECT name FROM sqlite_master WHERE name = 'idx_health_device_ts'"
        ).fetchall()

    # older reports are read through the old index until retention has removed them
    assert index()
    s.prune(NOW + 5)
    assert index()
    s.prune(NOW + 9 * 86400)
    assert not index()
    assert [p.seq for p in s.health_history("d1", 0)] == [4]  # each device's latest is kept
    assert [p.seq for p in s.health_history("d2", 0)] == [3]
    s.close()


def test_slim_health_envelopes_store_what_full_ones_do(tmp_path: Path) -> None:
    # ingest drops all but HEALTH_BODY_KEYS of a validated report's body before its batch; the
    # store, given the raw payloads, must end up with the same rows either way
    from collector.ingest.mqtt import slim_health

    body = {
        "interval": 15,
        "cpu": {"pct": 12.5},
        "disk": {"/": {"pct": 40}},
        "agent": {"version": "1.4.2", "rss": 15.8},
    }
    envs = [E.make("d1", "b1", i, "health", body, ts=NOW + i) for i in (1, 2, 4)]
    envs.append(E.make("d2", "b9", 1, "health", {"interval": 60}, ts=NOW))
    raws = [e.encode() for e in envs]
    slim = [slim_health(e) for e in envs]
    assert dict(slim[0].body) == {"interval": 15, "agent": {"version": "1.4.2", "rss": 15.8}}

    def stored(envelopes: list[E.Envelope], name: str) -> list[Any]:
        s = SqliteStore(tmp_path / name)
        try:
            r = s.apply(envelopes, NOW + 5, raws)
            rows = s.conn.execute(
                "SELECT device_id, status, interval, agent_version, health_id, health_ts, "
                "health_last FROM devices ORDER BY device_id"
            ).fetchall()
            msgs = s.conn.execute("SELECT id, msg, prev_id FROM health ORDER BY id").fetchall()
            return [r, rows, msgs, s.latest_health("d1"), s.ingest_stats("d1")]
        finally:
            s.close()

    full, lean = stored(envs, "full.db"), stored(slim, "slim.db")
    assert lean == full
    assert full[1][0][2:4] == (15.0, "1.4.2")  # interval and agent version from the body
