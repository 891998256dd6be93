"""What `up` and `demo` print: where things are, progress lines, and the closing summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from collector import stack_parts
from collector.stack import NOT_AVAILABLE, Stack

SCAN_WAIT = 15.0  # seconds `finish` waits for a still-running SBOM scan


def _report_when(stack: Stack) -> str:
    every = stack.config.report_every
    if stack.config.duration is not None and stack.config.duration <= every:
        return "written when the run ends"
    return f"written every {every:g}s and when the run ends"


class ReportTicker:
    """Rewrites the report every `report_every` seconds of a long `up` run; failures are told."""

    def __init__(self, stack: Stack, progress: Callable[[str], None]) -> None:
        self.stack = stack
        self.progress = progress
        self.last = 0.0

    def __call__(self, elapsed: float) -> None:
        self.progress(progress_line(self.stack, elapsed))
        if elapsed - self.last < self.stack.config.report_every:
            return
        self.last = elapsed
        try:
            stack_parts.write_report(self.stack.config.db_path, self.stack.config.report_path)
            self.progress(f"report refreshed: {self.stack.config.report_path}")
        except Exception as exc:  # the next refresh or the final report may still work
            self.progress(f"report refresh failed: {type(exc).__name__}: {exc}")


def where(stack: Stack) -> str:
    """The lines a user needs first: where the report, database and metrics are."""
    cfg = stack.config
    ep = stack.endpoint
    rows = [
        ("broker", f"{ep.url} ({ep.kind}, MQTT {ep.protocol})"),
        ("database", str(cfg.db_path)),
        ("report", f"{cfg.report_path} ({_report_when(stack)})"),
        ("metrics", stack.metrics_url or NOT_AVAILABLE),
        ("sbom of this machine", str(cfg.sbom_path)),
        ("credentials", str(cfg.data_dir / "credentials.json")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def progress_line(stack: Stack, elapsed: float) -> str:
    total = f"/{stack.config.duration:g}s" if stack.config.duration else "s"
    parts = [f"[{elapsed:4.0f}{total}]"]
    counts = stack_parts.status_counts(stack.config.db_path)
    if counts:
        parts.append("devices " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    fs = stack.fleet_stats()
    if fs:
        parts.append(
            f"SIMULATED fleet: {fs['connected']} agents, {fs['health_sent']} health reports, "
            f"{fs['went_offline']} went offline"
        )
    scan = stack.scan_outcome()
    if scan is not None and scan.state == "running":
        parts.append(f"sbom scan running ({scan.detail or 'starting'})")
    return "  ".join(parts)


@dataclass(frozen=True)
class Outcome:
    text: str
    report: str | None


def _table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    if not rows:
        return f"{title}\n  (none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True))
    out = [title, "  " + line, "  " + "  ".join("-" * w for w in widths)]
    out += ["  " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _states_table(stack: Stack) -> str:
    devices = stack_parts.device_rows(stack.config.db_path)
    by: Counter[tuple[str, str]] = Counter()
    for d in devices:
        by[(d["status"], "simulated" if d["simulated"] else "real")] += 1
    states = sorted({s for s, _ in by})
    rows = [(s, str(by[(s, "real")]), str(by[(s, "simulated")])) for s in states]
    rows.append(
        (
            "total",
            str(sum(by[(s, "real")] for s in states)),
            str(sum(by[(s, "simulated")] for s in states)),
        )
    )
    return _table("Devices by state", ("state", "real", "SIMULATED"), rows)


def _ddi_table(report: Any) -> str:
    fleet = report.fleet
    rows = [
        (
            layer.layer,
            f"{layer.weight:.2f}",
            str(layer.devices),
            f"{100 * layer.exposure:.1f}",
            f"{layer.by_jurisdiction.hhi:.0f}" if hasattr(layer.by_jurisdiction, "hhi") else "-",
        )
        for layer in fleet.layers
    ]
    title = (
        f"Fleet Digital Dune Index {fleet.ddi:.1f} over {fleet.devices} devices "
        f"({fleet.simulated} SIMULATED), by layer"
    )
    return _table(title, ("layer", "weight", "devices", "exposure", "HHI(jurisdiction)"), rows)


def top_alerts(alerts: Sequence[Any], limit: int = 10) -> list[Any]:
    """Worst first, then most recent: what an operator should look at first."""
    from collector.alerts.model import severity_rank

    return sorted(alerts, key=lambda a: (-severity_rank(a.severity), -a.last_seen, a.id))[:limit]


def _alerts_table(alerts: Sequence[Any]) -> str:
    """The ten worst open alerts, under a line counting every open alert by rule id."""
    per_rule = Counter(a.rule_id for a in alerts)
    ranked = sorted(per_rule.items(), key=lambda x: (-x[1], x[0]))
    rows = [
        (a.severity, a.rule_id, a.device_id or "(fleet)", a.summary[:70])
        for a in top_alerts(alerts)
    ]
    table = _table(
        f"Top alerts ({len(alerts)} open)", ("severity", "rule", "device", "summary"), rows
    )
    if not ranked:
        return table
    title, _, body = table.partition("\n")
    counts = "  by rule: " + ", ".join(f"{rule} {n}" for rule, n in ranked)
    return f"{title}\n{counts}\n{body}"


def finish(stack: Stack, progress: Callable[[str], None]) -> Outcome:
    """Evaluate alerts, write the report and build the summary while the fleet still runs."""
    deadline = time.monotonic() + SCAN_WAIT
    if stack.scan_pending():
        progress(f"waiting up to {SCAN_WAIT:g}s for the SBOM scan of this machine ...")
        while stack.scan_pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        if stack.scan_pending():
            progress("sbom scan still running: the report goes ahead without it")
    stack.scan_outcome()
    stack.stop_alert_loop()
    sections = [_states_table(stack)]
    try:
        alerts = stack_parts.evaluate_alerts(stack.config.db_path)
        sections.append(_alerts_table(alerts))
    except stack_parts.PartMissing as exc:
        sections.append(f"Top alerts: {NOT_AVAILABLE} ({exc})")
    except Exception as exc:  # another part's failure must not lose the rest of the summary
        progress(f"alerts: evaluation failed: {type(exc).__name__}: {exc}")
        sections.append(f"Top alerts: evaluation failed ({type(exc).__name__}: {exc})")
    report_path: str | None = None
    try:
        progress("writing the HTML report ...")
        data = stack_parts.write_report(
            stack.config.db_path, stack.config.report_path, simulated=stack.fleet is not None
        )
        report_path = str(stack.config.report_path)
        sections.insert(1, _ddi_table(data))
        sections.append(f"report: {report_path}")
    except stack_parts.PartMissing as exc:
        sections.insert(1, f"Fleet DDI: {NOT_AVAILABLE} ({exc})")
        sections.append(f"report: {NOT_AVAILABLE} ({exc})")
    except Exception as exc:  # keep the summary; say what failed
        progress(f"report: failed: {type(exc).__name__}: {exc}")
        sections.insert(1, f"Fleet DDI: report failed ({type(exc).__name__}: {exc})")
        sections.append(f"report: failed ({type(exc).__name__}: {exc})")
    if stack.fleet is not None:
        sections.append(
            "Every sim-* device above is SIMULATED (tagged simulated=true in the database)."
        )
    return Outcome("\n\n".join(sections), report_path)
