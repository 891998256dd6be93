"""endoflife.date API JSON: `/api/<product>.json` (array of cycles) or `/api/v1/products/<p>`."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date
from pathlib import PurePosixPath
from typing import Any, TextIO

from firmware_db.feeds.interface import FeedError, record_error
from firmware_db.store import ORIGIN_IMPORT, put_lifecycle

_PRODUCT = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _date_or_flag(value: Any, field: str) -> str | None:
    """endoflife.date uses an ISO date, or true/false when only the fact is known."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{field} is neither a date nor true/false: {value!r}")


class EndOfLifeFeed:
    name = "endoflife"
    description = "endoflife.date API JSON for one product (product from --product or file name)"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        # One product's cycles are a few KB: parsed whole, then validated row by row.
        try:
            doc = json.load(stream)
        except ValueError as exc:
            raise record_error(self.name, source, 0, None, f"malformed JSON: {exc}") from exc
        product = options.get("product")
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            product = product or doc["result"].get("name")
            cycles = [self._from_v1(r) for r in doc["result"].get("releases") or []]
        elif isinstance(doc, list):
            cycles = doc
        else:
            raise FeedError(f"endoflife feed {source}: expected an array of release cycles")
        if not product:
            stem = PurePosixPath(source.split("?", 1)[0]).name
            product = stem.split(".", 1)[0]
        product = product.strip().lower()
        if not _PRODUCT.match(product):
            raise FeedError(
                f"endoflife feed {source}: bad product name {product!r}", tip="pass --product NAME"
            )
        for index, c in enumerate(cycles):
            rid = str(c.get("cycle")) if isinstance(c, dict) and c.get("cycle") else None
            try:
                if not isinstance(c, dict):
                    raise ValueError("cycle is not an object")
                cycle = c["cycle"]
                if not isinstance(cycle, str | int | float) or str(cycle) == "":
                    raise ValueError(f"bad cycle {cycle!r}")
                put_lifecycle(
                    conn,
                    {
                        "product": product,
                        "cycle": str(cycle),
                        "release_date": _date_or_flag(c.get("releaseDate"), "releaseDate"),
                        "eoas": _date_or_flag(c.get("support"), "support"),
                        "eol": _date_or_flag(c.get("eol"), "eol"),
                        "lts": "true" if c.get("lts") else "false",
                        "latest": str(c["latest"]) if c.get("latest") else None,
                        "latest_date": _date_or_flag(
                            c.get("latestReleaseDate"), "latestReleaseDate"
                        ),
                        "source": f"endoflife:{source}",
                    },
                    ORIGIN_IMPORT,
                )
            except (KeyError, TypeError, ValueError) as exc:
                problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise record_error(self.name, source, index, rid, problem) from exc
        return len(cycles)

    @staticmethod
    def _from_v1(r: Any) -> Any:
        if not isinstance(r, dict):
            return r
        latest = r.get("latest") or {}
        return {
            "cycle": r.get("name"),
            "releaseDate": r.get("releaseDate"),
            "support": r.get("eoasFrom") if r.get("eoasFrom") else r.get("isEoas"),
            "eol": r.get("eolFrom") if r.get("eolFrom") else r.get("isEol"),
            "lts": r.get("isLts"),
            "latest": latest.get("name") if isinstance(latest, dict) else None,
            "latestReleaseDate": latest.get("date") if isinstance(latest, dict) else None,
        }
