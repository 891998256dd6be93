"""FIRST EPSS scores (CSV: `cve,epss,percentile`, after a `#model_version:...` comment line)."""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterator
from typing import TextIO

from firmware_db.feeds.interface import FeedError, record_error

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def _lines(stream: TextIO, meta: dict[str, str]) -> Iterator[str]:
    for line in stream:
        if line.startswith("#"):
            for part in line[1:].strip().split(","):
                key, _, value = part.partition(":")
                meta[key.strip()] = value.strip()
            continue
        yield line


class EpssFeed:
    name = "epss"
    description = "FIRST EPSS daily scores CSV (epss_scores-YYYY-MM-DD.csv[.gz])"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        meta: dict[str, str] = {}
        reader = csv.DictReader(_lines(stream, meta))
        if reader.fieldnames is None or not {"cve", "epss"} <= set(reader.fieldnames):
            raise FeedError(f"epss feed {source}: expected columns cve,epss[,percentile]")
        day = meta.get("score_date", "")[:10] or None
        n = 0
        for index, row in enumerate(reader):
            rid = row.get("cve")
            try:
                if not rid or not _CVE.match(rid):
                    raise ValueError(f"bad cve {rid!r}")
                score = float(row["epss"])
                pct = float(row["percentile"]) if row.get("percentile") else None
                if not 0.0 <= score <= 1.0 or (pct is not None and not 0.0 <= pct <= 1.0):
                    raise ValueError("epss and percentile must lie in [0, 1]")
                conn.execute(
                    "INSERT OR REPLACE INTO epss (cve_id, epss, percentile, score_date, source) "
                    "VALUES (?,?,?,?,?)",
                    (rid, score, pct, day, f"epss:{source}"),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise record_error(self.name, source, index, rid, str(exc)) from exc
            n += 1
        return n
