"""Asset register: per device id its install date, criticality and location tags.

CSV columns: device_id, install_date, criticality, vendor, model, tags ("district=x;site=y"),
plus any `tag:<name>` column. JSON: an array of objects with the same fields (`tags` may be an
object). The DDI weights devices by criticality and the aging analysis reads install dates.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from typing import Any, TextIO

from firmware_db.feeds.interface import record_error
from firmware_db.feeds.tabular import records


def _tags(rec: dict[str, Any]) -> list[tuple[str, str]]:
    tags: dict[str, str] = {}
    raw = rec.get("tags")
    if isinstance(raw, dict):
        tags.update({str(k): str(v) for k, v in raw.items()})
    elif isinstance(raw, str) and raw.strip():
        for part in raw.split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"tag {part.strip()!r} is not key=value")
            k, v = part.split("=", 1)
            tags[k.strip()] = v.strip()
    elif raw not in (None, ""):
        raise ValueError("tags must be 'k=v;k=v' or an object")
    for key, value in rec.items():
        if key.startswith("tag:") and value not in (None, ""):
            tags[key[4:]] = str(value)
    return sorted(tags.items())


class AssetsFeed:
    name = "assets"
    description = "asset register: device_id, install_date, criticality, vendor, model, tags"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        n = 0
        for index, rec in records(self.name, stream, source, "assets"):
            rid = str(rec.get("device_id") or "") or None
            try:
                if not rid:
                    raise ValueError("device_id is empty")
                installed = rec.get("install_date") or None
                if installed:
                    installed = date.fromisoformat(str(installed)).isoformat()
                crit_raw = rec.get("criticality")
                criticality = 1.0 if crit_raw in (None, "") else float(crit_raw)
                if not 0.0 <= criticality <= 1000.0:
                    raise ValueError(f"criticality {criticality} out of range 0..1000")
                conn.execute(
                    """INSERT OR REPLACE INTO assets (device_id, install_date, criticality,
                           vendor, model, tags, source) VALUES (?,?,?,?,?,?,?)""",
                    (
                        rid,
                        installed,
                        criticality,
                        rec.get("vendor") or None,
                        rec.get("model") or None,
                        json.dumps(_tags(rec)),
                        str(rec.get("source") or f"assets:{source}"),
                    ),
                )
            except (TypeError, ValueError) as exc:
                raise record_error(self.name, source, index, rid, str(exc)) from exc
            n += 1
        return n
