"""Rollup pass: CPU per raw health report folded into both rollup tiers, beside a peer.

The peer is the single-statement form the store used before: one UNION of json_extract calls
on the `body` column per metric, grouped and merged into a 5-minute tier, in one transaction.
Both run on copies of the same database of simulated health reports (bench/ingest.py's).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from ingest import boot_id, envelope  # noqa: E402  (bench/ingest.py)

from agent.envelope import parse  # noqa: E402
from collector.store.sqlite import SqliteStore  # noqa: E402

HOLDS: list[float] = []  # how long each write transaction held the database's write lock
_write = SqliteStore._write


@contextlib.contextmanager
def _timed_write(self: SqliteStore) -> Iterator[Any]:
    t0 = time.monotonic()
    with _write(self) as conn:
        yield conn
    HOLDS.append(time.monotonic() - t0)


PEER_SCALARS = (
    ("cpu.pct", "$.cpu.pct"),
    ("cpu.load1", "$.cpu.load1"),
    ("mem.pct", "$.mem.pct"),
    ("mem.swap_pct", "$.mem.swap_pct"),
    ("procs", "$.procs"),
    ("agent.rss", "$.agent.rss"),
)


def peer_rollup(store: SqliteStore, bucket: float) -> None:
    src = "FROM health h WHERE h.id > 0"
    b = "CAST(h.ts / :b AS INTEGER) * :b"
    parts = [
        f"SELECT h.device_id AS d, {b} AS bk, '{n}' AS m, json_extract(h.body, '{p}') AS v {src}"
        for n, p in PEER_SCALARS
    ]
    parts.append(
        f"SELECT h.device_id, {b}, 'disk.' || j.key || '.pct', json_extract(j.value, '$.pct') "
        "FROM health h, json_each(h.body, '$.disk') j WHERE json_type(h.body, '$.disk') = "
        "'object' AND j.type = 'object'"
    )
    parts.append(
        f"SELECT h.device_id, {b}, 'temp.' || j.key, j.value FROM health h, "
        "json_each(h.body, '$.temp') j WHERE json_type(h.body, '$.temp') = 'object'"
    )
    conn = store.conn
    t0 = time.monotonic()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO rollups (device_id, bucket, metric, n, min, max, sum) "
        "SELECT d, bk, m, count(v), min(v), max(v), sum(v) FROM ("
        + " UNION ALL ".join(parts)
        + ") "
        "WHERE typeof(v) IN ('integer', 'real') GROUP BY d, bk, m "
        "ON CONFLICT (device_id, bucket, metric) DO UPDATE SET n = n + excluded.n",
        {"b": bucket},
    )
    conn.execute("COMMIT")
    HOLDS.append(time.monotonic() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10000, help="simulated devices")
    ap.add_argument("--per-device", type=int, default=20, help="reports per device (30 s apart)")
    ap.add_argument(
        "--passes",
        default="2,10",
        help="reports per device between two passes, comma-separated: one row each (2 = the "
        "serve loop's minute at one report every 30 s, 10 = one pass per 5-minute bucket)",
    )
    args = ap.parse_args()
    cadences = [int(x) for x in args.passes.split(",") if x.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-rollup-"))
    try:
        src = work / "src.db"
        store = SqliteStore(src)
        start = 1.7e9 - 1.7e9 % 300  # bucket-aligned: ten reports 30 s apart fill one bucket
        marks: list[float] = []  # receive time after each round of reports
        for seq in range(1, args.per_device + 1):
            raws = [
                envelope(f"sim-{i:06d}", boot_id(i), seq, i, start + 30 * (seq - 1))
                for i in range(args.devices)
            ]
            store.apply([parse(r) for r in raws], time.time(), raws)
            marks.append(time.time())
        store.close()
        total = args.devices * args.per_device
        print(
            f"{total} simulated health reports from {args.devices} simulated devices "
            f"({args.per_device} each, 30 s apart)\n"
        )
        print(f"{'rollup pass':74} {'CPU s':>7} {'us/report':>10} {'longest write lock':>19}")
        runs: list[tuple[str, int]] = [("peer: one statement, json_extract per metric, 1 tier", 0)]
        for k in cadences:
            runs.append(
                (f"dunewatch: 2 tiers, 50k groups per write, a pass every {k} reports/device", k)
            )
        for name, every in runs:
            db = work / f"run-{every}.db"
            shutil.copy(src, db)
            s = SqliteStore(db)
            HOLDS.clear()
            SqliteStore._write = _timed_write  # type: ignore[method-assign]
            t0 = time.process_time()
            if not every:
                peer_rollup(s, 300.0)
            else:
                done = 0
                for k in range(every - 1, len(marks), every):
                    done += s.rollup(received_before=marks[k])
                done += s.rollup()
                assert done == total
            cpu = time.process_time() - t0
            SqliteStore._write = _write  # type: ignore[method-assign]
            s.close()
            print(
                f"{name:74} {cpu:>7.2f} {cpu / total * 1e6:>10.1f} "
                f"{max(HOLDS):>11.2f} s of {len(HOLDS)}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
