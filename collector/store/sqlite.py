"""SQLite implementation of `Store`, through sqlite-utils, in WAL mode with versioned migrations.

The hot path (`apply`) uses the connection's `executemany` inside one `BEGIN IMMEDIATE`
transaction per batch: SQLite has one writer, so batching is what makes it fast, and taking the
write lock first makes the read-modify-write of sequence state safe when several ingest worker
processes share one database file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlite_utils import Database

from agent.envelope import (
    EVENT_DROP,
    KIND_EVENT,
    KIND_HEALTH,
    KIND_INVENTORY,
    KIND_STATE,
    STATE_ONLINE,
    Envelope,
    loads,
)
from collector.liveness import REASON_REPORT, LivenessPolicy, on_poll, on_state
from collector.store.interface import (
    POLL_OK,
    POLL_OUTCOMES,
    SOURCE_AGENT,
    SOURCE_SNMP,
    STATUS_ONLINE,
    STATUS_UNKNOWN,
    STATUSES,
    ApplyResult,
    DeviceDetail,
    DeviceSummary,
    HealthHeadline,
    HealthPoint,
    IngestStats,
    Reject,
    Rollup,
    RollupWindow,
    StoreBusyError,
    StoreError,
    StoreFullError,
    Transition,
)
from collector.store.migrations import MIGRATIONS

DAY = 86400.0
# A stream keeps at most this many disjoint covered seq ranges; past it, the oldest hole is
# written off as lost (a seq arriving for it later is counted as a duplicate).
MAX_RANGES = 256
# Page cache per connection. A batch of a city-scale live stream (hundreds of devices, each
# reporting once) touches a page or more of the devices, streams and counters tables
# per message: with SQLite's default 2 MiB the pages its reads loaded were evicted before its
# writes, and read again (bench: 65 -> 54 us per message with 64 MiB). Filled only as used.
DEFAULT_CACHE_MB = 64
_POLL_BOOT = "poll"


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _ranges_text(ranges: list[list[int]]) -> str:
    return "[" + ",".join(f"[{a},{b}]" for a, b in ranges) + "]"


def _parse_ranges(text: str) -> list[list[int]]:
    if text.count("[") == 2:  # the usual case, one contiguous range: skip the JSON parser
        a, b = text[2:-2].split(",")
        return [[int(a), int(b)]]
    return [list(map(int, r)) for r in json.loads(text)]


def stored_json(text: str) -> Any:
    """JSON text read back from the database, decoded as `json.loads` would (through orjson
    where the envelope module knows the two agree: inventories are large)."""
    return loads(text.encode())


def inventory_hash(body: Mapping[str, Any]) -> str:
    """The agent's own hash when it sent one, else sha256 of the canonical JSON of the body."""
    given = body.get("hash")
    if isinstance(given, str) and given:
        return given
    rest = {k: v for k, v in body.items() if k != "hash"}
    return hashlib.sha256(
        json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


@dataclass(slots=True)
class _Stream:
    """Covered seqs of one (device, boot) as sorted disjoint [lo, hi] ranges, plus lost holes."""

    ranges: list[list[int]] = field(default_factory=list)
    lost: int = 0
    first_received: float = 0.0
    start_missing: int = 0

    @classmethod
    def stored(cls, covered: str, lost: int, first_received: float) -> _Stream:
        """A stream as read from its row; what it misses now is the baseline of the batch."""
        stream = cls(_parse_ranges(covered), int(lost), float(first_received))
        stream.start_missing = stream.missing()
        return stream

    def contains(self, seq: int) -> bool:
        ranges = self.ranges
        if not ranges or seq > ranges[-1][1]:
            return False  # the usual case: a seq past everything seen
        for lo, hi in ranges:
            if seq < lo:
                return False
            if seq <= hi:
                return True
        return False

    def cover(self, lo: int, hi: int) -> int:
        """Mark lo..hi covered; return how many of them were not covered before."""
        ranges = self.ranges
        if lo == hi and ranges and ranges[-1][1] == lo - 1:
            ranges[-1][1] = lo  # the usual case: the next seq extends the last range
            return 1
        new = hi - lo + 1
        merged: list[list[int]] = []
        placed = False
        for a, b in self.ranges:
            if b < lo - 1:
                merged.append([a, b])
            elif a > hi + 1:
                if not placed:
                    merged.append([lo, hi])
                    placed = True
                merged.append([a, b])
            else:
                overlap = min(b, hi) - max(a, lo) + 1
                if overlap > 0:
                    new -= overlap
                lo, hi = min(a, lo), max(b, hi)
        if not placed:
            merged.append([lo, hi])
        self.ranges = merged
        while len(self.ranges) > MAX_RANGES:
            first, second = self.ranges[0], self.ranges[1]
            self.lost += second[0] - first[1] - 1
            self.ranges[0:2] = [[first[0], second[1]]]
        return new

    @property
    def max_seq(self) -> int:
        return self.ranges[-1][1] if self.ranges else 0

    def missing(self) -> int:
        ranges = self.ranges
        if len(ranges) == 1:
            a, b = ranges[0]
            return self.lost + a - 1
        covered = sum(b - a + 1 for a, b in ranges)
        return self.lost + self.max_seq - covered


@dataclass(slots=True)
class _Dev:
    """A device's row as read at the start of a batch, then updated in memory."""

    status: str = STATUS_UNKNOWN
    status_since: float | None = None
    stored_status: str | None = None  # status and status_since as read
    stored_since: float | None = None
    enrolled: bool = False
    last_state: str | None = None  # 'boot|state|reason|ts' of the last applied state message
    exists: bool = False
    touched: bool = False
    agent_version: str | None = None
    interval: float | None = None
    boot_id: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    stored_interval: float | None = None
    stored_boot: str | None = None
    stored_last_state: str | None = None
    health: tuple[float | None, int | None] = (None, None)  # newest health of the batch: ts, id
    last_health: int | None = None  # id of the device's last stored health row (chain head)

    def moved(self) -> bool:
        return self.status != self.stored_status or self.status_since != self.stored_since

    def only_seen(self) -> bool:
        """Nothing but liveness and last_seen changed: a plain UPDATE is enough."""
        return (
            self.exists
            and self.agent_version is None
            and self.vendor is None
            and self.model is None
            and self.firmware is None
            and (self.interval is None or self.interval == self.stored_interval)
            and (self.boot_id is None or self.boot_id == self.stored_boot)
            and self.last_state == self.stored_last_state
        )


class SqliteStore:
    """The fleet database; one instance per process (each ingest worker opens its own)."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention_days: float = 7.0,
        rollup_bucket: float | None = None,
        rollup_retention_days: float = 30.0,
        coarse_bucket: float | None = None,
        coarse_retention_days: float = 400.0,
        rejects_keep: int = 1000,
        busy_timeout: float = 10.0,
        liveness: LivenessPolicy | None = None,
        autocheckpoint: bool = True,
        cache_mb: int = DEFAULT_CACHE_MB,
    ) -> None:
        if cache_mb < 1:
            raise StoreError("store: cache_mb must be at least 1")
        if retention_days <= 0 or rollup_retention_days <= 0 or coarse_retention_days <= 0:
            raise StoreError("store: retention periods must be positive")
        asked = (rollup_bucket, coarse_bucket)
        fine = 300.0 if rollup_bucket is None else rollup_bucket
        coarse = max(3600.0, fine) if coarse_bucket is None else coarse_bucket
        if fine <= 0 or coarse <= 0:
            raise StoreError("store: rollup buckets must be positive seconds")
        if coarse % fine:
            raise StoreError("store: coarse_bucket must be a multiple of rollup_bucket")
        if rejects_keep < 1:
            raise StoreError("store: rejects_keep must be at least 1")
        self.path = Path(path)
        self.retention = retention_days * DAY
        self.rollup_bucket = float(fine)
        self.rollup_retention = rollup_retention_days * DAY
        self.coarse_bucket = float(coarse)
        self.coarse_retention = coarse_retention_days * DAY
        self.rejects_keep = rejects_keep
        self.liveness = liveness or LivenessPolicy()
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self.db = Database(self.conn)
            self.db.enable_wal()
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")
            if not autocheckpoint:
                # ingest workers leave WAL checkpoints to the serve loop (checkpoint()), so
                # copying pages back into the database never sits in an ingest commit
                self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self._migrate()
            self._settle_widths(*asked)
            self._retire_history_index()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    # -- plumbing ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._write():
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            for step, sql in MIGRATIONS:
                if step > version:
                    for stmt in sql.split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                    self.conn.execute(f"PRAGMA user_version={step}")
            latest = MIGRATIONS[-1][0]
            if version > latest:
                raise StoreError(
                    f"{self.path}: database schema version {version} is newer than this "
                    f"dunewatch ({latest})",
                    tip="upgrade dunewatch or use another --db",
                )

    def _chain_from(self) -> int | None:
        """The first chained health id while reports stored before schema 4 remain (they are
        read through the old (device_id, ts) index); None once that index is gone."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'chain_from'").fetchone()
        return None if row is None else int(row[0])

    def _retire_history_index(self) -> None:
        """Drop the old (device_id, ts) index once no unchained report is left but the latest
        ones devices point to (read through the device row): a new database drops it at once,
        an upgraded one when retention has removed its older reports."""
        start = self._chain_from()
        if start is None:
            return
        left = self.conn.execute(
            "SELECT 1 FROM health WHERE id < ? AND id NOT IN "
            "(SELECT health_id FROM devices WHERE health_id IS NOT NULL) LIMIT 1",
            (start,),
        ).fetchone()
        if left is None:
            with self._write() as conn:
                conn.execute("DROP INDEX IF EXISTS idx_health_device_ts")
                conn.execute("DELETE FROM meta WHERE key = 'chain_from'")

    def _settle_widths(self, fine: float | None, coarse: float | None) -> None:
        """The rollup widths belong to the data: recorded by the first open that names them
        (the serve loop, from its config); an open that names none (alert passes, reports,
        queries) adopts them, and one naming others is refused, since buckets of two widths
        in one table make every figure read from them wrong."""
        get = "SELECT value FROM meta WHERE key = 'rollup_widths'"
        row = self.conn.execute(get).fetchone()
        if row is None and (fine is not None or coarse is not None):
            with self._write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('rollup_widths', ?)",
                    (json.dumps([self.rollup_bucket, self.coarse_bucket]),),
                )
            row = self.conn.execute(get).fetchone()  # another process may have been first
        if row is None:
            return
        stored = [float(x) for x in json.loads(row[0])]
        if (fine is not None and float(fine) != stored[0]) or (
            coarse is not None and float(coarse) != stored[1]
        ):
            raise StoreError(
                f"{self.path}: rollups are in {stored[0]:g} s and {stored[1]:g} s buckets, "
                f"asked for {self.rollup_bucket:g} s and {self.coarse_bucket:g} s",
                tip="keep rollup_bucket_seconds and coarse_rollup_bucket_seconds as they were "
                "when the database was created, or use another database",
            )
        self.rollup_bucket, self.coarse_bucket = stored

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front; rolled back on error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from None
            raise

    def checkpoint(self) -> None:
        """Move committed WAL pages into the database file without blocking writers."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # -- writes -----------------------------------------------------------------------------

    def apply(
        self,
        envelopes: Sequence[Envelope],
        received: float,
        raw: Sequence[bytes | str] | None = None,
    ) -> ApplyResult:
        if not envelopes:
            return ApplyResult()
        if raw is not None and len(raw) != len(envelopes):
            raise StoreError("apply: raw payloads must align with envelopes")
        with self._write():
            return self._apply(envelopes, received, raw)

    def _load_devices(
        self, ids: set[str], streams: dict[tuple[str, str], _Stream]
    ) -> dict[str, _Dev]:
        """One query for every device of the batch (the id list goes in as one JSON array),
        with the stream of each device's last boot: the boot almost every report continues, so
        `streams` then needs looking up only for the other boots."""
        out: dict[str, _Dev] = {}
        rows = self.conn.execute(
            "SELECT d.device_id, d.status, d.status_since, d.enrolled, d.last_state, d.interval, "
            "d.boot_id, s.covered, s.lost, s.first_received, d.health_last "
            "FROM devices AS d LEFT JOIN streams AS s "
            "ON s.device_id = d.device_id AND s.boot_id = d.boot_id "
            "WHERE d.device_id IN (SELECT value FROM json_each(?))",
            (_dumps(list(ids)),),
        )
        for row in rows:
            dev_id, boot = row[0], row[6]
            out[dev_id] = _Dev(
                status=row[1],
                status_since=row[2],
                stored_status=row[1],
                stored_since=row[2],
                enrolled=bool(row[3]),
                last_state=row[4],
                exists=True,
                stored_interval=row[5],
                stored_boot=boot,
                stored_last_state=row[4],
                last_health=row[10],
            )
            if row[7] is not None:
                streams[(dev_id, boot)] = _Stream.stored(row[7], row[8], row[9])
        for dev_id in ids:
            if dev_id not in out:
                out[dev_id] = _Dev()
        return out

    def _load_streams(
        self,
        keys: set[tuple[str, str]],
        received: float,
        out: dict[tuple[str, str], _Stream],
        devs: Mapping[str, _Dev],
    ) -> dict[tuple[str, str], _Stream]:
        """The streams of `keys` not read with their device yet (`out` has those)."""
        # the stream of a device's last boot came with the device: absent there, it is new
        rest = [k for k in keys if k not in out and devs[k[0]].stored_boot != k[1]]
        if rest:
            # one primary-key lookup per (device, boot) pair: two IN lists would make SQLite
            # probe every device with every boot id of the batch (quadratic once boot ids differ)
            rows = self.conn.execute(
                "SELECT s.device_id, s.boot_id, s.covered, s.lost, s.first_received "
                "FROM json_each(?) AS k CROSS JOIN streams AS s "
                "WHERE s.device_id = json_extract(k.value, '$[0]') "
                "AND s.boot_id = json_extract(k.value, '$[1]')",
                (_dumps(rest),),
            )
            for dev_id, boot, covered, lost, first in rows:
                out[(dev_id, boot)] = _Stream.stored(covered, lost, first)
        for key in keys:
            if key not in out:
                out[key] = _Stream(first_received=received)
        if len(out) > len(keys):  # a device's last boot that this batch does not continue
            for key in [k for k in out if k not in keys]:
                del out[key]
        return out

    def _apply(
        self,
        envelopes: Sequence[Envelope],
        received: float,
        raw: Sequence[bytes | str] | None,
    ) -> ApplyResult:
        conn = self.conn
        ids: set[str] = set()
        keys: set[tuple[str, str]] = set()
        for e in envelopes:
            ids.add(e.device_id)
            if e.seq > 0:
                keys.add((e.device_id, e.boot_id))
            if e.kind == KIND_EVENT and _is_drop(e):
                keys.add((e.device_id, _drop_boot(e)))
        streams: dict[tuple[str, str], _Stream] = {}
        devs = self._load_devices(ids, streams)
        self._load_streams(keys, received, streams, devs)
        stats: dict[str, list[int]] = {}  # accepted, duplicate, dropped
        health_rows: list[tuple[Any, ...]] = []
        next_id = 0  # the id of the batch's next health row, once the first one came
        latest: dict[str, tuple[float, int]] = {}
        inv_latest: dict[str, tuple[Envelope, str]] = {}
        snapshots: dict[str, tuple[float, str]] = {}
        inv_hist: dict[tuple[str, str], list[float]] = {}
        event_rows: list[tuple[Any, ...]] = []
        transitions: list[Transition] = []
        accepted = duplicates = dropped = 0

        def move(dev_id: str, dev: _Dev, new: str, reason: str) -> None:
            if dev.status != new:
                transitions.append(Transition(dev_id, received, dev.status, new, reason))
                dev.status, dev.status_since = new, received

        for i, env in enumerate(envelopes):
            dev_id = env.device_id
            dev = devs[dev_id]
            st = stats.get(dev_id)
            if st is None:
                st = stats[dev_id] = [0, 0, 0]
            seq = env.seq
            if seq > 0:
                ranges = streams[(dev_id, env.boot_id)].ranges
                if ranges and ranges[-1][1] == seq - 1:
                    ranges[-1][1] = seq  # the usual case: the next seq of the stream
                else:
                    stream = streams[(dev_id, env.boot_id)]
                    if stream.contains(seq):
                        st[1] += 1
                        duplicates += 1
                        continue
                    stream.cover(seq, seq)
            else:
                state_key = "|".join(
                    (
                        env.boot_id,
                        str(env.body.get("state")),
                        str(env.body.get("reason")),
                        repr(env.ts),
                    )
                )
                if state_key == dev.last_state:
                    st[1] += 1  # the same state message again (retained re-delivery)
                    duplicates += 1
                    continue
            st[0] += 1
            accepted += 1
            dev.touched = True
            body = env.body
            kind = env.kind
            if kind == KIND_HEALTH:
                if raw is None:
                    msg = env.encode().decode()
                else:
                    r = raw[i]
                    msg = r.decode() if isinstance(r, bytes) else r
                if not next_id:
                    # we hold the write lock: ids continue from the current maximum, in order
                    next_id = 1 + int(
                        conn.execute("SELECT coalesce(max(id), 0) FROM health").fetchone()[0]
                    )
                # each row points to its device's previous one: the chain health_history walks
                health_rows.append(
                    (next_id, dev_id, env.ts, received, env.boot_id, env.seq, msg, dev.last_health)
                )
                dev.last_health = next_id
                prev = latest.get(dev_id)
                if prev is None or env.ts >= prev[0]:
                    latest[dev_id] = (env.ts, next_id)
                next_id += 1
                iv = body.get("interval")
                if isinstance(iv, (int, float)) and not isinstance(iv, bool):
                    dev.interval = float(iv)
                agent = body.get("agent")
                if isinstance(agent, dict) and isinstance(agent.get("version"), str):
                    dev.agent_version = agent["version"]
            elif kind == KIND_INVENTORY:
                h = inventory_hash(body)
                if h not in snapshots:
                    snapshots[h] = (received, _dumps(body))
                span = inv_hist.setdefault((dev_id, h), [env.ts, env.ts])
                span[0], span[1] = min(span[0], env.ts), max(span[1], env.ts)
                prev_inv = inv_latest.get(dev_id)
                if prev_inv is None or env.ts >= prev_inv[0].ts:
                    inv_latest[dev_id] = (env, h)
                    _summarize_inventory(dev, body)
            elif kind == KIND_EVENT:
                event_rows.append(
                    (
                        dev_id,
                        env.ts,
                        received,
                        env.boot_id,
                        env.seq,
                        str(body.get("type")),
                        _dumps(body),
                    )
                )
                if _is_drop(env):
                    first, last = int(body["first_seq"]), int(body["last_seq"])
                    if 1 <= first <= last:
                        # the outbox outlives restarts: the drop may belong to an earlier boot
                        n = streams[(dev_id, _drop_boot(env))].cover(first, last)
                        st[2] += n
                        dropped += n
            if kind == KIND_STATE:
                dev.last_state = state_key
                dev.boot_id = env.boot_id
                online = body.get("state") == STATE_ONLINE
                if online:
                    iv = body.get("interval")
                    if isinstance(iv, (int, float)) and not isinstance(iv, bool) and iv > 0:
                        dev.interval = float(iv)
                    if isinstance(body.get("agent_version"), str):
                        dev.agent_version = body["agent_version"]
                new, reason = on_state(online, str(body.get("reason", "")))
                move(dev_id, dev, new, reason)
            else:
                dev.boot_id = env.boot_id
                # after a will/shutdown, only a birth (or a new boot) brings the device back:
                # a report of the same boot that arrives late must not
                if dev.status != STATUS_ONLINE and not (dev.last_state or "").startswith(
                    f"{env.boot_id}|offline|"
                ):
                    move(dev_id, dev, STATUS_ONLINE, REASON_REPORT)

        if health_rows:
            conn.executemany(
                "INSERT INTO health (id, device_id, ts, received, boot_id, seq, msg, prev_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                health_rows,
            )
            for d, point in latest.items():
                devs[d].health = point
        if inv_latest:
            self._write_inventory(
                snapshots,
                [(d, h, e.ts) for d, (e, h) in inv_latest.items()],
                [(d, h, span[0], span[1]) for (d, h), span in inv_hist.items()],
                received,
                SOURCE_AGENT,
            )
        if event_rows:
            conn.executemany(
                "INSERT INTO events (device_id, ts, received, boot_id, seq, type, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                event_rows,
            )
        gap_delta: dict[str, int] = {}
        if streams:
            rows = []
            for (dev_id, boot), stream in streams.items():
                gap_delta[dev_id] = (
                    gap_delta.get(dev_id, 0) + stream.missing() - stream.start_missing
                )
                rows.append(
                    (
                        dev_id,
                        boot,
                        _ranges_text(stream.ranges),
                        stream.lost,
                        stream.max_seq,
                        stream.first_received,
                        received,
                    )
                )
            conn.executemany(
                "INSERT INTO streams (device_id, boot_id, covered, lost, max_seq, "
                "first_received, last_received) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (device_id, boot_id) DO UPDATE SET covered = excluded.covered, "
                "lost = excluded.lost, max_seq = excluded.max_seq, "
                "last_received = excluded.last_received",
                rows,
            )
        unenrolled = tuple(d for d, dev in devs.items() if not dev.exists and dev.touched)
        touched = [(d, dev) for d, dev in devs.items() if dev.touched]
        seen = [(d, dev) for d, dev in touched if dev.only_seen()]
        # status is indexed: setting it, even to the same value, rewrites its index entry, so
        # the usual report (the device stays online) leaves it out of the SET list
        conn.executemany(
            f"UPDATE devices SET last_seen = ?1, {_latest_set('?2', '?3')}, "
            "health_last = coalesce(?5, health_last) WHERE device_id = ?4",
            [(received, *dev.health, d, dev.last_health) for d, dev in seen if not dev.moved()],
        )
        conn.executemany(
            "UPDATE devices SET status = ?1, status_since = ?2, last_seen = ?3, "
            f"{_latest_set('?4', '?5')}, health_last = coalesce(?7, health_last) "
            "WHERE device_id = ?6",
            [
                (dev.status, dev.status_since, received, *dev.health, d, dev.last_health)
                for d, dev in seen
                if dev.moved()
            ],
        )
        conn.executemany(
            "INSERT INTO devices (device_id, status, status_since, first_seen, last_seen, source, "
            "agent_version, interval, boot_id, last_state, vendor, model, firmware, health_ts, "
            "health_id, health_last) VALUES (?, ?, ?, ?, ?, 'agent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET "
            f"{_latest_set('excluded.health_ts', 'excluded.health_id')}, "
            "health_last = coalesce(excluded.health_last, devices.health_last), "
            "status = excluded.status, "
            "status_since = excluded.status_since, "
            "first_seen = coalesce(devices.first_seen, excluded.first_seen), "
            "last_seen = excluded.last_seen, "
            "agent_version = coalesce(excluded.agent_version, devices.agent_version), "
            "interval = coalesce(excluded.interval, devices.interval), "
            "boot_id = coalesce(excluded.boot_id, devices.boot_id), "
            "last_state = coalesce(excluded.last_state, devices.last_state), "
            "vendor = coalesce(excluded.vendor, devices.vendor), "
            "model = coalesce(excluded.model, devices.model), "
            "firmware = coalesce(excluded.firmware, devices.firmware)",
            [
                (
                    d,
                    dev.status,
                    dev.status_since,
                    received,
                    received,
                    dev.agent_version,
                    dev.interval,
                    dev.boot_id,
                    dev.last_state,
                    dev.vendor,
                    dev.model,
                    dev.firmware,
                    *dev.health,
                    dev.last_health,
                )
                for d, dev in touched
                if not dev.only_seen()
            ],
        )
        gaps = sum(gap_delta.values())
        conn.executemany(
            "INSERT INTO ingest_stats (device_id, accepted, duplicate, gap, dropped) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "accepted = accepted + excluded.accepted, duplicate = duplicate + excluded.duplicate, "
            "gap = gap + excluded.gap, dropped = dropped + excluded.dropped",
            [(d, s[0], s[1], gap_delta.get(d, 0), s[2]) for d, s in stats.items()],
        )
        self._insert_transitions(transitions)
        return ApplyResult(
            accepted=accepted,
            duplicates=duplicates,
            gaps=gaps,
            dropped=dropped,
            unenrolled=unenrolled,
            transitions=tuple(transitions),
        )

    def _write_inventory(
        self,
        snapshots: Mapping[str, tuple[float, str]],
        current: Sequence[tuple[str, str, float]],
        history: Sequence[tuple[str, str, float, float]],
        received: float,
        source: str,
    ) -> None:
        conn = self.conn
        conn.executemany(
            "INSERT OR IGNORE INTO inventory_snapshots (hash, first_seen, body) VALUES (?, ?, ?)",
            [(h, t, b) for h, (t, b) in snapshots.items()],
        )
        conn.executemany(
            "INSERT INTO inventory_current (device_id, hash, ts, received, source) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET hash = excluded.hash, "
            "ts = excluded.ts, received = excluded.received, source = excluded.source "
            "WHERE excluded.ts >= inventory_current.ts",
            [(d, h, ts, received, source) for d, h, ts in current],
        )
        conn.executemany(
            "INSERT INTO inventory_history (device_id, hash, first_ts, last_ts) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (device_id, hash) DO UPDATE SET "
            "first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
            history,
        )

    def _insert_transitions(self, transitions: Sequence[Transition]) -> None:
        if transitions:
            self.conn.executemany(
                "INSERT INTO transitions (device_id, ts, old, new, reason) VALUES (?, ?, ?, ?, ?)",
                [(t.device_id, t.ts, t.old, t.new, t.reason) for t in transitions],
            )

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        with self._write():
            for t in transitions:
                self.conn.execute(
                    "UPDATE devices SET status = ?, status_since = ? WHERE device_id = ?",
                    (t.new, t.ts, t.device_id),
                )
            self._insert_transitions(transitions)

    def record_rejects(self, rejects: Sequence[Reject]) -> None:
        if not rejects:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO rejects (ts, topic, reason, detail, device_id, size) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r.ts, r.topic, r.reason, r.detail[:500], r.device_id, r.size) for r in rejects],
            )
            counts: dict[str, int] = {}
            per_dev: dict[str, int] = {}
            for r in rejects:
                counts[r.reason] = counts.get(r.reason, 0) + 1
                if r.device_id:
                    per_dev[r.device_id] = per_dev.get(r.device_id, 0) + 1
            conn.executemany(
                "INSERT INTO reject_counts (reason, n) VALUES (?, ?) "
                "ON CONFLICT (reason) DO UPDATE SET n = n + excluded.n",
                list(counts.items()),
            )
            conn.executemany(
                "INSERT INTO ingest_stats (device_id, rejected) VALUES (?, ?) "
                "ON CONFLICT (device_id) DO UPDATE SET rejected = rejected + excluded.rejected",
                list(per_dev.items()),
            )
            conn.execute(
                "DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - ?",
                (self.rejects_keep,),
            )

    def recent_rejects(self, limit: int = 100) -> list[Reject]:
        rows = self.conn.execute(
            "SELECT ts, topic, reason, detail, device_id, size FROM rejects "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Reject(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def reject_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT reason, n FROM reject_counts ORDER BY reason"))

    def record_poll(
        self,
        device_id: str,
        ts: float,
        outcome: str,
        *,
        health: Mapping[str, Any] | None = None,
        inventory: Mapping[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        if outcome not in POLL_OUTCOMES:
            raise StoreError(
                f"record_poll({device_id}): outcome {outcome!r} is not one of "
                f"{', '.join(POLL_OUTCOMES)}"
            )
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, poll_failures FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO devices (device_id, source, first_seen) VALUES (?, ?, ?)",
                    (device_id, SOURCE_SNMP, ts),
                )
                status, failures = STATUS_UNKNOWN, 0
            else:
                status, failures = row[0], int(row[1])
            ok = outcome == POLL_OK
            failures = 0 if ok else failures + 1
            new, reason = on_poll(ok, failures, self.liveness)
            dev = _Dev()
            if inventory is not None:
                h = inventory_hash(inventory)
                self._write_inventory(
                    {h: (ts, _dumps(inventory))},
                    [(device_id, h, ts)],
                    [(device_id, h, ts, ts)],
                    ts,
                    str(inventory.get("source", SOURCE_SNMP)),
                )
                _summarize_inventory(dev, inventory)
            if health is not None:
                msg = _dumps(
                    {
                        "v": 1,
                        "device": device_id,
                        "boot": _POLL_BOOT,
                        "seq": 0,
                        "ts": ts,
                        "kind": "health",
                        "body": dict(health),
                    }
                )
                cur = conn.execute(
                    "INSERT INTO health (device_id, ts, received, boot_id, seq, msg, prev_id) "
                    "VALUES (?1, ?2, ?2, ?3, 0, ?4, "
                    "(SELECT health_last FROM devices WHERE device_id = ?1))",
                    (device_id, ts, _POLL_BOOT, msg),
                )
                conn.execute(
                    f"UPDATE devices SET {_latest_set('?1', '?2')}, health_last = ?2 "
                    "WHERE device_id = ?3",
                    (ts, cur.lastrowid, device_id),
                )
            conn.execute(
                "INSERT INTO polls (device_id, ts, outcome, detail) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device_id) DO UPDATE SET ts = excluded.ts, "
                "outcome = excluded.outcome, detail = excluded.detail",
                (device_id, ts, outcome, detail[:500]),
            )
            conn.execute(
                "UPDATE devices SET poll_failures = ?, "
                "last_seen = CASE WHEN ? THEN max(coalesce(last_seen, 0), ?) ELSE last_seen END, "
                "vendor = coalesce(?, vendor), model = coalesce(?, model), "
                "firmware = coalesce(?, firmware) WHERE device_id = ?",
                (failures, ok, ts, dev.vendor, dev.model, dev.firmware, device_id),
            )
            if ok:
                conn.execute(
                    "INSERT INTO ingest_stats (device_id, accepted) VALUES (?, 1) "
                    "ON CONFLICT (device_id) DO UPDATE SET accepted = accepted + 1",
                    (device_id,),
                )
            if new != status:
                conn.execute(
                    "UPDATE devices SET status = ?, status_since = ? WHERE device_id = ?",
                    (new, ts, device_id),
                )
                self._insert_transitions([Transition(device_id, ts, status, new, reason)])

    def ensure_device(
        self,
        device_id: str,
        *,
        tags: Mapping[str, str] | None = None,
        enrolled: bool = False,
        source: str = SOURCE_AGENT,
        simulated: bool = False,
        criticality: float | None = None,
        interval: float | None = None,
    ) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT tags FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            merged = json.loads(row[0]) if row else {}
            merged.update(tags or {})
            if row is None:
                conn.execute(
                    "INSERT INTO devices (device_id, tags, enrolled, source, simulated, "
                    "criticality, interval) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        device_id,
                        _dumps(merged),
                        int(enrolled),
                        source,
                        int(simulated),
                        criticality,
                        interval,
                    ),
                )
            else:
                conn.execute(
                    "UPDATE devices SET tags = ?, enrolled = max(enrolled, ?), source = ?, "
                    "simulated = max(simulated, ?), criticality = coalesce(?, criticality), "
                    "interval = coalesce(?, interval) WHERE device_id = ?",
                    (
                        _dumps(merged),
                        int(enrolled),
                        source,
                        int(simulated),
                        criticality,
                        interval,
                        device_id,
                    ),
                )

    def sweep_liveness(self, now: float, policy: LivenessPolicy | None = None) -> list[Transition]:
        """Apply the silence rules to every online/stale device; store and return transitions."""
        pol = policy or self.liveness
        out: list[Transition] = []
        with self._write() as conn:
            rows = conn.execute(
                "SELECT device_id, status, last_seen, interval FROM devices "
                "WHERE status IN ('online', 'stale') AND last_seen IS NOT NULL "
                "AND last_seen < ? - ? * coalesce(interval, ?)",
                (now, pol.stale_after, pol.default_interval),
            ).fetchall()
            for dev_id, status, last_seen, interval in rows:
                new = pol.by_age(status, now - last_seen, interval)
                if new != status:
                    iv = interval if interval and interval > 0 else pol.default_interval
                    k = pol.offline_after if new == "offline" else pol.stale_after
                    when = min(now, last_seen + k * iv)
                    out.append(Transition(dev_id, when, status, new, "silent"))
            for t in out:
                conn.execute(
                    "UPDATE devices SET status = ?, status_since = ? WHERE device_id = ?",
                    (t.new, t.ts, t.device_id),
                )
            self._insert_transitions(out)
        return out

    # -- maintenance ------------------------------------------------------------------------

    def rollup(self, received_before: float | None = None) -> int:
        """Fold raw health rows not yet rolled up into both rollup tiers (min/avg/max per
        bucket); return the number of raw rows read.

        Each stored message is parsed once (a multi-path json_extract of the scalar metrics and
        the disk and temperature sections), where reading the `body` column once per metric
        parsed it about twenty times; the coarse tier is folded from the fine tier's groups.
        Up to ROLLUP_READ_MAX reports are grouped at once, without the write lock; the groups
        are merged ROLLUP_CHUNK at a time, so each write transaction is short.

        Merging a (device, bucket, metric) group costs about as much as reading a report, so a
        pass that sees one or two reports per group (every minute, at city scale) costs twice
        what one sees after a whole bucket: `received_before` lets the serve loop fold only
        what arrived before the current bucket began."""
        try:
            until = (
                None if received_before is None else self._last_id_received_before(received_before)
            )
            return self._rollup_steps(until)
        except sqlite3.Error as exc:  # the read phase runs outside _write()
            raise _translate(exc, self.path) from None

    def _rollup_steps(self, until: int | None) -> int:
        total = 0
        conn = self.conn
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rollup_groups (d TEXT, bucket REAL, m TEXT, "
            "n INTEGER, mn, mx, sm, PRIMARY KEY (d, bucket, m)) WITHOUT ROWID"
        )
        scalars = range(len(_ROLLUP_SCALARS))
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rollup_reports (d TEXT, bucket REAL, a TEXT, "
            + ", ".join(f"v{i}" for i in scalars)
            + ")"
        )
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rollup_scalars (d TEXT, bucket REAL, "
            + ", ".join(f"n{i}, mn{i}, mx{i}, sm{i}" for i in scalars)
            + ")"
        )
        while True:
            lo = self._rolled_id()
            started = self._rollup_progress()
            if started is not None and started.lo == lo:
                # a pass that stopped half way (crash, lock): finish its range, same widths
                pass_ = started
            else:
                n, hi = conn.execute(
                    "SELECT count(*), max(id) FROM "
                    "(SELECT id FROM health WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)",
                    (lo, _MAX_ID if until is None else until, ROLLUP_READ_MAX),
                ).fetchone()
                if not n:
                    return total
                pass_ = _RollupPass(lo, int(hi), self.rollup_bucket, self.coarse_bucket, None)
            # read phase: group the whole range in the connection's own temporary table, with
            # no write lock on the database
            conn.execute("DELETE FROM temp.rollup_groups")
            params = {"lo": pass_.lo, "hi": pass_.hi, "b": pass_.fine}
            for sql in _ROLLUP_GROUP:
                conn.execute(sql, params)
            # write phase: merge the groups in key order, ROLLUP_CHUNK per transaction; each
            # records how far it got, so a pass cut short resumes without counting twice
            if not self._merge_groups(pass_):
                continue  # another process moved the watermark meanwhile: start again
            conn.execute("DELETE FROM temp.rollup_groups")
            total += int(
                conn.execute(
                    "SELECT count(*) FROM health WHERE id > ? AND id <= ?", (pass_.lo, pass_.hi)
                ).fetchone()[0]
            )

    def _rollup_progress(self) -> _RollupPass | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'rollup_progress'").fetchone()
        if row is None:
            return None
        lo, hi, fine, coarse, key = json.loads(row[0])
        return _RollupPass(int(lo), int(hi), float(fine), float(coarse), _key(key))

    def _merge_groups(self, pass_: _RollupPass) -> bool:
        """Merge the grouped range into both tiers; False if another process got there first."""
        conn = self.conn
        key = pass_.key
        while True:
            with self._write():
                seen, rolled = self._rollup_progress(), self._rolled_id()
                if seen is not None and seen.lo != rolled:
                    seen = None  # left over from a range already done: not ours to follow
                if rolled != pass_.lo or (seen.key if seen else None) != key:
                    return False
                if seen is not None and seen.hi != pass_.hi:
                    return False  # another process's pass over a different range
                after = "" if key is None else "WHERE (d, bucket, m) > (?, ?, ?)"
                args: tuple[Any, ...] = () if key is None else key
                end = conn.execute(
                    f"SELECT d, bucket, m FROM temp.rollup_groups {after} "
                    "ORDER BY d, bucket, m LIMIT 1 OFFSET ?",
                    (*args, ROLLUP_CHUNK - 1),
                ).fetchone()
                where = [] if key is None else ["(d, bucket, m) > (?, ?, ?)"]
                if end is not None:
                    where.append("(d, bucket, m) <= (?, ?, ?)")
                    args = (*args, *end)
                cond = f"WHERE {' AND '.join(where)}" if where else "WHERE true"
                for table, source in (
                    (
                        "rollups",
                        f"SELECT d, bucket, m, n, mn, mx, sm FROM temp.rollup_groups {cond}",
                    ),
                    # not grouped per hour first: the upsert merges a group into the row an
                    # earlier one of the same hour made, and a pass (one bucket) seldom holds
                    # two, so the sort cost more than it saved (15.7 vs 16.9 us per report)
                    (
                        "rollups_coarse",
                        "SELECT d, CAST(bucket / ? AS INTEGER) * ?, m, n, mn, mx, sm "
                        f"FROM temp.rollup_groups {cond}",
                    ),
                ):
                    extra = (pass_.coarse, pass_.coarse) if table == "rollups_coarse" else ()
                    conn.execute(
                        f"INSERT INTO {table} (device_id, bucket, metric, n, min, max, sum) "
                        f"{source} "
                        "ON CONFLICT (device_id, bucket, metric) DO UPDATE SET "
                        f"n = n + excluded.n, min = min({table}.min, excluded.min), "
                        f"max = max({table}.max, excluded.max), sum = {table}.sum + excluded.sum",
                        (*extra, *args),
                    )
                if end is None:  # the last step: the watermark moves, the pass is done
                    conn.execute("DELETE FROM meta WHERE key = 'rollup_progress'")
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('rolled_id', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(pass_.hi),),
                    )
                    return True
                key = (str(end[0]), float(end[1]), str(end[2]))
                state = [pass_.lo, pass_.hi, pass_.fine, pass_.coarse, list(key)]
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('rollup_progress', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps(state),),
                )

    def prune(self, now: float) -> int:
        """Roll up what arrived before the current bucket began, then drop raw health past
        retention (never a row not yet rolled up) and rollups past theirs."""
        self.rollup(received_before=now - now % self.rollup_bucket)
        with self._write() as conn:
            cut = min(self._last_id_received_before(now - self.retention), self._rolled_id())
            cur = conn.execute(
                "DELETE FROM health WHERE id <= ? AND id NOT IN "
                "(SELECT health_id FROM devices WHERE health_id IS NOT NULL "
                "UNION ALL SELECT health_last FROM devices WHERE health_last IS NOT NULL)",
                (cut,),
            )
            removed = cur.rowcount
            self._relink_latest(cut)
            conn.execute("DELETE FROM rollups WHERE bucket < ?", (now - self.rollup_retention,))
            conn.execute(
                "DELETE FROM rollups_coarse WHERE bucket < ?", (now - self.coarse_retention,)
            )
            conn.execute("DELETE FROM events WHERE ts < ?", (now - self.retention,))
            conn.execute("DELETE FROM streams WHERE last_received < ?", (now - self.retention,))
        self._retire_history_index()
        return int(removed)

    def _relink_latest(self, cut: int) -> None:
        """Keep a latest report that retention spared on its device's chain: below the cut only
        the rows devices point to are left, so a device whose newest report in agent time is
        not its last arrival would otherwise lose it from its history at the first gap."""
        conn = self.conn
        rows = conn.execute(
            "SELECT health_id, health_last FROM devices "
            "WHERE health_id <= ? AND health_last != health_id",
            (cut,),
        ).fetchall()
        for latest, last in rows:
            end = conn.execute(
                "WITH RECURSIVE chain (id, prev) AS ("
                "SELECT id, prev_id FROM health WHERE id = ?1 UNION ALL "
                "SELECT h.id, h.prev_id FROM chain JOIN health AS h ON h.id = chain.prev "
                "WHERE chain.id > ?2) SELECT min(id) FROM chain",
                (last, latest),
            ).fetchone()[0]
            if end is not None and end > latest:
                conn.execute("UPDATE health SET prev_id = ? WHERE id = ?", (latest, end))

    def _rolled_id(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'rolled_id'").fetchone()
        return int(row[0]) if row else 0

    def _last_id_received_before(self, cutoff: float) -> int:
        """Largest health id stored before `cutoff`: ids grow with `received`, so bisect."""
        lo_hi = self.conn.execute("SELECT min(id), max(id) FROM health").fetchone()
        if lo_hi[0] is None:
            return 0
        lo, hi = int(lo_hi[0]) - 1, int(lo_hi[1])  # invariant: answer in [lo, hi]
        q = "SELECT received FROM health WHERE id >= ? ORDER BY id LIMIT 1"
        while lo < hi:
            mid = (lo + hi + 1) // 2
            row = self.conn.execute(q, (mid,)).fetchone()
            if row is not None and row[0] < cutoff:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- reads ------------------------------------------------------------------------------

    _SUMMARY_COLS = (
        "device_id, status, tags, last_seen, first_seen, source, enrolled, simulated, "
        "criticality, agent_version, interval, vendor, model, firmware, status_since"
    )

    @staticmethod
    def _summary(
        row: Sequence[Any], tags: dict[str, dict[str, str]] | None = None
    ) -> DeviceSummary:
        """`tags` memoizes decoded tag sets across one read: a fleet repeats a few hundred."""
        if tags is None:
            decoded = json.loads(row[2])
        else:
            known = tags.get(row[2])
            if known is None:
                known = tags[row[2]] = json.loads(row[2])
            decoded = dict(known)  # each summary owns its dict
        return DeviceSummary(
            device_id=row[0],
            status=row[1],
            tags=decoded,
            last_seen=row[3],
            first_seen=row[4],
            source=row[5],
            enrolled=bool(row[6]),
            simulated=bool(row[7]),
            criticality=row[8],
            agent_version=row[9],
            interval=row[10],
            vendor=row[11],
            model=row[12],
            firmware=row[13],
            status_since=row[14],
        )

    def devices(
        self, *, status: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[DeviceSummary]:
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        for k, v in (tags or {}).items():
            where.append("json_extract(tags, ?) = ?")
            params += ['$."' + k.replace('"', '""') + '"', v]
        sql = f"SELECT {self._SUMMARY_COLS} FROM devices"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY device_id"
        memo: dict[str, dict[str, str]] = {}
        return [self._summary(r, memo) for r in self.conn.execute(sql, params)]

    def device(self, device_id: str) -> DeviceDetail | None:
        row = self.conn.execute(
            f"SELECT {self._SUMMARY_COLS}, boot_id FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        if row is None:
            return None
        h = self.conn.execute(
            "SELECT ts, body FROM health_latest WHERE device_id = ?", (device_id,)
        ).fetchone()
        inv = self.conn.execute(
            "SELECT c.hash, c.ts, s.body FROM inventory_current c "
            "JOIN inventory_snapshots s ON s.hash = c.hash WHERE c.device_id = ?",
            (device_id,),
        ).fetchone()
        poll = self.conn.execute(
            "SELECT ts, outcome, detail FROM polls WHERE device_id = ?", (device_id,)
        ).fetchone()
        trans = self.transitions(device_id)[-20:]
        return DeviceDetail(
            summary=self._summary(row),
            latest_health=json.loads(h[1]) if h else None,
            health_ts=h[0] if h else None,
            inventory=json.loads(inv[2]) if inv else None,
            inventory_hash=inv[0] if inv else None,
            inventory_ts=inv[1] if inv else None,
            stats=self.ingest_stats(device_id),
            transitions=tuple(trans),
            boot_id=row[15],
            last_poll={"ts": poll[0], "outcome": poll[1], "detail": poll[2]} if poll else None,
        )

    def current_inventory(self, device_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT s.body FROM inventory_current c JOIN inventory_snapshots s "
            "ON s.hash = c.hash WHERE c.device_id = ?",
            (device_id,),
        ).fetchone()
        return dict(stored_json(row[0])) if row else None

    def latest_health(self, device_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT body FROM health_latest WHERE device_id = ?", (device_id,)
        ).fetchone()
        return dict(stored_json(row[0])) if row else None

    def health_history(
        self, device_id: str, since: float, until: float | None = None
    ) -> list[HealthPoint]:
        # newest first along the device's chain (ordered by arrival, not agent time, so the
        # walk goes to the chain's end: retention bounds it); reports stored before schema 4
        # through the old index while it lasts
        start = self._chain_from()
        unchained = (
            "" if start is None else "UNION SELECT id FROM health WHERE device_id = ?1 AND id < ?4 "
        )
        rows = self.conn.execute(
            "WITH RECURSIVE chain (id) AS ("
            "SELECT health_last FROM devices WHERE device_id = ?1 "
            "UNION ALL SELECT h.prev_id FROM chain JOIN health AS h ON h.id = chain.id) "
            "SELECT h.device_id, h.ts, h.boot_id, h.seq, h.body FROM health AS h "
            "WHERE h.id IN (SELECT id FROM chain "
            # retention keeps the latest report past the chain's cut end
            f"UNION SELECT health_id FROM devices WHERE device_id = ?1 {unchained}) "
            "AND h.ts >= ?2 AND h.ts <= ?3 ORDER BY h.ts, h.seq",
            (device_id, since, until if until is not None else float("inf"))
            + (() if start is None else (start,)),
        )
        return [HealthPoint(r[0], r[1], r[2], r[3], stored_json(r[4])) for r in rows]

    def current_inventories(self, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._bodies(
            "SELECT c.device_id, s.body FROM inventory_current c JOIN inventory_snapshots s "
            "ON s.hash = c.hash WHERE c.device_id IN (SELECT value FROM json_each(?))",
            device_ids,
        )

    def _bodies(self, sql: str, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(sql, (_dumps(list(device_ids)),))
        return {d: dict(stored_json(body)) for d, body in rows}

    def rollup_windows(
        self,
        device_ids: Sequence[str],
        since: float,
        metrics: Sequence[str],
        over: float,
    ) -> dict[str, list[RollupWindow]]:
        """Whole coarse buckets settle most of a window without their fine buckets: when a
        bucket's lowest report is at or over `over`, every fine bucket in it is; when its highest
        is under, none is. Only the window's first, partial coarse bucket and the coarse buckets
        that cross `over` are read bucket by bucket (a 6-hour window: ~6 coarse rows per metric
        instead of 72 fine ones), and only for metrics that reached `over` at all: the others,
        most of a fleet, would count no report over it."""
        if not device_ids or not metrics:
            return {}
        coarse = self.coarse_bucket
        params: dict[str, Any] = {
            "ids": _dumps(list(device_ids)),
            "since": since,
            "hfloor": since - since % coarse,  # the coarse bucket holding `since`
            "hlo": -(-since // coarse) * coarse,  # first coarse bucket wholly in the window
            "over": over,
            "coarse": coarse,
        }
        params.update({f"m{i}": m for i, m in enumerate(metrics)})
        fine_over = "CASE WHEN f.sum >= :over * f.n THEN f.n ELSE 0 END"
        rows = self.conn.execute(
            "WITH hours AS MATERIALIZED (SELECT device_id AS d, metric AS m, bucket AS b, n, "
            "min AS mn, max AS mx, sum AS sm, "
            "max(max) OVER (PARTITION BY device_id, metric) AS peak FROM rollups_coarse "
            "WHERE device_id IN (SELECT value FROM json_each(:ids)) AND bucket >= :hfloor "
            f"AND {_globs('metric', metrics)}), "
            "live AS MATERIALIZED (SELECT DISTINCT d, m FROM hours WHERE peak >= :over) "
            "SELECT d, m, sum(n), sum(o), sum(sm), max(mx) FROM ("
            "SELECT d, m, n, CASE WHEN mn >= :over THEN n ELSE 0 END AS o, sm, mx FROM hours "
            "WHERE peak >= :over AND b >= :hlo AND (mn >= :over OR mx < :over) "
            f"UNION ALL SELECT f.device_id, f.metric, f.n, {fine_over}, f.sum, f.max "
            "FROM hours h JOIN rollups f ON f.device_id = h.d AND f.bucket >= h.b "
            "AND f.bucket < h.b + :coarse AND f.metric = h.m "
            "WHERE h.b >= :hlo AND h.mn < :over AND h.mx >= :over "
            f"UNION ALL SELECT f.device_id, f.metric, f.n, {fine_over}, f.sum, f.max "
            "FROM live l JOIN rollups f ON f.device_id = l.d AND f.metric = l.m "
            "AND f.bucket >= :since AND f.bucket < :hlo"
            ") GROUP BY d, m ORDER BY d, m",
            params,
        )
        out: dict[str, list[RollupWindow]] = {}
        for d, m, n, o, sm, mx in rows:
            out.setdefault(d, []).append(RollupWindow(d, m, int(n), int(o), sm / n, mx))
        return out

    def saturation_rollups(
        self, device_ids: Sequence[str], since: float, levels: Mapping[str, float]
    ) -> dict[str, list[Rollup]]:
        """A metric can only stay at a level in coarse buckets whose highest report reached
        it: those come bucket by bucket, every other coarse bucket whole (it still marks the
        time as calm), and a device whose metrics reached no level in any is left out (nothing
        of it can have been saturated). A day of a calm fleet is then read from the hourly tier
        alone, instead of 288 fine buckets or 2,880 raw reports per device and metric."""
        if not device_ids or not levels:
            return {}
        pats = list(levels)
        params: dict[str, Any] = {
            "ids": _dumps(list(device_ids)),
            "hlo": since - since % self.coarse_bucket,  # the coarse bucket holding `since`
            "coarse": self.coarse_bucket,
        }
        params.update({f"m{i}": m for i, m in enumerate(pats)})
        params.update({f"l{i}": float(levels[m]) for i, m in enumerate(pats)})
        reached = " OR ".join(f"(metric GLOB :m{i} AND max >= :l{i})" for i in range(len(pats)))
        rows = self.conn.execute(
            "WITH hours AS MATERIALIZED (SELECT device_id AS d, bucket AS b, metric AS m, n, "
            f"min AS mn, max AS mx, sum AS sm, ({reached}) AS hot FROM rollups_coarse "
            "WHERE device_id IN (SELECT value FROM json_each(:ids)) AND bucket >= :hlo "
            f"AND {_globs('metric', pats)}), "
            "busy AS MATERIALIZED (SELECT DISTINCT d FROM hours WHERE hot) "
            "SELECT d, b, m, n, mn, sm, mx FROM hours WHERE NOT hot AND d IN busy "
            "UNION ALL SELECT f.device_id, f.bucket, f.metric, f.n, f.min, f.sum, f.max "
            "FROM hours h JOIN rollups f ON f.device_id = h.d AND f.bucket >= h.b "
            "AND f.bucket < h.b + :coarse AND f.metric = h.m WHERE h.hot "
            "ORDER BY 1, 2, 3",
            params,
        )
        out: dict[str, list[Rollup]] = {}
        for d, b, m, n, mn, sm, mx in rows:
            out.setdefault(d, []).append(Rollup(d, b, m, n, mn, sm / n, mx))
        return out

    def rollup_mark(self) -> str:
        rows = self.conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('rolled_id', 'rollup_progress') ORDER BY key"
        ).fetchall()
        return json.dumps(rows)

    def latest_health_points(self, device_ids: Sequence[str]) -> dict[str, HealthPoint]:
        rows = self.conn.execute(
            "SELECT device_id, ts, boot_id, seq, body FROM health_latest "
            "WHERE device_id IN (SELECT value FROM json_each(?))",
            (_dumps(list(device_ids)),),
        )
        return {r[0]: HealthPoint(r[0], r[1], r[2], r[3], stored_json(r[4])) for r in rows}

    def latest_health_headlines(self, device_ids: Sequence[str]) -> dict[str, HealthHeadline]:
        out = {}
        for dev_id, ts, cpu, mem, sections in self.conn.execute(
            _HEADLINES, (_dumps(list(device_ids)),)
        ):
            disks, temps = stored_json(sections)
            disk, mount = _top(disks, "pct")
            temp, sensor = _top(temps, None)
            out[dev_id] = HealthHeadline(dev_id, ts, cpu, mem, disk, mount, temp, sensor)
        return out

    def rollups(self, device_id: str, since: float, coarse: bool = False) -> list[Rollup]:
        table = "rollups_coarse" if coarse else "rollups"
        rows = self.conn.execute(
            f"SELECT device_id, bucket, metric, n, min, sum, max FROM {table} "
            "WHERE device_id = ? AND bucket >= ? ORDER BY bucket, metric",
            (device_id, since),
        )
        return [Rollup(r[0], r[1], r[2], r[3], r[4], r[5] / r[3], r[6]) for r in rows]

    def transitions(
        self, device_id: str | None = None, since: float | None = None
    ) -> list[Transition]:
        where: list[str] = []
        params: list[Any] = []
        if device_id is not None:
            where.append("device_id = ?")
            params.append(device_id)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        sql = "SELECT device_id, ts, old, new, reason FROM transitions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, id"
        return [Transition(*r) for r in self.conn.execute(sql, params)]

    def ingest_stats(self, device_id: str | None = None) -> IngestStats:
        cols = "sum(accepted), sum(rejected), sum(duplicate), sum(gap), sum(dropped)"
        if device_id is None:
            row = self.conn.execute(f"SELECT {cols} FROM ingest_stats").fetchone()
        else:
            row = self.conn.execute(
                f"SELECT {cols} FROM ingest_stats WHERE device_id = ?", (device_id,)
            ).fetchone()
        vals = [int(v or 0) for v in row]
        return IngestStats(device_id, *vals)

    def ingest_stats_by_device(self) -> dict[str, IngestStats]:
        rows = self.conn.execute(
            "SELECT device_id, accepted, rejected, duplicate, gap, dropped FROM ingest_stats"
        )
        return {r[0]: IngestStats(*r) for r in rows}  # NOT NULL integer columns

    def status_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for status, n in self.conn.execute("SELECT status, count(*) FROM devices GROUP BY 1"):
            counts[status] = int(n)
        return counts

    def unenrolled(self) -> list[str]:
        """Agent devices that report without having been enrolled (flagged in `devices`)."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT device_id FROM devices WHERE enrolled = 0 AND source = 'agent' "
                "AND last_seen IS NOT NULL ORDER BY device_id"
            )
        ]


