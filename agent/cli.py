"""`dunewatch-agent`: run, once, check-config. Thin: each command calls one library function."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError

if TYPE_CHECKING:
    import argparse

    Args = argparse.Namespace | SimpleNamespace

PROG = "dunewatch-agent"


def _flags(args: Args) -> dict[tuple[str, str], Any]:
    """CLI flags as config overrides; only the ones given (None means 'not on the command line')."""
    table = {
        ("broker", "url"): getattr(args, "broker", None),
        ("agent", "device_id"): getattr(args, "device_id", None),
        ("agent", "interval"): getattr(args, "interval", None),
        ("broker", "username"): getattr(args, "username", None),
        ("broker", "password_file"): getattr(args, "password_file", None),
        ("outbox", "path"): getattr(args, "outbox", None),
        ("broker", "protocol"): getattr(args, "protocol", None),
        ("agent", "log_level"): getattr(args, "log_level", None),
    }
    return {k: v for k, v in table.items() if v is not None}


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# glibc malloc settings the daemon runs with unless the environment already sets them: with one
# arena paho's network thread shares the main thread's heap instead of growing its own
# (about 0.3 MB less RSS; docs/agent.md, "Footprint"). Other C libraries ignore it.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "1"}


def _reexec_with_malloc_env() -> None:
    """glibc reads MALLOC_* once, before Python starts: set them and exec the same command again
    (same PID, arguments and interpreter options). Skipped when any is already set, which also
    ends the loop, or when the command line cannot be rebuilt."""
    import os

    if any(k in os.environ for k in MALLOC_ENV) or not sys.executable or len(sys.orig_argv) < 2:
        return
    os.environ.update(MALLOC_ENV)
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError:  # run on as we are: only memory is at stake
        for k in MALLOC_ENV:
            os.environ.pop(k, None)


def cmd_run(args: Args) -> int:
    from agent import deferred

    if getattr(args, "entry_point", False):  # never replace a program that embeds main()
        _reexec_with_malloc_env()

    deferred.defer_for_values()  # before agent.config imports dataclasses
    from agent.config import load
    from agent.loop import Agent

    path = Path(args.config) if args.config else None
    flags = _flags(args)
    cfg = load(path, flags=flags)
    deferred.defer_for_mqtt(tls=cfg.broker.tls)  # decided from the validated configuration
    _setup_logging(cfg.agent.log_level)
    Agent(cfg, config_path=path, flags=flags).run()
    return 0


def cmd_once(args: Args) -> int:
    from agent.once import once_report, render_text

    path = Path(args.config) if args.config else None
    report = once_report(path, flags=_flags(args), inventory=not args.no_inventory)
    if args.json:
        import json

        sys.stdout.write(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(report))
    return 0


def cmd_check_config(args: Args) -> int:
    from agent.config import describe, load

    cfg = load(Path(args.file))
    print(f"{args.file}: ok")
    if args.verbose:
        print(describe(cfg))
    return 0


# `run`'s options, read by both parsers (argparse for help and errors, parse_run_args for the
# daemon): name -> (destination, converter, allowed values, metavar, help).
_RUN_OPTIONS: dict[str, tuple[str, Callable[[str], Any], tuple[str, ...], str, str]] = {
    "--config": ("config", str, (), "FILE", "TOML configuration file"),
    "--broker": ("broker", str, (), "URL", "mqtt://HOST:PORT or mqtts://HOST:PORT (TLS)"),
    "--device-id": ("device_id", str, (), "ID", "device id (also the default MQTT username)"),
    "--interval": ("interval", float, (), "SECONDS", "seconds between health reports"),
    "--username": ("username", str, (), "U", "MQTT username (default: the device id)"),
    "--password-file": ("password_file", str, (), "F", "file holding the MQTT password"),
    "--outbox": ("outbox", str, (), "PATH", "outbox database file"),
    "--protocol": ("protocol", str, ("5", "3.1.1"), "", "MQTT protocol version (default 5)"),
    "--log-level": ("log_level", str, ("debug", "info", "warning", "error"), "", ""),
}


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="dunewatch edge agent: reports health and inventory of this device over MQTT.",
        epilog="example: dunewatch-agent run --config /etc/dunewatch/agent.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="report to the broker until stopped (SIGTERM/SIGINT: offline + flush; SIGHUP: reload)",
        description="Report health every interval and inventory on change, via an outbox on disk.",
        epilog=(
            "example: dunewatch-agent run --config /etc/dunewatch/agent.toml\n"
            "example: dunewatch-agent run --broker mqtts://hub.example:8883 --device-id gw-0007 "
            "--interval 10 --username gw-0007 --password-file /etc/dunewatch/password "
            "--outbox /var/lib/dunewatch-agent/outbox.db"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, (dest, convert, choices, metavar, text) in _RUN_OPTIONS.items():
        run.add_argument(
            flag,
            dest=dest,
            type=convert,
            choices=choices or None,
            metavar=metavar or None,
            help=text or None,
        )
    run.set_defaults(func=cmd_run)

    once = sub.add_parser(
        "once",
        help="print one health report and the inventory of this machine (no broker)",
        description="Collect one health report and the inventory, print them and exit.",
        epilog="example: dunewatch-agent once --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    once.add_argument("--json", action="store_true", help="print the contract envelopes as JSON")
    once.add_argument("--config", metavar="FILE", help="TOML configuration file (optional)")
    once.add_argument("--device-id", metavar="ID", help="device id (default: from the hostname)")
    once.add_argument("--no-inventory", action="store_true", help="health only")
    once.set_defaults(func=cmd_once)

    check = sub.add_parser(
        "check-config",
        help="validate a configuration file: one line per problem",
        description="Validate the file, environment overrides and referenced certificate files.",
        epilog="example: dunewatch-agent check-config /etc/dunewatch/agent.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_check_config)
    return parser


def parse_run_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """`[-v] run --option VALUE ...` parsed without argparse, or None to let argparse do it.

    The daemon is the one command that lives for months: argparse and what it imports (gettext,
    locale, textwrap, shutil with bz2 and lzma) would stay resident, about 1 MB. Only exact long
    options with plain values are taken here; help, abbreviations, unknown or repeated-looking
    options, bad numbers or choices all return None, so argparse keeps producing the messages.
    """
    args = list(argv)
    verbose = False
    while args and args[0] in ("-v", "--verbose"):
        verbose = True
        args.pop(0)
    if not args or args.pop(0) != "run":
        return None
    ns = SimpleNamespace(
        verbose=verbose,
        command="run",
        func=cmd_run,
        **{spec[0]: None for spec in _RUN_OPTIONS.values()},
    )
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        spec = _RUN_OPTIONS.get(name)
        if spec is None:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            i += 1
            value = args[i]
        if value.startswith("-"):
            return None  # argparse decides whether that is a value or a missing one
        dest, convert, choices, _metavar, _help = spec
        if choices and value not in choices:
            return None
        try:
            setattr(ns, dest, convert(value))
        except ValueError:
            return None
        i += 1
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    args: Args | None = parse_run_args(sys.argv[1:] if argv is None else argv)
    if args is None:
        args = build_parser().parse_args(argv)
    # the process's own command line: re-executing it runs this very command again
    args.entry_point = argv is None
    try:
        return int(args.func(args))
    except AgentError as exc:
        if args.verbose:
            raise
        for line in str(exc).splitlines():
            print(f"{PROG}: error: {line}", file=sys.stderr)
        if exc.tip:
            print(f"{PROG}: tip: {exc.tip}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
