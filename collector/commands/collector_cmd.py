"""`dunewatch collector serve|enroll|stats`: thin wrappers over collector.service/enroll/store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from collector.commands.devices import add_db_arg, open_db, print_table


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `collector` and its subcommands to the `dunewatch` parser."""
    grp = sub.add_parser(
        "collector",
        help="run the collector, enroll devices, show ingest statistics",
        description="The collector: MQTT ingest into SQLite, liveness, enrollment, statistics.",
        epilog="example: dunewatch collector serve --broker mqtt://127.0.0.1:1883 --db fleet.db",
    )
    cmds = grp.add_subparsers(dest="collector_command", metavar="SUBCOMMAND", required=True)

    p = cmds.add_parser(
        "serve",
        help="receive agent reports from the broker and keep the fleet database",
        description="Subscribe to <root>/v1/+/+ (QoS 1, persistent session, ack after commit), "
        "store every valid report, sweep liveness and serve /metrics. SIGTERM flushes and exits.",
        epilog="example: dunewatch collector serve --broker mqtt://127.0.0.1:1883 "
        "--db dunewatch-data/dunewatch.db --username collector --password-file collector.pw\n"
        "example: dunewatch collector serve --config collector.toml\n"
        "example: dunewatch collector serve --broker mqtt://127.0.0.1:1883 --sinks sinks.toml "
        "--alerts-every 30",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="TOML config file (see docs/collector.md)")
    p.add_argument("--broker", help="broker URL, mqtt://HOST:PORT or mqtts://HOST:PORT")
    p.add_argument("--db", type=Path, help="SQLite database (default $DUNEWATCH_DATA/dunewatch.db)")
    p.add_argument("--username", help="MQTT username of the collector")
    p.add_argument("--password-file", type=Path, help="file whose first line is the password")
    p.add_argument("--ca-file", type=Path, help="CA bundle for mqtts://")
    p.add_argument("--protocol", choices=("5", "3.1.1"), help="MQTT protocol version (default 5)")
    p.add_argument("--client-id", help="MQTT client id; the persistent session is kept under it")
    p.add_argument("--share-group", help="use $share/<group>/... so collectors split the load")
    p.add_argument("--root", help="topic root (default dunewatch)")
    p.add_argument("--workers", type=int, help="ingest worker processes (default 1)")
    p.add_argument(
        "--reader",
        choices=("paho", "lean"),
        help="MQTT client for ingest: paho (default) or lean (MQTT 3.1.1, faster)",
    )
    p.add_argument(
        "--metrics", help="HOST:PORT of the /metrics endpoint (default 127.0.0.1:9108; 'off')"
    )
    p.add_argument("--alerts-every", type=float, metavar="S", help="alert pass every S seconds")
    p.add_argument("--alerts-config", type=Path, metavar="FILE", help="alert thresholds (TOML)")
    p.add_argument("--sinks", type=Path, metavar="FILE", help="alert sinks: [[sink]] tables (TOML)")
    p.add_argument("--policy", type=Path, metavar="FILE", help="Digital Dune Index policy (TOML)")
    p.add_argument("--no-alerts", action="store_true", help="do not evaluate alerts")
    p.set_defaults(func=cmd_serve)

    p = cmds.add_parser(
        "enroll",
        help="create a device's MQTT credentials and broker password/ACL entries",
        description="Create a password for DEVICE_ID (its MQTT username), write the mosquitto "
        "password-file line and ACL pattern (or print them for another broker) and record the "
        "device as enrolled with its tags.",
        epilog="example: dunewatch collector enroll gw-0007 --tag district=north "
        "--passwd broker/passwd --acl broker/acl",
    )
    p.add_argument("device_id", metavar="DEVICE_ID")
    p.add_argument("--tag", action="append", metavar="K=V", help="placement tag (repeatable)")
    add_db_arg(p)
    p.add_argument("--passwd", type=Path, help="mosquitto password file to add the device to")
    p.add_argument("--acl", type=Path, help="mosquitto ACL file to ensure the device pattern in")
    p.add_argument("--root", default="dunewatch", help="topic root (default dunewatch)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_enroll)

    p = cmds.add_parser(
        "stats",
        help="ingest statistics: accepted, rejected, duplicates, gaps, devices by state",
        description="Fleet-wide ingest counters, devices per liveness state, rejects by reason "
        "and the most recent rejected messages.",
        epilog="example: dunewatch collector stats --db dunewatch-data/dunewatch.db --json",
    )
    add_db_arg(p)
    p.add_argument("--rejects", type=int, default=10, help="recent rejects to show (default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_stats)


def build_config(args: argparse.Namespace) -> Any:
    from collector.config import (
        ConfigError,
        config_from_dict,
        default_db_path,
        read_password_file,
    )

    if args.config is None and not args.broker:
        raise ConfigError("collector serve needs --config FILE or --broker mqtt://HOST:PORT")
    doc: dict[str, Any] = {}
    if args.config is not None:
        import tomllib

        try:
            doc = tomllib.loads(args.config.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config {args.config}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {args.config}: not valid TOML ({exc})") from None
    broker = doc.setdefault("broker", {})
    for flag, key in (
        ("broker", "url"),
        ("username", "username"),
        ("protocol", "protocol"),
        ("client_id", "client_id"),
        ("share_group", "share_group"),
        ("root", "root"),
    ):
        val = getattr(args, flag)
        if val is not None:
            broker[key] = val
    if args.ca_file is not None:
        broker["ca_file"] = str(args.ca_file.resolve())
    base = args.config.parent if args.config is not None else Path(".")
    if args.password_file is not None:
        broker.pop("password_file", None)
        password = read_password_file(args.password_file)
    else:
        password = None
    store = doc.setdefault("store", {})
    if args.db is not None:
        store["path"] = str(args.db.resolve())
    elif "path" not in store:
        store["path"] = str(default_db_path().resolve())
    if args.workers is not None:
        doc.setdefault("ingest", {})["workers"] = args.workers
    if args.reader is not None:
        doc.setdefault("ingest", {})["reader"] = args.reader
    if args.metrics is not None:
        doc.setdefault("metrics", {})["listen"] = "" if args.metrics == "off" else args.metrics
    alerts = doc.setdefault("alerts", {})
    for flag, key in (("alerts_config", "config"), ("sinks", "sinks"), ("policy", "policy")):
        if getattr(args, flag) is not None:
            alerts[key] = str(getattr(args, flag).resolve())
    if args.alerts_every is not None:
        alerts["every"] = args.alerts_every
    if args.no_alerts:
        alerts["enabled"] = False
    config = config_from_dict(doc, base=base, where=str(args.config or "flags"))
    if password is not None:
        from dataclasses import replace

        config = replace(config, broker=replace(config.broker, password=password))
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.service import serve

    return serve(build_config(args))


def cmd_enroll(args: argparse.Namespace) -> int:
    from collector.enroll import enroll, parse_tags

    tags = parse_tags(args.tag)
    store = open_db(args.db)
    try:
        result = enroll(
            args.device_id,
            tags,
            store=store,
            passwd_file=args.passwd,
            acl_file=args.acl,
            root=args.root,
        )
    finally:
        store.close()
    if args.json:
        doc = {
            "device_id": result.device_id,
            "username": result.device_id,
            "password": result.password,
            "password_line": result.password_line,
            "acl": result.acl,
            "tags": dict(result.tags),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"enrolled {result.device_id} (tags: {_fmt_tags(result.tags) or 'none'})")
    print(f"  mqtt username: {result.device_id}")
    print(f"  mqtt password: {result.password}   (shown once; put it in the agent's config)")
    if args.passwd is not None:
        print(f"  password file: {args.passwd} updated")
    else:
        print(f"  password-file line for your broker:\n    {result.password_line}")
    if args.acl is not None:
        print(f"  ACL file: {args.acl} holds: {result.acl.strip()}")
    else:
        print(f"  ACL line for your broker:\n    {result.acl.strip()}")
    if args.passwd is not None or args.acl is not None:
        print("  reload mosquitto (SIGHUP) to pick the changes up")
    return 0


def _fmt_tags(tags: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


def cmd_stats(args: argparse.Namespace) -> int:
    store = open_db(args.db, must_exist=True)
    try:
        totals = store.ingest_stats()
        counts = store.status_counts()
        reasons = store.reject_counts()
        recent = store.recent_rejects(args.rejects)
        unenrolled = store.unenrolled()
    finally:
        store.close()
    if args.json:
        doc = {
            "ingest": {
                "accepted": totals.accepted,
                "rejected": sum(reasons.values()),
                "duplicate": totals.duplicate,
                "gap": totals.gap,
                "dropped": totals.dropped,
            },
            "rejects_by_reason": reasons,
            "devices_by_status": counts,
            "unenrolled": unenrolled,
            "recent_rejects": [
                {
                    "ts": r.ts,
                    "topic": r.topic,
                    "reason": r.reason,
                    "detail": r.detail,
                    "device_id": r.device_id,
                    "size": r.size,
                }
                for r in recent
            ],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"messages: accepted {totals.accepted}  rejected {sum(reasons.values())}  "
        f"duplicate {totals.duplicate}  gap {totals.gap}  agent-dropped {totals.dropped}"
    )
    print("devices:  " + "  ".join(f"{s} {n}" for s, n in counts.items()))
    if unenrolled:
        shown = ", ".join(unenrolled[:10]) + (" ..." if len(unenrolled) > 10 else "")
        print(f"unenrolled devices reporting: {len(unenrolled)} ({shown})")
    if reasons:
        print("rejects by reason: " + "  ".join(f"{k} {v}" for k, v in reasons.items()))
    if recent:
        print("recent rejects:")
        print_table(
            ["time", "reason", "topic", "detail"],
            [
                [
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.ts)),
                    r.reason,
                    r.topic[:60],
                    r.detail[:70],
                ]
                for r in recent
            ],
        )
    return 0
