"""Saturation window read: what the alert pass pays per pass to judge sustained saturation.

  dunewatch  Store.rollup_windows: whole coarse (1-hour) buckets settle a metric-hour when its
             lowest report is at or over the threshold or its highest is under; only the window's
             first, partial hour and the hours that cross the threshold are read 5 minutes at a
             time
  peer       the same answer from the 5-minute tier alone: one grouped query over every fine
             bucket of the window

Both read the same database, 1,000 devices per query as the alert pass does, and must agree.
A second table times the report's search for saturated runs (sbom.aging) over the same window:
samples from `Store.saturation_rollups` (a metric's 5-minute buckets only in hours where one of
its reports reached the threshold, one calm sample per other hour, nothing for a device that
reached none) against samples from every 5-minute bucket; the runs found must be the same.
Before rollups were read, the rule parsed every raw report of the window: 72 million at
100,000 devices reporting every 30 s over 6 hours, which no pass finishes in time.

The fleet is SIMULATED (fixed seed), written straight into the two rollup tiers of a store
created by SqliteStore: per device a base load, 5-minute means around it and report spikes over
them; a share of devices runs hot. `--hot` sets that share, `--spiky` the share of devices whose
spikes cross the threshold in most hours (the case hours cannot settle).

usage: python3 bench/saturation.py [--devices 100000] [--hours 6] [--keep DB]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.report.source import samples_from_rollups  # noqa: E402
from collector.store.interface import Rollup  # noqa: E402
from collector.store.sqlite import SqliteStore  # noqa: E402
from sbom.aging import find_saturation  # noqa: E402
from sbom.policy import DunePolicy  # noqa: E402

FINE, COARSE = 300, 3600
METRICS = ("cpu.pct", "mem.pct", "disk./.pct", "temp.soc")
WANTED = ("cpu.pct", "mem.pct", "disk.*.pct")
THRESHOLD = 90.0
CHUNK = 1000
PER_BUCKET = 10  # reports per 5-minute bucket: one every 30 s


def _fine_rows(
    devices: int, hours: int, start: float, hot: float, spiky: float, seed: int
) -> Iterator[tuple[str, float, str, int, float, float, float]]:
    rnd = random.Random(seed)
    for i in range(devices):
        dev = f"sim-{i:06d}"
        kind = rnd.random()
        cpu_base, cpu_sd = (95.0, 3.0) if kind < hot else (rnd.uniform(10, 60), 6.0)
        spike = 45.0 if kind < hot + spiky else 25.0
        mem, disk, temp = rnd.uniform(30, 75), rnd.uniform(10, 85), rnd.uniform(40, 65)
        for k in range(hours * COARSE // FINE):
            b = start + k * FINE
            for m in METRICS:
                if m == "cpu.pct":
                    mean = min(100.0, max(0.0, rnd.gauss(cpu_base, cpu_sd)))
                    lo = max(0.0, mean - rnd.uniform(0, 10))
                    hi = min(100.0, mean + rnd.uniform(0, spike))
                elif m == "mem.pct":
                    mean = rnd.gauss(mem, 1)
                    lo, hi = mean - 1, mean + rnd.uniform(0, 4)
                elif m == "disk./.pct":
                    mean = disk
                    lo, hi = mean, mean
                else:
                    mean = rnd.gauss(temp, 2)
                    lo, hi = mean - 2, mean + 3
                hi = max(hi, mean)
                lo = min(lo, mean)
                yield dev, b, m, PER_BUCKET, lo, hi, mean * PER_BUCKET


def build(path: Path, devices: int, hours: int, start: float, hot: float, spiky: float) -> None:
    store = SqliteStore(path)
    conn = store.conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO rollups (device_id, bucket, metric, n, min, max, sum) VALUES (?,?,?,?,?,?,?)",
        _fine_rows(devices, hours, start, hot, spiky, seed=7),
    )
    conn.execute(
        "INSERT INTO rollups_coarse (device_id, bucket, metric, n, min, max, sum) "
        "SELECT device_id, CAST(bucket / ? AS INTEGER) * ?, metric, sum(n), min(min), max(max), "
        "sum(sum) FROM rollups GROUP BY 1, 2, 3",
        (COARSE, COARSE),
    )
    conn.execute("COMMIT")
    store.close()


def peer(store: SqliteStore, ids: list[str], since: float) -> dict[str, list[tuple]]:
    wanted = " OR ".join("metric GLOB ?" for _ in WANTED)
    out: dict[str, list[tuple]] = {}
    for d, m, n, o, sm, mx, reached in store.conn.execute(
        "SELECT device_id, metric, sum(n) FILTER (WHERE bucket >= ?), "
        "sum(CASE WHEN sum >= ? * n THEN n ELSE 0 END) FILTER (WHERE bucket >= ?), "
        "sum(sum) FILTER (WHERE bucket >= ?), max(max) FILTER (WHERE bucket >= ?), max(max) "
        "FROM rollups WHERE device_id IN (SELECT value FROM json_each(?)) "
        f"AND bucket >= ? AND ({wanted}) GROUP BY device_id, metric ORDER BY device_id, metric",
        (since, THRESHOLD, since, since, since, json.dumps(ids), since - since % COARSE, *WANTED),
    ):
        # a metric none of whose reports reached the threshold (from the hour holding the
        # window's start) counts none over it: the store leaves it out
        if reached >= THRESHOLD:
            out.setdefault(d, []).append((m, int(n), int(o), round(sm / n, 6), mx))
    return out


def ours(store: SqliteStore, ids: list[str], since: float) -> dict[str, list[tuple]]:
    return {
        d: [(w.metric, w.n, w.over, round(w.avg, 6), w.max) for w in ws]
        for d, ws in store.rollup_windows(ids, since, WANTED, THRESHOLD).items()
    }


def report_reads(store: SqliteStore, ids: list[str], since: float) -> None:
    """The report's search for saturated runs (sbom.aging) over the same window: samples from
    `Store.saturation_rollups` (fine buckets only in hours where a report reached a level)
    against samples from every fine bucket. Both must find the same runs."""
    levels = {"cpu.pct": THRESHOLD, "mem.pct": THRESHOLD, "disk.*.pct": THRESHOLD}
    policy = DunePolicy()
    print(f"\n{'report: saturated runs (sbom.aging), all devices':58} {'CPU s':>7} {'wall s':>7}")
    found = []
    for name, read in (
        (
            "peer: samples from every 5-minute bucket",
            lambda chunk: _every_bucket(store, chunk, since),
        ),
        (
            "dunewatch: fine buckets of hours that reached a level",
            lambda chunk: store.saturation_rollups(chunk, since, levels),
        ),
    ):
        runs: dict[str, tuple] = {}
        c0, w0 = time.process_time(), time.monotonic()
        for lo in range(0, len(ids), 2000):
            for dev, rows in read(ids[lo : lo + 2000]).items():
                got = find_saturation(samples_from_rollups(rows), policy)
                if got:
                    runs[dev] = tuple((f.metric, f.start, f.end) for f in got)
        cpu, wall = time.process_time() - c0, time.monotonic() - w0
        found.append(runs)
        print(f"{name:58} {cpu:>7.2f} {wall:>7.2f}")
    assert found[0] == found[1], "the two searches disagree"
    print(f"the two agree: {len(found[0])} devices with a saturated run of an hour or more")


def _every_bucket(store: SqliteStore, ids: list[str], since: float) -> dict[str, list[Rollup]]:
    out: dict[str, list[Rollup]] = {}
    for d, b, m, n, mn, sm, mx in store.conn.execute(
        "SELECT device_id, bucket, metric, n, min, sum, max FROM rollups "
        "WHERE device_id IN (SELECT value FROM json_each(?)) AND bucket >= ? "
        "AND (metric IN ('cpu.pct', 'mem.pct') OR metric GLOB 'disk.*.pct') ORDER BY 1, 2, 3",
        (json.dumps(ids), since - since % COARSE),
    ):
        out.setdefault(d, []).append(Rollup(d, b, m, n, mn, sm / n, mx))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000, help="simulated devices")
    ap.add_argument("--hours", type=int, default=6, help="saturation window (hours)")
    ap.add_argument("--hot", type=float, default=0.03, help="share of saturated devices")
    ap.add_argument("--spiky", type=float, default=0.10, help="share of devices with high spikes")
    ap.add_argument("--keep", type=Path, help="build (or reuse) the database at this path")
    args = ap.parse_args()
    start = 1.8e9  # a whole hour
    # the window starts 25 minutes into the first hour, as most passes see it: the first hour
    # is partial, the case that reads 5-minute buckets
    since = start + 25 * 60
    work = Path(tempfile.mkdtemp(prefix="bench-saturation-"))
    db = args.keep or work / "sat.db"
    try:
        if not db.exists():
            t0 = time.monotonic()
            build(db, args.devices, args.hours, start, args.hot, args.spiky)
            print(f"built {db.name} in {time.monotonic() - t0:.0f} s")
        store = SqliteStore(db)
        ids = [r[0] for r in store.conn.execute("SELECT device_id FROM devices")]
        if not ids:
            ids = [f"sim-{i:06d}" for i in range(args.devices)]
        fine = store.conn.execute("SELECT count(*) FROM rollups").fetchone()[0]
        coarse = store.conn.execute("SELECT count(*) FROM rollups_coarse").fetchone()[0]
        print(
            f"SIMULATED fleet: {len(ids)} devices, {args.hours} h of rollups ({fine} fine, "
            f"{coarse} coarse rows), {args.hot:.0%} hot, {args.spiky:.0%} spiky; window from "
            f"{(since - start) / 60:.0f} min past the first hour, threshold {THRESHOLD:g} %\n"
        )
        head = f"{'saturation window read (all devices)':58} {'CPU s':>7} {'wall s':>7}"
        print(f"{head} {'us/device':>10}")
        answers = {}
        for name, fn in (
            ("peer: the 5-minute tier, grouped", peer),
            ("dunewatch: coarse hours settle, crossing hours fine", ours),
        ):
            got: dict[str, list[tuple]] = {}
            c0, w0 = time.process_time(), time.monotonic()
            for lo in range(0, len(ids), CHUNK):
                got.update(fn(store, ids[lo : lo + CHUNK], since))
            cpu, wall = time.process_time() - c0, time.monotonic() - w0
            answers[name] = got
            print(f"{name:58} {cpu:>7.2f} {wall:>7.2f} {cpu / len(ids) * 1e6:>10.1f}")
        a, b = answers.values()
        assert a == b, "the two reads disagree"
        hot = sum(1 for ws in a.values() for m, n, o, *_ in ws if m == "cpu.pct" and o >= 0.8 * n)
        print(f"\nthe two agree; {hot} devices with cpu over {THRESHOLD:g} % in >= 80 % of reports")
        report_reads(store, ids, since)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
