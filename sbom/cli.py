"""`dunewatch sbom ...`: thin commands over sbom.builders, sbom.output, sbom.fleet and sbom.diff."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sbom.errors import SbomError


class Progress:
    """Progress on stderr: one rewritten line on a terminal, a line per stage otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.stage: str | None = None
        self.start = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        count = f"{done}/{total}" if total else f"{done} files"
        if self.tty:
            sys.stderr.write(f"\r\x1b[Ksbom: {stage} {count} ({elapsed:.1f}s)")
            sys.stderr.flush()
        elif stage != self.stage and elapsed >= 1.0:  # logs: only scans long enough to matter
            print(f"sbom: {stage} ({elapsed:.1f}s)", file=sys.stderr)
        self.stage = stage

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _classifier() -> Any:
    from sbom.knowledge import Classifier, load_knowledge

    return Classifier(load_knowledge())


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("json", "xml"), default="json", help="CycloneDX 1.6 format")
    p.add_argument(
        "--reproducible",
        action="store_true",
        help="fixed serial number and timestamp (SOURCE_DATE_EPOCH or 1970-01-01)",
    )


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        help="collector database (default $DUNEWATCH_DATA/dunewatch.db, "
        "else ./dunewatch-data/dunewatch.db)",
    )


def _open_store(path: Path | None) -> Any:
    from collector.config import default_db_path
    from collector.store import open_store

    db = path or default_db_path()
    if not db.exists():
        raise SbomError(
            f"no collector database at {db}",
            tip="pass --db PATH, or set DUNEWATCH_DATA to the collector's data directory",
        )
    return open_store(db)


def cmd_scan(args: argparse.Namespace) -> int:
    from sbom import output
    from sbom.builders.rootfs import RootfsBuilder

    progress = Progress(not args.quiet)
    bom = RootfsBuilder(
        args.rootfs, device_id=args.device_id, classifier=_classifier(), progress=progress
    ).build()
    output.write(bom, args.output, args.format, reproducible=args.reproducible)
    progress.done()
    print(
        f"{args.output}: {len(bom.components)} components, device {bom.device.device_id}"
        + (f", {len(bom.errors)} unreadable sources" if bom.errors else ""),
        file=sys.stderr,
    )
    for err in bom.errors:
        print(f"  warning: {err}", file=sys.stderr)
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    from sbom import output
    from sbom.fleet import device_bom

    store = _open_store(args.db)
    try:
        bom = device_bom(store, args.device_id, _classifier())
    finally:
        store.close()
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(output.render(bom, args.format, reproducible=args.reproducible))
    else:
        output.write(bom, args.output, args.format, reproducible=args.reproducible)
        print(f"{args.output}: {len(bom.components)} components", file=sys.stderr)
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from sbom.fleet import INDEX_NAME, export_fleet

    store = _open_store(args.db)
    progress = Progress(not args.quiet)
    try:
        entries = export_fleet(
            store,
            args.outdir,
            _classifier(),
            fmt=args.format,
            reproducible=args.reproducible,
            progress=progress,
        )
    finally:
        store.close()
    progress.done()
    failed = [e for e in entries if e.error]
    print(
        f"{args.outdir / INDEX_NAME}: {len(entries) - len(failed)} BOMs written, "
        f"{len(failed)} devices without a BOM",
        file=sys.stderr,
    )
    for e in failed:
        print(f"  {e.error}", file=sys.stderr)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from sbom.diff import diff_files

    result = diff_files(args.old, args.new)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for line in result.lines():
            print(line)
        print(
            f"{len(result.added)} added, {len(result.removed)} removed, "
            f"{len(result.changed)} changed",
            file=sys.stderr,
        )
    return 0 if result.empty else 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the `sbom` command group to the `dunewatch` parser."""
    group = sub.add_parser(
        "sbom",
        help="CycloneDX SBOM/HBOM for devices, firmware images and the fleet",
        description="Build CycloneDX 1.6 SBOM/HBOM documents, validated before writing.",
        epilog="example: dunewatch sbom scan firmware-rootfs.tar.gz -o camera.cdx.json",
    )
    cmds = group.add_subparsers(dest="sbom_command", metavar="SUBCOMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = cmds.add_parser(
        "scan",
        help="SBOM of a root filesystem directory or tar/tar.gz archive",
        description="Scan package databases (dpkg, opkg, apk, Python), OS and kernel files, the "
        "device tree and unpackaged ELF binaries of an offline root filesystem. Archives are "
        "checked member by member and extracted safely into a temporary directory.",
        epilog="example: dunewatch sbom scan rootfs.tar.gz -o cam.cdx.json --format json",
        formatter_class=fmt,
    )
    p.add_argument("rootfs", type=Path, metavar="ROOTFS_OR_TARBALL")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    p.add_argument("--device-id", help="device id for the BOM (default: hostname or image name)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_format(p)
    p.set_defaults(func=cmd_scan)

    p = cmds.add_parser(
        "device",
        help="SBOM of one device from its stored inventory",
        description="Build the BOM of a device from the current inventory the collector "
        "stored (from the agent or an SNMP poll).",
        epilog="example: dunewatch sbom device gw-0007 --db fleet.db -o gw-0007.cdx.json",
    )
    p.add_argument("device_id", metavar="ID")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    _add_db(p)
    _add_format(p)
    p.set_defaults(func=cmd_device)

    p = cmds.add_parser(
        "fleet",
        help="one SBOM per device plus index.json",
        description="Export a BOM for every device with a stored inventory into OUTDIR, with "
        "index.json listing each device, its file and any error.",
        epilog="example: dunewatch sbom fleet boms/ --db fleet.db",
    )
    p.add_argument("outdir", type=Path, metavar="OUTDIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_db(p)
    _add_format(p)
    p.set_defaults(func=cmd_fleet)

    p = cmds.add_parser(
        "diff",
        help="components added, removed and changed between two BOMs",
        description="Compare two CycloneDX BOMs (JSON or XML). Exit status 0 when they list "
        "the same components, 1 when they differ.",
        epilog="example: dunewatch sbom diff old.cdx.json new.cdx.json --json",
    )
    p.add_argument("old", type=Path, metavar="OLD")
    p.add_argument("new", type=Path, metavar="NEW")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diff)
