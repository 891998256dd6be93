"""Load the shipped, sourced reference data (firmware_db/data/*.csv) into a database.

Reference rows carry origin='reference' and are replaced wholesale on every load, inside one
transaction; rows that came from imports are never touched, and an imported lifecycle cycle or
device model wins over the shipped one with the same key (it is the newer fact).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from firmware_db.errors import FirmwareDbError
from firmware_db.store import (
    ORIGIN_REFERENCE,
    model_key,
    part_key,
    put_device_model,
    put_firmware_release,
    put_lifecycle,
    put_organization,
)
from firmware_db.vendors import normalize

DATA_DIR: Final = Path(__file__).resolve().parent / "data"
FILES: Final = (
    "suppliers.csv",
    "community.csv",
    "components.csv",
    "parts.csv",
    "lifecycles.csv",
    "device_models.csv",
    "firmware_releases.csv",
    "org_flags.csv",
)


class ReferenceDataError(FirmwareDbError):
    """A shipped data file is malformed (a packaging bug, reported with file and line)."""


def data_hash(data_dir: Path = DATA_DIR) -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update(name.encode())
        h.update((data_dir / name).read_bytes())
    return h.hexdigest()[:16]


def _read(data_dir: Path, name: str) -> list[tuple[int, dict[str, str]]]:
    path = data_dir / name
    with path.open(encoding="utf-8", newline="") as fh:
        return [(i, row) for i, row in enumerate(csv.DictReader(fh), start=2)]


def load_reference(conn: sqlite3.Connection, data_dir: Path | None = None) -> dict[str, int]:
    """Replace all reference rows from the data files; all or nothing."""
    data_dir = data_dir or DATA_DIR
    counts: dict[str, int] = {}
    conn.execute("BEGIN IMMEDIATE")
    try:
        _clear(conn)
        for name in ("suppliers.csv", "community.csv"):
            rows = _read(data_dir, name)
            for line, row in rows:
                try:
                    put_organization(conn, row, ORIGIN_REFERENCE)
                except (ValueError, sqlite3.IntegrityError) as exc:
                    raise ReferenceDataError(f"{name} line {line}: {exc}") from exc
            counts[name] = len(rows)
        counts["org_flags.csv"] = _load_flags(conn, data_dir)
        counts["components.csv"] = _load_components(conn, data_dir)
        counts["parts.csv"] = _load_parts(conn, data_dir)
        for name, key_sql, put in (
            ("lifecycles.csv", "SELECT 1 FROM lifecycles WHERE product=? AND cycle=?", None),
            ("device_models.csv", None, put_device_model),
            ("firmware_releases.csv", None, put_firmware_release),
        ):
            n = 0
            for line, row in _read(data_dir, name):
                if not (row.get("source") or "").strip():
                    raise ReferenceDataError(f"{name} line {line}: no source")
                if key_sql is not None:
                    if conn.execute(key_sql, (row["product"], row["cycle"])).fetchone():
                        continue  # an imported cycle is newer than the shipped one
                    put_lifecycle(conn, dict(row), ORIGIN_REFERENCE)
                elif put is put_device_model:
                    if _model_exists(conn, "device_models", row):
                        continue
                    put_device_model(conn, dict(row), ORIGIN_REFERENCE)
                elif put is not None:
                    put(conn, dict(row), ORIGIN_REFERENCE)
                n += 1
            counts[name] = n
        meta = {
            "reference_hash": data_hash(data_dir),
            "reference_loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reference_counts": json.dumps(counts),
        }
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def _model_exists(conn: sqlite3.Connection, table: str, row: dict[str, str]) -> bool:
    return (
        conn.execute(
            f"SELECT 1 FROM {table} WHERE vendor_key=? AND model_key=?",
            (normalize(row.get("vendor") or ""), model_key(row.get("model") or "")),
        ).fetchone()
        is not None
    )


def _clear(conn: sqlite3.Connection) -> None:
    sql = "SELECT id FROM organizations WHERE origin = ?"
    ids = [r[0] for r in conn.execute(sql, (ORIGIN_REFERENCE,))]
    conn.executemany("DELETE FROM org_names WHERE org_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM org_pens WHERE org_id = ?", [(i,) for i in ids])
    tables = ("organizations", "components", "lifecycles", "device_models", "firmware_releases")
    for table in tables:
        conn.execute(f"DELETE FROM {table} WHERE origin = ?", (ORIGIN_REFERENCE,))
    conn.execute(
        "DELETE FROM part_keys WHERE part_number IN (SELECT part_number FROM parts WHERE origin=?)",
        (ORIGIN_REFERENCE,),
    )
    conn.execute("DELETE FROM parts WHERE origin = ?", (ORIGIN_REFERENCE,))


def _load_flags(conn: sqlite3.Connection, data_dir: Path) -> int:
    """Restricted-list memberships and similar flags: `<flag>@<since>` on the organization."""
    rows = _read(data_dir, "org_flags.csv")
    for line, row in rows:
        org, flag = (row.get("organization") or "").strip(), (row.get("flag") or "").strip()
        if not org or not flag or not (row.get("source") or "").strip():
            raise ReferenceDataError(f"org_flags.csv line {line}: organization, flag, source")
        found = conn.execute("SELECT flags FROM organizations WHERE name = ?", (org,)).fetchone()
        if found is None:
            raise ReferenceDataError(f"org_flags.csv line {line}: unknown organization {org!r}")
        since = (row.get("since") or "").strip()
        flags = [*json.loads(found[0]), f"{flag}@{since}" if since else flag]
        conn.execute("UPDATE organizations SET flags = ? WHERE name = ?", (json.dumps(flags), org))
    return len(rows)


def _load_components(conn: sqlite3.Connection, data_dir: Path) -> int:
    rows = _read(data_dir, "components.csv")
    for line, row in rows:
        if not row.get("pattern") or not row.get("layer") or not row.get("source"):
            raise ReferenceDataError(f"components.csv line {line}: pattern, layer, source needed")
        sub = (row.get("substitutability") or "").strip()
        conn.execute(
            """INSERT INTO components (pattern, manager, layer, product, supplier, community,
                   cpe_vendor, cpe_product, substitutability, source, origin)
               VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
            (
                row["pattern"].strip().lower(),
                (row.get("manager") or "").strip().lower() or None,
                row["layer"].strip(),
                (row.get("product") or "").strip() or None,
                (row.get("supplier") or "").strip() or None,
                1 if (row.get("community") or "").strip().lower() == "true" else 0,
                (row.get("cpe_vendor") or "").strip() or None,
                (row.get("cpe_product") or "").strip() or None,
                float(sub) if sub else None,
                row["source"].strip(),
                ORIGIN_REFERENCE,
            ),
        )
    return len(rows)


def _load_parts(conn: sqlite3.Connection, data_dir: Path) -> int:
    rows = _read(data_dir, "parts.csv")
    for line, row in rows:
        pn = (row.get("part_number") or "").strip()
        if not pn or not row.get("manufacturer") or not row.get("source"):
            raise ReferenceDataError(f"parts.csv line {line}: part_number, manufacturer, source")
        compat = [c.strip() for c in (row.get("compatibles") or "").split(";") if c.strip()]
        sub = (row.get("substitutability") or "").strip()
        conn.execute(
            """INSERT OR REPLACE INTO parts (part_number, kind, manufacturer, family, compatibles,
                   substitutability, source, origin) VALUES (?,?,?,?,?,?,?,?)""",
            (
                pn,
                row["kind"].strip(),
                row["manufacturer"].strip(),
                (row.get("family") or "").strip() or None,
                json.dumps(compat),
                float(sub) if sub else None,
                row["source"].strip(),
                ORIGIN_REFERENCE,
            ),
        )
        for key in {part_key(pn), pn.lower(), *(c.lower() for c in compat)}:
            conn.execute(
                "INSERT OR IGNORE INTO part_keys (key, part_number) VALUES (?,?)", (key, pn)
            )
    return len(rows)
