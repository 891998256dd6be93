"""Store apply: CPU per message of one ingest batch at the city's shape, beside a peer.

A database of N **simulated** devices (each known from one earlier report, bench/ingest.py's
envelopes) takes batches of distinct devices drawn at random, each device sending its next
report, as a live stream of 100,000 devices every 30 s does. Two connections apply the batches
in turn, as two ingest workers do: SQLite drops a connection's page cache when another one has
committed, so each batch starts cold, as in the collector.

The peer is the same store on a copy of the same database with the `(device_id, ts)` index on
raw health that the schema had before version 4 (a device's history is a chain of rows now).
Variants alternate round by round, so a busy neighbour weighs on both alike.

    python3 bench/apply.py --devices 100000 --batch 400 --batches 300 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from ingest import boot_id, envelope  # noqa: E402  (bench/ingest.py)

from agent.envelope import Envelope, parse  # noqa: E402
from collector.store.sqlite import SqliteStore  # noqa: E402

Batch = tuple[list[Envelope], list[bytes]]


def batch(ids: list[int], seq: int, ts: float) -> Batch:
    envs, raws = [], []
    for i in ids:
        dev = f"bench-{i:06d}"
        raw = envelope(dev, boot_id(i), seq, i, ts)
        envs.append(parse(raw, f"dunewatch/v1/{dev}/health"))
        raws.append(raw)
    return envs, raws


def build(path: Path, devices: int) -> None:
    store = SqliteStore(path, autocheckpoint=False)
    try:
        for lo in range(0, devices, 2000):
            envs, raws = batch(list(range(lo, min(devices, lo + 2000))), 1, time.time())
            store.apply(envs, time.time(), raws)
        store.checkpoint()
    finally:
        store.close()


def run(path: Path, batches: list[Batch], connections: int) -> tuple[float, float]:
    """(CPU us, wall us) per message applying `batches`, the connections taking turns."""
    stores = [SqliteStore(path, autocheckpoint=False) for _ in range(connections)]
    try:
        n = sum(len(b[0]) for b in batches)
        last_checkpoint = time.monotonic()
        c0, w0 = time.process_time(), time.perf_counter()
        for k, (envs, raws) in enumerate(batches):
            stores[k % connections].apply(envs, time.time(), raws)
            if time.monotonic() - last_checkpoint > 1.0:  # as the serve loop does, every second
                stores[0].checkpoint()
                last_checkpoint = time.monotonic()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        return cpu / n * 1e6, wall / n * 1e6
    finally:
        for s in stores:
            s.close()


def copy_db(src: Path, dst: Path, index: bool) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copy(src, dst)
    if index:
        conn = sqlite3.connect(dst)
        conn.execute("CREATE INDEX idx_health_device_ts ON health (device_id, ts)")
        conn.commit()
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000, help="simulated devices")
    ap.add_argument("--batch", type=int, default=400, help="messages per batch")
    ap.add_argument("--batches", type=int, default=300, help="batches per measured run")
    ap.add_argument("--connections", type=int, default=2, help="connections taking turns")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both variants")
    args = ap.parse_args()
    if args.batch > args.devices:
        ap.error("--batch must not exceed --devices")
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
        work = Path(tmp)
        base = work / "base.db"
        t0 = time.perf_counter()
        build(base, args.devices)
        print(
            f"{args.devices} simulated devices stored in {time.perf_counter() - t0:.1f} s; "
            f"{args.batches} batches of {args.batch} distinct devices, "
            f"{args.connections} connections taking turns",
            flush=True,
        )
        rng = random.Random(8)
        order = list(range(args.devices))
        rng.shuffle(order)
        batches, pos, seq = [], 0, 2
        for _ in range(args.batches):
            if pos + args.batch > len(order):
                pos, seq = 0, seq + 1
            batches.append(batch(order[pos : pos + args.batch], seq, time.time()))
            pos += args.batch
        variants = (
            ("store (raw history as a chain)", False),
            ("peer: + (device_id, ts) index", True),
        )
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
        for _ in range(args.rounds):
            for name, index in variants:
                db = work / "run.db"
                copy_db(base, db, index)
                results[name].append(run(db, batches, args.connections))
        print(f"{'variant':34s} {'CPU us/msg':>12s} {'wall us/msg':>12s}   runs (CPU)")
        for name, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            wall = statistics.median(r[1] for r in rows)
            each = " ".join(f"{r[0]:.1f}" for r in rows)
            print(f"{name:34s} {cpu:12.1f} {wall:12.1f}   {each}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
