"""CISA Known Exploited Vulnerabilities catalogue (JSON)."""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import TextIO

from firmware_db.feeds.interface import record_error
from firmware_db.feeds.jsonstream import JsonStream, JsonStreamError

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


class KevFeed:
    name = "kev"
    description = "CISA KEV catalogue JSON (known_exploited_vulnerabilities.json)"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        n = 0
        try:
            for index, item in JsonStream(stream).items("vulnerabilities"):
                rid = item.get("cveID") if isinstance(item, dict) else None
                try:
                    if not isinstance(item, dict):
                        raise ValueError("item is not an object")
                    cve = item["cveID"]
                    if not isinstance(cve, str) or not _CVE.match(cve):
                        raise ValueError(f"bad cveID {cve!r}")
                    added = date.fromisoformat(item["dateAdded"]).isoformat()
                    due = item.get("dueDate")
                    if due:
                        date.fromisoformat(due)
                    conn.execute(
                        """INSERT OR REPLACE INTO kev (cve_id, date_added, vendor, product, name,
                               due_date, ransomware, source) VALUES (?,?,?,?,?,?,?,?)""",
                        (
                            cve,
                            added,
                            item.get("vendorProject"),
                            item.get("product"),
                            item.get("vulnerabilityName"),
                            due,
                            item.get("knownRansomwareCampaignUse"),
                            f"kev:{source}",
                        ),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise record_error(self.name, source, index, rid, problem) from exc
                n += 1
        except JsonStreamError as exc:
            raise record_error(
                self.name, source, exc.index, None, f"malformed JSON: {exc}"
            ) from exc
        return n
