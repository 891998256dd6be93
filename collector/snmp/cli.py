"""`dunewatch snmp ...`: add, list, remove targets; poll one device; discover agents in a range.

Thin layer: every command calls one library function. Secrets can come from the environment
(DUNEWATCH_SNMP_COMMUNITY, DUNEWATCH_SNMP_AUTH_KEY, DUNEWATCH_SNMP_PRIV_KEY) so they stay out of
shell history and `ps`; they are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from collector.snmp.interface import TargetError

EXAMPLE_V3 = "--user monitor --auth-proto SHA --auth-key K --priv-proto AES --priv-key K"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the `snmp` group to the `dunewatch` parser."""
    snmp = sub.add_parser(
        "snmp",
        help="agentless devices: SNMP targets, one-off polls, discovery",
        description="Poll cameras, NVRs and gateways that run no agent, over SNMP v2c or v3. "
        "Targets live in a TOML file (default: snmp-targets.toml next to the collector "
        "database); `dunewatch collector serve` polls them.",
        epilog="example: dunewatch snmp poll-once 127.0.0.1:1161 --community public --json",
    )
    cmds = snmp.add_subparsers(dest="snmp_command", metavar="SUBCOMMAND", required=True)

    p = cmds.add_parser(
        "add",
        help="add (or --replace) a target",
        description="Add one device to the targets file (written with mode 0600). SNMPv3 "
        "authPriv is recommended; v1/v2c work with a warning.",
        epilog=f"example: dunewatch snmp add 10.1.2.3 --device-id cam-0001 {EXAMPLE_V3} "
        "--tag district=north --interval 60",
    )
    p.add_argument("address", metavar="HOST[:PORT]")
    p.add_argument("--device-id", help="device id (default snmp-<host>[-<port>])")
    _add_auth_args(p)
    p.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="placement tag (repeatable)"
    )
    p.add_argument(
        "--interval", type=float, default=60.0, help="poll interval in seconds (default 60)"
    )
    p.add_argument("--replace", action="store_true", help="overwrite a target with the same id")
    _add_targets_args(p)
    p.set_defaults(func=cmd_add)

    p = cmds.add_parser(
        "list",
        help="list targets (secrets masked)",
        description="List the targets file; communities and keys are always masked.",
        epilog="example: dunewatch snmp list --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_targets_args(p)
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser(
        "remove",
        help="remove a target by device id",
        description="Remove one target from the targets file (stored data is kept).",
        epilog="example: dunewatch snmp remove cam-0001",
    )
    p.add_argument("device_id", metavar="DEVICE_ID")
    _add_targets_args(p)
    p.set_defaults(func=cmd_remove)

    p = cmds.add_parser(
        "poll-once",
        help="poll one device now and print identity, inventory and health",
        description="Poll one device without a database and print what it is (vendor, model, "
        "firmware), its inventory and health. With --db also store the result.",
        epilog="example: dunewatch snmp poll-once 127.0.0.1:1161 --community public --json",
    )
    p.add_argument("address", metavar="HOST[:PORT]")
    p.add_argument("--device-id", help="device id (default snmp-<host>[-<port>])")
    _add_auth_args(p)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--db", type=Path, help="also store the result in this collector database")
    p.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="placement tag when storing"
    )
    p.add_argument(
        "--engine",
        choices=("lean", "pysnmp"),
        default="lean",
        help="v1/v2c request engine (default lean; SNMPv3 always uses pysnmp)",
    )
    p.set_defaults(func=cmd_poll_once)

    p = cmds.add_parser(
        "discover",
        help="probe an address range for SNMP agents and propose targets",
        description="Probe every address of CIDR with the given credentials at a bounded rate "
        "and print the agents that answered as proposed targets. Only 127.0.0.0/8 unless "
        "--allow-non-loopback is given: scan only networks you operate.",
        epilog="example: dunewatch snmp discover 127.0.0.0/29 --community public "
        "--port 1161 --rate 20",
    )
    p.add_argument("cidr", metavar="CIDR")
    p.add_argument("--port", type=int, default=161, help="UDP port to probe (default 161)")
    p.add_argument(
        "--rate", type=float, default=50.0, help="probes started per second (default 50)"
    )
    p.add_argument(
        "--allow-non-loopback", action="store_true", help="allow ranges outside 127.0.0.0/8"
    )
    _add_auth_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--add", action="store_true", help="also add what answered to the targets file")
    _add_targets_args(p)
    p.set_defaults(func=cmd_discover)


