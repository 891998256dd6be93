"""SQLite schema of the knowledge base; `origin` separates shipped reference rows from imports."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 3

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    aliases TEXT NOT NULL DEFAULT '[]',
    hq_country TEXT,
    ultimate_parent TEXT,
    parent_country TEXT,
    community INTEGER NOT NULL DEFAULT 0,
    roles TEXT NOT NULL DEFAULT '[]',
    iana_pens TEXT NOT NULL DEFAULT '[]',
    flags TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS org_names (
    norm TEXT NOT NULL, org_id INTEGER NOT NULL, rank INTEGER NOT NULL,
    PRIMARY KEY (norm, org_id)
);
CREATE TABLE IF NOT EXISTS org_pens (pen INTEGER NOT NULL, org_id INTEGER NOT NULL,
    PRIMARY KEY (pen, org_id));
CREATE TABLE IF NOT EXISTS components (
    seq INTEGER PRIMARY KEY,
    pattern TEXT NOT NULL, manager TEXT, layer TEXT NOT NULL, product TEXT, supplier TEXT,
    community INTEGER NOT NULL, cpe_vendor TEXT, cpe_product TEXT, substitutability REAL,
    source TEXT NOT NULL, origin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    part_number TEXT PRIMARY KEY, kind TEXT NOT NULL, manufacturer TEXT NOT NULL, family TEXT,
    compatibles TEXT NOT NULL DEFAULT '[]', substitutability REAL, source TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS part_keys (key TEXT NOT NULL, part_number TEXT NOT NULL,
    PRIMARY KEY (key, part_number));
CREATE TABLE IF NOT EXISTS device_models (
    vendor_key TEXT NOT NULL, model_key TEXT NOT NULL, vendor TEXT NOT NULL, model TEXT NOT NULL,
    odm TEXT, device_class TEXT, hw_revision TEXT, launch TEXT, end_of_sale TEXT,
    end_of_support TEXT, end_of_life TEXT, source TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (vendor_key, model_key)
);
CREATE TABLE IF NOT EXISTS firmware_releases (
    vendor_key TEXT NOT NULL, model_key TEXT NOT NULL, vendor TEXT NOT NULL, model TEXT NOT NULL,
    version TEXT NOT NULL, release_date TEXT, track TEXT, kernel TEXT, openssl TEXT, busybox TEXT,
    latest INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (vendor_key, model_key, version)
);
CREATE TABLE IF NOT EXISTS lifecycles (
    product TEXT NOT NULL, cycle TEXT NOT NULL, release_date TEXT, eoas TEXT, eol TEXT, lts INTEGER,
    latest TEXT, latest_date TEXT, source TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (product, cycle)
);
CREATE TABLE IF NOT EXISTS vulns (
    id TEXT PRIMARY KEY, cve_id TEXT, aliases TEXT NOT NULL DEFAULT '[]', severity TEXT, cvss REAL,
    summary TEXT NOT NULL DEFAULT '', published TEXT, modified TEXT, epss REAL,
    kev_added TEXT, source TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vulns_cve ON vulns (cve_id);
CREATE TABLE IF NOT EXISTS vuln_affected (
    product TEXT NOT NULL, vuln_id TEXT NOT NULL, n INTEGER NOT NULL, vendor TEXT,
    ecosystem TEXT, scheme TEXT NOT NULL,
    exact TEXT, start_incl TEXT, start_excl TEXT, end_incl TEXT, end_excl TEXT, fixed TEXT,
    -- keyed = 1: bounds are plain versions and *_key (versions.plain_key) order like compare(),
    -- so ranges are tested on bytes (store._ProductRanges); keyed = 0 rows go through in_range.
    keyed INTEGER NOT NULL DEFAULT 0, exact_key BLOB, lo_key BLOB, hi_key BLOB,
    -- clustered by product: one lookup reads one run of adjacent rows, not scattered pages
    PRIMARY KEY (product, vuln_id, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vuln_affected_vuln ON vuln_affected (vuln_id);
CREATE INDEX IF NOT EXISTS vuln_affected_unkeyed ON vuln_affected (product) WHERE keyed = 0;
CREATE TABLE IF NOT EXISTS kev (
    cve_id TEXT PRIMARY KEY, date_added TEXT NOT NULL, vendor TEXT, product TEXT, name TEXT,
    due_date TEXT, ransomware TEXT, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS epss (
    cve_id TEXT PRIMARY KEY, epss REAL NOT NULL, percentile REAL, score_date TEXT,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assets (
    device_id TEXT PRIMARY KEY, install_date TEXT, criticality REAL NOT NULL DEFAULT 1.0,
    vendor TEXT, model TEXT, tags TEXT NOT NULL DEFAULT '[]', source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
    feed TEXT NOT NULL, source TEXT NOT NULL, records INTEGER NOT NULL, at TEXT NOT NULL
);
"""

COUNTED_TABLES: Final = (
    "organizations",
    "components",
    "parts",
    "device_models",
    "firmware_releases",
    "lifecycles",
    "vulns",
    "vuln_affected",
    "kev",
    "epss",
    "assets",
)
