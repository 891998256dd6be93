"""Versioned schema migrations for the SQLite store; PRAGMA user_version is the version.

Raw health rows keep the message exactly as received (`msg`, the whole envelope) and expose
its body as a generated column, so the hot path never re-encodes JSON. `received` grows with
the row id, which lets retention find its cut by bisection instead of a second index.

Append a new step to MIGRATIONS to change the schema; never edit a released step.
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'unknown',
            status_since REAL,
            tags TEXT NOT NULL DEFAULT '{}',
            first_seen REAL,
            last_seen REAL,
            source TEXT NOT NULL DEFAULT 'agent',
            enrolled INTEGER NOT NULL DEFAULT 0,
            simulated INTEGER NOT NULL DEFAULT 0,
            criticality REAL,
            agent_version TEXT,
            interval REAL,
            boot_id TEXT,
            last_state TEXT,
            poll_failures INTEGER NOT NULL DEFAULT 0,
            vendor TEXT,
            model TEXT,
            firmware TEXT
        );
        CREATE INDEX idx_devices_status ON devices (status);
        CREATE TABLE health_latest (
            device_id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            received REAL NOT NULL,
            boot_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            msg TEXT NOT NULL,
            body TEXT GENERATED ALWAYS AS (json_extract(msg, '$.body')) VIRTUAL
        );
        CREATE TABLE health (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            ts REAL NOT NULL,
            received REAL NOT NULL,
            boot_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            msg TEXT NOT NULL,
            body TEXT GENERATED ALWAYS AS (json_extract(msg, '$.body')) VIRTUAL
        );
        CREATE INDEX idx_health_device_ts ON health (device_id, ts);
        CREATE TABLE rollups (
            device_id TEXT NOT NULL,
            bucket REAL NOT NULL,
            metric TEXT NOT NULL,
            n INTEGER NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            sum REAL NOT NULL,
            PRIMARY KEY (device_id, bucket, metric)
        ) WITHOUT ROWID;
        CREATE INDEX idx_rollups_bucket ON rollups (bucket);
        CREATE TABLE inventory_snapshots (
            hash TEXT PRIMARY KEY,
            first_seen REAL NOT NULL,
            body TEXT NOT NULL
        );
        CREATE TABLE inventory_current (
            device_id TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            ts REAL NOT NULL,
            received REAL NOT NULL,
            source TEXT NOT NULL DEFAULT 'agent'
        );
        CREATE TABLE inventory_history (
            device_id TEXT NOT NULL,
            hash TEXT NOT NULL,
            first_ts REAL NOT NULL,
            last_ts REAL NOT NULL,
            PRIMARY KEY (device_id, hash)
        ) WITHOUT ROWID;
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            ts REAL NOT NULL,
            received REAL NOT NULL,
            boot_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX idx_events_device_ts ON events (device_id, ts);
        CREATE TABLE streams (
            device_id TEXT NOT NULL,
            boot_id TEXT NOT NULL,
            covered TEXT NOT NULL,
            lost INTEGER NOT NULL DEFAULT 0,
            max_seq INTEGER NOT NULL DEFAULT 0,
            first_received REAL NOT NULL,
            last_received REAL NOT NULL,
            PRIMARY KEY (device_id, boot_id)
        ) WITHOUT ROWID;
        CREATE TABLE ingest_stats (
            device_id TEXT PRIMARY KEY,
            accepted INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            duplicate INTEGER NOT NULL DEFAULT 0,
            gap INTEGER NOT NULL DEFAULT 0,
            dropped INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE transitions (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            ts REAL NOT NULL,
            old TEXT NOT NULL,
            new TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX idx_transitions_device_ts ON transitions (device_id, ts);
        CREATE TABLE rejects (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            topic TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            device_id TEXT,
            size INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE reject_counts (
            reason TEXT PRIMARY KEY,
            n INTEGER NOT NULL
        );
        CREATE TABLE polls (
            device_id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
    (
        2,
        # Latest health becomes a pointer in the device row (one write less per report);
        # the health_latest name stays, as a view, for queries and browsing.
        """
        ALTER TABLE devices ADD COLUMN health_id INTEGER;
        ALTER TABLE devices ADD COLUMN health_ts REAL;
        INSERT INTO health (device_id, ts, received, boot_id, seq, msg)
            SELECT l.device_id, l.ts, l.received, l.boot_id, l.seq, l.msg FROM health_latest l
            WHERE NOT EXISTS (SELECT 1 FROM health h WHERE h.device_id = l.device_id
                              AND h.boot_id = l.boot_id AND h.seq = l.seq AND h.ts = l.ts);
        UPDATE devices SET
            health_ts = (SELECT l.ts FROM health_latest l WHERE l.device_id = devices.device_id),
            health_id = (SELECT max(h.id) FROM health h JOIN health_latest l
                         ON l.device_id = h.device_id AND l.boot_id = h.boot_id
                         AND l.seq = h.seq AND l.ts = h.ts
                         WHERE h.device_id = devices.device_id);
        DROP TABLE health_latest;
        CREATE VIEW health_latest AS
            SELECT d.device_id, h.ts, h.received, h.boot_id, h.seq, h.msg, h.body
            FROM devices d JOIN health h ON h.id = d.health_id
        """,
    ),
    (
        3,
        # A second, coarser rollup tier (hourly by default) kept for the long history, so the
        # 5-minute tier can be kept for weeks instead of a year (docs/collector.md, Disk sizing).
        # Existing rollups are folded into it, so no history is lost when the finer tier's
        # shorter retention applies.
        """
        CREATE TABLE rollups_coarse (
            device_id TEXT NOT NULL,
            bucket REAL NOT NULL,
            metric TEXT NOT NULL,
            n INTEGER NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            sum REAL NOT NULL,
            PRIMARY KEY (device_id, bucket, metric)
        ) WITHOUT ROWID;
        CREATE INDEX idx_rollups_coarse_bucket ON rollups_coarse (bucket);
        INSERT INTO rollups_coarse (device_id, bucket, metric, n, min, max, sum)
            SELECT device_id, CAST(bucket / 3600 AS INTEGER) * 3600, metric,
                   sum(n), min(min), max(max), sum(sum)
            FROM rollups GROUP BY 1, 2, 3
        """,
    ),
    (
        4,
        # A device's raw history is a chain instead of an index: each health row points to the
        # device's previous one (prev_id) and the device row to its last (health_last). The
        # (device_id, ts) index cost a random B-tree insert per report, about a seventh of
        # storing a report at 100,000 devices and more as the history grows. Rows stored before
        # this step are not chained (that would rewrite every row: hours at city scale); they
        # stay reachable through the old index, which the store drops once retention has
        # removed them (meta.chain_from: the first chained id).
        """
        ALTER TABLE health ADD COLUMN prev_id INTEGER;
        ALTER TABLE devices ADD COLUMN health_last INTEGER;
        INSERT OR REPLACE INTO meta (key, value)
            SELECT 'chain_from', coalesce(max(id), 0) + 1 FROM health
        """,
    ),
)
