"""The knowledge base: one SQLite database answering who controls a component, its lifecycle
and its known vulnerabilities. Reads are plain indexed queries; writes go through the helpers
below so the shipped reference loader and every feed importer store rows the same way.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from firmware_db import versions
from firmware_db.errors import FirmwareDbError
from firmware_db.models import (
    APPROACHING_DAYS,
    STATUS_APPROACHING_EOL,
    STATUS_EOL,
    STATUS_SUPPORTED,
    STATUS_UNKNOWN,
    Asset,
    ComponentInfo,
    DeviceModel,
    FirmwareRelease,
    ImportResult,
    LifecycleResult,
    Organization,
    Part,
    Vulnerability,
)
from firmware_db.schema import COUNTED_TABLES, SCHEMA, SCHEMA_VERSION
from firmware_db.vendors import normalize, tokens

ORIGIN_REFERENCE = "reference"
ORIGIN_IMPORT = "import"


class StoreError(FirmwareDbError):
    """The database cannot be opened or is not a knowledge base."""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a knowledge-base database with the schema applied."""
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.row_factory = sqlite3.Row
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{path}: not a usable firmware_db database ({exc})",
            tip="pass --db with a new path, or run `dunewatch firmware-db load --db PATH`",
        ) from exc
    if found != str(SCHEMA_VERSION):
        conn.close()
        raise StoreError(
            f"{path}: database schema {found}, this version needs {SCHEMA_VERSION}",
            tip="remove the file (it is rebuilt from the reference data) and re-import feeds",
        )
    return conn


# ----------------------------------------------------------------------------- writers


