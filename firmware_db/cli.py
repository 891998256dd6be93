"""`dunewatch firmware-db`: a thin layer over the `firmware_db` library."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

FEED_NAMES = ("endoflife", "nvd", "osv", "kev", "epss", "catalogue", "firmware", "assets")


def _epilog(*examples: str) -> str:
    return "\n".join(f"example: {e}" for e in examples)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the `firmware-db` group to the `dunewatch` parser."""
    group = sub.add_parser(
        "firmware-db",
        help="lifecycle and supply-chain knowledge base (vendors, EOL, vulnerabilities)",
        description="Query and update the knowledge base of vendors, parts, lifecycles and "
        "vulnerabilities. Without --db the database lives in $DUNEWATCH_DATA (or the user data "
        "directory) and is built from the shipped reference data on first use.",
        epilog=_epilog("dunewatch firmware-db lookup openssl 1.1.1w --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = group.add_subparsers(dest="firmware_db_command", metavar="COMMAND", required=True)

    def add(name: str, help_: str, *examples: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=_epilog(*examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--db", metavar="PATH", help="database file (default: user data dir)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser: argparse.ArgumentParser = p
        return parser

    p = add(
        "load",
        "load (or refresh) the shipped reference data into the database",
        "dunewatch firmware-db load --db kb.sqlite",
    )
    p.set_defaults(func=cmd_load)

    p = add(
        "import",
        "import a feed file (or URL, when online) in one transaction",
        "dunewatch firmware-db import nvd nvdcve-2.0-2024.json.gz --db kb.sqlite",
        "dunewatch firmware-db import endoflife openssl.json",
    )
    p.add_argument("feed", choices=FEED_NAMES, metavar="FEED", help=" | ".join(FEED_NAMES))
    p.add_argument("file", metavar="FILE", help="path (.json, .json.gz, .csv, .zip) or URL")
    p.add_argument("--product", help="endoflife: product key when the file name is not it")
    p.set_defaults(func=cmd_import)

    p = add("stats", "row counts per table and recent imports", "dunewatch firmware-db stats")
    p.set_defaults(func=cmd_stats)

    p = add(
        "lookup",
        "lifecycle status and known vulnerabilities of one component version",
        "dunewatch firmware-db lookup openssl 1.1.1w --json",
        "dunewatch firmware-db lookup libssl3 3.0.11-1~deb12u2",
    )
    p.add_argument("component", metavar="COMPONENT", help="product key or package name")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--today", help="evaluate as of this ISO date (default: today)")
    p.set_defaults(func=cmd_lookup)

    p = add(
        "vendor",
        "resolve a vendor, brand or legal name to its organization and controlling country",
        "dunewatch firmware-db vendor 'Hangzhou Hikvision Digital Technology Co., Ltd.'",
    )
    p.add_argument("name", metavar="NAME", help="vendor name, alias or IANA enterprise number")
    p.set_defaults(func=cmd_vendor)


def _open(args: argparse.Namespace) -> Any:
    from firmware_db import open_database

    return open_database(args.db)


def _print(args: argparse.Namespace, data: Any, rows: list[tuple[str, Any]]) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        return
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        shown = "-" if value is None or value == "" else value
        print(f"{key.ljust(width)}  {shown}")


def cmd_load(args: argparse.Namespace) -> int:
    kb = _open(args)
    with kb:
        counts = kb.load_reference()
        _print(args, {"path": kb.path, "loaded": counts}, [("database", kb.path), *counts.items()])
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    options = {"product": args.product} if args.product else {}
    kb = _open(args)
    with kb:
        result = kb.import_feed(args.feed, args.file, **options)
        data = {"feed": result.feed, "records": result.records, "source": result.source}
        _print(args, data, list(data.items()))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    kb = _open(args)
    with kb:
        s = kb.stats()
        rows: list[tuple[str, Any]] = [("database", s["path"]), *s["tables"].items()]
        rows += [
            (f"import {i['at']}", f"{i['feed']} {i['records']} {i['source']}") for i in s["imports"]
        ]
        _print(args, s, rows)
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    from firmware_db.errors import FirmwareDbError

    try:
        today = date.fromisoformat(args.today) if args.today else None
    except ValueError as exc:
        raise FirmwareDbError(f"--today {args.today!r} is not an ISO date") from exc
    kb = _open(args)
    with kb:
        life = kb.lifecycle(args.component, args.version, today=today)
        info = kb.component_info(args.component)
        vulns = kb.vulnerabilities(name=args.component, version=args.version)
        org = kb.vendor(info.supplier) if info and info.supplier else None
        data: dict[str, Any] = life.as_dict()
        data["component"] = args.component
        data["layer"] = info.layer if info else None
        data["supplier"] = info.supplier if info else None
        data["controlling_country"] = org.controlling_country if org else None
        data["community"] = info.community if info else None
        data["vulnerabilities"] = [v.as_dict() for v in vulns]
        rows: list[tuple[str, Any]] = [
            ("component", args.component),
            ("version", args.version),
            ("status", life.status),
            ("eol", life.eol),
            ("cycle", life.cycle),
            ("latest", life.latest),
            ("versions behind", life.versions_behind),
            ("why", life.reason),
            ("layer", data["layer"]),
            ("supplier", data["supplier"]),
            ("controlling country", data["controlling_country"]),
            ("source", life.source),
            ("vulnerabilities", len(vulns)),
        ]
        rows += [
            (
                f"  {v.id}",
                f"{v.severity or '?'} {v.cvss or ''} {'KEV ' if v.kev else ''}"
                f"fixed:{v.fixed_version or '?'}",
            )
            for v in vulns[:20]
        ]
        _print(args, data, rows)
    return 0


def cmd_vendor(args: argparse.Namespace) -> int:
    from firmware_db.errors import FirmwareDbError

    kb = _open(args)
    with kb:
        name = args.name.strip()
        org = kb.vendor_by_pen(int(name)) if name.isdigit() else kb.vendor(name)
        if org is None:
            raise FirmwareDbError(
                f"vendor {name!r} is not in the knowledge base",
                tip="its jurisdiction counts as unknown; add it to firmware_db/data with a source",
            )
        data = {
            "name": org.name,
            "aliases": list(org.aliases),
            "hq_country": org.hq_country,
            "ultimate_parent": org.ultimate_parent,
            "parent_country": org.parent_country,
            "controlling_country": org.controlling_country,
            "community": org.community,
            "roles": list(org.roles),
            "iana_pens": list(org.iana_pens),
            "flags": list(org.flags),
            "source": org.source,
        }
        rows = [(k, ", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in data.items()]
        _print(args, data, rows)
    return 0
