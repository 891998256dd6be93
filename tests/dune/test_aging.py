"""Aging: hardware and firmware age, end of life, unsupported models, sustained saturation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sbom.aging import Sample, assess_device, find_saturation, summarize
from sbom.model import DeviceBom, Lifecycle
from sbom.policy import DunePolicy
from tests.dune.fleet import TODAY, cam1, cam2, comp, gw1

POLICY = DunePolicy(saturation_window_s=600)


@dataclass(frozen=True)
class Model:
    end_of_sale: str | None = None
    end_of_support: str | None = None
    end_of_life: str | None = None
    source: str = "vendor catalogue (test)"


@dataclass(frozen=True)
class Release:
    version: str
    release_date: str | None = None


@dataclass(frozen=True)
class Asset:
    install_date: str | None
    source: str = "assets.csv"


class FakeKb:
    """A fake of the small AgingKnowledge interface, not of firmware_db."""

    def __init__(
        self,
        models: dict[tuple[str, str], Model] | None = None,
        releases: dict[tuple[str, str], Release] | None = None,
        assets: dict[str, Asset] | None = None,
    ) -> None:
        self.models = models or {}
        self.releases = releases or {}
        self.assets = assets or {}

    def device_model(self, vendor: str, model: str) -> Model | None:
        return self.models.get((vendor, model))

    def latest_firmware(self, vendor: str, model: str) -> Release | None:
        return self.releases.get((vendor, model))

    def asset(self, device_id: str) -> Asset | None:
        return self.assets.get(device_id)


@dataclass(frozen=True)
class Point:  # the shape of the store's HealthPoint that aging reads
    ts: float
    body: dict[str, object]


def test_hardware_age_from_asset_register_beats_first_seen() -> None:
    kb = FakeKb(assets={"cam-1": Asset("2018-01-01")})
    first_seen = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()
    a = assess_device(cam1(), kb, [], TODAY, policy=POLICY, first_seen=first_seen)
    # 2018-01-01 .. 2026-01-01 = 2922 days = 8.0 years > 7-year camera life
    assert a.hardware.installed == "2018-01-01"
    assert a.hardware.installed_source == "asset register (assets.csv)"
    assert round(a.hardware.age_years or 0, 2) == 8.0
    assert a.hardware.status == "past"
    b = assess_device(cam1(), None, [], TODAY, policy=POLICY, first_seen=first_seen)
    assert (b.hardware.installed, b.hardware.installed_source, b.hardware.status) == (
        "2025-06-01",
        "first seen",
        "ok",
    )
    c = assess_device(cam1(), None, [], TODAY, policy=POLICY)
    assert c.hardware.status == "unknown" and c.hardware.age_years is None


def test_service_life_is_per_device_class() -> None:
    kb = FakeKb(assets={"gw-1": Asset("2020-03-01")})
    short = DunePolicy(service_life_years={"gateway": 6.5, "default": 10.0})
    # 2020-03-01 .. 2026-01-01 is 5.84 years: 0.66 left of 6.5 (< 1 year warning) -> approaching
    assert assess_device(gw1(), kb, [], TODAY, policy=short).hardware.status == "approaching"
    assert assess_device(gw1(), kb, [], TODAY).hardware.status == "ok"  # default gateway 7 years


def test_end_of_life_and_approaching_components() -> None:
    a = assess_device(cam1(), None, [], TODAY, policy=POLICY)
    assert [(f.name, f.status) for f in a.eol] == [("linux", "eol")]
    assert a.eol[0].days_left == (dt.date(2023, 12, 1) - TODAY).days
    assert [(f.name, f.days_left) for f in a.approaching] == [("IMX335", 100)]
    # cam-1's firmware is 3 behind -> outdated
    assert a.firmware is not None and a.firmware.outdated and a.firmware_outdated
    assert a.firmware.versions_behind == 3 and a.firmware.latest == "4"


def test_stale_firmware() -> None:
    a = assess_device(gw1(), None, [], TODAY, policy=POLICY)
    assert a.firmware is not None
    assert a.firmware.stale and not a.firmware.outdated
    assert a.firmware.age_days == (TODAY - dt.date(2023, 7, 1)).days
    assert "no firmware since 2023-07-01" in a.firmware.reason


def test_unsupported_model_and_latest_firmware_from_kb() -> None:
    kb = FakeKb(
        models={("Teltonika", "RUTX11"): Model(end_of_support="2025-06-30")},
        releases={("Teltonika", "RUTX11"): Release("1", "2023-07-01")},
    )
    a = assess_device(gw1(), kb, [], TODAY, policy=POLICY)
    assert [(u.what, u.name, u.since) for u in a.unsupported] == [
        ("model", "Teltonika RUTX11", "2025-06-30")
    ]
    assert ("Teltonika RUTX11", "eol") in [(f.name, f.status) for f in a.eol]
    assert a.firmware is not None and a.firmware.latest == "1" and a.firmware.stale
    assert a.firmware.latest_release_date == "2023-07-01"
    # no versions-behind count in the SBOM: a different latest release in the kb -> outdated
    fw = comp("rutx-fw", "firmware", None, lifecycle=Lifecycle(), kind="firmware")
    bom = DeviceBom(gw1().device, (fw,), "snmp")
    newer = FakeKb(releases={("Teltonika", "RUTX11"): Release("2", "2025-05-01")})
    b = assess_device(bom, newer, [], TODAY, policy=POLICY)
    assert b.firmware is not None and b.firmware.outdated and not b.firmware.stale
    assert b.firmware.reason == "a newer release (latest 2)"
    soon = FakeKb(models={("Acme", "X1"): Model(end_of_life="2026-03-01")})
    c = assess_device(cam1(), soon, [], TODAY, policy=POLICY)
    assert not c.unsupported
    assert ("Acme X1", 59) in [(f.name, f.days_left) for f in c.approaching]


def test_sustained_saturation_needs_the_whole_window() -> None:
    t0 = 1_800_000_000.0
    pts = [Point(t0 + 60 * i, {"interval": 60, "cpu": {"pct": 97.0}}) for i in range(11)]
    pts.append(Point(t0 + 660, {"interval": 60, "cpu": {"pct": 20.0}}))
    # 11 samples at >= 90 % from t0 to t0+600: exactly the 600 s window -> finding
    a = assess_device(cam2(), None, pts, TODAY, policy=POLICY)
    assert [(s.metric, s.duration_s, s.peak) for s in a.saturation] == [("cpu", 600.0, 97.0)]
    assert not a.saturation[0].ongoing
    # one dip below the threshold in the middle breaks it into two 300 s runs -> none
    dipped = list(pts)
    dipped[5] = Point(t0 + 300, {"cpu": {"pct": 50.0}})
    assert assess_device(cam2(), None, dipped, TODAY, policy=POLICY).saturation == ()


def test_saturation_gap_breaks_a_run_and_disk_uses_fullest_mount() -> None:
    t0 = 1_800_000_000.0
    samples = [Sample(t0, disk=95), Sample(t0 + 400, disk=95), Sample(t0 + 800, disk=96)]
    # gaps of 400 s > half the 600 s window: no evidence of continuous saturation
    assert find_saturation(samples, POLICY) == ()
    body = {"disk": {"/": {"pct": 10.0}, "/data": {"pct": 99.0}}}
    assert Sample.from_body(t0, body).disk == 99.0
    dense = [Sample(t0 + 100 * i, disk=95 + i) for i in range(8)]
    found = find_saturation(dense, POLICY)
    assert [(f.metric, f.duration_s, f.ongoing) for f in found] == [("disk", 700.0, True)]
    assert found[0].mean == sum(95 + i for i in range(8)) / 8


def test_summary_and_timeline() -> None:
    items = [assess_device(b, None, [], TODAY, policy=POLICY) for b in (cam1(), gw1(), cam2())]
    s = summarize(items, TODAY)
    assert s.devices == 3
    assert (s.firmware_outdated, s.firmware_stale, s.with_eol, s.with_approaching) == (1, 1, 1, 1)
    assert [(t.date, t.device_id, t.name, t.status) for t in s.timeline] == [
        ("2023-12-01", "cam-1", "linux", "eol"),
        ("2026-04-11", "cam-1", "IMX335", "approaching_eol"),
    ]
    assert s.months == (("2023-12", 1, 0), ("2026-04", 0, 1))
    # limit keeps the entries nearest to today: IMX335 is 100 days away, linux 762 days ago
    assert [t.name for t in summarize(items, TODAY, limit=1).timeline] == ["IMX335"]


def test_device_without_firmware_data() -> None:
    bom = DeviceBom(
        cam2().device,
        (comp("x", "os", None, lifecycle=Lifecycle()),),
        "agent",
    )
    a = assess_device(bom, None, [], TODAY)
    assert a.firmware is None and a.findings == 0