def _is_drop(env: Envelope) -> bool:
    return env.kind == KIND_EVENT and env.body.get("type") == EVENT_DROP


def _drop_boot(env: Envelope) -> str:
    """The boot whose seqs an outbox_drop event covers (body 'boot'; else the event's own)."""
    boot = env.body.get("boot")
    return boot if isinstance(boot, str) and boot else env.boot_id


# Raw health reports per rollup step: read and grouped without the write lock, then merged in
# one write transaction (ingest waits for that part). Larger steps fold more reports of a
# device into one row; smaller ones hold the lock for less time.
# reports grouped in one read phase (a 5-minute bucket of 100,000 devices reporting every 30 s
# is 1,000,000): a group merged once costs less than the same group merged in pieces
ROLLUP_READ_MAX = 2_000_000
# (device, bucket, metric) groups merged per write transaction: keeps the write lock short
ROLLUP_CHUNK = 50_000
_MAX_ID = 2**63 - 1
# Rolled-up scalar metrics: name, JSON path inside the health body.
_ROLLUP_SCALARS: tuple[tuple[str, str], ...] = (
    ("cpu.pct", "cpu.pct"),
    ("cpu.load1", "cpu.load1"),
    ("mem.pct", "mem.pct"),
    ("mem.swap_pct", "mem.swap_pct"),
    ("procs", "procs"),
    ("agent.rss", "agent.rss"),
)


