"""OSV records (https://ossf.github.io/osv-schema/): one object, an array, or a zip of files."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from typing import Any, TextIO

from firmware_db.feeds.interface import FeedError, record_error
from firmware_db.feeds.jsonstream import JsonStream, JsonStreamError
from firmware_db.store import put_vulnerability

_SCHEMES = {
    "debian": "deb",
    "ubuntu": "deb",
    "alpine": "apk",
    "pypi": "pep440",
    "npm": "semver",
    "go": "semver",
    "crates.io": "semver",
}
_CVSS_SCORE = re.compile(r"^\d+(\.\d+)?$")


def _scheme(ecosystem: str) -> str:
    return _SCHEMES.get(ecosystem.split(":", 1)[0].lower(), "auto")


def parse_osv(rec: dict[str, Any]) -> dict[str, Any]:
    vid = rec["id"]
    if not isinstance(vid, str) or not vid:
        raise ValueError(f"bad id {vid!r}")
    aliases = rec.get("aliases") or []
    if not isinstance(aliases, list):
        raise ValueError("aliases is not a list")
    severity: str | None = None
    cvss: float | None = None
    db = rec.get("database_specific") or {}
    if isinstance(db, dict) and isinstance(db.get("severity"), str):
        severity = db["severity"].upper()
    for s in rec.get("severity") or []:
        score = str(s.get("score", ""))
        if _CVSS_SCORE.match(score):
            cvss = float(score)
    affected: list[dict[str, str | None]] = []
    for aff in rec.get("affected") or []:
        pkg = aff["package"]
        name, eco = pkg["name"], pkg.get("ecosystem") or ""
        base: dict[str, str | None] = {"product": name, "ecosystem": eco, "scheme": _scheme(eco)}
        for v in aff.get("versions") or []:
            affected.append({**base, "exact": str(v)})
        for rng in aff.get("ranges") or []:
            if rng["type"] not in ("ECOSYSTEM", "SEMVER"):
                continue  # GIT ranges name commits, not versions
            start: str | None = None
            open_range = False
            for ev in rng["events"]:
                if "introduced" in ev:
                    intro = str(ev["introduced"])
                    start = None if intro == "0" else intro
                    open_range = True
                elif "fixed" in ev or "last_affected" in ev:
                    if not open_range:
                        raise ValueError("range event 'fixed' before 'introduced'")
                    row = {**base, "start_incl": start}
                    if "fixed" in ev:
                        row["end_excl"] = row["fixed"] = str(ev["fixed"])
                    else:
                        row["end_incl"] = str(ev["last_affected"])
                    affected.append(row)
                    open_range = False
                elif "limit" not in ev:
                    raise ValueError(f"unknown range event {sorted(ev)}")
            if open_range:
                affected.append({**base, "start_incl": start})
    return {
        "vuln_id": vid,
        "aliases": [str(a) for a in aliases],
        "severity": severity,
        "cvss": cvss,
        "summary": rec.get("summary") or (rec.get("details") or "")[:500],
        "published": rec.get("published"),
        "modified": rec.get("modified"),
        "affected": affected,
    }


class OsvFeed:
    name = "osv"
    description = "OSV JSON: one record, an array of records, or an OSV zip export (all.zip)"

    def _records(self, stream: TextIO, source: str) -> Iterator[tuple[int, Any]]:
        if source.lower().endswith(".zip"):
            raw = getattr(stream, "buffer", None)
            # A local file is read in place (zip needs seeking); a download is buffered first.
            source_file = (
                raw
                if raw is not None and raw.seekable()
                else io.BytesIO(raw.read() if raw is not None else b"")
            )
            try:
                with zipfile.ZipFile(source_file) as zf:
                    names = sorted(n for n in zf.namelist() if n.endswith(".json"))
                    for index, member in enumerate(names):
                        try:
                            yield index, json.loads(zf.read(member))
                        except ValueError as exc:
                            raise record_error(self.name, source, index, member, str(exc)) from exc
            except zipfile.BadZipFile as exc:
                raise FeedError(f"osv feed {source}: not a zip file ({exc})") from exc
            return
        js = JsonStream(stream)
        if js.peek() == "[":
            yield from js.items(None)
        else:
            try:
                yield 0, json.loads(js.rest())
            except ValueError as exc:
                raise record_error(self.name, source, 0, None, f"malformed JSON: {exc}") from exc

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        n = 0
        try:
            for index, rec in self._records(stream, source):
                rid = rec.get("id") if isinstance(rec, dict) else None
                try:
                    if not isinstance(rec, dict):
                        raise ValueError("record is not an object")
                    put_vulnerability(conn, source=f"osv:{source}", **parse_osv(rec))
                except (KeyError, TypeError, ValueError) as exc:
                    problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise record_error(self.name, source, index, rid, problem) from exc
                n += 1
        except JsonStreamError as exc:
            raise record_error(
                self.name, source, exc.index, None, f"malformed JSON: {exc}"
            ) from exc
        return n
