"""`dunewatch devices` and `dunewatch device show ID`: fleet queries over the collector's store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.errors import CollectorError

if TYPE_CHECKING:
    from collector.store.interface import Store


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `devices` and `device show` to the `dunewatch` parser."""
    p = sub.add_parser(
        "devices",
        help="list devices with liveness, placement tags and hardware summary",
        description="List the fleet from the collector's database; filter by liveness status "
        "and placement tags. Devices reporting without enrollment are marked '!'.",
        epilog="example: dunewatch devices --status offline --tag district=north --json",
    )
    add_db_arg(p)
    p.add_argument("--status", choices=("unknown", "online", "stale", "offline"))
    p.add_argument("--tag", action="append", metavar="K=V", help="tag filter (repeatable, ANDed)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_devices)

    dev = sub.add_parser(
        "device",
        help="one device in detail",
        description="Details of one device.",
        epilog="example: dunewatch device show gw-0007",
    )
    cmds = dev.add_subparsers(dest="device_command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser(
        "show",
        help="identity, liveness history, latest health, inventory and ingest counters",
        description="Everything the collector knows about one device.",
        epilog="example: dunewatch device show gw-0007 --json",
    )
    p.add_argument("device_id", metavar="ID")
    add_db_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_device_show)


def add_db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        help="SQLite database (default $DUNEWATCH_DATA/dunewatch.db, "
        "else ./dunewatch-data/dunewatch.db)",
    )


def open_db(path: Path | None, must_exist: bool = False) -> Store:
    from collector.config import default_db_path
    from collector.store import open_store

    db = path or default_db_path()
    if must_exist and not db.exists():
        raise CollectorError(
            f"no collector database at {db}",
            tip="pass --db PATH, set DUNEWATCH_DATA, or start `dunewatch collector serve` first",
        )
    return open_store(db)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    d = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{d / size:.0f}{unit} ago"
    return f"{d:.0f}s ago"


def cmd_devices(args: argparse.Namespace) -> int:
    from collector.enroll import parse_tags

    tags = parse_tags(args.tag)
    store = open_db(args.db, must_exist=True)
    try:
        rows = store.devices(status=args.status, tags=tags)
    finally:
        store.close()
    if args.json:
        json.dump([asdict(r) for r in rows], sys.stdout, indent=2, default=dict)
        print()
        return 0
    now = time.time()
    print_table(
        ["device", "status", "last seen", "source", "vendor/model", "firmware", "tags"],
        [
            [
                r.device_id + ("" if r.enrolled or r.source != "agent" else " !"),
                r.status,
                _ago(r.last_seen, now),
                r.source + (" (sim)" if r.simulated else ""),
                " ".join(x for x in (r.vendor, r.model) if x),
                r.firmware,
                ",".join(f"{k}={v}" for k, v in sorted(r.tags.items())),
            ]
            for r in rows
        ],
    )
    print(f"{len(rows)} device(s)" + ("; ! = reporting without enrollment" if rows else ""))
    return 0


def cmd_device_show(args: argparse.Namespace) -> int:
    store = open_db(args.db, must_exist=True)
    try:
        detail = store.device(args.device_id)
    finally:
        store.close()
    if detail is None:
        raise CollectorError(
            f"no device {args.device_id!r} in the database",
            tip="`dunewatch devices` lists the known ids",
        )
    if args.json:
        json.dump(asdict(detail), sys.stdout, indent=2, default=dict)
        print()
        return 0
    s = detail.summary
    now = time.time()
    print(f"device      {s.device_id}  ({'enrolled' if s.enrolled else 'NOT enrolled'})")
    print(f"status      {s.status} since {_ago(s.status_since, now)}")
    print(f"last seen   {_ago(s.last_seen, now)}; first seen {_ago(s.first_seen, now)}")
    print(
        f"source      {s.source}{' (simulated)' if s.simulated else ''}; "
        f"interval {s.interval or '?'} s; agent {s.agent_version or '?'}"
    )
    print(f"tags        {', '.join(f'{k}={v}' for k, v in sorted(s.tags.items())) or '-'}")
    print(f"hardware    {s.vendor or '?'} {s.model or '?'}; firmware {s.firmware or '?'}")
    st = detail.stats
    print(
        f"ingest      accepted {st.accepted}, rejected {st.rejected}, duplicate {st.duplicate}, "
        f"gap {st.gap}, agent-dropped {st.dropped}"
    )
    h = detail.latest_health
    if h:
        cpu = h.get("cpu", {}).get("pct") if isinstance(h.get("cpu"), dict) else None
        mem = h.get("mem", {}).get("pct") if isinstance(h.get("mem"), dict) else None
        print(f"health      cpu {cpu}%  mem {mem}%  ({_ago(detail.health_ts, now)})")
    inv = detail.inventory
    if inv:
        os_ = inv.get("os", {}).get("pretty_name") if isinstance(inv.get("os"), dict) else None
        n = len(inv.get("packages", []) or [])
        print(f"inventory   {os_ or '?'}; {n} package(s); hash {str(detail.inventory_hash)[:12]}")
    if detail.last_poll:
        p = detail.last_poll
        print(f"last poll   {p['outcome']} {_ago(p['ts'], now)} {p['detail']}")
    if detail.transitions:
        print("liveness history (latest 20):")
        for t in detail.transitions:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t.ts))
            print(f"  {when}Z  {t.old} -> {t.new}  ({t.reason})")
    return 0
