"""firmware_db benchmarks, each beside a peer in the same run.

1. Lookups: 100,000 component lookups (vulnerabilities + lifecycle) against a database holding
   250,000 SYNTHETIC vulnerability records, vs a bare indexed sqlite3 SELECT of the candidate
   rows (no range evaluation: a floor, not a competitor).
2. Import: an NVD-year-sized SYNTHETIC feed (30,000 CVEs in NVD CVE JSON 2.0 format) through the
   streaming importer, vs the naive peer json.load + sqlite3 executemany. Each import runs in a
   child process so its peak RSS is its own.

All records are generated (ids CVE-2099-*, products synthetic-*) and labelled synthetic; they
say nothing about real software.

usage: python3 bench/firmware_db.py [--lookups 100000] [--vulns 250000] [--cves 30000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 20261123


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 60)}"


def build_vuln_db(path: Path, n_vulns: int, n_products: int) -> float:
    from firmware_db import open_database
    from firmware_db.store import put_vulnerability

    rng = random.Random(SEED)
    kb = open_database(path)
    conn = kb.connection
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    real = ["openssl", "busybox", "linux_kernel", "dropbear_ssh", "dnsmasq", "curl"]
    for i in range(n_vulns):
        product = real[i % len(real)] if i % 50 == 0 else f"synthetic-{i % n_products:05d}"
        lo = _version(rng)
        hi = _version(rng)
        if lo > hi:
            lo, hi = hi, lo
        affected = [{"product": product, "vendor": "synthetic", "start_incl": lo, "end_excl": hi}]
        if i % 3 == 0:
            affected.append({"product": product, "vendor": "synthetic", "exact": _version(rng)})
        put_vulnerability(
            conn,
            vuln_id=f"CVE-2099-{i:07d}",
            aliases=(),
            severity="HIGH",
            cvss=7.5,
            summary="synthetic record for benchmarking",
            published=None,
            modified=None,
            source="synthetic",
            affected=affected,
        )
    conn.execute("COMMIT")
    kb.close()
    return time.perf_counter() - t0


def bench_lookups(
    path: Path, n_lookups: int, n_products: int, distinct: int | None
) -> dict[str, float]:
    """Time `n_lookups` (vulnerabilities + lifecycle); `distinct` caps the distinct pairs."""
    from firmware_db.store import KnowledgeBase

    rng = random.Random(SEED + 1)
    names = [f"synthetic-{i:05d}" for i in range(n_products)]
    names += ["openssl", "libssl3", "busybox", "linux", "dropbear", "dnsmasq", "curl"]
    if distinct is None:
        queries = [(rng.choice(names), _version(rng)) for _ in range(n_lookups)]
    else:
        pool = [(rng.choice(names), _version(rng)) for _ in range(distinct)]
        queries = [rng.choice(pool) for _ in range(n_lookups)]

    kb = KnowledgeBase.open(path)
    anon0 = rss_anon_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    hits = 0
    for name, version in queries:
        hits += len(kb.vulnerabilities(name=name, version=version))
        kb.lifecycle(name, version)
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    grown = rss_anon_mb() - anon0
    kb.close()

    conn = sqlite3.connect(str(path))
    t0, c0 = time.perf_counter(), time.process_time()
    rows = 0
    for name, _ in queries:
        rows += len(
            conn.execute(
                "SELECT a.*, v.severity FROM vuln_affected a JOIN vulns v ON v.id = a.vuln_id "
                "WHERE a.product = ?",
                (name,),
            ).fetchall()
        )
    peer, peer_cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return {
        "ours_s": ours,
        "ours_cpu": ours_cpu,
        "ours_mem_mb": grown,
        "peer_s": peer,
        "peer_cpu": peer_cpu,
        "hits": hits,
        "candidate_rows": rows,
        "distinct": len(set(queries)),
    }


def write_nvd_feed(path: Path, n_cves: int) -> int:
    """An NVD 2.0 document shaped like a yearly feed (descriptions, metrics, configs, refs)."""
    rng = random.Random(SEED + 2)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(f'{{"resultsPerPage": {n_cves}, "startIndex": 0, "totalResults": {n_cves}, ')
        fh.write('"format": "NVD_CVE", "version": "2.0", "timestamp": "2099-01-01T00:00:00.000", ')
        fh.write('"vulnerabilities": [\n')
        for i in range(n_cves):
            product = f"synthetic-{rng.randint(0, 4999):05d}"
            matches = [
                {
                    "vulnerable": True,
                    "criteria": f"cpe:2.3:a:synthetic:{product}:*:*:*:*:*:*:*:*",
                    "versionStartIncluding": _version(rng),
                    "versionEndExcluding": _version(rng),
                    "matchCriteriaId": f"{rng.getrandbits(128):032X}",
                }
                for _ in range(rng.randint(1, 4))
            ]
            item = {
                "cve": {
                    "id": f"CVE-2099-{i:07d}",
                    "sourceIdentifier": "synthetic@example.invalid",
                    "published": "2099-01-01T00:00:00.000",
                    "lastModified": "2099-01-02T00:00:00.000",
                    "vulnStatus": "Analyzed",
                    "descriptions": [
                        {"lang": "en", "value": "Synthetic record for benchmarking. " * 8}
                    ],
                    "metrics": {
                        "cvssMetricV31": [
                            {
                                "source": "nvd@nist.gov",
                                "type": "Primary",
                                "cvssData": {
                                    "version": "3.1",
                                    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": 9.8,
                                    "baseSeverity": "CRITICAL",
                                },
                                "exploitabilityScore": 3.9,
                                "impactScore": 5.9,
                            }
                        ]
                    },
                    "weaknesses": [
                        {
                            "source": "nvd@nist.gov",
                            "type": "Primary",
                            "description": [{"lang": "en", "value": "CWE-787"}],
                        }
                    ],
                    "configurations": [
                        {"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}
                    ],
                    "references": [
                        {"url": f"https://example.invalid/advisory/{i}/{j}", "source": "synthetic"}
                        for j in range(rng.randint(2, 8))
                    ],
                }
            }
            fh.write(json.dumps(item))
            fh.write(",\n" if i < n_cves - 1 else "\n")
        fh.write("]}\n")
    return path.stat().st_size


def rss_anon_mb() -> float:
    """Anonymous resident memory (heap: caches, SQLite page cache), not the mapped db file."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import_stream(feed: str, db: str) -> None:
    from firmware_db.store import KnowledgeBase

    kb = KnowledgeBase.open(db)
    t0 = time.perf_counter()
    r = kb.import_feed("nvd", feed)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "records": r.records, "peak_rss_mb": peak_rss_mb()}))


