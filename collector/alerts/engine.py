"""One evaluation pass: run the rules, dedupe, move alerts through their lifecycle, notify sinks.

Lifecycle: a finding with no active alert opens one (open); an operator may acknowledge it; when
a pass no longer finds the condition the alert is resolved automatically ("auto"). The same
condition after a resolve is a new alert with a new id. While an alert is active, repeated
findings only refresh it (last_seen, count, evidence); a rise in severity is an "escalated" event.

Silences (per device or tag) keep alerts recorded but mark them silenced: their events are not
sent. When the silence ends while the alert is still active, an "unsilenced" event is sent.

Every event that should reach people lands in the alert_events table first; sinks then read it
in id order from their own cursor, so an unreachable webhook loses nothing: it catches up on a
later pass, and every failed attempt is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from collector.alerts.builder import (
    BomBuilder,
    WindowCache,
    build_liveness_snapshot,
    build_snapshot,
)
from collector.alerts.config import AlertsConfig
from collector.alerts.interface import PassCancelled, Rule
from collector.alerts.model import (
    EVENT_ESCALATED,
    EVENT_OPENED,
    EVENT_RESOLVED,
    EVENT_UNSILENCED,
    EVENT_UPDATED,
    Alert,
    Finding,
    FleetSnapshot,
    Silence,
    severity_rank,
)
from collector.alerts.rules import LIVENESS_RULE_IDS, RULES
from collector.alerts.store import AlertStore, refreshed
from collector.sinks.interface import Sink, SinkError

log = logging.getLogger("dunewatch.alerts")

RESOLVED_BY_AUTO = "auto"
DISPATCH_LIMIT = 1000  # events per sink per pass; the rest waits for the next pass


@dataclass(frozen=True)
class RuleError:
    rule_id: str
    message: str


@dataclass(frozen=True)
class DeliveryOutcome:
    sink: str
    delivered: int = 0
    failed: int = 0
    skipped: int = 0  # below the sink's minimum severity
    pending: int = 0  # left for a later pass after a failure
    last_error: str | None = None


@dataclass(frozen=True)
class EvaluationResult:
    """What one pass did; the serve loop logs it and the CLI prints it."""

    ts: float
    findings: int
    opened: tuple[Alert, ...] = ()
    escalated: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    active: int = 0
    silenced: int = 0
    rule_errors: tuple[RuleError, ...] = ()
    deliveries: tuple[DeliveryOutcome, ...] = ()
    snapshot_errors: tuple[str, ...] = field(default=())
    full: bool = True  # False: a liveness pass (only the rules of LIVENESS_RULE_IDS ran)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "full": self.full,
            "findings": self.findings,
            "opened": [a.id for a in self.opened],
            "escalated": [a.id for a in self.escalated],
            "resolved": [a.id for a in self.resolved],
            "active": self.active,
            "silenced": self.silenced,
            "rule_errors": [{"rule": e.rule_id, "error": e.message} for e in self.rule_errors],
            "snapshot_errors": list(self.snapshot_errors),
            "deliveries": [d.__dict__ for d in self.deliveries],
        }


def run_rules(
    snapshot: FleetSnapshot, config: AlertsConfig, rules: Sequence[Rule] = RULES
) -> tuple[list[Finding], set[str], list[RuleError]]:
    """Findings of every enabled rule; a rule that raises is logged and counted, the rest go on.

    Returns the findings (deduplicated, worst severity kept), the rule ids that ran cleanly,
    and the errors.
    """
    by_key: dict[str, Finding] = {}
    ran: set[str] = set()
    errors: list[RuleError] = []
    for rule in rules:
        enabled = [rid for rid in rule.rule_ids if config.enabled(rid)]
        if not enabled:
            continue
        try:
            found = [f for f in rule.evaluate(snapshot, config) if f.rule_id in enabled]
        except Exception as exc:  # a broken rule must not stop the others
            log.exception("alert rule %s failed", "/".join(rule.rule_ids))
            errors.append(RuleError("/".join(rule.rule_ids), f"{type(exc).__name__}: {exc}"))
            continue
        ran.update(enabled)
        for f in found:
            old = by_key.get(f.dedupe_key)
            if old is None or severity_rank(f.severity) > severity_rank(old.severity):
                by_key[f.dedupe_key] = f
    return list(by_key.values()), ran, errors


def label_simulated(findings: list[Finding], snapshot: FleetSnapshot) -> list[Finding]:
    """Alerts about simulated devices (or a wholly simulated fleet) say so wherever they go."""
    simulated = {d.device_id for d in snapshot.devices if d.simulated}
    out = []
    for f in findings:
        sim = snapshot.simulated if f.device_id is None else f.device_id in simulated
        if sim:
            f = replace(
                f, summary=f"{f.summary} [simulated]", evidence={**f.evidence, "simulated": True}
            )
        out.append(f)
    return out


def _silence_for(
    finding_device: str | None, tags: Mapping[str, str], silences: Iterable[Silence], now: float
) -> int | None:
    for s in silences:
        if s.matches(finding_device, tags, now):
            return s.id
    return None


def process(
    snapshot: FleetSnapshot,
    store: AlertStore,
    config: AlertsConfig,
    now: float | None = None,
    rules: Sequence[Rule] = RULES,
) -> EvaluationResult:
    """Apply one snapshot to the alert tables in one transaction (no sink I/O here)."""
    now = snapshot.taken_at if now is None else now
    findings, ran, errors = run_rules(snapshot, config, rules)
    findings = label_simulated(findings, snapshot)
    tags = {d.device_id: d.tags for d in snapshot.devices}
    silences = store.silences(active_at=now)
    opened: list[Alert] = []
    escalated: list[Alert] = []
    resolved: list[Alert] = []
    with store.transaction():
        # only the alerts these rules can find or resolve: a liveness pass loads the offline
        # ones, not every alert of a large fleet
        active = store.active_by_key({rid for rule in rules for rid in rule.rule_ids})
        seen: set[str] = set()
        updates: list[tuple[Alert, Finding, int | None]] = []
        for f in findings:
            seen.add(f.dedupe_key)
            silenced_by = _silence_for(f.device_id, tags.get(f.device_id or "", {}), silences, now)
            alert = active.get(f.dedupe_key)
            if alert is None:
                new = store.open_alert(f, now, silenced_by)
                store.add_event(
                    new,
                    EVENT_OPENED,
                    now,
                    {"summary": f.summary, "silenced_by": silenced_by},
                    notify=silenced_by is None,
                )
                opened.append(new)
                continue
            updates.append((alert, f, silenced_by))
            up = severity_rank(f.severity) - severity_rank(alert.severity)
            unsilenced = alert.silenced_by is not None and silenced_by is None and up <= 0
            if not (up or f.summary != alert.summary or unsilenced):
                continue  # the usual case: the same alert again, only refreshed
            fresh = refreshed(alert, f, now, silenced_by)
            if up > 0:
                store.add_event(
                    fresh,
                    EVENT_ESCALATED,
                    now,
                    {"from": alert.severity, "summary": f.summary},
                    notify=silenced_by is None,
                )
                escalated.append(fresh)
            elif up < 0 or f.summary != alert.summary:
                store.add_event(
                    fresh,
                    EVENT_UPDATED,
                    now,
                    {"from": alert.severity, "summary": f.summary},
                    notify=False,
                )
            if unsilenced:
                store.add_event(fresh, EVENT_UNSILENCED, now, {"silence": alert.silenced_by})
        store.refresh_many(updates, now)
        for key, alert in active.items():
            if key in seen or alert.rule_id not in ran or alert.device_id in snapshot.incomplete:
                continue  # still holds, or it could not be checked this pass
            done = store.mark_resolved(alert.id, now, RESOLVED_BY_AUTO)
            store.add_event(
                done,
                EVENT_RESOLVED,
                now,
                {"by": RESOLVED_BY_AUTO},
                notify=alert.silenced_by is None,
            )
            resolved.append(done)
        active_n, silenced_n = store.active_counts()
    return EvaluationResult(
        ts=now,
        findings=len(findings),
        opened=tuple(opened),
        escalated=tuple(escalated),
        resolved=tuple(resolved),
        active=active_n,
        silenced=silenced_n,
        rule_errors=tuple(errors),
    )


def dispatch(
    store: AlertStore,
    sinks: Sequence[Sink],
    now: float | None = None,
    start_cursor: int | None = None,
    limit: int = DISPATCH_LIMIT,
) -> tuple[DeliveryOutcome, ...]:
    """Hand every not-yet-delivered event to each sink, in order, stopping a sink at a failure.

    A sink seen for the first time starts after `start_cursor` (default: the newest event), so a
    new webhook does not replay the whole history. An event that fails `sink.max_attempts` times
    in all, or fails permanently (e.g. HTTP 400), is given up (recorded) so it cannot block
    the rest.
    """
    if start_cursor is None:
        start_cursor = store.max_event_id()
    outcomes = []
    for sink in sinks:
        cursor = store.sink_cursor(sink.name, start_cursor)
        delivered = failed = skipped = 0
        last_error: str | None = None
        batch = store.pending(cursor, limit)
        blocked_at: int | None = None
        for i, note in enumerate(batch):
            stamp = time.time() if now is None else now
            if severity_rank(note.event.severity) < severity_rank(sink.min_severity):
                store.record_delivery(
                    sink.name, note.event.id, stamp, True, 0, "below min_severity", advance=True
                )
                skipped += 1
                continue
            try:
                attempts = sink.send(note)
            except SinkError as exc:
                failed += 1
                last_error = str(exc)
                total = store.failed_attempts(sink.name, note.event.id) + exc.attempts
                give_up = exc.permanent or total >= sink.max_attempts
                store.record_delivery(
                    sink.name,
                    note.event.id,
                    stamp,
                    False,
                    exc.attempts,
                    last_error,
                    advance=give_up,
                )
                log.warning(
                    "alert sink %s: event %d not delivered (%s)%s",
                    sink.name,
                    note.event.id,
                    last_error,
                    "; giving up on it" if give_up else "; will retry next pass",
                )
                if not give_up:
                    blocked_at = i
                    break
                continue
            store.record_delivery(
                sink.name, note.event.id, stamp, True, attempts, None, advance=True
            )
            delivered += 1
        pending = len(batch) - blocked_at if blocked_at is not None else 0
        outcomes.append(DeliveryOutcome(sink.name, delivered, failed, skipped, pending, last_error))
    return tuple(outcomes)


def evaluate(
    db: str | Path,
    kb: Any = None,
    config: AlertsConfig | None = None,
    now: float | None = None,
    *,
    sinks: Sequence[Sink] = (),
    rules: Sequence[Rule] = RULES,
    snapshot: FleetSnapshot | None = None,
    policy: Any = None,
    bom_builder: BomBuilder | None = None,
    cancel: Callable[[], bool] | None = None,
    windows: WindowCache | None = None,
    roll_up: bool = True,
    full: bool = True,
) -> EvaluationResult:
    """One pass over the collector database at `db`: snapshot, rules, lifecycle, sinks.

    `full=False` makes it a liveness pass: only the rules of LIVENESS_RULE_IDS, on the offline
    devices (build_liveness_snapshot); alerts of the other rules stay as they are, since the
    engine resolves only alerts of rules that ran.

    `windows` (kept by a long-running caller) saves re-reading saturation windows that cannot
    have changed since its last pass; `roll_up` (build_snapshot) folds fresh health into the
    rollups first, which a caller beside a serve loop leaves to that loop.

    `cancel` (asked while the snapshot is built and before alerts change) ends the pass with
    PassCancelled before any alert changed.

    `kb` is a firmware_db knowledge base (None: `firmware_db.open_default()`); `policy` the DDI
    policy (sbom.policy.DunePolicy; None: its defaults). Sinks must be started by the caller (the
    serve loop keeps them connected between passes).
    """

    config = config or AlertsConfig()
    now = time.time() if now is None else now
    store = AlertStore(db)
    try:
        start_cursor = store.max_event_id()
        errors: tuple[str, ...] = ()
        if not full:
            rules = tuple(r for r in rules if set(r.rule_ids) <= LIVENESS_RULE_IDS)
            if snapshot is None:
                snapshot = build_liveness_snapshot(db, now=now)
        if snapshot is None:
            snapshot, errors = build_snapshot(
                db,
                kb=kb,
                config=config,
                now=now,
                alert_store=store,
                policy=policy,
                bom_builder=bom_builder,
                cancel=cancel,
                windows=windows,
                roll_up=roll_up,
            )
        if cancel is not None and cancel():
            raise PassCancelled("alert pass cancelled before alerts were updated")
        result = process(snapshot, store, config, now, rules)
        deliveries = dispatch(store, sinks, now, start_cursor=start_cursor) if sinks else ()
    finally:
        store.close()
    return EvaluationResult(
        ts=result.ts,
        findings=result.findings,
        opened=result.opened,
        escalated=result.escalated,
        resolved=result.resolved,
        active=result.active,
        silenced=result.silenced,
        rule_errors=result.rule_errors,
        deliveries=deliveries,
        snapshot_errors=errors,
        full=full,
    )