def _j(values: Iterable[Any]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def put_organization(conn: sqlite3.Connection, row: dict[str, str], origin: str) -> None:
    """Insert or replace one organization (suppliers.csv columns) and index its names."""
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("organization without a name")
    source = (row.get("source") or "").strip()
    if not source:
        raise ValueError(f"organization {name!r} has no source")
    aliases = _split(row.get("aliases"))
    pens = [int(p) for p in _split(row.get("iana_pen"))]
    community = (row.get("community") or "").strip().lower() in {"1", "true", "yes"}
    conn.execute(
        """INSERT INTO organizations (name, aliases, hq_country, ultimate_parent, parent_country,
               community, roles, iana_pens, flags, source, origin)
           VALUES (?,?,?,?,?,?,?,?,?,?,?)
           ON CONFLICT(name) DO UPDATE SET aliases=excluded.aliases, hq_country=excluded.hq_country,
               ultimate_parent=excluded.ultimate_parent, parent_country=excluded.parent_country,
               community=excluded.community, roles=excluded.roles, iana_pens=excluded.iana_pens,
               flags=excluded.flags, source=excluded.source, origin=excluded.origin""",
        (
            name,
            _j(aliases),
            (row.get("hq_country") or "").strip().upper() or None,
            (row.get("ultimate_parent") or "").strip() or None,
            (row.get("parent_country") or "").strip().upper() or None,
            int(community),
            _j(_split(row.get("role"))),
            _j(pens),
            _j(_split(row.get("flags"))),
            source,
            origin,
        ),
    )
    org_id = conn.execute("SELECT id FROM organizations WHERE name = ?", (name,)).fetchone()[0]
    conn.execute("DELETE FROM org_names WHERE org_id = ?", (org_id,))
    conn.execute("DELETE FROM org_pens WHERE org_id = ?", (org_id,))
    for rank, n in enumerate([name, *aliases]):
        key = normalize(n)
        if key:
            conn.execute(
                "INSERT OR IGNORE INTO org_names (norm, org_id, rank) VALUES (?,?,?)",
                (key, org_id, rank),
            )
    for pen in pens:
        conn.execute("INSERT OR IGNORE INTO org_pens (pen, org_id) VALUES (?,?)", (pen, org_id))


def put_lifecycle(conn: sqlite3.Connection, row: dict[str, str | None], origin: str) -> None:
    conn.execute(
        """INSERT OR REPLACE INTO lifecycles (product, cycle, release_date, eoas, eol, lts, latest,
               latest_date, source, origin) VALUES (?,?,?,?,?,?,?,?,?,?)""",
        (
            row["product"],
            row["cycle"],
            row.get("release_date") or None,
            row.get("eoas") or None,
            row.get("eol") or None,
            1 if (row.get("lts") or "").lower() == "true" else 0,
            row.get("latest") or None,
            row.get("latest_date") or None,
            row["source"],
            origin,
        ),
    )


def put_vulnerability(
    conn: sqlite3.Connection,
    *,
    vuln_id: str,
    aliases: Sequence[str],
    severity: str | None,
    cvss: float | None,
    summary: str,
    published: str | None,
    modified: str | None,
    source: str,
    affected: Sequence[dict[str, str | None]],
    kev_added: str | None = None,
    epss: float | None = None,
) -> None:
    """Replace one vulnerability and its affected ranges (so a re-import is idempotent)."""
    cve = vuln_id if vuln_id.upper().startswith("CVE-") else None
    if cve is None:
        cve = next((a for a in aliases if a.upper().startswith("CVE-")), None)
    conn.execute(
        """INSERT OR REPLACE INTO vulns (id, cve_id, aliases, severity, cvss, summary, published,
               modified, epss, kev_added, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
        (
            vuln_id,
            cve,
            _j(aliases),
            severity,
            cvss,
            summary,
            published,
            modified,
            epss,
            kev_added,
            source,
        ),
    )
    conn.execute("DELETE FROM vuln_affected WHERE vuln_id = ?", (vuln_id,))
    conn.executemany(
        """INSERT OR REPLACE INTO vuln_affected (vuln_id, n, product, vendor, ecosystem, scheme,
               exact, start_incl, start_excl, end_incl, end_excl, fixed, keyed, exact_key, lo_key,
               hi_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        [
            (
                vuln_id,
                n,
                (a["product"] or "").lower(),
                (a.get("vendor") or None),
                a.get("ecosystem"),
                a.get("scheme") or "auto",
                a.get("exact"),
                a.get("start_incl"),
                a.get("start_excl"),
                a.get("end_incl"),
                a.get("end_excl"),
                a.get("fixed"),
                *_range_keys(a),
            )
            for n, a in enumerate(affected)
        ],
    )


def _range_keys(a: dict[str, str | None]) -> tuple[int, bytes | None, bytes | None, bytes | None]:
    """(keyed, exact_key, lo_key, hi_key); keyed only when every bound has a plain key."""
    if a.get("ecosystem") or (a.get("scheme") or "auto") not in ("auto", "generic", "openssl"):
        return 0, None, None, None
    if (a.get("start_incl") and a.get("start_excl")) or (a.get("end_incl") and a.get("end_excl")):
        return 0, None, None, None
    keys: list[bytes | None] = []
    for bound in (
        a.get("exact"),
        a.get("start_incl") or a.get("start_excl"),
        a.get("end_incl") or a.get("end_excl"),
    ):
        if bound is None:
            keys.append(None)
            continue
        k = versions.plain_key(bound)
        if k is None:
            return 0, None, None, None
        keys.append(k)
    return 1, keys[0], keys[1], keys[2]


def put_device_model(conn: sqlite3.Connection, row: dict[str, str | None], origin: str) -> None:
    vendor, model = (row.get("vendor") or "").strip(), (row.get("model") or "").strip()
    conn.execute(
        """INSERT OR REPLACE INTO device_models (vendor_key, model_key, vendor, model, odm,
               device_class, hw_revision, launch, end_of_sale, end_of_support, end_of_life, source,
               origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        (
            normalize(vendor),
            model_key(model),
            vendor,
            model,
            row.get("odm") or None,
            row.get("device_class") or None,
            row.get("hw_revision") or None,
            row.get("launch") or None,
            row.get("end_of_sale") or None,
            row.get("end_of_support") or None,
            row.get("end_of_life") or None,
            row["source"],
            origin,
        ),
    )


def put_firmware_release(conn: sqlite3.Connection, row: dict[str, str | None], origin: str) -> None:
    vendor, model = (row.get("vendor") or "").strip(), (row.get("model") or "").strip()
    conn.execute(
        """INSERT OR REPLACE INTO firmware_releases (vendor_key, model_key, vendor, model, version,
               release_date, track, kernel, openssl, busybox, latest, source, origin)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        (
            normalize(vendor),
            model_key(model),
            vendor,
            model,
            (row.get("version") or "").strip(),
            row.get("release_date") or None,
            row.get("track") or None,
            row.get("kernel") or None,
            row.get("openssl") or None,
            row.get("busybox") or None,
            1 if (row.get("latest") or "").strip().lower() in {"1", "true", "yes"} else 0,
            row["source"],
            origin,
        ),
    )


def model_key(model: str) -> str:
    return re.sub(r"[\s_]+", "-", model.strip().upper())


def part_key(name: str) -> str:
    return re.sub(r"[\s_.-]+", "", name.strip().lower())


def record_import(conn: sqlite3.Connection, feed: str, source: str, records: int) -> None:
    conn.execute(
        "INSERT INTO imports (feed, source, records, at) VALUES (?,?,?,?)",
        (feed, source, records, datetime.now(UTC).isoformat(timespec="seconds")),
    )


# ----------------------------------------------------------------------------- reads


def _cycle_matches(version: str, cycle: str) -> bool:
    if version == cycle:
        return True
    if not version.startswith(cycle):
        return False
    nxt = version[len(cycle)]
    return not nxt.isdigit()


_DIGITS = re.compile(r"(\d+)")


def _behind(version: str, latest: str, cycle: str) -> int:
    """Releases between `version` and the cycle's latest, from the last differing component."""
    va, vl = version[len(cycle) :], latest[len(cycle) :]
    na, nl = _DIGITS.findall(va), _DIGITS.findall(vl)
    if na and nl and len(na) == len(nl):
        return max(1, int(nl[-1]) - int(na[-1]))
    if not na and nl:
        return max(1, int(nl[-1]))
    la = re.sub(r"[^a-z]", "", va.lower())
    ll = re.sub(r"[^a-z]", "", vl.lower())
    if len(ll) == 1 and len(la) <= 1:
        return max(1, ord(ll) - (ord(la) if la else ord("a") - 1))
    return 1


class KnowledgeBase:
    """Read API over one knowledge-base database (the shipped reference data plus imports)."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._components: list[sqlite3.Row] | None = None
        self._org_cache: dict[str, Organization | None] = {}
        self._model_keys: dict[str, frozenset[str]] = {}
        self._cycles: dict[str, list[sqlite3.Row]] | None = None
        self._details: dict[str, tuple[Any, ...]] = {}
        self._objs: dict[tuple[str, str | None], Vulnerability] = {}
        self._kev: dict[str, str] | None = None
        self._unkeyed: frozenset[str] | None = None
        self._ranges: OrderedDict[str, _ProductRanges] = OrderedDict()
        self._ranges_rows = 0

    # --- lifecycle of the object
    @classmethod
    def open(cls, path: str | Path) -> KnowledgeBase:
        """Open an existing or new database file; `load` it to add the reference data."""
        return cls(connect(path), str(path))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def invalidate(self) -> None:
        """Forget cached lookups after a write."""
        self._components = None
        self._cycles = None
        self._kev = None
        self._unkeyed = None
        self._details.clear()
        self._objs.clear()
        self._ranges.clear()
        self._ranges_rows = 0
        self._org_cache.clear()
        self._component_info.cache_clear()
        self._match.cache_clear()
        self._device_model.cache_clear()
        self._model_keys.clear()
        self._firmware_releases.cache_clear()

    # --- writes (library entry points behind the CLI)
    def load_reference(self, data_dir: Path | None = None) -> dict[str, int]:
        from firmware_db.reference import load_reference

        with self._lock:
            counts = load_reference(self._conn, data_dir)
        self.invalidate()
        return counts

    def import_feed(self, feed: str, location: str, **options: str) -> ImportResult:
        from firmware_db.feeds import import_feed

        with self._lock:
            result = import_feed(self._conn, feed, location, **options)
        self.invalidate()
        return result

    def stats(self) -> dict[str, Any]:
        counts = {t: self._rows(f"SELECT count(*) FROM {t}")[0][0] for t in COUNTED_TABLES}
        imports = [
            dict(r)
            for r in self._rows(
                "SELECT feed, source, records, at FROM imports ORDER BY rowid DESC LIMIT 20"
            )
        ]
        meta = {r["key"]: r["value"] for r in self._rows("SELECT key, value FROM meta")}
        return {"path": self.path, "tables": counts, "meta": meta, "imports": imports}

    # --- organizations
    def _org(self, row: sqlite3.Row) -> Organization:
        return Organization(
            name=row["name"],
            aliases=tuple(json.loads(row["aliases"])),
            hq_country=row["hq_country"],
            ultimate_parent=row["ultimate_parent"],
            parent_country=row["parent_country"],
            community=bool(row["community"]),
            roles=tuple(json.loads(row["roles"])),
            iana_pens=tuple(json.loads(row["iana_pens"])),
            source=row["source"],
            flags=tuple(json.loads(row["flags"])),
        )

    def vendor(self, name: str) -> Organization | None:
        """Resolve a vendor, brand or legal name to its organization (None when unknown)."""
        key = normalize(name or "")
        if not key:
            return None
        if key in self._org_cache:
            return self._org_cache[key]
        rows = self._rows(
            """SELECT o.* FROM org_names n JOIN organizations o ON o.id = n.org_id
               WHERE n.norm = ? ORDER BY n.rank, o.id LIMIT 1""",
            (key,),
        )
        org = self._org(rows[0]) if rows else self._vendor_by_tokens(key)
        self._org_cache[key] = org
        return org

    def _vendor_by_tokens(self, key: str) -> Organization | None:
        """Fallback: the longest known name whose tokens appear in order inside `key`."""
        have = tokens(key)
        padded = f" {key} "
        best: tuple[int, int, int] | None = None
        for r in self._rows("SELECT norm, org_id, rank FROM org_names"):
            norm = r["norm"]
            if len(norm) < 4 or len(tokens(norm)) > len(have):
                continue
            if f" {norm} " in padded:
                cand = (len(norm), -r["rank"], r["org_id"])
                if best is None or cand[:2] > best[:2]:
                    best = cand
        if best is None:
            return None
        rows = self._rows("SELECT * FROM organizations WHERE id = ?", (best[2],))
        return self._org(rows[0])

    def vendor_by_pen(self, pen: int) -> Organization | None:
        rows = self._rows(
            """SELECT o.* FROM org_pens p JOIN organizations o ON o.id = p.org_id
               WHERE p.pen = ? ORDER BY o.id LIMIT 1""",
            (int(pen),),
        )
        return self._org(rows[0]) if rows else None

    def organizations(self) -> list[Organization]:
        return [self._org(r) for r in self._rows("SELECT * FROM organizations ORDER BY name")]

    # --- components
    def component_info(self, name: str, manager: str | None = None) -> ComponentInfo | None:
        """Classify a package or binary name; None when the name is not in the catalogue."""
        return self._component_info(name.strip().lower(), (manager or "").strip().lower() or None)

    @lru_cache(maxsize=8192)  # noqa: B019 - the instance lives as long as its connection
    def _component_info(self, name: str, manager: str | None) -> ComponentInfo | None:
        if self._components is None:
            self._components = self._rows("SELECT * FROM components ORDER BY seq")
        fallback: sqlite3.Row | None = None
        for r in self._components:
            if not fnmatch.fnmatchcase(name, r["pattern"]):
                continue
            if r["manager"] is None:
                if fallback is None:
                    fallback = r
                continue
            if manager is not None and r["manager"] == manager:
                return self._info(name, r)
        return self._info(name, fallback) if fallback is not None else None

    @staticmethod
    def _info(name: str, r: sqlite3.Row) -> ComponentInfo:
        return ComponentInfo(
            name=name,
            layer=r["layer"],
            product=r["product"],
            supplier=r["supplier"],
            community=bool(r["community"]),
            cpe_vendor=r["cpe_vendor"],
            cpe_product=r["cpe_product"],
            substitutability=r["substitutability"],
            source=r["source"],
        )

    # --- lifecycles
    def lifecycle_products(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT product FROM lifecycles ORDER BY 1")]

    def _lifecycle_rows(self) -> dict[str, list[sqlite3.Row]]:
        """All release cycles by product (a few hundred rows), cached until the next write."""
        if self._cycles is None:
            cycles: dict[str, list[sqlite3.Row]] = {}
            for r in self._rows("SELECT * FROM lifecycles"):
                cycles.setdefault(r["product"], []).append(r)
            self._cycles = cycles
        return self._cycles

    def _product_key(self, product: str) -> str | None:
        p = product.strip().lower()
        if p in self._lifecycle_rows():
            return p
        info = self.component_info(p)
        return info.product if info and info.product else None

    def lifecycle(self, product: str, version: str, today: date | None = None) -> LifecycleResult:
        """Status of `version` of `product` (a lifecycle key or a package name) on `today`."""
        today = today or date.today()
        key = self._product_key(product)
        raw = (version or "").strip()

        def unknown(reason: str, **kw: Any) -> LifecycleResult:
            return LifecycleResult(
                product=key or product,
                version=raw,
                status=STATUS_UNKNOWN,
                eol=kw.get("eol"),
                cycle=kw.get("cycle"),
                latest=kw.get("latest"),
                versions_behind=kw.get("behind"),
                release_date=kw.get("release_date"),
                support_end=kw.get("support_end"),
                source=kw.get("source"),
                reason=reason,
            )

        if key is None:
            return unknown(f"no lifecycle data for {product!r}")
        if not raw:
            return unknown("no version given")
        v = versions.upstream(raw)
        best: sqlite3.Row | None = None
        for r in self._lifecycle_rows().get(key, []):
            if _cycle_matches(v, r["cycle"]) and (
                best is None or len(r["cycle"]) > len(best["cycle"])
            ):
                best = r
        if best is None:
            return unknown(f"version {raw!r} matches no published {key} release cycle")
        latest = best["latest"]
        behind: int | None = None
        if latest:
            try:
                behind = (
                    0 if versions.compare(v, latest) >= 0 else _behind(v, latest, best["cycle"])
                )
            except versions.VersionError:
                behind = None
        eol_raw = (best["eol"] or "").strip().lower()
        support_end = best["eoas"] if best["eoas"] not in (None, "true", "false") else None
        common: dict[str, Any] = dict(
            product=key,
            version=raw,
            cycle=best["cycle"],
            latest=latest,
            versions_behind=behind,
            release_date=best["release_date"],
            support_end=support_end,
            source=best["source"],
        )
        if eol_raw == "true":
            return LifecycleResult(
                status=STATUS_EOL,
                eol=None,
                reason=f"{key} {best['cycle']} is marked end-of-life (no date published)",
                **common,
            )
        if eol_raw == "false":
            return LifecycleResult(
                status=STATUS_SUPPORTED,
                eol=None,
                reason=f"{key} {best['cycle']} has no end-of-life announced",
                **common,
            )
        if not eol_raw:
            return unknown(
                f"no end-of-life published for {key} {best['cycle']}",
                cycle=best["cycle"],
                latest=latest,
                behind=behind,
                release_date=best["release_date"],
                source=best["source"],
            )
        try:
            eol = date.fromisoformat(eol_raw)
        except ValueError:
            return unknown(f"unreadable end-of-life {eol_raw!r} for {key} {best['cycle']}")
        if eol <= today:
            status, why = STATUS_EOL, f"end of life since {eol.isoformat()}"
        elif eol <= today + timedelta(days=APPROACHING_DAYS):
            status, why = STATUS_APPROACHING_EOL, f"end of life on {eol.isoformat()}"
        else:
            status, why = STATUS_SUPPORTED, f"supported until {eol.isoformat()}"
        return LifecycleResult(status=status, eol=eol.isoformat(), reason=why, **common)

    # --- vulnerabilities
    def vulnerabilities(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        purl: str | None = None,
        cpe: str | None = None,
    ) -> list[Vulnerability]:
        """Known vulnerabilities affecting a component, honouring the published version ranges."""
        vendor: str | None = None
        ecosystem: str | None = None
        if purl:
            name, version, ecosystem = _parse_purl(purl, version)
        if cpe:
            vendor, cpe_product, cpe_version = _parse_cpe(cpe)
            name = name or cpe_product
            version = version or cpe_version
        if not name or not version:
            return []
        with self._lock:  # the caches below are shared by threads using this knowledge base
            return list(self._match(name.lower(), version, vendor, ecosystem))

    @lru_cache(maxsize=65536)  # noqa: B019 - cleared by invalidate() after every write
    def _match(
        self, name: str, version: str, vendor: str | None, ecosystem: str | None
    ) -> tuple[Vulnerability, ...]:
        """Fleets repeat the same component versions: results are cached until a write."""
        keys = {name}
        info = self.component_info(name)
        if info is not None and info.cpe_product:
            keys.add(info.cpe_product)
            vendor = vendor or info.cpe_vendor
        marks = ",".join("?" * len(keys))
        up = versions.upstream(version)
        vkey = versions.plain_key(up)
        matched: dict[str, str | None] = {}
        extra: dict[str, str | None] = {}  # matches among the rows range-tested by in_range
        found: list[Vulnerability] = []
        if vkey is not None and len(keys) == 1 and name not in self._unkeyed_products():
            # The common case: one product, every row keyed, rows already in result order.
            return self._product_ranges(name).matching(vkey)
        if vkey is not None:
            # Plain version: test the product's keyed rows in memory, on their byte keys.
            for product in sorted(keys):
                vendor_check = vendor if product != name else None
                for row_vendor, obj in self._product_ranges(product).match(vkey):
                    vid = obj.id
                    if vid in matched or (
                        vendor_check and row_vendor and row_vendor != vendor_check
                    ):
                        continue
                    matched[vid] = obj.fixed_version
                    found.append(obj)
            unkeyed = self._unkeyed_products()
            rest = (
                self._rows(
                    f"SELECT {_ROW_COLUMNS} FROM vuln_affected "
                    f"WHERE product IN ({marks}) AND keyed = 0",
                    tuple(keys),
                )
                if not unkeyed.isdisjoint(keys)
                else []
            )
        else:
            rest = self._rows(
                f"SELECT {_ROW_COLUMNS} FROM vuln_affected WHERE product IN ({marks})", tuple(keys)
            )
        for r in rest:
            vid = r[0]
            if vid in matched:
                continue
            if vendor and r[2] and r[2] != vendor and r[1] != name:
                continue
            eco = r[3]
            if ecosystem and eco and not eco.lower().startswith(ecosystem):
                continue
            # Distribution ranges (OSV Debian/Alpine) use packaged versions; CPE ranges upstream.
            if not versions.in_range(
                version if eco else up,
                exact=r[5],
                start_incl=r[6],
                start_excl=r[7],
                end_incl=r[8],
                end_excl=r[9],
                scheme=r[4],
            ):
                continue
            matched[vid] = extra[vid] = r[10] or r[9]
        if extra:
            found += self._vulnerability_objects(extra)
        if not found:
            return ()
        return tuple(sorted(found, key=_severity_order))

    def _product_ranges(self, product: str) -> _ProductRanges:
        """One product's keyed rows with their result objects, read in one query on first use
        and kept in an LRU bounded by rows (`_RANGE_ROWS_MAX`)."""
        cache = self._ranges
        pr = cache.get(product)
        if pr is not None:
            cache.move_to_end(product)
            return pr
        kev = self._kev_dates()
        shared: dict[Any, Any] = {}  # one object per repeated key, string or vulnerability
        rows: list[_RangeRow] = []
        with self._lock:
            cur = self._conn.execute(_PRODUCT_ROWS, (product,))
            cur.row_factory = None
            for (
                vid, row_vendor, fixed, ek, lk, li, hk, hi,
                aliases, severity, cvss, summary, epss, source, kev_added, cve,
            ) in cur:  # fmt: skip
                base = (vid, fixed)
                obj = shared.get(base)
                if obj is None:
                    kev_date = (kev.get(cve) if cve else None) or kev_added
                    obj = shared[base] = Vulnerability(
                        id=vid,
                        aliases=tuple(json.loads(aliases)) if aliases != "[]" else (),
                        severity=shared.setdefault(severity, severity),
                        cvss=shared.setdefault(cvss, cvss),
                        kev=kev_date is not None,
                        kev_date=kev_date,
                        epss=epss,
                        summary=summary,
                        fixed_version=shared.setdefault(fixed, fixed),
                        source=shared.setdefault(source, source),
                    )
                lo, hi = _interval(ek, lk, li, hk, hi)
                rows.append(
                    (
                        shared.setdefault(lo, lo),
                        shared.setdefault(hi, hi),
                        shared.setdefault(row_vendor, row_vendor),
                        obj,
                    )
                )
        # Stable sort into result order: rows of one vulnerability keep their order (n).
        rows.sort(key=lambda row: _severity_order(row[3]))
        pr = _ProductRanges(tuple(rows))
        cache[product] = pr
        self._ranges_rows += len(rows) + 1
        while self._ranges_rows > _RANGE_ROWS_MAX and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self._ranges_rows -= len(old.rows) + 1
        return pr

    def _details_rows(self, ids: tuple[str, ...]) -> list[sqlite3.Row]:
        chunk = list(ids)
        # Pad to a power of two so only a few distinct statements reach the statement cache.
        size = 1 << (len(chunk) - 1).bit_length()
        chunk += [chunk[-1]] * (size - len(chunk))
        return self._rows(
            "SELECT v.id, v.aliases, v.severity, v.cvss, v.summary, COALESCE(v.epss, e.epss), "
            "v.source, v.kev_added, v.cve_id FROM vulns v "
            f"LEFT JOIN epss e ON e.cve_id = v.cve_id WHERE v.id IN ({','.join('?' * size)})",
            chunk,
        )

    def _vulnerability_objects(self, matched: dict[str, str | None]) -> list[Vulnerability]:
        objs = self._objs
        missing = tuple(vid for vid, fixed in matched.items() if (vid, fixed) not in objs)
        if missing:
            details = self._vuln_details(missing)
            kev = self._kev_dates()
            for vid in missing:
                fixed = matched[vid]
                aliases, severity, cvss, summary, epss, source, kev_added, cve = details[vid]
                kev_date = (kev.get(cve) if cve else None) or kev_added
                objs[(vid, fixed)] = Vulnerability(
                    id=vid,
                    aliases=aliases,
                    severity=severity,
                    cvss=cvss,
                    kev=kev_date is not None,
                    kev_date=kev_date,
                    epss=epss,
                    summary=summary,
                    fixed_version=fixed,
                    source=source,
                )
        result = [objs[item] for item in matched.items()]
        if len(objs) > _DETAILS_MAX:
            # Start over rather than evict one by one: popping the oldest entry of a big dict
            # leaves dummy slots that make every later miss probe longer.
            objs.clear()
        return result

    def _vuln_details(self, ids: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
        """Per-vulnerability fields, from a bounded cache (many lookups share the same CVEs)."""
        cache = self._details
        missing = [i for i in ids if i not in cache]
        for start in range(0, len(missing), 256):
            for r in self._details_rows(tuple(missing[start : start + 256])):
                aliases = tuple(json.loads(r[1])) if r[1] != "[]" else ()
                cache[r[0]] = (aliases, r[2], r[3], r[4], r[5], r[6], r[7], r[8])
        result = {i: cache[i] for i in ids}
        if len(cache) > _DETAILS_MAX:
            cache.clear()
        return result

    def _unkeyed_products(self) -> frozenset[str]:
        """Products with rows the byte keys cannot test (few: distribution and PyPI ranges)."""
        if self._unkeyed is None:
            self._unkeyed = frozenset(
                r[0]
                for r in self._rows("SELECT DISTINCT product FROM vuln_affected WHERE keyed = 0")
            )
        return self._unkeyed

    def _kev_dates(self) -> dict[str, str]:
        if self._kev is None:
            self._kev = {r[0]: r[1] for r in self._rows("SELECT cve_id, date_added FROM kev")}
        return self._kev

    # --- parts, models, firmware, assets
    def _part(self, r: sqlite3.Row) -> Part:
        return Part(
            kind=r["kind"],
            manufacturer=r["manufacturer"],
            family=r["family"],
            part_number=r["part_number"],
            compatibles=tuple(json.loads(r["compatibles"])),
            substitutability=r["substitutability"],
            source=r["source"],
        )

    def part(self, name_or_compatible: str) -> Part | None:
        """A SoC, sensor or radio by part number (`Hi3516CV300`) or DT compatible string."""
        q = name_or_compatible.strip()
        keys = [q.lower(), part_key(q)]
        if "," in q:  # 'rockchip,rv1126-grf' -> also try the bare part after the vendor prefix
            keys.append(part_key(q.split(",", 1)[1]))
        for k in keys:
            rows = self._rows(
                """SELECT p.* FROM part_keys k JOIN parts p ON p.part_number = k.part_number
                   WHERE k.key = ? LIMIT 1""",
                (k,),
            )
            if rows:
                return self._part(rows[0])
        return None

    def parts(self) -> list[Part]:
        return [self._part(r) for r in self._rows("SELECT * FROM parts ORDER BY part_number")]

    def _has_key(self, table: str, column: str, key: str) -> bool:
        """Whether any row of `table` has this key: most fleet devices are in no catalogue or
        register, and a set answers them without a query (per vendor alias, for models)."""
        keys = self._model_keys.get(table)
        if keys is None:
            rows = self._rows(f"SELECT DISTINCT {column} FROM {table}")
            keys = self._model_keys[table] = frozenset(r[0] for r in rows)
        return key in keys

    def _model_rows(self, table: str, vendor: str, model: str) -> list[sqlite3.Row]:
        """A model's catalogue rows, under the first vendor alias that has any."""
        mk = model_key(model)
        if not self._has_key(table, "model_key", mk):
            return []
        for vk in self._vendor_keys(vendor):
            rows = self._rows(
                f"SELECT * FROM {table} WHERE vendor_key = ? AND model_key = ?", (vk, mk)
            )
            if rows:
                return rows
        return []

    def _vendor_keys(self, vendor: str) -> list[str]:
        keys = [normalize(vendor)]
        org = self.vendor(vendor)
        if org is not None:
            keys += [normalize(n) for n in (org.name, *org.aliases)]
        return list(dict.fromkeys(k for k in keys if k))

    def device_model(self, vendor: str, model: str) -> DeviceModel | None:
        """A device model's vendor dates; status stays unknown when the vendor published none."""
        return self._device_model(vendor, model)

    @lru_cache(maxsize=65536)  # noqa: B019 - cleared by invalidate() after every write
    def _device_model(self, vendor: str, model: str) -> DeviceModel | None:
        """Fleets hold thousands of devices of a few models: answers are cached until a write."""
        rows = self._model_rows("device_models", vendor, model)
        if not rows:
            return None
        r = rows[0]
        return DeviceModel(
            vendor=r["vendor"],
            model=r["model"],
            odm=r["odm"],
            device_class=r["device_class"],
            hw_revision=r["hw_revision"],
            launch=r["launch"],
            end_of_sale=r["end_of_sale"],
            end_of_support=r["end_of_support"],
            end_of_life=r["end_of_life"],
            source=r["source"],
        )

    def firmware_releases(self, vendor: str, model: str) -> list[FirmwareRelease]:
        """Known firmware releases of a model, oldest first."""
        return list(self._firmware_releases(vendor, model))

    @lru_cache(maxsize=65536)  # noqa: B019 - cleared by invalidate() after every write
    def _firmware_releases(self, vendor: str, model: str) -> tuple[FirmwareRelease, ...]:
        rows = self._model_rows("firmware_releases", vendor, model)
        out = [
            FirmwareRelease(
                vendor=r["vendor"],
                model=r["model"],
                version=r["version"],
                release_date=r["release_date"],
                track=r["track"],
                kernel=r["kernel"],
                openssl=r["openssl"],
                busybox=r["busybox"],
                latest=bool(r["latest"]),
                source=r["source"],
            )
            for r in rows
        ]
        return tuple(sorted(out, key=_release_sort_key))

    def latest_firmware(self, vendor: str, model: str) -> FirmwareRelease | None:
        """The release flagged latest, else the newest by version order."""
        releases = self.firmware_releases(vendor, model)
        flagged = [r for r in releases if r.latest]
        if flagged:
            return flagged[-1]
        return releases[-1] if releases else None

    def asset(self, device_id: str) -> Asset | None:
        # reports and alert passes ask for every device; most are not in the register
        if not self._has_key("assets", "device_id", device_id):
            return None
        rows = self._rows("SELECT * FROM assets WHERE device_id = ?", (device_id,))
        return _asset(rows[0]) if rows else None

    def assets(self) -> Iterator[Asset]:
        for r in self._rows("SELECT * FROM assets ORDER BY device_id"):
            yield _asset(r)


_DETAILS_MAX = 200_000  # bounded caches: ~60 MB at most
_RANGE_ROWS_MAX = 400_000  # keyed rows (and their result objects) kept in memory
_ROW_COLUMNS = (
    "vuln_id, product, vendor, ecosystem, scheme, exact, start_incl, start_excl, end_incl, "
    "end_excl, fixed"
)


def _severity_order(v: Vulnerability) -> tuple[bool, float, str]:
    return (not v.kev, -(v.cvss or 0.0), v.id)


# (lo, hi, vendor, result object): the row matches version key k when lo <= k < hi
_RangeRow = tuple[bytes, bytes, str | None, Vulnerability]
# Above every plain_key: those start with 0x00 (a digit part's 2-byte weight 0x0002).
_NO_END = b"\xff"


def _interval(
    exact: bytes | None, lo: bytes | None, lo_incl: int, hi: bytes | None, hi_incl: int
) -> tuple[bytes, bytes]:
    """A keyed row's bounds as one half-open interval [start, end) of byte keys.

    In byte order the least key above k is k followed by a zero byte, so `k > lo` is
    `k >= lo + 0`, `k <= hi` is `k < hi + 0`, and `k == exact` is `exact <= k < exact + 0`.
    """
    start = b"" if lo is None else lo if lo_incl else lo + b"\x00"
    end = _NO_END if hi is None else hi + b"\x00" if hi_incl else hi
    if exact is not None:
        start, end = max(start, exact), min(end, exact + b"\x00")
    return start, end


_PRODUCT_ROWS = """SELECT a.vuln_id, a.vendor, COALESCE(a.fixed, a.end_excl), a.exact_key, a.lo_key,
        a.start_incl IS NOT NULL, a.hi_key, a.end_incl IS NOT NULL, v.aliases, v.severity, v.cvss,
        v.summary, COALESCE(v.epss, e.epss), v.source, v.kev_added, v.cve_id
    FROM vuln_affected a JOIN vulns v ON v.id = a.vuln_id LEFT JOIN epss e ON e.cve_id = v.cve_id
    WHERE a.product = ? AND a.keyed = 1 ORDER BY a.vuln_id, a.n"""


class _ProductRanges:
    """One product's keyed rows, each with its (shared, immutable) result object.

    Keys are `versions.plain_key` bytes, so comparing bytes is comparing versions: the same
    test SQLite would run on these columns, without a query per lookup.
    """

    __slots__ = ("rows", "unique")

    def __init__(self, rows: tuple[_RangeRow, ...]) -> None:
        self.rows = rows  # in result order (_severity_order), then by row number
        self.unique = len({row[3].id for row in rows}) == len(rows)

    def match(self, vkey: bytes) -> list[tuple[str | None, Vulnerability]]:
        return [(vendor, obj) for lo, hi, vendor, obj in self.rows if lo <= vkey < hi]

    def matching(self, vkey: bytes) -> tuple[Vulnerability, ...]:
        """Matching vulnerabilities in result order, the first row of each winning."""
        found = [obj for lo, hi, _, obj in self.rows if lo <= vkey < hi]
        if self.unique or len(found) < 2:
            return tuple(found)
        first: dict[str, Vulnerability] = {}
        for obj in found:
            first.setdefault(obj.id, obj)
        return tuple(first.values())


def _asset(r: sqlite3.Row) -> Asset:
    return Asset(
        device_id=r["device_id"],
        install_date=r["install_date"],
        criticality=r["criticality"],
        vendor=r["vendor"],
        model=r["model"],
        tags=tuple((k, v) for k, v in json.loads(r["tags"])),
        source=r["source"],
    )


class _VersionKey:
    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _VersionKey) -> bool:
        try:
            return versions.compare(self.version, other.version) < 0
        except versions.VersionError:
            return self.version < other.version


def _release_sort_key(r: FirmwareRelease) -> tuple[str, _VersionKey]:
    return (r.release_date or "", _VersionKey(r.version))


def _parse_purl(purl: str, version: str | None) -> tuple[str, str | None, str | None]:
    from packageurl import PackageURL

    try:
        p = PackageURL.from_string(purl)
    except ValueError as exc:
        raise FirmwareDbError(f"bad purl {purl!r}: {exc}") from exc
    eco = {"deb": "debian", "apk": "alpine", "pypi": "pypi"}.get(p.type, p.type)
    if p.type == "deb" and p.namespace:
        eco = p.namespace.lower()
    return p.name, version or p.version, eco


def _parse_cpe(cpe: str) -> tuple[str | None, str, str | None]:
    parts = cpe.split(":")
    if cpe.startswith("cpe:2.3:") and len(parts) >= 6:
        vendor, product, ver = parts[3], parts[4], parts[5]
    elif cpe.startswith("cpe:/") and len(parts) >= 4:
        vendor, product = parts[2], parts[3]
        ver = parts[4] if len(parts) > 4 else "*"
    else:
        raise FirmwareDbError(f"bad CPE {cpe!r}: expected cpe:2.3:... or cpe:/...")
    return (
        vendor if vendor not in ("*", "-") else None,
        product.lower(),
        ver if ver not in ("*", "-", "") else None,
    )
