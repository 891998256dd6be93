"""Outbox on a real SQLite file: order, persistence, bounds, drop accounting, corruption."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent import envelope as wire
from agent.outbox import Outbox


def env(
    seq: int, kind: str = wire.KIND_HEALTH, ts: float = 1_800_000_000.0, boot: str = "b1"
) -> wire.Envelope:
    body: dict[str, object]
    if kind == wire.KIND_HEALTH:
        body = {"interval": 1, "pad": "x" * 400}
    elif kind == wire.KIND_INVENTORY:
        body = {"hash": f"h{seq}", "packages": []}
    else:
        body = {"type": "agent_error", "detail": "d"}
    return wire.make("gw-1", boot, seq, kind, body, ts=ts)


def put(ob: Outbox, e: wire.Envelope) -> None:
    ob.put(e, wire.topic("dunewatch", e.device_id, e.kind), retain=wire.RETAIN[e.kind])


def test_fifo_and_ack_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ob = Outbox(path, max_age=1e12)
    assert ob.open() is None
    for seq in range(1, 6):
        put(ob, env(seq))
    rows = ob.pending(3)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert wire.parse(rows[0].payload, rows[0].topic).seq == 1
    ob.ack([rows[0].id, rows[1].id])
    ob.close()

    again = Outbox(path, max_age=1e12)
    again.open()
    assert again.depth == 3
    assert [r.seq for r in again.pending(10)] == [3, 4, 5]
    assert [r.seq for r in again.pending(10, after=rows[2].id)] == [4, 5]
    again.close()


def test_full_outbox_drops_oldest_health_never_inventory_or_events(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_bytes=16 * 1024, max_age=1e12)
    ob.open()
    put(ob, env(1, wire.KIND_INVENTORY))
    put(ob, env(2, wire.KIND_EVENT))
    for seq in range(3, 200):
        put(ob, env(seq, ts=1_800_000_000.0 + seq))
    assert ob.bytes <= 16 * 1024
    kinds = [r.kind for r in ob.pending(1000)]
    assert kinds[:2] == [wire.KIND_INVENTORY, wire.KIND_EVENT]
    kept = [r.seq for r in ob.pending(1000) if r.kind == wire.KIND_HEALTH]
    assert kept == list(range(kept[0], 200))  # newest kept, contiguous
    drops = ob.take_drops()
    assert len(drops) == 1
    d = drops[0]
    assert (d.boot, d.first_seq, d.last_seq, d.count) == ("b1", 3, kept[0] - 1, kept[0] - 3)
    assert (d.first_ts, d.last_ts) == (1_800_000_003.0, 1_800_000_000.0 + kept[0] - 1)
    assert "over 16384 bytes" in d.reason
    assert ob.take_drops() == []  # taken once
    ob.close()


def test_drops_are_accounted_per_boot_and_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    ob = Outbox(path, max_bytes=16 * 1024, max_age=1e12)
    ob.open()
    for seq in range(1, 30):
        put(ob, env(seq, boot="old"))
    ob.close()
    ob = Outbox(path, max_bytes=16 * 1024, max_age=1e12)
    ob.open()
    for seq in range(1, 40):
        put(ob, env(seq, boot="new"))
    ob.close()
    ob = Outbox(path, max_bytes=16 * 1024, max_age=1e12)
    ob.open()
    drops = {d.boot: d for d in ob.take_drops()}
    assert drops["old"].first_seq == 1 and drops["old"].count == drops["old"].last_seq
    remaining = {(r.boot, r.seq) for r in ob.pending(1000)}
    for boot, d in drops.items():
        for seq in range(d.first_seq, d.last_seq + 1):
            assert (boot, seq) not in remaining
    ob.close()


def test_age_bound_drops_old_health(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_age=3600)
    ob.open()
    put(ob, env(1, ts=1000.0))
    put(ob, env(2, wire.KIND_INVENTORY, ts=1000.0))
    ob.enforce(now=1000.0 + 7200)
    assert [r.seq for r in ob.pending(10)] == [2]
    (d,) = ob.take_drops()
    assert d.count == 1 and "older than 3600 s" in d.reason
    ob.close()


def test_corrupt_file_is_moved_aside_and_a_fresh_outbox_started(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database" * 100)
    ob = Outbox(path)
    detail = ob.open()
    assert detail is not None and "corrupt" in detail
    aside = list(tmp_path.glob("outbox.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    put(ob, env(1))
    assert ob.depth == 1
    ob.close()


def test_truncated_database_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ob = Outbox(path)
    ob.open()
    for seq in range(1, 200):
        put(ob, env(seq))
    ob.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ob = Outbox(path)
    assert ob.open() is not None
    ob.close()