def _add_auth_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("credentials (v2c: --community; v3: --user and keys)")
    g.add_argument("--snmp-version", choices=("1", "2c", "3"), help="default: 3 if --user, else 2c")
    g.add_argument("--community", help="v1/v2c community (or env DUNEWATCH_SNMP_COMMUNITY)")
    g.add_argument("--user", help="SNMPv3 user name")
    g.add_argument("--auth-proto", type=str.upper, help="MD5, SHA, SHA224, SHA256, SHA384, SHA512")
    g.add_argument("--auth-key", help="SNMPv3 auth key (or env DUNEWATCH_SNMP_AUTH_KEY)")
    g.add_argument("--priv-proto", type=str.upper, help="DES, 3DES, AES, AES192, AES256")
    g.add_argument("--priv-key", help="SNMPv3 privacy key (or env DUNEWATCH_SNMP_PRIV_KEY)")
    g.add_argument("--context", default="", help="SNMPv3 context name")
    g.add_argument("--timeout", type=float, default=1.0, help="seconds per try (default 1)")
    g.add_argument("--retries", type=int, default=1, help="retries after a timeout (default 1)")


def _add_targets_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--targets", type=Path, help="targets TOML file")
    g.add_argument(
        "--db",
        type=Path,
        dest="targets_db",
        help="collector database; the targets file is snmp-targets.toml next to it",
    )


def targets_path(args: argparse.Namespace) -> Path:
    from collector.config import default_db_path

    if getattr(args, "targets", None):
        return Path(args.targets)
    db = getattr(args, "targets_db", None) or default_db_path()
    return Path(db).parent / "snmp-targets.toml"


def _tags(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise TargetError(f"--tag {item!r}: expected NAME=VALUE")
        out.append((key.strip(), val.strip()))
    return tuple(sorted(out))


def target_from_args(args: argparse.Namespace, address: str | None = None) -> Any:
    from collector.snmp.targets import Target, parse_host_port

    host, port = parse_host_port(address or args.address)
    community = args.community or os.environ.get("DUNEWATCH_SNMP_COMMUNITY")
    auth_key = args.auth_key or os.environ.get("DUNEWATCH_SNMP_AUTH_KEY")
    priv_key = args.priv_key or os.environ.get("DUNEWATCH_SNMP_PRIV_KEY")
    version = args.snmp_version or ("3" if args.user else "2c")
    if version != "3" and not community:
        raise TargetError(
            f"{host}:{port}: give --community for SNMP v{version}, or --user and keys for v3"
        )
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "version": version,
        "timeout": args.timeout,
        "retries": args.retries,
        "tags": _tags(getattr(args, "tag", []) or []),
    }
    if getattr(args, "interval", None):
        kwargs["interval"] = args.interval
    if getattr(args, "device_id", None):
        kwargs["device_id"] = args.device_id
    if version == "3":
        kwargs.update(
            user=args.user,
            auth_proto=args.auth_proto if auth_key else None,
            auth_key=auth_key if args.auth_proto or auth_key else None,
            priv_proto=args.priv_proto if priv_key else None,
            priv_key=priv_key if args.priv_proto or priv_key else None,
            context=args.context,
        )
        if auth_key and not args.auth_proto:
            kwargs["auth_proto"] = "SHA"
        if priv_key and not args.priv_proto:
            kwargs["priv_proto"] = "AES"
    else:
        kwargs["community"] = community
    return Target(**kwargs)


def _warn(target: Any) -> None:
    msg = target.warning()
    if msg:
        print(f"dunewatch: warning: {msg}", file=sys.stderr)