def _latest_set(ts: str, health_id: str) -> str:
    """SET clause moving the device's latest-health pointer, only forward in agent time."""
    newer = f"{ts} IS NOT NULL AND {ts} >= coalesce(devices.health_ts, -1)"
    return (
        f"health_id = CASE WHEN {newer} THEN {health_id} ELSE devices.health_id END, "
        f"health_ts = CASE WHEN {newer} THEN {ts} ELSE devices.health_ts END"
    )


def _summarize_inventory(dev: _Dev, body: Mapping[str, Any]) -> None:
    hw = body.get("hardware")
    if isinstance(hw, dict):
        if isinstance(hw.get("vendor"), str):
            dev.vendor = hw["vendor"]
        if isinstance(hw.get("model"), str):
            dev.model = hw["model"]
    agent = body.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("version"), str):
        dev.agent_version = agent["version"]
    fw = body.get("firmware")
    if isinstance(fw, dict) and isinstance(fw.get("version"), str):
        dev.firmware = fw["version"]


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return StoreBusyError(
            f"{path}: database is locked by another process ({msg})",
            tip="another program holds a write lock; ingest retries the batch",
        )
    if "full" in msg:
        return StoreFullError(
            f"{path}: database or disk is full ({msg}); the batch was not stored",
            tip="free disk space; ingest resumes and the broker keeps unacknowledged messages",
        )
    return StoreError(f"{path}: {msg}")


