"""NVD CVE API / JSON 2.0 feeds: {"format": "NVD_CVE", "vulnerabilities": [{"cve": {...}}]}."""

from __future__ import annotations

import re
import sqlite3
from typing import Any, TextIO

from firmware_db.feeds.interface import FeedError, record_error
from firmware_db.feeds.jsonstream import JsonStream, JsonStreamError
from firmware_db.store import put_vulnerability

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_METRICS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
_RANGE_KEYS = {
    "versionStartIncluding": "start_incl",
    "versionStartExcluding": "start_excl",
    "versionEndIncluding": "end_incl",
    "versionEndExcluding": "end_excl",
}


def split_cpe(criteria: str) -> list[str]:
    """Split a CPE 2.3 formatted string on unescaped colons and drop the escapes."""
    parts = re.split(r"(?<!\\):", criteria)
    if len(parts) != 13 or parts[0] != "cpe" or parts[1] != "2.3":
        raise ValueError(f"not a CPE 2.3 string: {criteria!r}")
    return [p.replace("\\", "") for p in parts]


def _metric(metrics: dict[str, Any]) -> tuple[str | None, float | None]:
    for key in _METRICS:
        entries = metrics.get(key) or []
        if not entries:
            continue
        if not isinstance(entries, list):
            raise ValueError(f"metrics.{key} is not a list")
        m = next((e for e in entries if e.get("type") == "Primary"), entries[0])
        data = m["cvssData"]
        score = float(data["baseScore"])
        severity = data.get("baseSeverity") or m.get("baseSeverity")
        return (str(severity).upper() if severity else None), score
    return None, None


def parse_cve(cve: dict[str, Any]) -> dict[str, Any]:
    """One NVD `cve` object -> keyword arguments of `put_vulnerability` (raises on bad shape)."""
    vid = cve["id"]
    if not isinstance(vid, str) or not _CVE.match(vid):
        raise ValueError(f"bad CVE id {vid!r}")
    descriptions = cve.get("descriptions") or []
    summary = next((d["value"] for d in descriptions if d.get("lang") == "en"), "")
    severity, score = _metric(cve.get("metrics") or {})
    affected: list[dict[str, str | None]] = []
    for config in cve.get("configurations") or []:
        for node in config["nodes"]:
            if node.get("negate"):
                continue
            for match in node.get("cpeMatch") or []:
                if not match.get("vulnerable", False):
                    continue
                p = split_cpe(match["criteria"])
                row: dict[str, str | None] = {
                    "vendor": p[3].lower(),
                    "product": p[4].lower(),
                    "scheme": "auto",
                }
                version, update = p[5], p[6]
                if version not in ("*", "-", ""):
                    row["exact"] = version + (update if update not in ("*", "-", "") else "")
                for src, dst in _RANGE_KEYS.items():
                    if match.get(src):
                        row[dst] = str(match[src])
                row["fixed"] = row.get("end_excl")
                affected.append(row)
    return {
        "vuln_id": vid,
        "aliases": (),
        "severity": severity,
        "cvss": score,
        "summary": summary,
        "published": cve.get("published"),
        "modified": cve.get("lastModified"),
        "kev_added": cve.get("cisaExploitAdd"),
        "affected": affected,
    }


class NvdFeed:
    name = "nvd"
    description = "NVD CVE JSON 2.0 (API pages or yearly feed files, .json or .json.gz)"

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        js = JsonStream(stream)
        n = 0
        try:
            for index, item in js.items("vulnerabilities"):
                if n == 0:
                    fmt = js.header.get("format")
                    if fmt is not None and fmt != "NVD_CVE":
                        raise FeedError(f"nvd feed {source}: format is {fmt!r}, not 'NVD_CVE'")
                cve = item.get("cve") if isinstance(item, dict) else None
                rid = cve.get("id") if isinstance(cve, dict) else None
                try:
                    if not isinstance(cve, dict):
                        raise ValueError("item has no 'cve' object")
                    put_vulnerability(conn, source=f"nvd:{source}", **parse_cve(cve))
                except (KeyError, TypeError, ValueError) as exc:
                    problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise record_error(self.name, source, index, rid, problem) from exc
                n += 1
        except JsonStreamError as exc:
            raise record_error(
                self.name, source, exc.index, None, f"malformed JSON: {exc}"
            ) from exc
        return n
