"""Analysis commands: `dune` and `report` (Digital Dune Index, aging, reports) and `alerts`.

Two halves share this module: `register_dune_report` and `register_alerts` each add their own
commands, and `register` calls both so the CLI registry keeps one entry per module.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from collector.errors import CollectorError


def register_dune_report(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `dune` and `report`."""
    p = sub.add_parser(
        "dune",
        help="Digital Dune Index of the fleet, one device, or per tag",
        description="Digital Dune Index: how much of the fleet stands on core technology "
        "controlled from abroad, per layer, with concentration (HHI, top-1, N50) and the "
        "component that drives each score.",
        epilog="example: dunewatch dune --policy city.toml --by district\n"
        "example: dunewatch dune --device cam-0001 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_args(p)
    p.add_argument("--device", metavar="ID", help="explain one device: every layer's driver")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_dune)

    p = sub.add_parser(
        "report",
        help="fleet report (DDI, concentration, aging, alerts) as HTML, JSON, CSV or Markdown",
        description="Write a fleet report. HTML is one self-contained file that opens offline.",
        epilog="example: dunewatch report --format html -o fleet.html --by district",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_args(p)
    p.add_argument(
        "--format", required=True, choices=("html", "json", "csv", "md"), help="output format"
    )
    p.add_argument("-o", "--output", required=True, type=Path, metavar="PATH", help="output file")
    p.add_argument(
        "--top",
        type=int,
        default=100,
        metavar="N",
        help="devices shown with drill-down and SBOM in HTML/JSON (default 100; all are ranked)",
    )
    p.add_argument("--title", default="dunewatch fleet report", help="report title")
    p.set_defaults(func=cmd_report)


def _common_args(p: argparse.ArgumentParser) -> None:
    from collector.commands.devices import add_db_arg

    add_db_arg(p)
    p.add_argument("--by", metavar="TAG", help="roll up by a tag (district, street, owner...)")
    p.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="DDI/aging policy TOML (home jurisdiction, allies, weights...); "
        "default: no home country, every known supplier counts as 'other'",
    )
    p.add_argument(
        "--kb",
        type=Path,
        metavar="PATH",
        help="firmware_db database (default: the firmware_db database if present, "
        "else the shipped reference data)",
    )
    p.add_argument(
        "--today", metavar="YYYY-MM-DD", help="evaluate lifecycles as of this date (default today)"
    )


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, dt.date, Path]:
    from collector.config import default_db_path
    from sbom.policy import DunePolicy, load_policy

    policy = load_policy(args.policy) if args.policy else DunePolicy()
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise CollectorError(f"--today {args.today!r}: not a date like 2026-01-31") from None
    else:
        today = dt.date.today()
    return policy, _knowledge(args.kb), today, args.db or default_db_path()


def _knowledge(path: Path | None) -> Any:
    import firmware_db

    if path is not None:
        if not path.exists():
            raise CollectorError(f"--kb {path}: no such file")
        return firmware_db.open_database(path)
    default = firmware_db.default_db_path()
    return firmware_db.open_database(default) if default.exists() else firmware_db.open_default()


def cmd_dune(args: argparse.Namespace) -> int:
    from collector.report.doc import device_doc, fleet_doc, policy_doc
    from collector.report.source import report_from_db

    policy, kb, today, db = _inputs(args)
    data = report_from_db(
        db, policy=policy, kb=kb, today=today, by_tag=args.by, device_id=args.device, detail=0
    )
    if args.json:
        doc: dict[str, Any] = {"today": data.today, "policy": policy_doc(policy)}
        if args.device:
            doc["device"] = device_doc(data.devices[0], 1)
        else:
            doc["fleet"] = fleet_doc(data.fleet)
            if args.by:
                doc["groups"] = [{"value": k, **fleet_doc(f)} for k, f in data.groups]
            doc["skipped"] = [{"device_id": d, "reason": r} for d, r in data.skipped]
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(_policy_line(data))
    if args.device:
        _print_device(data.devices[0])
        return 0
    _print_fleet(data)
    return 0


def _policy_line(data: Any) -> str:
    from collector.report.doc import policy_note

    sim = f"; {data.simulated} simulated devices" if data.simulated else ""
    return f"as of {data.today}; {policy_note(data.policy)}{sim}"


