"""Persistent outbox: every sequenced message waits here until the broker has acknowledged it.

stdlib sqlite3 in WAL mode with synchronous=FULL: each committed message survives an agent crash
*and* a power cut (WAL with NORMAL would only lose the last transactions on power loss, but an
edge device reports every 10 s, so two fsyncs per interval are cheap and we keep the stronger
guarantee). Bounded by bytes and by age; when a bound is hit the oldest *health* reports go first,
never state, inventory or events, and each drop is accounted so an `outbox_drop` event can say
exactly which seqs (per boot) and which time range were lost.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.envelope import KIND_HEALTH, Envelope
from agent.errors import AgentError

log = logging.getLogger("dunewatch.agent.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    retain INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS drops (
    boot TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxError(AgentError):
    """The outbox file cannot be opened or written (disk full, permissions)."""


@dataclass(frozen=True)
class Row:
    """One stored message, ready to publish as-is (replay sends the original bytes)."""

    id: int
    boot: str
    seq: int
    ts: float
    kind: str
    topic: str
    retain: bool
    payload: bytes


@dataclass(frozen=True)
class Drop:
    """Health reports of one boot that were discarded because a bound was hit."""

    boot: str
    count: int
    first_seq: int
    last_seq: int
    first_ts: float
    last_ts: float
    reason: str


class Outbox:
    """FIFO of messages on disk. Use from one thread only (sqlite3 connections are thread-bound)."""

    def __init__(self, path: Path, max_bytes: int = 4 * 1024 * 1024, max_age: float = 7 * 86400.0):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._db: sqlite3.Connection | None = None
        self._bytes = 0
        self._count = 0

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> str | None:
        """Open (creating) the database; a corrupt file is moved aside and a fresh one started.

        Returns a description of the reset when that happened, for an `outbox_reset` event.
        """
        try:
            self._open()
            return None
        except sqlite3.DatabaseError as exc:
            self.close()
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                self.path.rename(aside)
            except OSError as ren:
                raise OutboxError(
                    f"outbox {self.path} is corrupt ({exc}) and cannot be moved ({ren})"
                ) from None
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.rename(aside.with_name(aside.name + suffix))
            log.error(
                "outbox %s was corrupt (%s); moved to %s, starting a fresh one",
                self.path,
                exc,
                aside,
            )
            try:
                self._open()
            except sqlite3.Error as exc2:
                raise OutboxError(f"cannot create outbox {self.path}: {exc2}") from None
            return f"outbox database was corrupt ({exc}); moved to {aside.name}"
        except sqlite3.Error as exc:
            self.close()
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from None

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        self._db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # the queue is small and read in order: 256 KiB of page cache instead of 2 MiB of RSS
        db.execute("PRAGMA cache_size=-256")
        # a torn or garbage file shows up here, not at the first insert
        ok = db.execute("PRAGMA quick_check").fetchone()
        if ok is None or ok[0] != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {ok[0] if ok else 'no result'}")
        db.executescript(_SCHEMA)
        cnt, size = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages"
        ).fetchone()
        self._count, self._bytes = int(cnt), int(size)

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError("outbox is not open")
        return self._db

    # -- queue -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, env: Envelope, topic: str, retain: bool = False) -> None:
        """Store one encoded envelope, then enforce the bounds (which may drop old health)."""
        self.put_encoded(env.boot_id, env.seq, env.ts, env.kind, topic, env.encode(), retain)

    def put_encoded(
        self,
        boot_id: str,
        seq: int,
        ts: float,
        kind: str,
        topic: str,
        payload: builtins.bytes,
        retain: bool = False,
    ) -> None:
        """Store a payload that is already an encoded envelope with these fields (see put)."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT INTO messages (boot, seq, ts, kind, topic, retain, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (boot_id, seq, ts, kind, topic, int(retain), payload),
                )
                self._count += 1
                self._bytes += len(payload)
                self._enforce(time.time())
        except sqlite3.Error as exc:
            self._recount()
            raise OutboxError(f"cannot write outbox {self.path}: {exc}") from None

    def enforce(self, now: float | None = None) -> None:
        """Apply the age bound without a new message (called every tick while offline)."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self._enforce(time.time() if now is None else now)
        except sqlite3.Error as exc:
            self._recount()
            raise OutboxError(f"cannot write outbox {self.path}: {exc}") from None

    def _enforce(self, now: float) -> None:
        db = self.db
        old = db.execute(
            "SELECT id, boot, seq, ts, length(payload) FROM messages"
            " WHERE kind = ? AND ts < ? ORDER BY id",
            (KIND_HEALTH, now - self.max_age),
        ).fetchall()
        if old:
            self._drop(old, f"older than {int(self.max_age)} s")
        if self._bytes <= self.max_bytes:
            return
        victims = []
        excess = self._bytes - self.max_bytes
        cur = db.execute(
            "SELECT id, boot, seq, ts, length(payload) FROM messages WHERE kind = ? ORDER BY id",
            (KIND_HEALTH,),
        )
        for row in cur:
            victims.append(row)
            excess -= row[4]
            if excess <= 0:
                break
        cur.close()
        if victims:
            self._drop(victims, f"outbox over {self.max_bytes} bytes")
        # Only state-less kinds remain over the bound: kept anyway, they are never dropped.

    def _drop(self, rows: list[tuple[int, str, int, float, int]], reason: str) -> None:
        db = self.db
        db.executemany("DELETE FROM messages WHERE id = ?", [(r[0],) for r in rows])
        self._count -= len(rows)
        self._bytes -= sum(r[4] for r in rows)
        by_boot: dict[str, list[tuple[int, str, int, float, int]]] = {}
        for r in rows:
            by_boot.setdefault(r[1], []).append(r)
        for boot, group in by_boot.items():
            seqs = [r[2] for r in group]
            tss = [r[3] for r in group]
            db.execute(
                "INSERT INTO drops (boot, count, first_seq, last_seq, first_ts, last_ts, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(boot) DO UPDATE SET"
                " count = count + excluded.count,"
                " first_seq = min(first_seq, excluded.first_seq),"
                " last_seq = max(last_seq, excluded.last_seq),"
                " first_ts = min(first_ts, excluded.first_ts),"
                " last_ts = max(last_ts, excluded.last_ts),"
                " reason = excluded.reason",
                (boot, len(group), min(seqs), max(seqs), min(tss), max(tss), reason),
            )
        log.warning("outbox: dropped %d health report(s) (%s)", len(rows), reason)

    def pending(self, limit: int, skip: Iterable[int] = (), after: int = 0) -> list[Row]:
        """Oldest messages first, leaving out ids already in flight."""
        skip_set = set(skip)
        rows = self.db.execute(
            "SELECT id, boot, seq, ts, kind, topic, retain, payload FROM messages"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit + len(skip_set)),
        ).fetchall()
        out = [Row(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), bytes(r[7])) for r in rows]
        return [r for r in out if r.id not in skip_set][:limit]

    def ack(self, ids: Iterable[int]) -> None:
        """Remove delivered messages (one transaction for a batch of PUBACKs)."""
        id_list = [(i,) for i in ids]
        if not id_list:
            return
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for (i,) in id_list:
                    row = self.db.execute(
                        "DELETE FROM messages WHERE id = ? RETURNING length(payload)", (i,)
                    ).fetchone()
                    if row is not None:
                        self._count -= 1
                        self._bytes -= int(row[0])
        except sqlite3.Error as exc:
            self._recount()
            raise OutboxError(f"cannot write outbox {self.path}: {exc}") from None

    def take_drops(self) -> list[Drop]:
        """Pending drop accounting, removed from the store; the caller turns it into events."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            rows = self.db.execute(
                "SELECT boot, count, first_seq, last_seq, first_ts, last_ts, reason FROM drops"
            ).fetchall()
            self.db.execute("DELETE FROM drops")
        return [Drop(*r) for r in rows]

    def restore_drops(self, drops: Iterable[Drop]) -> None:
        """Put drop accounting back (the event carrying it could not be stored)."""
        with self.db:
            for d in drops:
                self.db.execute(
                    "INSERT OR REPLACE INTO drops VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (d.boot, d.count, d.first_seq, d.last_seq, d.first_ts, d.last_ts, d.reason),
                )

    def has_drops(self) -> bool:
        return self.db.execute("SELECT 1 FROM drops LIMIT 1").fetchone() is not None

    def _recount(self) -> None:
        try:
            cnt, size = self.db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages"
            ).fetchone()
            self._count, self._bytes = int(cnt), int(size)
        except sqlite3.Error:
            pass
