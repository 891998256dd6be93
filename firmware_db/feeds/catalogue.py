"""User catalogue of device models (and their firmware releases), CSV or JSON.

Dates must be ISO 8601; where a vendor publishes none, leave the field empty: the status then
stays unknown rather than guessed.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any, Final, TextIO

from firmware_db.feeds.interface import record_error
from firmware_db.feeds.tabular import records
from firmware_db.store import ORIGIN_IMPORT, put_device_model, put_firmware_release

MODEL_DATES: Final = ("launch", "end_of_sale", "end_of_support", "end_of_life")


def _clean(rec: dict[str, Any], dates: tuple[str, ...]) -> dict[str, str | None]:
    out = {k: (str(v).strip() if v not in (None, "") else None) for k, v in rec.items()}
    for field in ("vendor", "model"):
        if not out.get(field):
            raise ValueError(f"{field} is empty")
    for field in dates:
        if out.get(field):
            out[field] = date.fromisoformat(str(out[field])).isoformat()
    return out


class CatalogueFeed:
    name = "catalogue"
    description = "device models: vendor, model, odm, device_class, hw_revision, dates, source"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        n = 0
        for index, rec in records(self.name, stream, source, "models"):
            rid = f"{rec.get('vendor')} {rec.get('model')}"
            try:
                row = _clean(rec, MODEL_DATES)
                row["source"] = row.get("source") or f"catalogue:{source}"
                put_device_model(conn, row, ORIGIN_IMPORT)
            except (TypeError, ValueError) as exc:
                raise record_error(self.name, source, index, rid, str(exc)) from exc
            n += 1
        return n


class FirmwareFeed:
    name = "firmware"
    description = "firmware releases: vendor, model, version, release_date, track, kernel, ..."

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        n = 0
        for index, rec in records(self.name, stream, source, "firmware_releases"):
            rid = f"{rec.get('vendor')} {rec.get('model')} {rec.get('version')}"
            try:
                row = _clean(rec, ("release_date",))
                if not row.get("version"):
                    raise ValueError("version is empty")
                row["source"] = row.get("source") or f"firmware:{source}"
                put_firmware_release(conn, row, ORIGIN_IMPORT)
            except (TypeError, ValueError) as exc:
                raise record_error(self.name, source, index, rid, str(exc)) from exc
            n += 1
        return n