def cmd_add(args: argparse.Namespace) -> int:
    from collector.snmp.targets import add_target

    target = target_from_args(args)
    path = targets_path(args)
    add_target(path, target, replace_existing=args.replace)
    _warn(target)
    print(f"added {target.device_id} ({target.address}, SNMP v{target.version}) to {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from collector.snmp.targets import load_targets

    path = targets_path(args)
    targets = load_targets(path)
    if args.json:
        print(json.dumps([t.masked() for t in targets], indent=2))
        return 0
    if not targets:
        print(f"no targets in {path}")
        return 0
    from collector.commands.devices import print_table

    rows = [
        (
            t.device_id,
            t.address,
            f"v{t.version}",
            t.user or "",
            t.security_level,
            f"{t.interval:g}",
            ",".join(f"{k}={v}" for k, v in t.tags),
        )
        for t in targets
    ]
    print_table(("DEVICE", "ADDRESS", "VER", "USER", "SECURITY", "INTERVAL", "TAGS"), rows)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from collector.snmp.targets import remove_target

    path = targets_path(args)
    gone = remove_target(path, args.device_id)
    print(f"removed {gone.device_id} ({gone.address}) from {path}")
    return 0


def _print_report(report: Any) -> None:
    ident = report.identity
    print(
        f"device    {report.device_id} at {report.address}: {report.outcome}"
        + (f" ({report.detail})" if report.detail else "")
    )
    if report.outcome != "ok":
        return
    for key in (
        "vendor",
        "model",
        "firmware",
        "device_class",
        "sysName",
        "sysDescr",
        "sysObjectID",
        "sysLocation",
        "uptime_s",
    ):
        if ident.get(key) not in (None, ""):
            print(f"  {key:<12} {ident[key]}")
    inv = report.inventory or {}
    hw = inv.get("hardware", {})
    if hw.get("serial"):
        print(f"  {'serial':<12} {hw['serial']}")
    for part in inv.get("parts", []):
        print(
            f"  part         {part['kind']}: {part.get('vendor') or '?'} {part.get('model') or '?'}"
        )
    pkgs = inv.get("packages", [])
    if pkgs:
        print(f"  packages     {len(pkgs)} (hrSWInstalled)")
    h = report.health or {}
    if "cpu" in h:
        print(f"  cpu          {h['cpu']}")
    if "mem" in h:
        print(f"  mem          {h['mem']}")
    for mount, d in (h.get("disk") or {}).items():
        print(f"  disk         {mount}: {d['pct']}% of {d['total']} bytes")
    for name, n in (h.get("net") or {}).items():
        state = "up" if n.get("up") else "down"
        print(f"  net          {name}: {state} rx={n.get('rx')} tx={n.get('tx')}")


def cmd_poll_once(args: argparse.Namespace) -> int:
    from collector.snmp.poller import Poller, PollerConfig
    from collector.snmp.service import PollService, store_report

    target = target_from_args(args)
    _warn(target)

    async def run() -> Any:
        async with Poller(config=PollerConfig(engine=args.engine)) as poller:
            return await PollService(poller).poll(target, inventory=True)

    report = asyncio.run(run())
    if args.db is not None:
        from collector.store import open_store

        store = open_store(args.db)
        try:
            store_report(store, target, report)
        finally:
            store.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        _print_report(report)
        if args.db is not None:
            print(f"stored in {args.db}")
    return 0 if report.outcome == "ok" else 1


def cmd_discover(args: argparse.Namespace) -> int:
    from collector.snmp.discover import discover
    from collector.snmp.targets import add_target

    template = target_from_args(args, address=f"127.0.0.1:{args.port}")
    found = asyncio.run(
        discover(args.cidr, template, rate=args.rate, allow_non_loopback=args.allow_non_loopback)
    )
    if args.add:
        path = targets_path(args)
        for f in found:
            add_target(path, f.target, replace_existing=True)
    if args.json:
        print(json.dumps([f.to_dict() for f in found], indent=2))
    else:
        if not found:
            print(f"no SNMP agent answered in {args.cidr}")
        for f in found:
            what = " ".join(x for x in (f.vendor, f.model, f.device_class) if x) or "unknown"
            print(f"{f.target.address:<22} {f.target.device_id:<28} {what}  {f.sys_name or ''}")
        if args.add:
            print(f"{len(found)} target(s) added to {targets_path(args)}")
        elif found:
            print("add them with --add, or one by one with `dunewatch snmp add`")
    return 0
