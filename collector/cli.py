"""`dunewatch`: the thin command line over the collector, snmp, sbom and firmware_db libraries.

Each command group lives in its own module exposing `register(subparsers)`; the tuple below is
the one explicit registry. Handlers import their libraries lazily so `dunewatch --help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from agent.errors import AgentError
from collector.commands import analysis, collector_cmd, devices, up
from collector.errors import CollectorError
from collector.logs import setup_logging
from collector.snmp import cli as snmp_cli
from firmware_db import cli as firmware_db_cli
from firmware_db.errors import FirmwareDbError
from sbom import cli as sbom_cli
from sbom.errors import SbomError

COMMAND_GROUPS: tuple[ModuleType, ...] = (
    up,
    collector_cmd,
    devices,
    snmp_cli,
    firmware_db_cli,
    sbom_cli,
    analysis,
)

EDGE_ERRORS: tuple[type[Exception], ...] = (
    AgentError,
    CollectorError,
    FirmwareDbError,
    SbomError,
    OSError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dunewatch",
        description="Watch edge devices: health, inventory, SBOM, Digital Dune Index and aging.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="log line format (stderr)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose, fmt=args.log_format)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except EDGE_ERRORS as exc:
        if args.verbose:
            logging.getLogger("dunewatch").exception("failed")
        print(f"dunewatch: error: {exc}", file=sys.stderr)
        tip = getattr(exc, "tip", "")
        if tip:
            print(f"  tip: {tip}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