def _print_fleet(data: Any) -> None:
    from collector.commands.devices import print_table
    from collector.report.charts import LAYER_LABELS

    f = data.fleet
    grades = " ".join(f"{g}:{n}" for g, n in f.grades)
    print(f"fleet DDI {f.ddi:.1f} over {f.devices} devices (grades {grades})")
    print(
        f"unknown suppliers: {f.unknown_suppliers} components on {f.devices_with_unknown} devices"
    )

    def top1(c: Any) -> str:
        return f"{c.top1.key} {c.top1.share:.0%}" if c.top1 else "-"

    print()
    print_table(
        [
            "layer",
            "devices",
            "exposure",
            "HHI jur.",
            "top jurisdiction",
            "N50",
            "HHI vendor",
            "top vendor",
            "unknown",
        ],  # fmt: skip
        [
            [
                LAYER_LABELS.get(x.layer, x.layer),
                x.devices,
                f"{x.exposure:.3f}",
                f"{x.by_jurisdiction.hhi:.0f}" + (" high" if x.by_jurisdiction.high else ""),
                top1(x.by_jurisdiction),
                x.by_jurisdiction.n50,
                f"{x.by_vendor.hhi:.0f}" + (" high" if x.by_vendor.high else ""),
                top1(x.by_vendor),
                f"{x.unknown_share:.0%}",
            ]
            for x in f.layers
        ],
    )
    if data.groups:
        print()
        print_table(
            [data.by_tag, "devices", "DDI", *[g for g, _ in f.grades]],
            [[k, g.devices, f"{g.ddi:.1f}", *[n for _, n in g.grades]] for k, g in data.groups],
        )
    if data.skipped:
        print()
        print(f"not analysed: {len(data.skipped)} devices")
        for device_id, reason in data.skipped[:20]:
            print(f"  {device_id}: {reason}")


def _print_device(entry: Any) -> None:
    from collector.commands.devices import print_table
    from collector.report.charts import LAYER_LABELS

    d = entry.dune
    sim = " (simulated)" if d.simulated else ""
    print(f"{d.device_id}{sim}: DDI {d.ddi:.1f}, grade {d.grade} (worst layer {d.worst_layer})")
    rows = []
    for x in d.layers:
        c = x.driver
        if c is None:
            rows.append(
                [LAYER_LABELS.get(x.layer, x.layer), x.weight, "-", "-", "none", "", "", "", "", ""]
            )
            continue
        who = c.supplier or "unknown"
        if c.owner and c.owner != c.supplier:
            who += f" -> {c.owner}"
        rows.append(
            [
                LAYER_LABELS.get(x.layer, x.layer),
                x.weight,
                f"{x.exposure:.3f}",
                x.grade,
                f"{c.name} {c.version or ''}".strip(),
                who,
                f"{c.country or '-'} ({c.category})",
                f"J={c.j:g} S={c.s:g} A={c.a:g}",
                c.a_reason,
                f"{c.evidence}/{c.confidence}",
            ]
        )
    print_table(
        [
            "layer",
            "weight",
            "exposure",
            "grade",
            "driver",
            "supplier -> owner",
            "country",
            "factors",
            "aging",
            "evidence",
        ],  # fmt: skip
        rows,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from collector.report import get_format
    from collector.report.interface import write_report
    from collector.report.source import report_from_db

    if args.top < 0:
        raise CollectorError(f"--top {args.top}: must be 0 or more")
    fmt = get_format(args.format)
    policy, kb, today, db = _inputs(args)
    data = report_from_db(
        db, policy=policy, kb=kb, today=today, by_tag=args.by, detail=args.top, title=args.title
    )
    out = write_report(fmt, data, args.output)
    print(
        f"wrote {out} ({fmt.name}, {data.fleet.devices} devices, fleet DDI {data.fleet.ddi:.1f}"
        + (f", {len(data.skipped)} not analysed" if data.skipped else "")
        + ")"
    )
    return 0


def register_alerts(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `alerts` (list, show, ack, resolve, silence, evaluate)."""
    from collector.alerts import cli as alerts_cli

    alerts_cli.register(sub)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this group's commands to the `dunewatch` parser."""
    register_dune_report(sub)
    register_alerts(sub)