@dataclass(frozen=True)
class _RollupPass:
    """One rollup pass: health ids (lo, hi], the bucket widths, the last group merged."""

    lo: int
    hi: int
    fine: float
    coarse: float
    key: tuple[str, float, str] | None


def _key(value: Any) -> tuple[str, float, str] | None:
    return None if value is None else (str(value[0]), float(value[1]), str(value[2]))


def _globs(column: str, patterns: Sequence[str]) -> str:
    """`column` matching any of `patterns`, bound as :m0, :m1, ... by the caller."""
    return "(" + " OR ".join(f"{column} GLOB :m{i}" for i in range(len(patterns))) + ")"


def _number(value: str, doc: str, path: str) -> str:
    """SQL: `value` (json_extract(doc, path), computed once by the caller) if that is a JSON
    number, else NULL. json_extract reads true and false as 1 and 0, so only those two values
    are checked again with json_type; reading every value as JSON text (`->`) cost more than
    the whole grouping."""
    return (
        f"CASE WHEN typeof({value}) = 'real' OR (typeof({value}) = 'integer' AND "
        f"({value} NOT IN (0, 1) OR json_type({doc}, '{path}') = 'integer')) THEN {value} END"
    )


# Keeps SQLite from merging a subquery into the query around it, which would evaluate each of
# its expressions (a JSON parse) once per use instead of once per row.
_ONCE = "LIMIT -1 OFFSET 0"


