"""`dunewatch alerts`: list, show, ack, resolve, silence and evaluate; each calls the library."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import time
from pathlib import Path
from typing import Any

from collector.alerts.interface import AlertsError
from collector.alerts.model import Alert

log = logging.getLogger("dunewatch.alerts")


def _db_arg(p: argparse.ArgumentParser, leaf: bool) -> None:
    # On subcommands SUPPRESS keeps `dunewatch alerts --db X ack 5` from being reset to None.
    p.add_argument(
        "--db",
        type=Path,
        default=argparse.SUPPRESS if leaf else None,
        help="SQLite database (default $DUNEWATCH_DATA/dunewatch.db, "
        "else ./dunewatch-data/dunewatch.db)",
    )


def _json_arg(p: argparse.ArgumentParser, leaf: bool) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if leaf else False,
        help="machine-readable output",
    )


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `alerts` and its subcommands to the `dunewatch` parser."""
    p = sub.add_parser(
        "alerts",
        help="alerts: list, acknowledge, resolve, silence, evaluate",
        description="List alerts (worst first). Subcommands change them or run an evaluation "
        "pass. Lifecycle: open -> acknowledged -> resolved; alerts resolve on their own when "
        "the condition clears.",
        epilog="example: dunewatch alerts --open --db dunewatch-data/dunewatch.db",
    )
    _db_arg(p, leaf=False)
    _json_arg(p, leaf=False)
    p.add_argument("--open", action="store_true", help="only open and acknowledged alerts")
    p.add_argument("--status", choices=("open", "acknowledged", "resolved"))
    p.add_argument("--device", metavar="ID", help="only this device's alerts")
    p.add_argument("--limit", type=int, default=200, help="at most N rows (default 200)")
    p.set_defaults(func=cmd_list)
    cmds = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")

    s = cmds.add_parser(
        "show",
        help="one alert with its history",
        description="One alert, its evidence and every event of its history.",
        epilog="example: dunewatch alerts show 12 --json",
    )
    s.add_argument("alert_id", type=int, metavar="ID")
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.set_defaults(func=cmd_show)

    s = cmds.add_parser(
        "ack",
        help="acknowledge an open alert (someone is on it)",
        description="open -> acknowledged. The alert stays until its condition clears "
        "(auto-resolve) or someone resolves it.",
        epilog="example: dunewatch alerts ack 12 --by alice",
    )
    s.add_argument("alert_id", type=int, metavar="ID")
    s.add_argument("--by", default=None, help="who acknowledges (default: the login name)")
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.set_defaults(func=cmd_ack)

    s = cmds.add_parser(
        "resolve",
        help="resolve an alert by hand",
        description="-> resolved. If the condition still holds, the next evaluation opens a "
        "new alert.",
        epilog="example: dunewatch alerts resolve 12",
    )
    s.add_argument("alert_id", type=int, metavar="ID")
    s.add_argument("--by", default=None, help="who resolves (default: the login name)")
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.set_defaults(func=cmd_resolve)

    s = cmds.add_parser(
        "silence",
        help="mute notifications for a device or every device with a tag",
        description="Alerts keep being recorded while silenced; their notifications are not "
        "sent. When the silence ends and the alert is still active, it is sent then.",
        epilog="example: dunewatch alerts silence --tag district=north --for 2h "
        '--reason "planned power work"',
    )
    target = s.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="ID")
    target.add_argument("--tag", metavar="K=V")
    s.add_argument(
        "--for",
        dest="duration",
        required=True,
        metavar="DURATION",
        help="how long: 30m, 2h, 1d, 1w",
    )
    s.add_argument("--reason", default="", help="why (shown in listings)")
    s.add_argument("--by", default=None, help="who (default: the login name)")
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.set_defaults(func=cmd_silence)

    s = cmds.add_parser(
        "silences",
        help="list active silences",
        description="Silences that have not ended yet.",
        epilog="example: dunewatch alerts silences --json",
    )
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.set_defaults(func=cmd_silences)

    s = cmds.add_parser(
        "unsilence",
        help="end a silence now",
        description="End a silence before its time.",
        epilog="example: dunewatch alerts unsilence 3",
    )
    s.add_argument("silence_id", type=int, metavar="ID")
    _db_arg(s, leaf=True)
    s.set_defaults(func=cmd_unsilence)

    s = cmds.add_parser(
        "evaluate",
        help="run one evaluation pass (what `collector serve` runs periodically)",
        description="Build the fleet snapshot from the collector database, firmware_db and the "
        "Digital Dune Index, run every rule, update alerts, and deliver pending "
        "notifications to the sinks in --sinks.",
        epilog="example: dunewatch alerts evaluate --db dunewatch-data/dunewatch.db "
        "--sinks sinks.toml --config alerts.toml",
    )
    _db_arg(s, leaf=True)
    _json_arg(s, leaf=True)
    s.add_argument("--sinks", type=Path, metavar="FILE", help="TOML file of [[sink]] tables")
    s.add_argument("--config", type=Path, metavar="FILE", help="alert thresholds (TOML)")
    s.add_argument(
        "--kb",
        type=Path,
        metavar="PATH",
        help="firmware_db database with imported feeds (default: shipped data)",
    )
    s.add_argument("--policy", type=Path, metavar="FILE", help="Digital Dune Index policy (TOML)")
    s.set_defaults(func=cmd_evaluate)