def child_import_naive(feed: str, db: str) -> None:
    t0 = time.perf_counter()
    with open(feed, encoding="utf-8") as fh:
        doc = json.load(fh)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE v (id TEXT PRIMARY KEY, summary TEXT, cvss REAL)")
    conn.execute("CREATE TABLE a (vuln_id TEXT, product TEXT, start TEXT, end TEXT)")
    vs, affs = [], []
    for item in doc["vulnerabilities"]:
        cve = item["cve"]
        vs.append((cve["id"], cve["descriptions"][0]["value"], 9.8))
        for cfg in cve["configurations"]:
            for node in cfg["nodes"]:
                for m in node["cpeMatch"]:
                    affs.append(
                        (
                            cve["id"],
                            m["criteria"].split(":")[4],
                            m.get("versionStartIncluding"),
                            m.get("versionEndExcluding"),
                        )
                    )
    with conn:
        conn.executemany("INSERT OR REPLACE INTO v VALUES (?,?,?)", vs)
        conn.executemany("INSERT INTO a VALUES (?,?,?,?)", affs)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "records": len(vs), "peak_rss_mb": peak_rss_mb()}))


def run_child(kind: str, feed: Path, db: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(feed), str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lookups", type=int, default=100_000)
    ap.add_argument("--vulns", type=int, default=250_000)
    ap.add_argument("--products", type=int, default=5_000)
    ap.add_argument("--cves", type=int, default=30_000)
    ap.add_argument("--fleet", type=int, default=5_000, help="distinct pairs in the fleet mix")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "FEED", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, feed, db = args.child
        (child_import_stream if kind == "stream" else child_import_naive)(feed, db)
        return 0

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    with tempfile.TemporaryDirectory(prefix="fwdb-bench-") as tmp:
        d = Path(tmp)
        db = d / "lookup.sqlite"
        print(f"building database: {args.vulns:,} synthetic vulnerability records ...", flush=True)
        build_s = build_vuln_db(db, args.vulns, args.products)
        print(f"  (database built in {build_s:.1f} s)")
        for label, distinct in (("all pairs distinct", None), ("fleet-like mix", args.fleet)):
            lk = bench_lookups(db, args.lookups, args.products, distinct)
            print()
            print(
                f"lookups, {label}: {args.lookups:,} lookups, {int(lk['distinct']):,} distinct "
                f"component/version pairs, {args.vulns:,} synthetic vulns / {args.products:,} "
                "products"
            )
            print(f"  {'':38} {'wall s':>8} {'cpu s':>8} {'wall/lookup':>12}")
            print(
                f"  {'firmware_db (vulns + lifecycle)':38} {lk['ours_s']:8.2f} "
                f"{lk['ours_cpu']:8.2f} {lk['ours_s'] / args.lookups * 1e6:10.1f} us"
                f"   {int(lk['hits']):,} matches, heap +{lk['ours_mem_mb']:.0f} MB"
            )
            print(
                f"  {'peer: bare sqlite3 SELECT candidates':38} {lk['peer_s']:8.2f} "
                f"{lk['peer_cpu']:8.2f} {lk['peer_s'] / args.lookups * 1e6:10.1f} us"
                f"   {int(lk['candidate_rows']):,} rows, no range check"
            )

        feed = d / "nvdcve-2.0-2099.json"
        size = write_nvd_feed(feed, args.cves)
        ours = run_child("stream", feed, d / "stream.sqlite")
        peer = run_child("naive", feed, d / "naive.sqlite")
        print()
        print(f"import: {args.cves:,} synthetic CVEs, NVD JSON 2.0, {size / 1e6:.0f} MB file")
        print(f"  {'':38} {'seconds':>9} {'peak RSS':>10}")
        print(
            f"  {'firmware_db streaming importer':38} {ours['seconds']:9.2f} "
            f"{ours['peak_rss_mb']:8.0f} MB   (full schema, ranges, one transaction)"
        )
        print(
            f"  {'peer: json.load + executemany':38} {peer['seconds']:9.2f} "
            f"{peer['peak_rss_mb']:8.0f} MB   (two bare tables)"
        )
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