def _rollup_group_statements() -> tuple[str, ...]:
    """Group every numeric rollup metric of health ids (:lo, :hi] per (device, :b bucket) into
    temp.rollup_groups.

    Each stored message is parsed once, into a short array of the scalar metrics and the disk
    and temperature sections. The scalars are grouped per (device, bucket), one row of
    aggregates, and only then turned into a row per metric: sorting a row per metric and report
    cost more than the parsing did."""
    paths = ", ".join(f"'$.body.{path}'" for _, path in _ROLLUP_SCALARS)
    n = len(_ROLLUP_SCALARS)
    raw = ", ".join(f"json_extract(a, '$[{i}]') AS x{i}" for i in range(n))
    typed = ", ".join(_number(f"x{i}", "a", f"$[{i}]") for i in range(n))
    aggs = ", ".join(f"count(v{i}), min(v{i}), max(v{i}), sum(v{i})" for i in range(n))
    per_metric = " UNION ALL ".join(
        f"SELECT d, bucket, '{name}', n{i}, mn{i}, mx{i}, sm{i} FROM temp.rollup_scalars "
        f"WHERE n{i} > 0"
        for i, (name, _) in enumerate(_ROLLUP_SCALARS)
    )
    return (
        "DELETE FROM temp.rollup_reports",
        "DELETE FROM temp.rollup_scalars",
        f"INSERT INTO temp.rollup_reports SELECT d, bucket, a, {typed} FROM ("
        f"SELECT d, bucket, a, {raw} FROM ("
        "SELECT device_id AS d, CAST(ts / :b AS INTEGER) * :b AS bucket, "
        f"json_extract(msg, {paths}, '$.body.disk', '$.body.temp') AS a "
        f"FROM health WHERE id > :lo AND id <= :hi {_ONCE}) {_ONCE})",
        f"INSERT INTO temp.rollup_scalars SELECT d, bucket, {aggs} "
        "FROM temp.rollup_reports GROUP BY d, bucket",
        f"INSERT INTO temp.rollup_groups {per_metric}",
        "INSERT INTO temp.rollup_groups "
        "SELECT d, bucket, m, count(v), min(v), max(v), sum(v) FROM ("
        f"SELECT d, bucket, m, {_number('x', 'o', '$.pct')} AS v FROM ("
        "SELECT r.d AS d, r.bucket AS bucket, 'disk.' || j.key || '.pct' AS m, j.value AS o, "
        "json_extract(j.value, '$.pct') AS x "
        f"FROM temp.rollup_reports r, json_each(r.a, '$[{n}]') j "
        f"WHERE j.type = 'object' {_ONCE}) "
        "UNION ALL SELECT r.d, r.bucket, 'temp.' || j.key, j.value "
        f"FROM temp.rollup_reports r, json_each(r.a, '$[{n + 1}]') j "
        "WHERE j.type IN ('integer', 'real')"
        ") WHERE v IS NOT NULL GROUP BY 1, 2, 3",
        "DELETE FROM temp.rollup_reports",
        "DELETE FROM temp.rollup_scalars",
    )


