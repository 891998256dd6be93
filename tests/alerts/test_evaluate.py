"""One full evaluation pass over a real collector SQLite store (the collector's own Store code)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.alerts.builder import WindowCache, build_snapshot
from collector.alerts.config import AlertsConfig
from collector.alerts.engine import evaluate
from collector.alerts.interface import PassCancelled
from collector.alerts.model import FLEET_TARGET, Finding
from collector.alerts.store import AlertStore
from collector.store import open_store
from firmware_db.models import Vulnerability
from sbom.model import Component, DeviceBom, DeviceInfo, Lifecycle, Supplier
from sbom.policy import DunePolicy
from tests.alerts.snap import NOW

BOOT = "b" * 32


def health(
    dev: str, seq: int, ts: float, cpu: float, temp: float | None = None, data: float = 60.0
) -> E.Envelope:
    body: dict[str, Any] = {
        "interval": 10,
        "cpu": {"pct": cpu},
        "mem": {"pct": 40.0},
        "disk": {"/": {"pct": 50.0}, "/data": {"pct": data}},
    }
    if temp is not None:
        body["temp"] = {"cpu_thermal": temp}
    return E.make(dev, BOOT, seq, "health", body, ts=ts)


def inventory(dev: str, seq: int, ts: float) -> E.Envelope:
    body = {
        "hash": "x" * 64,
        "source": "agent",
        "hostname": dev,
        "packages": [{"name": "libssl1.0.0", "version": "1.0.2u-1", "manager": "dpkg"}],
    }
    return E.make(dev, BOOT, seq, "inventory", body, ts=ts)


class FakeKb:
    """Our own narrow stand-in for firmware_db: one KEV-listed CVE in OpenSSL 1.0.2."""

    def vulnerabilities(self, **kw: Any) -> list[Vulnerability]:
        if kw.get("name") != "openssl":
            return []
        return [
            Vulnerability(
                "CVE-2016-2183",
                (),
                "HIGH",
                7.5,
                True,
                "2023-01-01",
                None,
                "SWEET32 (test fixture)",
                None,
                "test",
            )
        ]

    def device_model(self, vendor: str, model: str) -> None:
        return None

    def latest_firmware(self, vendor: str, model: str) -> None:
        return None

    def asset(self, device_id: str) -> None:
        return None


def bom_builder(summary: Any, inv: Mapping[str, Any]) -> DeviceBom:
    """Stands in for the SBOM builder: a restricted-country SoC and an end-of-life OpenSSL."""
    soc = Component(
        "ZX1000",
        None,
        "device",
        "soc",
        "device-tree",
        substitutability=0.0,
        supplier=Supplier("Zeta Chips", country="ZZ"),
        lifecycle=Lifecycle("eol", "2020-06-30", source="test"),
    )
    ssl = Component(
        "openssl",
        "1.0.2u",
        "library",
        "crypto",
        "package-db",
        supplier=Supplier("OpenSSL", community=True),
        lifecycle=Lifecycle("eol", "2019-12-31", "1.0.2", "1.0.2u", 0, "test"),
    )
    return DeviceBom(DeviceInfo(summary.device_id), (soc, ssl), "agent")


def test_evaluate_over_a_real_store(tmp_path: Path) -> None:
    db = tmp_path / "dunewatch.db"
    st = open_store(db)
    st.ensure_device("cam-hot", tags={"district": "north"})
    st.ensure_device("cam-off", tags={"district": "south"})
    st.ensure_device("gw-old", tags={"district": "north"})
    # cam-hot: CPU pegged, hot, and seqs 3 and 4 never arrived (telemetry loss)
    st.apply([health("cam-hot", s, NOW - 50 + s, 99.0, 85.0) for s in (1, 2, 5)], NOW - 40)
    # cam-off: reported, then its last will
    st.apply([health("cam-off", 1, NOW - 100, 10.0)], NOW - 100)
    st.apply(
        [E.Envelope("cam-off", BOOT, 0, NOW - 90, "state", {"state": "offline", "reason": "will"})],
        NOW - 90,
    )
    # gw-old: an inventory the BOM builder turns into an EOL OpenSSL on a restricted SoC
    st.apply([inventory("gw-old", 1, NOW - 30), health("gw-old", 2, NOW - 20, 5.0)], NOW - 20)
    st.close()

    policy = DunePolicy(home="AA", restricted=frozenset({"ZZ"}))
    r = evaluate(db, FakeKb(), AlertsConfig(), NOW, policy=policy, bom_builder=bom_builder)
    assert r.rule_errors == () and r.snapshot_errors == ()
    got = {(a.rule_id, a.device_id) for a in r.opened}
    assert got == {
        ("health.cpu", "cam-hot"),
        ("health.temperature", "cam-hot"),
        ("telemetry.loss", "cam-hot"),
        ("device.offline", "cam-off"),
        ("eol.reached", "gw-old"),
        ("vuln.component", "gw-old"),
        ("vuln.eol_exploited", "gw-old"),
        ("dune.grade", "gw-old"),
        ("fleet.concentration", None),  # soc: all ZZ (crypto: all community, ignored)
    }
    by_rule = {a.rule_id: a for a in r.opened}
    assert by_rule["telemetry.loss"].evidence["gap"] == 2
    assert by_rule["vuln.component"].severity == "critical"
    assert by_rule["vuln.eol_exploited"].severity == "emergency"
    assert [x["country"] for x in by_rule["dune.grade"].evidence["layers"]] == ["ZZ"]
    # one eol.reached alert for gw-old listing both end-of-life components, oldest date first
    eol = by_rule["eol.reached"].evidence["components"]
    assert [(c["component"], c["eol"]) for c in eol] == [
        ("openssl", "2019-12-31"),
        ("ZX1000", "2020-06-30"),
    ]
    (conc,) = [a for a in r.opened if a.dedupe_key.endswith("|soc:jurisdiction")]
    assert conc.evidence["hhi"] == 10000.0 and conc.evidence["top1"] == "ZZ"
    assert conc.dedupe_key.endswith(f"|{FLEET_TARGET}|soc:jurisdiction")

    # second pass, nothing changed: nothing new, nothing resolved (dedupe across passes)
    r2 = evaluate(db, FakeKb(), AlertsConfig(), NOW + 30, policy=policy, bom_builder=bom_builder)
    assert r2.opened == () and r2.resolved == () and r2.active == len(r.opened) == 9

    # cam-off comes back, cam-hot cools down: their alerts resolve on their own
    st = open_store(db)
    st.apply(
        [
            E.Envelope(
                "cam-off", BOOT + "2", 0, NOW + 40, "state", {"state": "online", "reason": "birth"}
            )
        ],
        NOW + 40,
    )
    st.apply([health("cam-hot", 6, NOW + 45, 20.0, 50.0)], NOW + 45)
    st.close()
    r3 = evaluate(db, FakeKb(), AlertsConfig(), NOW + 60, policy=policy, bom_builder=bom_builder)
    assert {(a.rule_id, a.device_id) for a in r3.resolved} == {
        ("device.offline", "cam-off"),
        ("health.cpu", "cam-hot"),
        ("health.temperature", "cam-hot"),
    }
    alerts = AlertStore(db)
    try:
        assert len(alerts.open_alerts()) == 9 - 3
        assert alerts.open_alerts()[0].rule_id == "vuln.eol_exploited"  # worst first
    finally:
        alerts.close()


def _busy_hour(db: Path) -> None:
    st = open_store(db)
    # an hour of reports, one a minute, each received as sent: cam-busy's CPU at 95 but for
    # ten minutes at 40, its /data disk full; cam-calm at 45 with a spike to 99 in every
    # 5-minute bucket (20 % of its reports at 99, no bucket's mean over 90)
    for k in range(60):
        ts = NOW - 3600 + 60 * k
        busy = 40.0 if 20 <= k < 30 else 95.0
        calm = 99.0 if k % 5 == 0 else 45.0
        st.apply([health("cam-busy", k + 1, ts, busy, data=97.0)], ts + 1)
        st.apply([health("cam-calm", k + 1, ts, calm)], ts + 1)
    # in the bucket under way when the pass runs: not rolled up yet, so not judged yet
    st.apply([health("cam-busy", 61, NOW + 10, 40.0, data=97.0)], NOW + 10)
    st.close()


def test_saturation_is_judged_on_the_rollups_the_pass_brings_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "dunewatch.db"
    _busy_hour(db)
    cfg = AlertsConfig(saturation_window=3600.0)
    r = evaluate(db, FakeKb(), cfg, NOW + 60, bom_builder=bom_builder)
    assert r.rule_errors == () and r.snapshot_errors == ()
    sat = {a.dedupe_key.split("|")[-1]: a for a in r.opened if a.rule_id == "health.saturation"}
    assert set(sat) == {"cpu", "disk"} and {a.device_id for a in sat.values()} == {"cam-busy"}
    # the window starts at NOW - 3540: buckets from NOW - 3300 on, 55 reports, 10 of them in the
    # two calm buckets; rolled up by the pass itself (nothing else rolled this database up)
    assert sat["cpu"].evidence["samples"] == 55
    assert sat["cpu"].evidence["share"] == round(45 / 55, 4)
    assert sat["disk"].evidence["mount"] == "/data" and sat["disk"].evidence["share"] == 1.0

    # a bucket later the window has moved on: the report at 40 is in, the busy start is out
    # (50 reports from NOW - 3000, 40 over, plus the one at 40): 40 / 51 < 0.8, cpu resolves
    r2 = evaluate(db, FakeKb(), cfg, NOW + 310, bom_builder=bom_builder)
    assert [(a.rule_id, a.dedupe_key.split("|")[-1]) for a in r2.resolved] == [
        ("health.saturation", "cpu")
    ]


def test_a_service_rereads_saturation_windows_only_once_the_rollups_change(
    tmp_path: Path,
) -> None:
    db = tmp_path / "dunewatch.db"
    _busy_hour(db)
    cfg = AlertsConfig(saturation_window=3600.0)
    cache = WindowCache()

    def saturated(now: float) -> set[str]:
        evaluate(db, FakeKb(), cfg, now, bom_builder=bom_builder, windows=cache)
        alerts = AlertStore(db)
        try:
            keys = {a.dedupe_key for a in alerts.open_alerts() if a.rule_id == "health.saturation"}
        finally:
            alerts.close()
        return {k.split("|")[-1] for k in keys}

    assert saturated(NOW + 60) == {"cpu", "disk"} and cache.key is not None
    # the rollups vanish behind the store's back: the next pass in the same bucket keeps what
    # it summed (nothing was folded, the window starts at the same bucket) ...
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM rollups")
    conn.execute("DELETE FROM rollups_coarse")
    conn.commit()
    conn.close()
    assert saturated(NOW + 120) == {"cpu", "disk"}
    # ... until a bucket later the report at 40 is folded in and the windows are read again
    assert saturated(NOW + 310) == set()


def test_evaluate_without_sbom_builder_still_runs_liveness_rules(tmp_path: Path) -> None:
    db = tmp_path / "dunewatch.db"
    st = open_store(db)
    st.ensure_device("cam-1")
    st.apply(
        [E.Envelope("cam-1", BOOT, 0, NOW - 5, "state", {"state": "offline", "reason": "will"})],
        NOW - 5,
    )
    st.close()
    r = evaluate(
        db,
        FakeKb(),
        AlertsConfig(),
        NOW,
        bom_builder=lambda s, inv: DeviceBom(DeviceInfo(s.device_id), (), "agent"),
    )
    assert [(a.rule_id, a.device_id) for a in r.opened] == [("device.offline", "cam-1")]


def _state(dev: str, boot: str, ts: float, state: str, reason: str) -> E.Envelope:
    return E.Envelope(dev, boot, 0, ts, "state", {"state": state, "reason": reason})


def test_a_liveness_pass_opens_and_resolves_offline_alerts_only(tmp_path: Path) -> None:
    db = tmp_path / "dunewatch.db"
    st = open_store(db)
    st.apply([health("cam-hot", 1, NOW - 30, 99.0), health("cam-off", 1, NOW - 30, 5.0)], NOW - 30)
    st.apply([_state("cam-off", BOOT, NOW - 20, "offline", "will")], NOW - 20)
    st.close()

    def run(t: float, full: bool) -> Any:
        return evaluate(db, FakeKb(), AlertsConfig(), t, bom_builder=bom_builder, full=full)

    r = run(NOW, full=False)
    assert not r.full and r.to_dict()["full"] is False
    assert [(a.rule_id, a.device_id) for a in r.opened] == [("device.offline", "cam-off")]
    r = run(NOW + 10, full=True)  # the health rules open theirs in a full pass
    assert r.full and [(a.rule_id, a.device_id) for a in r.opened] == [("health.cpu", "cam-hot")]
    # cam-off back, cam-hot cooled down: a liveness pass resolves the offline alert and leaves
    # the CPU alert to the next full pass (its rule did not run)
    st = open_store(db)
    st.apply([_state("cam-off", BOOT + "2", NOW + 20, "online", "birth")], NOW + 20)
    st.apply([health("cam-hot", 2, NOW + 20, 10.0)], NOW + 20)
    # another device goes offline: a liveness pass reports it
    st.apply([health("gw-1", 1, NOW + 20, 5.0)], NOW + 20)
    st.apply([_state("gw-1", BOOT, NOW + 25, "offline", "will")], NOW + 25)
    st.close()
    r = run(NOW + 30, full=False)
    assert [(a.rule_id, a.device_id) for a in r.resolved] == [("device.offline", "cam-off")]
    assert [(a.rule_id, a.device_id) for a in r.opened] == [("device.offline", "gw-1")]
    assert r.active == 2  # gw-1 offline, cam-hot's CPU alert kept
    r = run(NOW + 40, full=True)
    assert [(a.rule_id, a.device_id) for a in r.resolved] == [("health.cpu", "cam-hot")]
    assert r.opened == () and r.active == 1


def test_evaluate_with_the_shipped_knowledge_and_the_sbom_builder(tmp_path: Path) -> None:
    """No fakes: the stored inventory goes through the SBOM builder and firmware_db's sourced
    lifecycles (Linux 4.14 ended 2024-01-10, OpenWrt 19.07 on 2022-04-30)."""
    db = tmp_path / "dunewatch.db"
    st = open_store(db)
    st.ensure_device("gw-1")
    body = {
        "hash": "a" * 64,
        "source": "agent",
        "hostname": "gw-1",
        "os": {"id": "openwrt", "version_id": "19.07.10", "source": "etc/openwrt_release"},
        "kernel": {"release": "4.14.275", "arch": "mips"},
        "packages": [{"name": "busybox", "version": "1.30.1-6", "manager": "opkg"}],
    }
    st.apply([E.make("gw-1", BOOT, 1, "inventory", body, ts=NOW - 10)], NOW - 10)
    st.close()
    r = evaluate(db, None, AlertsConfig(), NOW)
    (eol_alert,) = [a for a in r.opened if a.rule_id == "eol.reached"]
    eol = [(c["component"], c["eol"]) for c in eol_alert.evidence["components"]]
    assert eol == [("openwrt", "2022-04-30"), ("linux", "2024-01-10")]


def test_alerts_under_the_old_per_component_keys_resolve_on_the_next_pass(tmp_path: Path) -> None:
    """Alerts opened by the per-component keys of earlier versions close on the first pass of
    the per-device rules, which open one alert per device and class in their place."""
    db = tmp_path / "dunewatch.db"
    st = open_store(db)
    st.ensure_device("gw-old")
    st.apply([inventory("gw-old", 1, NOW - 30), health("gw-old", 2, NOW - 20, 5.0)], NOW - 20)
    st.close()
    old_rules = ("eol.reached", "eol.approaching", "vuln.component", "vuln.eol_exploited")
    alerts = AlertStore(db)
    try:
        old = [
            alerts.open_alert(
                Finding(rule, "gw-old", "high", f"gw-old: old {rule}", {}, key=key), NOW - 600, None
            )
            for rule in old_rules
            for key in ("crypto:openssl", "soc:ZX1000")
        ]
    finally:
        alerts.close()
    r = evaluate(db, FakeKb(), AlertsConfig(), NOW, bom_builder=bom_builder)
    assert r.rule_errors == () and r.snapshot_errors == ()
    resolved = {a.dedupe_key for a in r.resolved}
    assert resolved == {a.dedupe_key for a in old}
    assert all(a.resolved_by == "auto" for a in r.resolved)
    # nothing on gw-old approaches its end of life: that class just closes
    new = {a.dedupe_key for a in r.opened if a.rule_id in old_rules}
    assert new == {f"{rule}|gw-old|" for rule in old_rules if rule != "eol.approaching"}
    # the next pass neither reopens the old keys nor duplicates the new ones
    r2 = evaluate(db, FakeKb(), AlertsConfig(), NOW + 30, bom_builder=bom_builder)
    assert r2.opened == () and r2.resolved == ()


def _stored_fleet(db: Path, devices: tuple[str, ...]) -> None:
    """Devices with the same inventory and one health report each (cpu 0, 10, 20, ...)."""
    st = open_store(db)
    for i, dev in enumerate(devices):
        st.ensure_device(dev)
        st.apply([inventory(dev, 1, NOW - 10), health(dev, 2, NOW - 5, 10.0 * i)], NOW - 5)
    st.close()


def _snapshot(db: Path) -> tuple[Any, tuple[str, ...]]:
    alert_store = AlertStore(db)
    try:
        return build_snapshot(
            db, kb=FakeKb(), config=AlertsConfig(), now=NOW, alert_store=alert_store,
            bom_builder=bom_builder,
        )  # fmt: skip
    finally:
        alert_store.close()


def test_devices_with_equal_components_share_their_states(tmp_path: Path) -> None:
    db = tmp_path / "dunewatch.db"
    _stored_fleet(db, ("cam-1", "cam-2"))
    snap, errors = _snapshot(db)
    a, b = sorted(snap.devices, key=lambda d: d.device_id)
    assert errors == () and len(a.components) == 2 and a.components == b.components
    assert all(x is y for x, y in zip(a.components, b.components, strict=True))
    assert a.components[1].vulns[0].id == "CVE-2016-2183"


def test_a_device_with_a_broken_stored_inventory_is_the_only_one_incomplete(
    tmp_path: Path,
) -> None:
    db = tmp_path / "dunewatch.db"
    _stored_fleet(db, ("cam-1", "cam-2", "cam-3"))
    # damage cam-2's stored inventory behind the store's back (a different hash, bad JSON)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO inventory_snapshots (hash, first_seen, body) VALUES ('bad', 0, '{')")
    conn.execute("UPDATE inventory_current SET hash = 'bad' WHERE device_id = 'cam-2'")
    conn.commit()
    conn.close()
    st = open_store(db)
    st.apply([health("cam-3", 3, NOW - 4, 95.0)], NOW - 4)
    st.close()
    snap, errors = _snapshot(db)
    assert snap.incomplete == {"cam-2"} and len(errors) == 1 and "cam-2" in errors[0]
    by_id = {d.device_id: d for d in snap.devices}
    assert set(by_id) == {"cam-1", "cam-3"}
    assert by_id["cam-3"].latest_health is not None and by_id["cam-3"].latest_health.cpu == 95.0
    # read one by one too: cam-3's window (a spike to 95 beside 20 in one bucket: mean 57.5)
    (cpu,) = [w for w in by_id["cam-3"].health_windows if w.metric == "cpu"]
    assert (cpu.reports, cpu.over, cpu.mean, cpu.peak) == (2, 0, 57.5, 95.0)
    assert len(by_id["cam-1"].components) == 2


def _cancel_on_call(n: int) -> Callable[[], bool]:
    calls = [0]

    def cancel() -> bool:
        calls[0] += 1
        return calls[0] >= n

    return cancel


def test_a_cancelled_pass_changes_no_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import collector.alerts.builder as builder

    db = tmp_path / "dunewatch.db"
    _stored_fleet(db, ("cam-1", "cam-2", "cam-3"))
    monkeypatch.setattr(builder, "CHUNK", 1)  # asked before each device, then before the update
    kw: dict[str, Any] = {"bom_builder": bom_builder}
    with pytest.raises(PassCancelled, match="cancelled after 2 of 3 devices"):
        evaluate(db, FakeKb(), AlertsConfig(), NOW, cancel=_cancel_on_call(3), **kw)
    with pytest.raises(PassCancelled, match="before alerts were updated"):
        evaluate(db, FakeKb(), AlertsConfig(), NOW, cancel=_cancel_on_call(4), **kw)
    alert_store = AlertStore(db)
    assert alert_store.alerts() == [] and alert_store.max_event_id() == 0
    alert_store.close()
    r = evaluate(db, FakeKb(), AlertsConfig(), NOW, cancel=_cancel_on_call(5), **kw)
    assert r.opened  # the same fleet, not cancelled: its alerts open
