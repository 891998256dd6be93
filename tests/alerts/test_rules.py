"""Every rule class firing and not firing, on hand-built snapshots."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from collector.alerts.config import AlertsConfig, Threshold
from collector.alerts.interface import Rule
from collector.alerts.model import (
    ComponentState,
    Concentration,
    DeviceState,
    Finding,
    FleetSnapshot,
    HealthSample,
    LayerGrade,
    LossCounts,
    MetricWindow,
    VulnRef,
)
from collector.alerts.rules import ALL_RULE_IDS, RULES
from collector.alerts.rules.dune import ConcentrationRule, DuneGradeRule
from collector.alerts.rules.health import HealthThresholdRule, SaturationRule
from collector.alerts.rules.lifecycle import (
    EolApproachingRule,
    EolReachedRule,
    FirmwareOutdatedRule,
    UnsupportedRule,
)
from collector.alerts.rules.liveness import OfflineRule, TelemetryLossRule
from collector.alerts.rules.vulnerability import EolExploitedRule, VulnerableComponentRule
from tests.alerts.snap import DAY, NOW, device, fleet

CFG = AlertsConfig()


def run(rule: Rule, snap: FleetSnapshot, cfg: AlertsConfig = CFG) -> list[Finding]:
    found: Iterable[Finding] = rule.evaluate(snap, cfg)
    return list(found)


def test_registry_ids_are_unique_and_stable() -> None:
    assert len(ALL_RULE_IDS) == len(set(ALL_RULE_IDS))
    assert set(ALL_RULE_IDS) == {
        "device.offline",
        "health.cpu",
        "health.memory",
        "health.disk",
        "health.temperature",
        "health.saturation",
        "firmware.outdated",
        "eol.reached",
        "eol.approaching",
        "support.unsupported",
        "vuln.component",
        "vuln.eol_exploited",
        "dune.grade",
        "fleet.concentration",
        "telemetry.loss",
    }
    assert len(RULES) == 12


def test_offline_fires_after_the_configured_time_only() -> None:
    off = device("cam-1", status="offline", status_since=NOW - 600)
    on = device("cam-2")
    stale = device("cam-3", status="stale")
    (f,) = run(OfflineRule(), fleet(off, on, stale))
    assert (f.rule_id, f.device_id, f.severity) == ("device.offline", "cam-1", "high")
    assert run(OfflineRule(), fleet(off), AlertsConfig(offline_after=900)) == []
    assert len(run(OfflineRule(), fleet(off), AlertsConfig(offline_after=300))) == 1


def test_health_thresholds_warn_and_crit() -> None:
    hot = HealthSample(
        NOW,
        cpu=99.0,
        memory=91.0,
        disk=50.0,
        disk_mount="/",
        temperature=85.0,
        temperature_sensor="cpu_thermal",
    )
    found = {f.rule_id: f for f in run(HealthThresholdRule(), fleet(device(latest_health=hot)))}
    assert set(found) == {"health.cpu", "health.memory", "health.temperature"}
    assert found["health.cpu"].severity == "high"  # 99 >= crit 98
    assert found["health.memory"].severity == "medium"  # 91 >= warn 90, < crit 97
    assert found["health.temperature"].evidence["sensor"] == "cpu_thermal"
    calm = HealthSample(NOW, cpu=10.0, memory=20.0, disk=89.9, temperature=40.0)
    assert run(HealthThresholdRule(), fleet(device(latest_health=calm))) == []
    # thresholds are configuration
    health = dict(CFG.health)
    health["disk"] = Threshold(80.0, 95.0)
    (disk,) = run(
        HealthThresholdRule(), fleet(device(latest_health=calm)), AlertsConfig(health=health)
    )
    assert disk.rule_id == "health.disk"
    # an offline device's last report is not the present
    assert run(HealthThresholdRule(), fleet(device(status="offline", latest_health=hot))) == []


def _window(
    reports: int, over: int, metric: str = "cpu", mount: str | None = None, mean: float = 95.0
) -> MetricWindow:
    return MetricWindow(metric, reports, over, 90.0, mean, 99.0, mount)


def test_saturation_needs_most_of_the_window_over_threshold() -> None:
    busy = device(health_windows=(_window(10, 9),))  # 9 of 10 reports in buckets over 90
    (f,) = run(SaturationRule(), fleet(busy))
    assert f.rule_id == "health.saturation" and f.key == "cpu"
    assert f.evidence["share"] == 0.9 and f.evidence["samples"] == 10
    assert f.evidence["peak"] == 99.0 and "in 90% of 10 reports over 6 h" in f.summary
    spiky = device(health_windows=(_window(10, 5),))
    assert run(SaturationRule(), fleet(spiky)) == []
    few = device(health_windows=(_window(3, 3),))  # fewer than min_points
    assert run(SaturationRule(), fleet(few)) == []
    # a metric the configuration leaves out is not judged
    mem = device(health_windows=(_window(10, 10, "memory"),))
    assert run(SaturationRule(), fleet(mem), AlertsConfig(saturation_metrics=("cpu",))) == []


def test_saturation_judges_each_disk_and_names_the_worst() -> None:
    disks = device(
        health_windows=(
            _window(8, 0, "disk", "/"),
            _window(8, 7, "disk", "/data", mean=93.0),
            _window(8, 8, "disk", "/var", mean=96.0),
        )
    )
    (d,) = run(SaturationRule(), fleet(disks))
    assert d.key == "disk" and d.evidence["mount"] == "/var" and d.evidence["share"] == 1.0
    assert "disk (/var) at or over 90%" in d.summary


def test_saturation_refuses_a_window_read_for_another_threshold() -> None:
    dev = device(health_windows=(_window(10, 10),))
    with pytest.raises(ValueError, match="cam-1 cpu: window read for 90%, .* threshold is 85%"):
        run(SaturationRule(), fleet(dev), AlertsConfig(saturation_threshold=85.0))


def test_firmware_outdated_by_versions_behind_or_age() -> None:
    behind = device(firmware_version="5.5.0", firmware_latest="5.7.3", firmware_versions_behind=2)
    current = device(
        "cam-2",
        firmware_version="5.7.3",
        firmware_latest="5.7.3",
        firmware_versions_behind=0,
        firmware_release_date="2026-01-10",
    )
    ancient = device("cam-3", firmware_version="1.0", firmware_release_date="2023-05-01")
    found = run(FirmwareOutdatedRule(), fleet(behind, current, ancient))
    assert {f.device_id for f in found} == {"cam-1", "cam-3"}
    by_id = {f.device_id: f for f in found}
    assert "2 version(s) behind 5.7.3" in by_id["cam-1"].summary
    assert by_id["cam-3"].evidence["age_days"] == 1127
    assert (
        run(FirmwareOutdatedRule(), fleet(behind), AlertsConfig(firmware_min_versions_behind=3))
        == []
    )


def test_eol_reached_and_approaching_from_dates_and_status() -> None:
    comps = (
        ComponentState("openssl", "1.1.1w", "crypto", status="eol", eol="2023-09-11"),
        ComponentState("linux", "5.15.150", "os", status="supported", eol="2026-10-31"),  # 152 d
        ComponentState("busybox", "1.36.1", "os", status="unknown"),
        ComponentState("python", "3.12.3", "db_runtime", status="supported", eol="2028-10-31"),
        ComponentState("mystery", "1", "application", status="approaching_eol"),
    )
    snap = fleet(device(components=comps))
    (eol,) = run(EolReachedRule(), snap)
    assert eol.dedupe_key == "eol.reached|cam-1|" and eol.severity == "high"
    assert eol.summary == "cam-1: 1 component past end of life (openssl 1.1.1w since 2023-09-11)"
    assert [c["component"] for c in eol.evidence["components"]] == ["openssl"]
    (near,) = run(EolApproachingRule(), snap)
    assert near.dedupe_key == "eol.approaching|cam-1|"
    # the undated "approaching" status is medium, so it comes before the kernel 152 days out
    assert [(c["component"], c["days_left"]) for c in near.evidence["components"]] == [
        ("mystery", None),
        ("linux", 152),
    ]
    assert near.severity == "medium" and "2 components reaching end of life" in near.summary
    # a shorter window leaves the kernel out
    (near90,) = run(EolApproachingRule(), snap, AlertsConfig(eol_approaching=90 * DAY))
    assert [c["component"] for c in near90.evidence["components"]] == ["mystery"]
    # the day the date passes, approaching becomes reached
    later = fleet(device(components=comps), taken_at=NOW + 160 * DAY)
    (gone,) = run(EolReachedRule(), later)
    assert [c["component"] for c in gone.evidence["components"]] == ["openssl", "linux"]
    assert run(EolReachedRule(), fleet(device(components=comps[1:]))) == []


def test_eol_reached_one_alert_per_device_listing_every_component() -> None:
    comps = (
        ComponentState("linux", "4.14.275", "os", status="eol", eol="2024-01-10", cycle="4.14"),
        ComponentState("busybox", "1.20", "os", status="eol"),  # no date: listed last
        ComponentState(
            "openssl",
            "1.1.1w",
            "crypto",
            status="eol",
            eol="2023-09-11",
            cycle="1.1.1",
            source="endoflife.date",
        ),
        ComponentState("openwrt", "19.07.10", "os", status="eol", eol="2022-04-30"),
        ComponentState("curl", "8.9.1", "application", status="supported", eol="2030-01-01"),
    )
    snap = FleetSnapshot(
        taken_at=NOW,
        devices=tuple(DeviceState(f"cam-{i:04d}", components=comps) for i in range(5)),
    )
    found = run(EolReachedRule(), snap)
    assert len(found) == 5 and len({f.dedupe_key for f in found}) == 5
    f = found[0]
    assert f.device_id == "cam-0000" and f.severity == "high"
    # worst (longest past its date) first; every field on-call needs to replace it
    assert [c["component"] for c in f.evidence["components"]] == [
        "openwrt",
        "openssl",
        "linux",
        "busybox",
    ]
    assert f.evidence["count"] == 4
    assert f.evidence["components"][1] == {
        "component": "openssl",
        "version": "1.1.1w",
        "layer": "crypto",
        "status": "eol",
        "eol": "2023-09-11",
        "cycle": "1.1.1",
        "latest": None,
        "source": "endoflife.date",
        "days_past": 994,
    }
    assert f.evidence["components"][3]["days_past"] is None
    assert f.summary == (
        "cam-0000: 4 components past end of life (openwrt 19.07.10 since 2022-04-30, "
        "openssl 1.1.1w since 2023-09-11, linux 4.14.275 since 2024-01-10, and 1 more)"
    )


def test_eol_approaching_severity_by_the_nearest_component() -> None:
    far = ComponentState("linux", "6.1.1", "os", eol="2026-10-31")  # 152 days
    near = ComponentState("openssl", "3.0.13", "crypto", eol="2026-07-01")  # 30 days
    (low,) = run(EolApproachingRule(), fleet(device(components=(far,))))
    assert low.severity == "low" and low.evidence["days_left"] == 152
    (f,) = run(EolApproachingRule(), fleet(device(components=(far, near))))
    assert f.severity == "medium" and f.evidence["days_left"] == 30
    assert [c["component"] for c in f.evidence["components"]] == ["openssl", "linux"]
    assert f.summary.startswith(
        "cam-1: 2 components reaching end of life (openssl 3.0.13 on 2026-07-01 (30 days), "
    )


def test_unsupported_model() -> None:
    gone = device(
        vendor="Acme",
        model="X1",
        support_status="unsupported",
        support_detail="end of support 2024-12-31",
        support_end="2024-12-31",
    )
    fine = device("cam-2", support_status="supported")
    unknown = device("cam-3")
    (f,) = run(UnsupportedRule(), fleet(gone, fine, unknown))
    assert f.device_id == "cam-1" and "Acme X1 is out of support" in f.summary


def test_vulnerable_component_kev_is_critical() -> None:
    kev = VulnRef("CVE-2024-0001", cvss=5.3, kev=True, kev_date="2024-05-01")
    high = VulnRef("CVE-2024-0002", cvss=8.1)
    low = VulnRef("CVE-2024-0003", cvss=2.0)
    comps = (
        ComponentState("openssl", "3.0.2", "crypto", vulns=(low, high)),
        ComponentState("busybox", "1.30.1", "os", vulns=(low, kev)),
        ComponentState("curl", "8.9.1", "application"),
    )
    (f,) = run(VulnerableComponentRule(), fleet(device(components=comps)))
    assert f.dedupe_key == "vuln.component|cam-1|"
    assert f.severity == "critical"  # KEV despite CVSS 5.3: the worst component decides
    # worst component first, and each component's vulnerabilities worst first
    assert [(c["component"], c["severity"]) for c in f.evidence["components"]] == [
        ("busybox", "critical"),
        ("openssl", "high"),
    ]
    busybox, openssl = f.evidence["components"]
    assert busybox["kev"] == ["CVE-2024-0001"]
    assert busybox["vulns"][0] == {
        "id": "CVE-2024-0001",
        "cvss": 5.3,
        "kev": True,
        "kev_date": "2024-05-01",
        "fixed": None,
    }
    assert [v["id"] for v in openssl["vulns"]] == ["CVE-2024-0002", "CVE-2024-0003"]
    assert f.evidence["kev"] == ["CVE-2024-0001"] and f.evidence["vuln_count"] == 3
    assert f.summary == (
        "cam-1: 2 vulnerable components with 3 known vulnerabilities, 1 exploited (KEV) "
        "(busybox 1.30.1: CVE-2024-0001 KEV, CVE-2024-0003, "
        "openssl 3.0.2: CVE-2024-0002, CVE-2024-0003)"
    )
    # severity follows the worst component when there is no KEV
    (h,) = run(VulnerableComponentRule(), fleet(device(components=comps[:1] + comps[2:])))
    assert h.severity == "high" and h.evidence["kev"] == []
    only_low = fleet(device(components=(ComponentState("x", "1", "os", vulns=(low,)),)))
    assert run(VulnerableComponentRule(), only_low)[0].severity == "low"
    assert run(VulnerableComponentRule(), only_low, AlertsConfig(vuln_min_cvss=4.0)) == []
    assert run(VulnerableComponentRule(), fleet(device(components=comps[2:]))) == []


def test_eol_with_exploited_vulnerability_is_the_highest() -> None:
    kev = VulnRef("CVE-2023-1111", cvss=9.8, kev=True)
    kev2 = VulnRef("CVE-2022-2222", cvss=7.5, kev=True, kev_date="2023-01-10")
    eol_kev = ComponentState(
        "openssl", "1.0.2u", "crypto", status="eol", eol="2019-12-31", vulns=(kev,)
    )
    eol_two_kev = ComponentState(
        "linux", "4.14.275", "os", status="eol", eol="2024-01-10", vulns=(kev, kev2)
    )
    eol_plain = ComponentState(
        "busybox", "1.20", "os", status="eol", vulns=(VulnRef("CVE-1", cvss=9.0),)
    )
    live_kev = ComponentState(
        "curl", "8.9.1", "application", status="supported", eol="2030-01-01", vulns=(kev,)
    )
    (f,) = run(EolExploitedRule(), fleet(device(components=(eol_kev, eol_plain, live_kev))))
    assert f.severity == "emergency" and f.dedupe_key == "vuln.eol_exploited|cam-1|"
    (c,) = f.evidence["components"]
    assert (c["component"], c["eol"]) == ("openssl", "2019-12-31")
    assert [k["id"] for k in c["kev"]] == ["CVE-2023-1111"]
    # several on one device: one alert, the most exploited component first
    (g,) = run(
        EolExploitedRule(), fleet(device(components=(eol_kev, eol_two_kev, eol_plain, live_kev)))
    )
    assert [c["component"] for c in g.evidence["components"]] == ["linux", "openssl"]
    assert g.evidence["kev"] == ["CVE-2022-2222", "CVE-2023-1111"]
    assert g.summary.startswith("cam-1: 2 end-of-life components with exploited vulnerabilities")
    assert run(EolExploitedRule(), fleet(device(components=(eol_plain, live_kev)))) == []


def test_dune_grade_on_critical_layers_only() -> None:
    grades = (
        LayerGrade("soc", "E", 0.95, driver="Hi3516EV300", supplier="HiSilicon", country="CN"),
        LayerGrade("application", "E", 0.9, driver="someapp"),
        LayerGrade("os", "C", 0.4),
    )
    # application is not a critical layer by default: only soc counts
    (f,) = run(DuneGradeRule(), fleet(device(layer_grades=grades)))
    assert f.dedupe_key == f"dune.grade|{f.device_id}|"
    assert f.severity == "high" and f.evidence["grade"] == "E"
    assert [x["layer"] for x in f.evidence["layers"]] == ["soc"]
    assert "soc E (Hi3516EV300 from HiSilicon, CN)" in f.summary
    assert run(DuneGradeRule(), fleet(device(layer_grades=grades[2:]))) == []


def test_dune_grade_one_alert_per_device_listing_every_layer() -> None:
    grades = (
        LayerGrade("os", "C", 0.4, driver="linux"),
        LayerGrade("soc", "E", 0.95, driver="Hi3516EV300", supplier="HiSilicon", country="CN"),
        LayerGrade("application", "E", 0.9, driver="someapp"),
        LayerGrade("firmware", "D", 0.7, driver="fw-1.0"),
    )
    cfg = AlertsConfig(critical_layers=("soc", "application", "os", "firmware"), dune_grade="C")
    (f,) = run(DuneGradeRule(), fleet(device(layer_grades=grades)), cfg)
    # worst first (grade, then exposure); every layer with its driver
    assert [(x["layer"], x["grade"], x["driver"]) for x in f.evidence["layers"]] == [
        ("soc", "E", "Hi3516EV300"),
        ("application", "E", "someapp"),
        ("firmware", "D", "fw-1.0"),
        ("os", "C", "linux"),
    ]
    assert f.severity == "high" and "4 critical layer(s)" in f.summary
    # severity follows the worst layer
    (d,) = run(DuneGradeRule(), fleet(device(layer_grades=grades[3:])), cfg)
    assert d.severity == "medium" and d.evidence["grade"] == "D"
    (c,) = run(DuneGradeRule(), fleet(device(layer_grades=grades[:1])), cfg)
    assert c.severity == "low"
    # many devices: one finding each, distinct dedupe keys
    snap = FleetSnapshot(
        taken_at=NOW,
        devices=tuple(DeviceState(f"cam-{i}", layer_grades=grades) for i in range(5)),
    )
    found = run(DuneGradeRule(), snap, cfg)
    assert len(found) == 5 and len({x.dedupe_key for x in found}) == 5


def test_fleet_concentration_by_hhi_and_top1() -> None:
    conc = (
        # shares 0.6 / 0.3 / 0.1 -> HHI = 3600 + 900 + 100 = 4600
        Concentration("soc", "jurisdiction", 4600.0, "CN", 0.6, 1),
        Concentration("os", "jurisdiction", 2500.0, "DE", 0.5, 1),  # not > 2500
        Concentration("soc", "vendor", 5000.0, "HiSilicon", 0.7, 1),
    )
    snap = FleetSnapshot(taken_at=NOW, concentration=conc)
    (f,) = run(ConcentrationRule(), snap)
    assert f.device_id is None and f.key == "soc:jurisdiction"
    assert f.dedupe_key == "fleet.concentration|_fleet|soc:jurisdiction"
    # community projects and unidentified suppliers are not a controlling party: not alerted
    ignored = FleetSnapshot(
        taken_at=NOW,
        concentration=(
            Concentration("crypto", "jurisdiction", 9000.0, "community", 0.95, 1),
            Concentration("application", "jurisdiction", 8000.0, "unknown", 0.9, 1),
        ),
    )
    assert run(ConcentrationRule(), ignored) == []
    assert len(run(ConcentrationRule(), ignored, AlertsConfig(concentration_ignore=()))) == 2
    cfg = AlertsConfig(
        concentration_max_top1=0.5, concentration_dimensions=("jurisdiction", "vendor")
    )
    assert {x.key for x in run(ConcentrationRule(), snap, cfg)} == {
        "soc:jurisdiction",
        "os:jurisdiction",
        "soc:vendor",
    }


def test_telemetry_loss_ratio_and_minimum() -> None:
    lossy = device(loss=LossCounts(accepted=95, gap=4, dropped=1, window=3600))
    tiny = device("cam-2", loss=LossCounts(accepted=100000, gap=1, dropped=0))
    clean = device("cam-3", loss=LossCounts(accepted=100))
    (f,) = run(TelemetryLossRule(), fleet(lossy, tiny, clean))
    assert f.device_id == "cam-1" and f.evidence["ratio"] == 0.05
    assert "lost 5 of 100 reports" in f.summary
    assert run(TelemetryLossRule(), fleet(lossy), AlertsConfig(telemetry_min_lost=6)) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: "/".join(r.rule_ids))
def test_every_rule_is_quiet_on_a_healthy_fleet(rule: Rule) -> None:
    healthy = device(
        latest_health=HealthSample(NOW, cpu=5, memory=30, disk=40, temperature=45),
        health_windows=(_window(10, 0, mean=5.0),),
        firmware_version="2.0",
        firmware_latest="2.0",
        firmware_versions_behind=0,
        support_status="supported",
        components=(
            ComponentState(
                "openssl",
                "3.0.13",
                "crypto",
                status="supported",
                eol="2030-01-01",
            ),
        ),
        layer_grades=(LayerGrade("soc", "B", 0.2),),
        loss=LossCounts(accepted=1000),
    )
    snap = fleet(
        healthy, concentration=(Concentration("soc", "jurisdiction", 1200.0, "US", 0.2, 3),)
    )
    assert run(rule, snap) == []
