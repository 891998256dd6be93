"""Benchmark: poll 1,000 simulated SNMP agents for inventory and health; net-snmp as the peer.

Both sides collect the same data from the same simulated devices in one run:
- dunewatch: one PollService/Poller, every device concurrently, identity + health + inventory
  (system group, ENTITY-MIB, HOST-RESOURCES, IF-MIB, UCD); v1/v2c through the lean engine
  (`--engine pysnmp` for pysnmp's; SNMPv3 always goes through pysnmp).
- net-snmp: per device one `snmpget` (system scalars + UCD memory) and one `snmpbulkwalk` per
  table, run in parallel as subprocesses (like `xargs -P`), numeric OIDs, MIBS= (no MIB files).

The agents are snmpsim processes on loopback, each serving an equal share of the devices as
communities (SNMPv3: context names). All devices are simulated (packaged camera/NVR/gateway
data with per-device names and serials). The simulator is the test harness, not the product:
its CPU is reported apart from the poller's (real devices answer on their own CPUs).
`--simulator` picks how snmpsim runs: "stock" (snmpsim-command-responder as installed), "tuned"
(the same, with its --max-var-binds honoured and all data files kept open), "lite" (snmpsim's
own v1/v2c responder, snmpsim-command-responder-lite, without pysnmp's SNMP engine; same data
files and answers, see collector/snmp/simulator.py); `--pypy PATH` runs tuned or lite under the
PyPy interpreter of a venv with snmpsim ("pypy" = tuned under --pypy), with a 32 MB GC
nursery unless `--pypy-gc-nursery` says otherwise ('' = PyPy's default).

    python3 bench/snmp.py                   # 1,000 devices, v2c, stock snmpsim
    python3 bench/snmp.py --simulator lite  # snmpsim's lite responder (CPython)
    python3 bench/snmp.py --simulator lite --pypy .venv-pypy/bin/python --agents 3 --agent-warmup 6
    python3 bench/snmp.py --simulator lite --pypy .venv-pypy/bin/python --pypy-gc-nursery ''
    python3 bench/snmp.py --v3              # same, SNMPv3 authPriv SHA/AES
    python3 bench/snmp.py --devices 200 --peer-parallel 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.snmp.oidmap import load_oidmap  # noqa: E402
from collector.snmp.poller import ENGINE_LEAN, ENGINES, Poller, PollerConfig  # noqa: E402
from collector.snmp.service import PollService  # noqa: E402
from collector.snmp.simulator import (  # noqa: E402
    RESPONDER_FULL,
    RESPONDER_LITE,
    SNMPREC_DEVICES,
    V3_AUTH_KEY,
    V3_PRIV_KEY,
    V3_USER,
    Snmpsim,
    packaged_snmprec,
)
from collector.snmp.targets import Target  # noqa: E402


@dataclass
class Result:
    name: str
    wall: float
    ok: int
    failed: int
    requests: int
    varbinds: int
    cpu: float
    agent_cpu: float = 0.0
    setup: float = 0.0


def device_text(template: str, i: int) -> str:
    """A packaged simulated device with its own name and serial (still simulated)."""
    out = []
    for line in template.splitlines():
        oid, tag, val = line.split("|", 2)
        if oid == "1.3.6.1.2.1.1.5.0":
            val = f"sim-dev-{i:04d}"
        elif oid.startswith("1.3.6.1.2.1.47.1.1.1.1.11.") and val:
            val = f"SIM{i:08d}"
        out.append(f"{oid}|{tag}|{val}")
    return "\n".join(out) + "\n"


def start_agents(
    root: Path,
    devices: int,
    procs: int,
    python: str | None = None,
    tuned: bool = False,
    responder: str = RESPONDER_FULL,
    env: dict[str, str] | None = None,
) -> tuple[list[Snmpsim], list[tuple[int, str]]]:
    templates = [packaged_snmprec(n) for n in SNMPREC_DEVICES]
    sims: list[Snmpsim] = []
    where: list[tuple[int, str]] = []
    per = -(-devices // procs)
    for p in range(procs):
        names = {
            f"dev{i:04d}": device_text(templates[i % len(templates)], i)
            for i in range(p * per, min(devices, (p + 1) * per))
        }
        if not names:
            break
        sim = Snmpsim(
            root / f"sim{p}",
            names,
            max_var_binds=256,
            python=python,
            tuned=tuned,
            responder=responder,
            env=env,
        )
        sim.launch()
        sims.append(sim)
        assert sim.port is not None
        where += [(sim.port, n) for n in names]
    for sim in sims:  # they index their data files in parallel
        sim.wait_ready(timeout=600)
    return sims, where


def targets_for(where: list[tuple[int, str]], v3: bool) -> list[Target]:
    out = []
    for port, name in where:
        target = Target(
            host="127.0.0.1",
            port=port,
            version="2c",
            community=name,
            device_id=f"{name}-{port}",
            timeout=2.0,
            retries=2,
        )
        if v3:
            target = replace(
                target,
                version="3",
                community=None,
                user=V3_USER,
                auth_proto="SHA",
                auth_key=V3_AUTH_KEY,
                priv_proto="AES",
                priv_key=V3_PRIV_KEY,
                context=name,
            )
        out.append(target)
    return out


def agents_cpu(sims: list[Snmpsim]) -> float:
    """CPU seconds used so far by the snmpsim processes (utime + stime from /proc)."""
    total = 0.0
    for sim in sims:
        if sim.pid is None:
            continue
        fields = Path(f"/proc/{sim.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


FIRST: Final = (("first poll: inventory + health", True),)
REPEAT: Final = (("repeat poll: health only (steady state)", False),)


async def run_dunewatch(
    targets: list[Target],
    engine: str = ENGINE_LEAN,
    rounds: tuple[tuple[str, bool], ...] = FIRST,
    agent_cpu: Callable[[], float] = lambda: 0.0,
    in_flight: int = PollerConfig.per_target_in_flight,
) -> list[Result]:
    """Poll every target once per round with ONE poller, as `collector serve` does (a repeat
    poll knows each device's table rows from the one before)."""
    results: list[Result] = []
    c0 = cpu_self()
    config = PollerConfig(engine=engine, per_target_in_flight=in_flight)
    async with Poller(config=config) as poller:
        svc = PollService(poller)
        t_setup = time.monotonic()
        await poller.prepare(targets)  # once per collector start, like `collector serve`
        setup = time.monotonic() - t_setup
        for label, inventory in rounds:
            a0 = agent_cpu()
            start = time.monotonic()
            reports = await asyncio.gather(*(svc.poll(t, inventory=inventory) for t in targets))
            wall = time.monotonic() - start
            ok = [r for r in reports if r.outcome == "ok"]
            for r in reports:
                if r.outcome != "ok":
                    print(f"  {r.device_id}: {r.outcome}: {r.detail}", file=sys.stderr)
                    break
            vbs = 0
            for r in ok:
                inv, h = r.inventory or {}, r.health or {}
                vbs += len(inv.get("packages", [])) + len(inv.get("parts", []))
                vbs += len(h.get("net", {}))
            results.append(
                Result(
                    f"dunewatch {engine}, {label}",
                    wall,
                    len(ok),
                    len(reports) - len(ok),
                    sum(r.requests for r in reports),
                    vbs,
                    cpu_self() - c0,  # the first round includes engine setup
                    agent_cpu() - a0,
                    setup=setup if not results else 0.0,
                )
            )
            c0 = cpu_self()
    return results


def peer_commands(t: Target, exe_get: str, exe_walk: str) -> list[list[str]]:
    if t.version == "3":
        auth = [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            str(t.user),
            "-a",
            "SHA",
            "-A",
            str(t.auth_key),
            "-x",
            "AES",
            "-X",
            str(t.priv_key),
            "-n",
            t.context,
        ]
    else:
        auth = ["-v2c", "-c", str(t.community)]
    common = [*auth, "-On", "-t", str(t.timeout), "-r", str(t.retries), f"127.0.0.1:{t.port}"]
    oidmap = load_oidmap()
    scalars = [".".join(map(str, s.oid)) for s in oidmap.scalars]
    cmds = [[exe_get, *common, *scalars]]
    for table in oidmap.tables:
        cmds.append([exe_walk, "-Cr25", *common, ".".join(map(str, table.entry))])
    return cmds


async def run_netsnmp(targets: list[Target], parallel: int) -> Result:
    exe_get = shutil.which("snmpget") or "snmpget"
    exe_walk = shutil.which("snmpbulkwalk") or "snmpbulkwalk"
    env = {**os.environ, "MIBS": ""}
    sem = asyncio.Semaphore(parallel)
    lines = 0
    failed_devices: set[str] = set()
    procs = 0

    async def one(t: Target, cmd: list[str]) -> None:
        nonlocal lines, procs
        async with sem:
            p = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
            )
            out, _err = await p.communicate()
            procs += 1
            if p.returncode != 0:
                failed_devices.add(t.device_id)
            lines += out.count(b"\n")

    c0 = cpu_children()
    start = time.monotonic()
    await asyncio.gather(*(one(t, c) for t in targets for c in peer_commands(t, exe_get, exe_walk)))
    wall = time.monotonic() - start
    return Result(
        f"net-snmp snmpget+snmpbulkwalk (-P {parallel})",
        wall,
        len(targets) - len(failed_devices),
        len(failed_devices),
        procs,
        lines,
        cpu_children() - c0,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4, help="snmpsim processes (default 4)")
    ap.add_argument("--peer-parallel", type=int, default=16, help="net-snmp processes at once")
    ap.add_argument("--v3", action="store_true", help="SNMPv3 authPriv SHA/AES instead of v2c")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--engine", choices=ENGINES, default=ENGINE_LEAN, help="v1/v2c engine")
    ap.add_argument(
        "--also-pysnmp",
        action="store_true",
        help="add a row polling through the pysnmp engine (the reference path)",
    )
    ap.add_argument(
        "--in-flight",
        type=int,
        default=PollerConfig.per_target_in_flight,
        help="poller requests in flight per snmpsim process (PollerConfig.per_target_in_flight;"
        " one process stands in for hundreds of devices); default %(default)s",
    )
    ap.add_argument(
        "--simulator",
        choices=("stock", "tuned", "lite", "pypy"),
        default="stock",
        help="how snmpsim runs (see above); default stock",
    )
    ap.add_argument(
        "--pypy",
        help="python of a PyPy venv with snmpsim: runs the tuned or lite simulator under it",
    )
    ap.add_argument(
        "--pypy-gc-nursery",
        default="32MB",
        help="PYPY_GC_NURSERY for a PyPy simulator (pyasn1 allocates many short-lived objects);"
        " '' keeps PyPy's default; default %(default)s",
    )
    ap.add_argument(
        "--agent-warmup",
        type=int,
        default=0,
        help="unmeasured full polls before measuring (lets PyPy's JIT warm up); default 0",
    )
    args = ap.parse_args()
    if args.simulator == "pypy" and not args.pypy:
        ap.error("--simulator pypy needs --pypy PATH (a PyPy venv's python with snmpsim)")
    if args.simulator == "stock" and args.pypy:
        ap.error("--pypy runs the tuned or lite simulator: add --simulator tuned|lite")
    if args.simulator == "lite" and args.v3:
        ap.error(
            "snmpsim's lite responder answers v1/v2c only: use --simulator stock|tuned for --v3"
        )
    nursery = bool(args.pypy and args.pypy_gc_nursery)
    root = Path(tempfile.mkdtemp(prefix="bench-snmp-"))
    t0 = time.monotonic()
    sims, where = start_agents(
        root,
        args.devices,
        args.agents,
        python=args.pypy,
        tuned=args.simulator != "stock",
        responder=RESPONDER_LITE if args.simulator == "lite" else RESPONDER_FULL,
        env={"PYPY_GC_NURSERY": args.pypy_gc_nursery} if nursery else None,
    )
    how = args.simulator + (" under PyPy" if args.pypy and args.simulator != "pypy" else "")
    if nursery:
        how += f", PYPY_GC_NURSERY={args.pypy_gc_nursery}"
    print(
        f"{len(where)} simulated agents on {len(sims)} snmpsim processes ({how}, "
        f"started in {time.monotonic() - t0:.1f} s); SNMP {'v3 authPriv' if args.v3 else 'v2c'}"
    )
    try:
        targets = targets_for(where, args.v3)
        # Warm-up (engine creation, snmpsim caches) on a few devices, not measured.
        asyncio.run(run_dunewatch(targets[:10], engine=args.engine, in_flight=args.in_flight))
        for n in range(args.agent_warmup):
            (w,) = asyncio.run(run_dunewatch(targets, args.engine, in_flight=args.in_flight))
            print(f"agent warm-up pass {n + 1}: {w.wall:.2f} s, {w.ok} ok (not measured)")
        mine = asyncio.run(
            run_dunewatch(
                targets, args.engine, FIRST + REPEAT, lambda: agents_cpu(sims), args.in_flight
            )
        )
        for r in mine:
            print(f"{r.name}: {r.wall:.2f} s, {r.ok} ok", flush=True)
        print(
            f"dunewatch: engine setup for {len(targets)} targets {mine[0].setup:.2f} s "
            "(once per start, not in the poll time)"
        )
        results = [mine[0]]
        extra: list[Result] = []
        if args.also_pysnmp and args.engine != "pysnmp":
            (ref,) = asyncio.run(
                run_dunewatch(targets, "pysnmp", FIRST, lambda: agents_cpu(sims), args.in_flight)
            )
            print(f"{ref.name}: {ref.wall:.2f} s, {ref.ok} ok", flush=True)
            extra.append(ref)
        if not args.skip_peer:
            a0 = agents_cpu(sims)
            results.append(asyncio.run(run_netsnmp(targets, args.peer_parallel)))
            results[1].agent_cpu = agents_cpu(sims) - a0
        results += mine[1:] + extra
    finally:
        for sim in sims:
            sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        f"{'poller':<52} {'wall s':>7} {'ok':>6} {'failed':>6} {'req/proc':>9} {'cpu s':>7} "
        f"{'ms/dev':>7} {'agents cpu s':>12}"
    )
    for r in results:
        per_dev = 1000 * r.cpu / max(r.ok + r.failed, 1)
        print(
            f"{r.name:<52} {r.wall:>7.2f} {r.ok:>6} {r.failed:>6} {r.requests:>9} {r.cpu:>7.2f} "
            f"{per_dev:>7.1f} {r.agent_cpu:>12.2f}"
        )
    print()
    print("req/proc: SNMP requests sent (dunewatch) / processes run (net-snmp);")
    print("cpu s: CPU of the poller process (first poll: incl. engine setup) / of all net-snmp")
    print("       processes (peer); ms/dev: that CPU per device polled;")
    print("agents cpu s: CPU the snmpsim processes spent answering that run.")
    print(
        f"machine: {os.cpu_count()} cores, shared with other work (load {os.getloadavg()[0]:.1f})."
    )
    if not args.skip_peer and results[0].ok and results[1].ok:
        print(
            f"net-snmp lines of output: {results[1].varbinds}; "
            f"dunewatch: {results[0].ok} reports with inventory and health"
        )
        print(
            f"wall: net-snmp / dunewatch = {results[1].wall / results[0].wall:.1f}; "
            f"agents' CPU: net-snmp / dunewatch = "
            f"{results[1].agent_cpu / max(results[0].agent_cpu, 1e-9):.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