_ROLLUP_GROUP: Final = _rollup_group_statements()


def _headlines_sql() -> str:
    """Latest health of the device ids in the JSON array bound first: CPU and memory percent
    as numbers (else NULL), then the disk and temperature sections as one JSON array.

    One parse of each stored report. Picking the fullest mount and hottest sensor in SQL took
    a sort per section and device, twice the whole read; Python picks them (_top)."""
    return (
        # `+ 0.0`: a figure is a float, as when read from the decoded report
        f"SELECT d, ts, {_number('x0', 'a', '$[0]')} + 0.0, {_number('x1', 'a', '$[1]')} + 0.0, "
        "json_extract(a, '$[2]', '$[3]') FROM (SELECT d, ts, a, json_extract(a, '$[0]') AS x0, "
        "json_extract(a, '$[1]') AS x1 FROM (SELECT device_id AS d, ts, "
        "json_extract(msg, '$.body.cpu.pct', '$.body.mem.pct', '$.body.disk', '$.body.temp') "
        "AS a FROM health_latest "
        f"WHERE device_id IN (SELECT value FROM json_each(?)) {_ONCE}) {_ONCE})"
    )


_NUMBER_TYPES: Final = (int, float)  # decoded JSON: a bool is no number


def _top(section: object, inner: str | None) -> tuple[float | None, str | None]:
    """The largest number in a health section (of each entry's `inner` key, if given) and its
    key; the first on a tie. Not an object, or no number: (None, None)."""
    best: float | None = None
    name: str | None = None
    if type(section) is dict:
        for key, value in section.items():
            if inner is not None:
                value = value.get(inner) if type(value) is dict else None
            if type(value) in _NUMBER_TYPES and (best is None or value > best):
                best, name = float(value), str(key)
    return best, name


_HEADLINES: Final = _headlines_sql()
