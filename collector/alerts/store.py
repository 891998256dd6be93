"""Alert tables in the collector's SQLite file: alerts, their history, silences, sink delivery.

The alerts half keeps its own schema (own version table, `CREATE TABLE IF NOT EXISTS`), so it
shares the database file with the collector without sharing its migrations. A partial unique
index guarantees at most one active (open or acknowledged) alert per dedupe key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlite_utils

from collector.alerts.interface import AlertsError
from collector.alerts.model import (
    ALERT_STATUSES,
    EVENT_ACKNOWLEDGED,
    EVENT_RESOLVED,
    STATUS_ACKNOWLEDGED,
    STATUS_OPEN,
    STATUS_RESOLVED,
    Alert,
    AlertEvent,
    Finding,
    LossCounts,
    Notification,
    Silence,
    severity_rank,
)
from collector.store.sqlite import stored_json

SCHEMA_VERSION = 1
# A pass takes a telemetry-loss sample once the newest is this share of the window old.
LOSS_SAMPLE_SPACING = 1 / 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    device_id TEXT,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    acked_at REAL,
    acked_by TEXT,
    resolved_at REAL,
    resolved_by TEXT,
    silenced_by INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active_key ON alerts (dedupe_key)
    WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, severity);
CREATE INDEX IF NOT EXISTS alerts_active_rule ON alerts (rule_id)
    WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_device ON alerts (device_id);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    detail TEXT NOT NULL,
    notify INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id);
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    until REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    device_id TEXT,
    tag_key TEXT,
    tag_value TEXT
);
CREATE TABLE IF NOT EXISTS alert_sinks (
    sink TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_ok REAL,
    last_error TEXT,
    last_error_at REAL
);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    ts REAL NOT NULL,
    ok INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_sink ON alert_deliveries (sink, event_id);
CREATE TABLE IF NOT EXISTS alert_loss_samples (
    device_id TEXT NOT NULL,
    ts REAL NOT NULL,
    accepted INTEGER NOT NULL,
    gap INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    PRIMARY KEY (device_id, ts)
);
CREATE INDEX IF NOT EXISTS alert_loss_samples_ts ON alert_loss_samples (ts);
"""

_ALERT_COLUMNS = (
    "id, dedupe_key, rule_id, device_id, severity, status, summary, evidence, first_seen, "
    "last_seen, count, acked_at, acked_by, resolved_at, resolved_by, silenced_by"
)


def _alert(row: tuple[Any, ...], lazy: bool = False) -> Alert:
    return Alert(
        id=row[0],
        dedupe_key=row[1],
        rule_id=row[2],
        device_id=row[3],
        severity=row[4],
        status=row[5],
        summary=row[6],
        evidence=StoredEvidence(row[7]) if lazy else stored_json(row[7]),
        first_seen=row[8],
        last_seen=row[9],
        count=row[10],
        acked_at=row[11],
        acked_by=row[12],
        resolved_at=row[13],
        resolved_by=row[14],
        silenced_by=row[15],
    )


def _event(row: tuple[Any, ...]) -> AlertEvent:
    return AlertEvent(
        id=row[0],
        alert_id=row[1],
        ts=row[2],
        event=row[3],
        severity=row[4],
        detail=json.loads(row[5]),
        notify=bool(row[6]),
    )


