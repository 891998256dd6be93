"""Benchmark: `dunewatch report` straight from a collector database of N devices.

bench/report.py measures DDI, aging and the HTML report from device BOMs already in memory; this
one measures what an operator runs: every device's stored inventory is read, turned into a BOM by
the SBOM builder (classified through firmware_db), scored, aged and written as HTML.

  report-html   `dunewatch report --db DB --format html` in a child process (the job)
  read-only     peer: the same child reads and JSON-decodes every current inventory, nothing else
                (the floor any report from this store pays)

The fleet is SIMULATED (collector.sim.fleet.build_fleet: labelled simulated, fixed seed); each
device's inventory goes through the collector store's real apply() path. Timings exclude building
the database (reported separately). Peak RSS is the child's ru_maxrss.

usage: python3 bench/report_from_db.py [--devices 100000] [--keep DB]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

READ_ONLY = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
n = 0
for (body,) in conn.execute(
    "SELECT s.body FROM inventory_current c JOIN inventory_snapshots s ON s.hash = c.hash"
):
    json.loads(body)
    n += 1
print(f"read {n} inventories")
"""


def build_db(path: Path, devices: int) -> float:
    from agent import envelope as E
    from collector.sim.fleet import build_fleet
    from collector.store import open_store

    t0 = time.perf_counter()
    fleet = build_fleet(devices, seed=3, agentless=0)
    store = open_store(path)
    now = time.time()
    batch: list[E.Envelope] = []
    for dev in fleet.devices:
        store.ensure_device(
            dev.device_id, tags=dict(dev.tags), simulated=True, criticality=dev.criticality
        )
        batch.append(E.make(dev.device_id, "bench", 1, "inventory", dict(dev.inventory), ts=now))
        if len(batch) >= 1000:
            store.apply(batch, now)
            batch = []
    if batch:
        store.apply(batch, now)
    store.close()
    return time.perf_counter() - t0


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time, this child's own peak RSS (from wait4, not the children aggregate), last line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {text.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024, text.strip().splitlines()[-1]


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--build":
        build_db(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the database at this path")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "fleet.db"
        if db.exists():
            print(f"reusing {db}")
        else:
            # built in a child: a fork inherits the parent's peak RSS, which would then be
            # charged to the measured children
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--build", str(db), str(args.devices)], check=True
            )
            secs = time.perf_counter() - t0
            print(f"built {args.devices} simulated devices into the store in {secs:.1f} s")
        load = os.getloadavg()
        out = Path(tmp) / "report.html"
        peer = run_child([sys.executable, "-c", READ_ONLY, str(db)])
        job = run_child(
            [
                sys.executable,
                "-m",
                "collector.cli",
                "report",
                "--db",
                str(db),
                "--format",
                "html",
                "-o",
                str(out),
            ]
        )
        after = os.getloadavg()
        print(
            f"load average (1/5/15 min) at start {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, "
            f"at end {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}"
        )
        print(f"{'variant':<14}{'wall s':>9}{'peak RSS MB':>14}  output")
        print(f"{'read-only':<14}{peer[0]:>9.1f}{peer[1]:>14.0f}  {peer[2]}")
        print(f"{'report-html':<14}{job[0]:>9.1f}{job[1]:>14.0f}  {job[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
