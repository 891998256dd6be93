"""Alert lifecycle over a real SQLite file: open, dedupe, ack, resolve, auto-resolve, silences."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from collector.alerts.config import AlertsConfig
from collector.alerts.engine import dispatch, process
from collector.alerts.interface import AlertsError
from collector.alerts.model import Finding, FleetSnapshot, HealthSample, Notification
from collector.alerts.rules.liveness import OfflineRule
from collector.alerts.store import AlertStore, StoredEvidence
from tests.alerts.snap import NOW, device, fleet

CFG = AlertsConfig()


def offline(*ids: str, t: float = NOW) -> FleetSnapshot:
    return fleet(*(device(i, status="offline", status_since=t - 60) for i in ids), taken_at=t)


class Recorder:
    """A sink fake (our own interface) that keeps what it was sent."""

    def __init__(self, name: str = "rec", min_severity: str = "info") -> None:
        self.name = name
        self.min_severity = min_severity
        self.max_attempts = 3
        self.sent: list[Notification] = []

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def send(self, notification: Notification) -> int:
        self.sent.append(notification)
        return 1


def test_full_lifecycle_open_ack_autoresolve_reopen(store: AlertStore) -> None:
    r1 = process(offline("cam-1"), store, CFG, NOW)
    (a,) = r1.opened
    assert (a.status, a.rule_id, a.device_id, a.count) == ("open", "device.offline", "cam-1", 1)
    # dedupe while open: same condition, same alert, count goes up
    r2 = process(offline("cam-1", t=NOW + 60), store, CFG, NOW + 60)
    assert r2.opened == () and r2.active == 1
    same = store.get(a.id)
    assert same is not None and same.count == 2 and same.last_seen == NOW + 60
    # acknowledge
    acked = store.ack(a.id, "alice", NOW + 70)
    assert (acked.status, acked.acked_by) == ("acknowledged", "alice")
    with pytest.raises(AlertsError, match="already acknowledged"):
        store.ack(a.id, "bob", NOW + 71)
    # still offline: stays acknowledged, not duplicated
    r3 = process(offline("cam-1", t=NOW + 120), store, CFG, NOW + 120)
    assert r3.opened == () and store.get(a.id).status == "acknowledged"  # type: ignore[union-attr]
    # condition clears: auto-resolved
    r4 = process(fleet(device("cam-1"), taken_at=NOW + 180), store, CFG, NOW + 180)
    (res,) = r4.resolved
    assert (res.id, res.status, res.resolved_by) == (a.id, "resolved", "auto")
    assert r4.active == 0
    # the same condition again is a new alert
    r5 = process(offline("cam-1", t=NOW + 240), store, CFG, NOW + 240)
    (b,) = r5.opened
    assert b.id != a.id and b.dedupe_key == a.dedupe_key
    # history kept for the first one
    events = [e.event for e in store.history(a.id)]
    assert events == ["opened", "acknowledged", "resolved"]
    assert [x.id for x in store.alerts(status="resolved")] == [a.id]
    assert [x.id for x in store.open_alerts()] == [b.id]


def test_manual_resolve_then_condition_persists_opens_new(store: AlertStore) -> None:
    (a,) = process(offline("cam-1"), store, CFG, NOW).opened
    done = store.resolve(a.id, "bob", NOW + 10)
    assert (done.status, done.resolved_by) == ("resolved", "bob")
    with pytest.raises(AlertsError, match="already resolved"):
        store.resolve(a.id, "bob", NOW + 11)
    with pytest.raises(AlertsError, match="no alert with id 999"):
        store.ack(999, "bob", NOW)
    (b,) = process(offline("cam-1", t=NOW + 20), store, CFG, NOW + 20).opened
    assert b.id != a.id


def test_one_active_alert_per_key_even_outside_the_engine(store: AlertStore) -> None:
    (a,) = process(offline("cam-1"), store, CFG, NOW).opened
    f = Finding("device.offline", "cam-1", "high", "dup", {})
    with pytest.raises(sqlite3.IntegrityError):
        store.open_alert(f, NOW, None)


def test_escalation_and_deescalation(store: AlertStore) -> None:
    def hot(cpu: float, t: float) -> FleetSnapshot:
        return fleet(device(latest_health=HealthSample(t, cpu=cpu)), taken_at=t)

    (a,) = process(hot(92, NOW), store, CFG, NOW).opened
    assert a.severity == "medium"
    r = process(hot(99, NOW + 10), store, CFG, NOW + 10)
    assert [x.id for x in r.escalated] == [a.id]
    assert store.get(a.id).severity == "high"  # type: ignore[union-attr]
    process(hot(93, NOW + 20), store, CFG, NOW + 20)
    assert [e.event for e in store.history(a.id)] == ["opened", "escalated", "updated"]
    assert [e.notify for e in store.history(a.id)] == [True, True, False]


def test_silence_by_device_and_by_tag(store: AlertStore) -> None:
    d1 = device("cam-1", status="offline", tags={"district": "north"})
    d2 = device("cam-2", status="offline", tags={"district": "south"})
    d3 = device("cam-3", status="offline", tags={"district": "north"})
    store.add_silence(device_id="cam-2", until=NOW + 3600, now=NOW, reason="maintenance")
    store.add_silence(tag=("district", "north"), until=NOW + 600, now=NOW, by="ops")
    rec = Recorder()
    start = store.max_event_id()
    r = process(fleet(d1, d2, d3), store, CFG, NOW)
    assert len(r.opened) == 3 and r.silenced == 3
    dispatch(store, [rec], NOW, start_cursor=start)
    assert rec.sent == []  # recorded, not notified
    assert all(a.silenced_by is not None for a in store.open_alerts())
    # the tag silence ends while cam-1 and cam-3 are still offline: they are notified now
    process(fleet(d1, d2, d3, taken_at=NOW + 700), store, CFG, NOW + 700)
    dispatch(store, [rec], NOW + 700)
    assert sorted((n.event.event, n.alert.device_id) for n in rec.sent) == [
        ("unsilenced", "cam-1"),
        ("unsilenced", "cam-3"),
    ]
    # resolving a silenced alert is not sent either
    rec.sent.clear()
    process(fleet(d1, device("cam-2"), d3, taken_at=NOW + 800), store, CFG, NOW + 800)
    dispatch(store, [rec], NOW + 800)
    assert rec.sent == []
    with pytest.raises(AlertsError, match="exactly one"):
        store.add_silence(until=NOW + 10, now=NOW)
    with pytest.raises(AlertsError, match="future"):
        store.add_silence(device_id="x", until=NOW - 1, now=NOW)


def test_rule_that_crashes_does_not_resolve_its_alerts(store: AlertStore) -> None:
    from collector.alerts.rules.liveness import OfflineRule

    class Broken:
        rule_ids = ("device.offline",)

        def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
            raise RuntimeError("boom")

    (a,) = process(offline("cam-1"), store, CFG, NOW, rules=[OfflineRule()]).opened
    r = process(fleet(device("cam-1")), store, CFG, NOW + 5, rules=[Broken()])
    assert r.rule_errors[0].message == "RuntimeError: boom"
    assert r.resolved == () and store.get(a.id).status == "open"  # type: ignore[union-attr]


def test_disabled_rule_resolves_nothing_and_opens_nothing(store: AlertStore) -> None:
    cfg = AlertsConfig(disabled=frozenset({"device.offline"}))
    assert process(offline("cam-1"), store, cfg, NOW).opened == ()


def test_sinks_see_events_in_order_and_respect_min_severity(store: AlertStore) -> None:
    rec = Recorder()
    picky = Recorder("picky", min_severity="critical")
    start = store.max_event_id()
    (a,) = process(offline("cam-1"), store, CFG, NOW).opened
    out = dispatch(store, [rec, picky], NOW, start_cursor=start)
    assert [(o.sink, o.delivered, o.skipped) for o in out] == [("rec", 1, 0), ("picky", 0, 1)]
    store.ack(a.id, "alice", NOW + 1)
    process(fleet(device("cam-1")), store, CFG, NOW + 2)
    dispatch(store, [rec, picky], NOW + 2)
    assert [n.event.event for n in rec.sent] == ["opened", "acknowledged", "resolved"]
    assert rec.sent[0].to_dict()["alert"]["rule_id"] == "device.offline"
    assert picky.sent == []
    # a new sink does not replay history
    late = Recorder("late")
    dispatch(store, [late], NOW + 3)
    assert late.sent == []


def test_store_reopens_existing_file_and_rejects_newer_schema(db_path: Path) -> None:
    s = AlertStore(db_path)
    process(offline("cam-1"), s, CFG, NOW)
    s.close()
    again = AlertStore(db_path)
    assert len(again.open_alerts()) == 1
    again.db.execute("INSERT INTO alerts_schema VALUES (99)")
    again.db.conn.commit()
    again.close()
    with pytest.raises(AlertsError, match="newer than this dunewatch"):
        AlertStore(db_path)


def test_simulated_devices_are_labelled(store: AlertStore) -> None:
    snap = fleet(
        device("sim-1", status="offline", simulated=True), device("cam-1", status="offline")
    )
    r = process(snap, store, CFG, NOW)
    by_dev = {a.device_id: a for a in r.opened}
    assert by_dev["sim-1"].summary == "sim-1 is offline [simulated]"
    assert by_dev["sim-1"].evidence["simulated"] is True
    assert (
        "simulated" not in by_dev["cam-1"].summary and "simulated" not in by_dev["cam-1"].evidence
    )


def test_telemetry_loss_counts_only_the_window(store: AlertStore) -> None:
    hour = 3600.0
    # first pass: no baseline yet, counts since first seen
    first = store.loss_in_windows(NOW, hour, {"cam-1": (100, 0, 0)})["cam-1"]
    assert (first.lost, first.window) == (0, None)
    store.loss_in_windows(NOW + 1800, hour, {"cam-1": (280, 2, 0)})
    mid = store.loss_in_windows(NOW + 3700, hour, {"cam-1": (460, 2, 1)})["cam-1"]
    assert (mid.accepted, mid.gap, mid.dropped, mid.window) == (360, 2, 1, 3700)  # since NOW
    later = store.loss_in_windows(NOW + 5500, hour, {"cam-1": (640, 2, 1)})["cam-1"]
    assert (later.gap, later.dropped, later.window) == (0, 1, 3700)  # baseline NOW + 1800
    quiet = store.loss_in_windows(NOW + 7400, hour, {"cam-1": (820, 2, 1)})["cam-1"]
    assert quiet.lost == 0  # baseline NOW + 3700: nothing lost since
    (n,) = store.db.execute("SELECT count(*) FROM alert_loss_samples").fetchone()
    assert n == 3  # baseline (NOW + 3700), NOW + 5500, NOW + 7400


def test_telemetry_loss_samples_stay_few_with_a_pass_every_minute(store: AlertStore) -> None:
    # passes every minute over three hours: samples are taken every 5 minutes of a 1-hour
    # window, so a device keeps about 13 and its baseline is at most 5 minutes past the window
    hour = 3600.0
    fleet = [f"cam-{i}" for i in range(3)]
    for k in range(181):
        counters = {d: (20 * k, k // 30, 0) for d in fleet}  # a gap every 30 minutes
        got = store.loss_in_windows(NOW + 60 * k, hour, counters)
        (n,) = store.db.execute("SELECT count(*) FROM alert_loss_samples").fetchone()
        assert n <= 14 * len(fleet)
        if k * 60 >= hour + 300:
            c = got["cam-0"]
            assert c.window is not None and hour <= c.window <= hour + 300
            assert c.accepted == 20 * c.window / 60  # exactly the reports since the baseline
            assert c.gap in (1, 2)


def test_locked_database_is_one_clear_error_and_loses_nothing(db_path: Path) -> None:
    s = AlertStore(db_path, busy_timeout_ms=100)
    (a,) = process(offline("cam-1"), s, CFG, NOW).opened
    other = sqlite3.connect(db_path)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(AlertsError, match="database is locked"):
            s.ack(a.id, "alice", NOW + 1)
    finally:
        other.rollback()
        other.close()
    assert s.get(a.id).status == "open"  # type: ignore[union-attr]
    assert s.ack(a.id, "alice", NOW + 2).status == "acknowledged"  # works once free
    s.close()


def test_writes_outside_a_transaction_are_not_lost_on_close(db_path: Path) -> None:
    s = AlertStore(db_path)
    s.open_alert(Finding("device.offline", "cam-1", "high", "cam-1 is offline", {}), NOW, None)
    s.close()
    again = AlertStore(db_path)
    assert [a.device_id for a in again.open_alerts()] == ["cam-1"]
    again.close()


def test_refresh_keeps_unchanged_alerts_and_stores_changed_evidence(store: AlertStore) -> None:
    f = Finding("device.offline", "cam-1", "high", "cam-1 offline", {"for_s": 60, "tags": ["a"]})
    a = store.open_alert(f, NOW, None)
    other = store.open_alert(replace(f, device_id="cam-2"), NOW, None)
    again = replace(f, evidence={"for_s": 60, "tags": ["a"]})  # equal, not the same object
    moved = replace(f, device_id="cam-2", evidence={"for_s": 120, "tags": ("a",)})
    store.refresh_many([(a, again, None), (other, moved, 7)], NOW + 60)
    a2, o2 = store.get(a.id), store.get(other.id)
    assert a2 is not None and o2 is not None
    assert (a2.count, a2.last_seen, a2.evidence, a2.silenced_by) == (
        2, NOW + 60, {"for_s": 60, "tags": ["a"]}, None,
    )  # fmt: skip
    assert (o2.count, o2.last_seen, o2.evidence, o2.silenced_by) == (
        2, NOW + 60, {"for_s": 120, "tags": ["a"]}, 7,
    )  # fmt: skip
    assert store.active_counts() == (2, 1)


def test_active_alerts_of_a_pass_keep_their_evidence_as_stored_text(store: AlertStore) -> None:
    ev = {"components": [{"name": "openssl", "eol": "2019-12-31"}], "n": 1}
    f = Finding("eol.reached", "cam-1", "high", "cam-1: 1 past EOL", ev)
    a = store.open_alert(f, NOW, None)
    (held,) = store.active_by_key().values()
    assert isinstance(held.evidence, StoredEvidence) and held.id == a.id
    assert held.evidence == ev and ev == held.evidence and held.evidence != {**ev, "n": 2}
    assert held.evidence == store.active_by_key()[a.dedupe_key].evidence
    assert dict(held.evidence) == ev and held.to_dict()["evidence"] == ev
    assert held.evidence["n"] == 1 and len(held.evidence) == 2 and "components" in held.evidence
    assert store.get(a.id).evidence == ev  # type: ignore[union-attr]


def test_a_pass_loads_only_the_active_alerts_its_rules_can_touch(store: AlertStore) -> None:
    eol = store.open_alert(
        Finding("eol.reached", "cam-1", "high", "cam-1: 1 past EOL", {}), NOW, None
    )
    off = store.open_alert(
        Finding("device.offline", "cam-2", "high", "cam-2 offline", {}), NOW, None
    )
    gone = store.open_alert(
        Finding("device.offline", "cam-3", "high", "cam-3 offline", {}), NOW, None
    )
    store.mark_resolved(gone.id, NOW, "auto")
    assert set(store.active_by_key()) == {eol.dedupe_key, off.dedupe_key}
    assert set(store.active_by_key({"device.offline"})) == {off.dedupe_key}
    assert store.active_by_key(set()) == {}
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM alerts WHERE status != 'resolved' "
        "AND rule_id IN (SELECT value FROM json_each(?))",
        ('["device.offline"]',),
    ).fetchall()
    assert any("alerts_active_rule" in str(row) for row in plan), plan
    # a liveness pass (the offline rule only) leaves the EOL alert alone and resolves cam-2's
    r = process(
        fleet(device("cam-2", status="online")), store, CFG, NOW + 60, rules=[OfflineRule()]
    )
    assert [a.id for a in r.resolved] == [off.id] and r.active == 1