def _silence(row: tuple[Any, ...]) -> Silence:
    return Silence(
        id=row[0],
        created_at=row[1],
        until=row[2],
        reason=row[3],
        created_by=row[4],
        device_id=row[5],
        tag_key=row[6],
        tag_value=row[7],
    )


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class StoredEvidence(Mapping[str, Any]):
    """An alert's evidence as stored (JSON text), decoded each time it is read and not kept:
    an evaluation pass holds every active alert but compares most evidence only once, and at
    100,000 devices the decoded copies were most of the pass's memory."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def _doc(self) -> dict[str, Any]:
        return dict(stored_json(self.text))

    def __getitem__(self, key: str) -> Any:
        return self._doc()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc())

    def __len__(self) -> int:
        return len(self._doc())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredEvidence):
            return self.text == other.text
        return self._doc() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredEvidence({self.text!r})"


def refreshed(alert: Alert, finding: Finding, now: float, silenced_by: int | None) -> Alert:
    """The alert as `AlertStore.refresh_many` leaves it (evidence as stored: through JSON)."""
    return replace(
        alert,
        severity=finding.severity,
        summary=finding.summary,
        evidence=json.loads(_dumps(finding.evidence)),
        last_seen=now,
        count=alert.count + 1,
        silenced_by=silenced_by,
    )


class AlertStore:
    """Alerts, history, silences and sink cursors over a SQLite file shared with the collector."""

    def __init__(
        self, db: str | Path | sqlite_utils.Database, busy_timeout_ms: int = 10000
    ) -> None:
        if isinstance(db, sqlite_utils.Database):
            self.db = db
            self._owned = False
        else:
            path = Path(db)
            if path.parent and not path.parent.exists():
                raise AlertsError(f"database directory {path.parent} does not exist")
            # Autocommit mode: every write is either in transaction() or commits on its own,
            # never left in an implicit transaction that a close() would throw away.
            try:
                conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise AlertsError(f"cannot open {path}: {exc}") from None
            self.db = sqlite_utils.Database(conn)
            self._owned = True
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if self._owned:
                self.db.enable_wal()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise AlertsError(f"cannot open alert tables in {db}: {exc}") from None

    def _migrate(self) -> None:
        conn = self.db.conn
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT max(version) FROM alerts_schema").fetchone()
            version = row[0] if row else None
            if version is None:
                conn.execute("INSERT INTO alerts_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise AlertsError(
                    f"alert tables are at schema {version}, newer than this dunewatch "
                    f"({SCHEMA_VERSION}); upgrade dunewatch"
                )

    def close(self) -> None:
        if self._owned:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, taking the write lock up front (BEGIN IMMEDIATE).

        A deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY when the
        collector committed in between; taking the lock first waits (busy timeout) instead.
        Nested calls become savepoints. SQLite errors surface as one-line AlertsError.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise AlertsError(
                f"alert tables: {exc}", tip="another writer holds the database; retry"
            ) from None
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise AlertsError(f"alert tables: {exc}") from None
            raise

    # ------------------------------------------------------------ reads

    def get(self, alert_id: int) -> Alert | None:
        row = self.db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
        ).fetchone()
        return _alert(row) if row else None

    def alerts(
        self,
        *,
        status: str | None = None,
        active: bool = False,
        device_id: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts, worst and newest first; `active` = open or acknowledged."""
        where, params = [], []
        if status is not None:
            if status not in ALERT_STATUSES:
                raise AlertsError(f"status {status!r} not one of {', '.join(ALERT_STATUSES)}")
            where.append("status = ?")
            params.append(status)
        if active:
            where.append("status != 'resolved'")
        if device_id is not None:
            where.append("device_id = ?")
            params.append(device_id)
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = [_alert(r) for r in self.db.execute(sql, params).fetchall()]
        rows.sort(key=lambda a: (-severity_rank(a.severity), -a.first_seen, -a.id))
        return rows[:limit] if limit is not None else rows

    def open_alerts(self) -> list[Alert]:
        """Open and acknowledged alerts, worst first (what a report or a dashboard shows)."""
        return self.alerts(active=True)

    def active_by_key(self, rule_ids: Collection[str] | None = None) -> dict[str, Alert]:
        """Active alerts by dedupe key, for an evaluation pass: their evidence is a
        `StoredEvidence`, decoded when read (a pass compares it once per alert). `rule_ids`:
        only those rules' alerts (a liveness pass, beside hundreds of thousands of others)."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status != 'resolved'"
        params: tuple[str, ...] = ()
        if rule_ids is not None:
            sql += " AND rule_id IN (SELECT value FROM json_each(?))"
            params = (json.dumps(sorted(rule_ids)),)
        rows = self.db.execute(sql, params).fetchall()
        return {r[1]: _alert(r, lazy=True) for r in rows}

    def history(self, alert_id: int) -> list[AlertEvent]:
        rows = self.db.execute(
            "SELECT id, alert_id, ts, event, severity, detail, notify FROM alert_events "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        ).fetchall()
        return [_event(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall()
        out = dict.fromkeys(ALERT_STATUSES, 0)
        out.update({r[0]: r[1] for r in rows})
        return out

    # ------------------------------------------------------------ writes used by the engine

    def open_alert(self, finding: Finding, now: float, silenced_by: int | None) -> Alert:
        cur = self.db.execute(
            "INSERT INTO alerts (dedupe_key, rule_id, device_id, severity, status, summary, "
            "evidence, first_seen, last_seen, count, silenced_by) "
            "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, 1, ?)",
            (
                finding.dedupe_key,
                finding.rule_id,
                finding.device_id,
                finding.severity,
                finding.summary,
                _dumps(finding.evidence),
                now,
                now,
                silenced_by,
            ),
        )
        alert_id = cur.lastrowid
        assert alert_id is not None
        return Alert(
            id=alert_id,
            dedupe_key=finding.dedupe_key,
            rule_id=finding.rule_id,
            device_id=finding.device_id,
            severity=finding.severity,
            status=STATUS_OPEN,
            summary=finding.summary,
            evidence=json.loads(_dumps(finding.evidence)),
            first_seen=now,
            last_seen=now,
            silenced_by=silenced_by,
        )

    def refresh_many(self, items: Sequence[tuple[Alert, Finding, int | None]], now: float) -> None:
        """Bring still-holding alerts up to date in two statements: a pass refreshes most of
        them, and most come back unchanged (then only last_seen and count move)."""
        changed, same = [], []
        for alert, f, silenced_by in items:
            if (
                f.severity == alert.severity
                and f.summary == alert.summary
                and silenced_by == alert.silenced_by
                and f.evidence == alert.evidence
            ):
                same.append((now, alert.id))
            else:
                changed.append(
                    (f.severity, f.summary, _dumps(f.evidence), now, silenced_by, alert.id)
                )
        conn = self.db.conn
        conn.executemany("UPDATE alerts SET last_seen = ?, count = count + 1 WHERE id = ?", same)
        conn.executemany(
            "UPDATE alerts SET severity = ?, summary = ?, evidence = ?, last_seen = ?, "
            "count = count + 1, silenced_by = ? WHERE id = ?",
            changed,
        )

    def active_counts(self) -> tuple[int, int]:
        """(active alerts, of which silenced), without loading them."""
        row = self.db.execute(
            "SELECT count(*), count(silenced_by) FROM alerts WHERE status != 'resolved'"
        ).fetchone()
        return int(row[0]), int(row[1])

    def mark_resolved(self, alert_id: int, now: float, by: str) -> Alert:
        self.db.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ? WHERE id = ?",
            (now, by, alert_id),
        )
        fresh = self.get(alert_id)
        assert fresh is not None
        return fresh

    def add_event(
        self,
        alert: Alert,
        event: str,
        now: float,
        detail: Mapping[str, Any] | None = None,
        notify: bool = True,
    ) -> AlertEvent:
        cur = self.db.execute(
            "INSERT INTO alert_events (alert_id, ts, event, severity, detail, notify) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert.id, now, event, alert.severity, _dumps(detail or {}), int(notify)),
        )
        assert cur.lastrowid is not None
        return AlertEvent(cur.lastrowid, alert.id, now, event, alert.severity, detail or {}, notify)

    # ------------------------------------------------------------ operator actions

    def _active(self, alert_id: int) -> Alert:
        alert = self.get(alert_id)
        if alert is None:
            raise AlertsError(f"no alert with id {alert_id}", tip="list them: dunewatch alerts")
        if alert.status == STATUS_RESOLVED:
            raise AlertsError(f"alert {alert_id} is already resolved")
        return alert

    def ack(self, alert_id: int, by: str, now: float) -> Alert:
        """open -> acknowledged: someone owns it; it stays until the condition clears."""
        with self.transaction():
            alert = self._active(alert_id)
            if alert.status == STATUS_ACKNOWLEDGED:
                raise AlertsError(f"alert {alert_id} is already acknowledged by {alert.acked_by}")
            self.db.execute(
                "UPDATE alerts SET status = 'acknowledged', acked_at = ?, acked_by = ? "
                "WHERE id = ?",
                (now, by, alert_id),
            )
            fresh = self.get(alert_id)
            assert fresh is not None
            self.add_event(fresh, EVENT_ACKNOWLEDGED, now, {"by": by}, notify=True)
        return fresh

    def resolve(self, alert_id: int, by: str, now: float) -> Alert:
        """Close by hand; if the condition still holds, the next pass opens a new alert."""
        with self.transaction():
            self._active(alert_id)
            fresh = self.mark_resolved(alert_id, now, by)
            self.add_event(fresh, EVENT_RESOLVED, now, {"by": by}, notify=True)
        return fresh

    # ------------------------------------------------------------ silences

    def add_silence(
        self,
        *,
        until: float,
        now: float,
        device_id: str | None = None,
        tag: tuple[str, str] | None = None,
        reason: str = "",
        by: str | None = None,
    ) -> Silence:
        if (device_id is None) == (tag is None):
            raise AlertsError("a silence needs exactly one of a device id or a tag k=v")
        if until <= now:
            raise AlertsError("a silence must end in the future")
        tag_key, tag_value = tag if tag is not None else (None, None)
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO alert_silences (created_at, until, reason, created_by, device_id, "
                "tag_key, tag_value) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, until, reason, by, device_id, tag_key, tag_value),
            )
        assert cur.lastrowid is not None
        return Silence(cur.lastrowid, now, until, reason, by, device_id, tag_key, tag_value)

    def silences(self, active_at: float | None = None) -> list[Silence]:
        sql = (
            "SELECT id, created_at, until, reason, created_by, device_id, tag_key, tag_value "
            "FROM alert_silences"
        )
        params: list[Any] = []
        if active_at is not None:
            sql += " WHERE until > ?"
            params.append(active_at)
        return [_silence(r) for r in self.db.execute(sql + " ORDER BY id", params).fetchall()]

    def expire_silence(self, silence_id: int, now: float) -> None:
        with self.transaction():
            cur = self.db.execute(
                "UPDATE alert_silences SET until = ? WHERE id = ? AND until > ?",
                (now, silence_id, now),
            )
        if cur.rowcount == 0:
            raise AlertsError(f"no active silence with id {silence_id}")

    # ------------------------------------------------------------ sink outbox

    def sink_cursor(self, sink: str, start: int) -> int:
        """Last event id handed to this sink; a new sink starts at `start`."""
        row = self.db.execute("SELECT cursor FROM alert_sinks WHERE sink = ?", (sink,)).fetchone()
        if row is not None:
            return int(row[0])
        with self.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO alert_sinks (sink, cursor) VALUES (?, ?)", (sink, start)
            )
        return start

    def max_event_id(self) -> int:
        row = self.db.execute("SELECT coalesce(max(id), 0) FROM alert_events").fetchone()
        return int(row[0])

    def pending(self, cursor: int, limit: int) -> list[Notification]:
        rows = self.db.execute(
            "SELECT id, alert_id, ts, event, severity, detail, notify FROM alert_events "
            "WHERE id > ? AND notify = 1 ORDER BY id LIMIT ?",
            (cursor, limit),
        ).fetchall()
        out = []
        for r in rows:
            event = _event(r)
            alert = self.get(event.alert_id)
            assert alert is not None
            out.append(Notification(event, alert))
        return out

    def record_delivery(
        self,
        sink: str,
        event_id: int,
        now: float,
        ok: bool,
        attempts: int,
        error: str | None,
        advance: bool,
    ) -> None:
        """Log one delivery outcome; `advance` moves the sink's cursor past the event."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO alert_deliveries (sink, event_id, ts, ok, attempts, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (sink, event_id, now, int(ok), attempts, error),
            )
            if ok:
                self.db.execute(
                    "UPDATE alert_sinks SET delivered = delivered + 1, last_ok = ? WHERE sink = ?",
                    (now, sink),
                )
            else:
                self.db.execute(
                    "UPDATE alert_sinks SET failed = failed + 1, last_error = ?, "
                    "last_error_at = ? WHERE sink = ?",
                    (error, now, sink),
                )
            if advance:
                self.db.execute(
                    "UPDATE alert_sinks SET cursor = max(cursor, ?) WHERE sink = ?",
                    (event_id, sink),
                )

    def deliveries(self, sink: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, sink, event_id, ts, ok, attempts, error FROM alert_deliveries"
        params: list[Any] = []
        if sink is not None:
            sql += " WHERE sink = ?"
            params.append(sink)
        keys = ("id", "sink", "event_id", "ts", "ok", "attempts", "error")
        return [
            dict(zip(keys, r, strict=True)) for r in self.db.execute(sql + " ORDER BY id", params)
        ]

    def failed_attempts(self, sink: str, event_id: int) -> int:
        row = self.db.execute(
            "SELECT coalesce(sum(attempts), 0) FROM alert_deliveries "
            "WHERE sink = ? AND event_id = ? AND ok = 0",
            (sink, event_id),
        ).fetchone()
        return int(row[0])

    def sink_status(self) -> list[dict[str, Any]]:
        keys = ("sink", "cursor", "delivered", "failed", "last_ok", "last_error", "last_error_at")
        rows = self.db.execute(f"SELECT {', '.join(keys)} FROM alert_sinks ORDER BY sink")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ------------------------------------------------------------ telemetry-loss baselines

    def loss_in_windows(
        self, now: float, window: float, counters: Mapping[str, tuple[int, int, int]]
    ) -> dict[str, LossCounts]:
        """Turn cumulative (accepted, gap, dropped) counters into counts over the last `window`.

        The collector's counters only grow; samples of every device are kept here, and a
        device's newest sample at least `window` old is its baseline. Until one exists, the
        counts since the device was first seen are used. One transaction for the whole fleet.

        A pass samples only when the newest samples are LOSS_SAMPLE_SPACING of a window old,
        so a baseline is at most that much older than the window (`LossCounts.window` says
        by how much) and a device keeps about 13 samples: a sample every pass (every minute)
        kept 61 per device, 6 million rows at 100,000 devices, each pass scanning them all.
        """
        cutoff = now - window
        conn = self.db.conn
        with self.transaction():
            (newest,) = conn.execute("SELECT max(ts) FROM alert_loss_samples").fetchone()
            if newest is None or not 0 <= now - newest < window * LOSS_SAMPLE_SPACING:
                conn.executemany(
                    "INSERT OR REPLACE INTO alert_loss_samples VALUES (?, ?, ?, ?, ?)",
                    [(dev, now, a, g, d) for dev, (a, g, d) in counters.items()],
                )
            base: dict[str, tuple[float, int, int, int]] = {}
            for dev, ts, a, g, d in conn.execute(
                "SELECT device_id, max(ts), accepted, gap, dropped FROM alert_loss_samples "
                "WHERE ts <= ? GROUP BY device_id",
                (cutoff,),
            ):
                base[dev] = (ts, a, g, d)
            # keep only each device's baseline and newer samples (older ones: by the ts index)
            conn.execute(
                "DELETE FROM alert_loss_samples WHERE ts < ? AND (device_id, ts) NOT IN "
                "(SELECT device_id, max(ts) FROM alert_loss_samples WHERE ts <= ? "
                "GROUP BY device_id)",
                (cutoff, cutoff),
            )
        out: dict[str, LossCounts] = {}
        for dev, (a, g, d) in counters.items():
            b = base.get(dev)
            if b is None:
                out[dev] = LossCounts(accepted=a, gap=g, dropped=d, window=None)
            else:
                out[dev] = LossCounts(
                    accepted=max(0, a - b[1]),
                    gap=max(0, g - b[2]),
                    dropped=max(0, d - b[3]),
                    window=now - b[0],
                )
        return out