# ---------------------------------------------------------------- helpers


def _db_path(args: argparse.Namespace, must_exist: bool = True) -> Path:
    from collector.config import default_db_path

    db: Path = getattr(args, "db", None) or default_db_path()
    if must_exist and not db.exists():
        raise AlertsError(
            f"no collector database at {db}",
            tip="pass --db PATH, set DUNEWATCH_DATA, or start `dunewatch collector serve` first",
        )
    return db


def _open(args: argparse.Namespace) -> Any:
    from collector.alerts.store import AlertStore

    return AlertStore(_db_path(args))


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    d = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{d / size:.0f}{unit}"
    return f"{d:.0f}s"


def _table(headers: list[str], rows: list[list[object]]) -> None:
    from collector.commands.devices import print_table

    print_table(headers, rows)


def _print_alert(alert: Alert, as_json: bool) -> None:
    if as_json:
        print(json.dumps(alert.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"alert {alert.id} {alert.status}: [{alert.severity}] {alert.summary}")


# ---------------------------------------------------------------- handlers


def cmd_list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        alerts = store.alerts(
            status=args.status, active=args.open, device_id=args.device, limit=args.limit
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts], indent=2, ensure_ascii=False))
        return 0
    if not alerts:
        print("no alerts" + (" open" if args.open else ""))
        return 0
    now = time.time()
    rows: list[list[object]] = [
        [
            a.id,
            a.severity,
            a.status + (" (silenced)" if a.silenced_by is not None and a.active else ""),
            a.rule_id,
            a.device_id or "(fleet)",
            _ago(a.first_seen, now),
            a.summary if len(a.summary) <= 90 else a.summary[:87] + "...",
        ]
        for a in alerts
    ]
    _table(["ID", "SEVERITY", "STATUS", "RULE", "DEVICE", "AGE", "SUMMARY"], rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        alert = store.get(args.alert_id)
        if alert is None:
            raise AlertsError(
                f"no alert with id {args.alert_id}", tip="list them: dunewatch alerts"
            )
        history = store.history(alert.id)
    finally:
        store.close()
    if getattr(args, "json", False):
        doc = alert.to_dict()
        doc["history"] = [
            {
                "id": e.id,
                "ts": e.ts,
                "event": e.event,
                "severity": e.severity,
                "detail": dict(e.detail),
                "notify": e.notify,
            }
            for e in history
        ]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    fmt = "%Y-%m-%d %H:%M:%S"
    print(f"alert {alert.id}  [{alert.severity}]  {alert.status}")
    print(f"  rule:     {alert.rule_id}")
    print(f"  device:   {alert.device_id or '(fleet)'}")
    print(f"  summary:  {alert.summary}")
    first = time.strftime(fmt, time.gmtime(alert.first_seen))
    last = time.strftime(fmt, time.gmtime(alert.last_seen))
    print(f"  seen:     {first} .. {last} UTC ({alert.count} passes)")
    print("  evidence: " + json.dumps(dict(alert.evidence), ensure_ascii=False, default=str))
    print("  history:")
    for e in history:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v is not None)
        when = time.strftime(fmt, time.gmtime(e.ts))
        print(f"    {when}  {e.event:<12} {e.severity:<9} {detail}")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        alert = store.ack(args.alert_id, args.by or _who(), time.time())
    finally:
        store.close()
    _print_alert(alert, getattr(args, "json", False))
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        alert = store.resolve(args.alert_id, args.by or _who(), time.time())
    finally:
        store.close()
    _print_alert(alert, getattr(args, "json", False))
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    from collector.alerts.config import parse_duration

    seconds = parse_duration(args.duration, "--for")
    if seconds <= 0:
        raise AlertsError("--for: a silence must last longer than 0s")
    tag = None
    if args.tag is not None:
        key, sep, value = args.tag.partition("=")
        if not sep or not key or not value:
            raise AlertsError(f"--tag: expected K=V, got {args.tag!r}")
        tag = (key, value)
    now = time.time()
    store = _open(args)
    try:
        silence = store.add_silence(
            until=now + seconds,
            now=now,
            device_id=args.device,
            tag=tag,
            reason=args.reason,
            by=args.by or _who(),
        )
    finally:
        store.close()
    if getattr(args, "json", False):
        print(json.dumps(silence.__dict__, indent=2, ensure_ascii=False))
    else:
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(silence.until))
        print(f"silence {silence.id}: {silence.describe()} until {until} UTC")
    return 0


