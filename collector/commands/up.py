"""`dunewatch up` and `dunewatch demo`: the zero-setup main job (library: collector/stack.py)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_DATA_DIR = "dunewatch-data"
DEFAULT_DEMO_DEVICES = 200
DEFAULT_DEMO_DURATION = 60.0

UP_EPILOG = """\
Starts a broker (the URL given; else mosquitto found on PATH, supervised on loopback with a
generated password file and ACL; else the embedded MQTT 3.1.1 broker), the collector, a local
agent watching this machine and an SBOM scan of /. Ctrl-C stops everything cleanly; a second
run reuses the data directory.

example: dunewatch up
example: dunewatch up --data-dir /var/lib/dunewatch --broker mqtts://broker.example.org:8883
"""

DEMO_EPILOG = """\
As `up`, plus a SIMULATED city fleet (cameras, NVRs and gateways over several districts)
publishing through the real broker, some agentless devices answered by snmpsim, some going
offline and some on end-of-life firmware. At the end it writes the HTML report and prints a
summary. Everything simulated is labelled so.

example: dunewatch demo
example: dunewatch demo --devices 50 --duration 20 --data-dir /tmp/dunewatch-demo
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=Path(DEFAULT_DATA_DIR),
        help=f"database, report, credentials and broker files (default ./{DEFAULT_DATA_DIR})",
    )
    p.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://[user:pass@]HOST:PORT or mqtts://... of an existing broker; "
        "'mosquitto' or 'embedded' to force one (default: mosquitto if found, else embedded)",
    )
    p.add_argument(
        "--metrics-port", metavar="PORT", type=int, help="collector metrics port on 127.0.0.1"
    )
    scan = p.add_mutually_exclusive_group()
    scan.add_argument(
        "--scan-root",
        metavar="DIR",
        type=Path,
        default=Path("/"),
        help="root filesystem to scan for this machine's SBOM (default /)",
    )
    scan.add_argument("--no-scan", action="store_true", help="skip the SBOM scan of this machine")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `up` and `demo` to the `dunewatch` parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    up = sub.add_parser(
        "up",
        help="run the whole system on this machine (broker, collector, local agent)",
        description="Run the whole system on this machine with zero setup.",
        epilog=UP_EPILOG,
        formatter_class=fmt,
    )
    _common(up)
    up.add_argument(
        "--report-every",
        metavar="S",
        type=_positive_float,
        default=900.0,
        help="rewrite the HTML report every S seconds while running (default 900)",
    )
    up.add_argument(
        "--duration",
        metavar="S",
        type=_positive_float,
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser(
        "demo",
        help="`up` plus a simulated city fleet, then the HTML report and a summary",
        description="Run the whole system with a SIMULATED city fleet and report on it.",
        epilog=DEMO_EPILOG,
        formatter_class=fmt,
    )
    _common(demo)
    demo.add_argument(
        "--devices",
        metavar="N",
        type=_count,
        default=DEFAULT_DEMO_DEVICES,
        help=f"simulated devices (default {DEFAULT_DEMO_DEVICES})",
    )
    demo.add_argument(
        "--duration",
        metavar="S",
        type=_positive_float,
        default=DEFAULT_DEMO_DURATION,
        help=f"seconds the fleet runs before the report (default {DEFAULT_DEMO_DURATION:g})",
    )
    demo.set_defaults(func=cmd_demo)


_progress_log = logging.getLogger("dunewatch.up.progress")
_json_logs = False


def _err(msg: str) -> None:
    """Progress for people on stderr; with --log-format json, one JSON log line instead."""
    if _json_logs:
        _progress_log.info("%s", msg.strip())
    else:
        print(msg, file=sys.stderr, flush=True)


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM ask the stack to stop; a second Ctrl-C is left to Python."""

    def handler(signum: int, frame: FrameType | None) -> None:
        _err(f"\n{signal.Signals(signum).name}: stopping (again to abort)")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run(args: argparse.Namespace, devices: int) -> int:
    global _json_logs
    _json_logs = getattr(args, "log_format", "text") == "json"
    from collector import stack_report
    from collector.stack import Stack, StackConfig

    cfg = StackConfig(
        data_dir=args.data_dir,
        broker_url=args.broker,
        duration=args.duration,
        devices=devices,
        metrics_port=args.metrics_port,
        scan_root=None if args.no_scan else args.scan_root,
        report_every=getattr(args, "report_every", 900.0),
    )
    stack = Stack(cfg, progress=_err)
    demo = devices > 0
    with _stop_on_signals(stack.request_stop):
        try:
            stack.start()
            print(stack_report.where(stack), flush=True)
            if demo:
                _err(f"demo: running the SIMULATED fleet for {cfg.duration:g}s ...")
            else:
                _err(
                    "up: running; Ctrl-C stops"
                    + (f" (or after {cfg.duration:g}s)" if cfg.duration else "")
                )
            stack.wait(tick=5.0, on_tick=stack_report.ReportTicker(stack, _err))
            _err(f"finishing after {stack.elapsed():.0f}s ...")
            outcome = stack_report.finish(stack, _err)
            print(outcome.text, flush=True)
        finally:
            stack.stop()
    _err("stopped cleanly")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    return _run(args, devices=0)


def cmd_demo(args: argparse.Namespace) -> int:
    return _run(args, devices=args.devices)
