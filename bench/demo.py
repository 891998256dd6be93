"""How long the zero-setup `dunewatch demo` takes, with mosquitto and with the embedded broker.

Target: the default demo (200 simulated devices, 60 s) finishes in under 2 minutes. The peer is
the same demo on the embedded pure-Python broker, run right after it on the same machine.

example: python3 bench/demo.py
example: python3 bench/demo.py --devices 50 --duration 20 --no-scan
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cli() -> list[str]:
    exe = shutil.which("dunewatch")
    return [exe] if exe else [sys.executable, "-m", "collector.cli"]


def run(broker: str, devices: int, duration: float, scan: bool) -> dict[str, str]:
    data = Path(tempfile.mkdtemp(prefix=f"dunewatch-bench-{broker}-"))
    cmd = [*_cli(), "demo", "--devices", str(devices), "--duration", f"{duration:g}"]
    cmd += ["--data-dir", str(data), "--broker", broker]
    if not scan:
        cmd.append("--no-scan")
    t0 = time.monotonic()
    err_file = (data.parent / f"{data.name}.stderr").open("w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, text=True)
    assert proc.stdout is not None
    ready = None
    out_lines = []
    for line in proc.stdout:
        out_lines.append(line)
        if ready is None and line.startswith("credentials"):
            ready = time.monotonic() - t0
    proc.wait()
    err_file.seek(0)
    err = err_file.read()
    err_file.close()
    Path(err_file.name).unlink()
    wall = time.monotonic() - t0
    out = "".join(out_lines)
    health = re.findall(r"(\d+) health reports", err)
    ddi = re.search(r"Fleet Digital Dune Index ([\d.]+)", out)
    alerts = re.search(r"Top alerts \((\d+) open\)", out)
    report = data / "report.html"
    result = {
        "exit": str(proc.returncode),
        "wall s": f"{wall:.1f}",
        "ready s": f"{ready:.1f}" if ready is not None else "-",
        "finish s (after the run)": f"{wall - (ready or 0) - duration:.1f}",
        "health reports sent": health[-1] if health else "-",
        "fleet DDI": ddi.group(1) if ddi else "-",
        "open alerts": alerts.group(1) if alerts else "-",
        "report kB": f"{report.stat().st_size / 1024:.0f}" if report.exists() else "-",
    }
    shutil.rmtree(data, ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--no-scan", action="store_true", help="skip the SBOM scan of /")
    args = ap.parse_args()
    load = os.getloadavg()
    print(
        f"dunewatch demo --devices {args.devices} --duration {args.duration:g}"
        f"{' --no-scan' if args.no_scan else ''}; load average before: "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    results = {
        b: run(b, args.devices, args.duration, not args.no_scan) for b in ("mosquitto", "embedded")
    }
    keys = list(results["mosquitto"])
    width = max(len(k) for k in keys)
    print(f"{'':<{width}}  {'mosquitto':>10}  {'embedded':>10}")
    for k in keys:
        print(f"{k:<{width}}  {results['mosquitto'][k]:>10}  {results['embedded'][k]:>10}")
    return 0 if all(r["exit"] == "0" for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