def cmd_silences(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        silences = store.silences(active_at=time.time())
    finally:
        store.close()
    if getattr(args, "json", False):
        print(json.dumps([s.__dict__ for s in silences], indent=2, ensure_ascii=False))
        return 0
    if not silences:
        print("no active silences")
        return 0
    fmt = "%Y-%m-%d %H:%M"
    _table(
        ["ID", "TARGET", "UNTIL (UTC)", "BY", "REASON"],
        [
            [s.id, s.describe(), time.strftime(fmt, time.gmtime(s.until)), s.created_by, s.reason]
            for s in silences
        ],
    )
    return 0


def cmd_unsilence(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        store.expire_silence(args.silence_id, time.time())
    finally:
        store.close()
    print(f"silence {args.silence_id} ended")
    return 0


def load_knowledge(path: Path | None) -> Any:
    """firmware_db over an imported database, or the shipped reference data."""
    if path is not None:
        from firmware_db.store import KnowledgeBase

        if not path.exists():
            raise AlertsError(f"--kb: no firmware_db database at {path}")
        return KnowledgeBase.open(path)
    from firmware_db import open_default

    return open_default()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from collector.alerts.config import load_config
    from collector.alerts.engine import evaluate
    from collector.sinks import load_sinks

    db = _db_path(args)
    config = load_config(args.config)
    sinks = load_sinks(args.sinks) if args.sinks else ()
    policy = None
    if args.policy is not None:
        from sbom.policy import load_policy

        policy = load_policy(args.policy)
    kb = load_knowledge(args.kb)
    started = []
    try:
        for sink in sinks:
            sink.start()
            started.append(sink)
        result = evaluate(db, kb, config, time.time(), sinks=sinks, policy=policy)
    finally:
        for sink in started:
            sink.stop()
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
        return 0
    print(
        f"{result.findings} findings: {len(result.opened)} opened, {len(result.escalated)} "
        f"escalated, {len(result.resolved)} resolved; {result.active} active "
        f"({result.silenced} silenced)"
    )
    for a in result.opened:
        print(f"  opened {a.id} [{a.severity}] {a.summary}")
    for a in result.resolved:
        print(f"  resolved {a.id} {a.summary}")
    for d in result.deliveries:
        line = f"  sink {d.sink}: {d.delivered} delivered, {d.failed} failed, {d.pending} pending"
        print(line + (f" (last error: {d.last_error})" if d.last_error else ""))
    for e in result.rule_errors:
        print(f"  rule {e.rule_id} failed: {e.message}")
    for msg in result.snapshot_errors:
        print(f"  note: {msg}")
    return 0
