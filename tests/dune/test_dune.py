"""Worked examples: every expected figure is computed by hand in the comments beside it."""

from __future__ import annotations

import pytest

from sbom.dune import concentration, fleet_dune, rank_devices, rollup, score_device
from sbom.model import Lifecycle
from sbom.policy import DunePolicy
from tests.dune.fleet import TODAY, cam1, cam2, comp, fleet, gw1

# home DE, allied FR, restricted CN; J: home 0, allied 0.3, other 0.6, restricted 1,
# community 0.1, unknown 0.5; S defaults: soc 0, firmware 0, other layers 0.5.
POLICY = DunePolicy(home="DE", allied=frozenset({"FR"}), restricted=frozenset({"CN"}))


def approx(x: float) -> object:
    return pytest.approx(x, abs=1e-9)


def test_component_factors_and_drivers_of_cam1() -> None:
    d = score_device(cam1(), POLICY, TODAY)
    soc = d.layer("soc")
    # HiSilicon, owner in CN (restricted): J=1, S=0 (soc default), A=0 -> E = 1*1*0.5 = 0.5
    assert soc.driver is not None
    assert (soc.driver.j, soc.driver.s, soc.driver.a) == (1.0, 0.0, 0.0)
    assert soc.exposure == approx(0.5)
    assert soc.driver.owner == "Huawei Investment & Holding"
    assert soc.driver.jurisdiction == "CN"
    assert soc.driver.s_source == "layer default"
    # firmware: home supplier -> J=0 -> E=0 whatever the aging (3 behind -> A=0.3)
    fw = d.layer("firmware")
    assert fw.driver is not None and fw.driver.a == approx(0.3)
    assert fw.exposure == approx(0.0)
    # os: community J=0.1, S=0.5, EOL -> A=1 -> E = 0.1*0.5*1 = 0.05
    assert d.layer("os").exposure == approx(0.05)
    # crypto: community, current -> 0.1*0.5*0.5 = 0.025
    assert d.layer("crypto").exposure == approx(0.025)
    # sensor: JP is "other" J=0.6, S=0.5 (from the component), EOL in 100 days -> A=0.7
    # E = 0.6*0.5*(0.5+0.35) = 0.255
    sensor = d.layer("sensor_radio")
    assert sensor.driver is not None and sensor.driver.s_source == "component"
    assert "approaching" in sensor.driver.a_reason
    assert sensor.exposure == approx(0.255)
    # application: busybox unknown J=0.5,S=0.5 -> 0.125; FR viewer allied J=0.3,S=0 -> 0.15
    app = d.layer("application")
    assert app.driver is not None and app.driver.name == "viewer"
    assert app.exposure == approx(0.15)
    assert app.unknown == 1 and d.unknown_suppliers == 1
    assert d.layer("db_runtime").driver is None
    # DDI = 100*(0.25*0.5 + 0.15*0 + 0.15*0.05 + 0.15*0.025 + 0.10*0.255 + 0.10*0 + 0.10*0.15)
    #     = 100*(0.125 + 0.0075 + 0.00375 + 0.0255 + 0.015) = 17.675
    assert d.ddi == approx(17.675)
    # worst layer soc 0.5 <= 0.50 -> grade D
    assert (d.grade, d.worst_layer) == ("D", "soc")
    assert d.weight == 2.0 and d.home == "DE"


def test_stale_firmware_counts_as_end_of_life() -> None:
    d = score_device(gw1(), POLICY, TODAY)
    # firmware released 2023-07-01, 30 months before 2026-01-01, none newer -> A=1
    fw = d.layer("firmware")
    assert fw.driver is not None and fw.driver.a == 1.0
    assert "no firmware since 2023-07-01" in fw.driver.a_reason
    # soc US other: 0.6*1*0.5 = 0.3; firmware LT other: 0.6*1*1 = 0.6; os community 0.025
    # DDI = 100*(0.25*0.3 + 0.15*0.6 + 0.15*0.025) = 100*(0.075+0.09+0.00375) = 16.875
    assert d.ddi == approx(16.875)
    assert d.grade == "E"  # 0.6 > 0.50


def test_fleet_ddi_hhi_n50() -> None:
    devices = [score_device(b, POLICY, TODAY) for b in fleet()]
    f = fleet_dune(devices, POLICY)
    # cam-2: soc only, 0.5 -> DDI 12.5
    assert devices[2].ddi == approx(12.5)
    # criticality-weighted mean: (2*17.675 + 1*16.875 + 1*12.5) / 4 = 64.725/4 = 16.18125
    assert f.ddi == approx(16.18125)
    assert f.devices == 3 and f.weight == 4.0 and f.simulated == 3
    assert dict(f.grades) == {"A": 0, "B": 0, "C": 0, "D": 2, "E": 1}
    soc = f.layer("soc")
    # weights: CN = 2 (cam-1) + 1 (cam-2) = 3, US = 1 -> shares 0.75 / 0.25
    shares = {s.key: s.share for s in soc.by_jurisdiction.shares}
    assert shares == {"CN": approx(0.75), "US": approx(0.25)}
    # HHI = (0.75^2 + 0.25^2) * 10^4 = (0.5625 + 0.0625) * 10^4 = 6250 -> high (> 2500)
    assert soc.by_jurisdiction.hhi == approx(6250)
    assert soc.by_jurisdiction.high
    assert soc.by_jurisdiction.top1 is not None and soc.by_jurisdiction.top1.key == "CN"
    assert soc.by_jurisdiction.n50 == 1
    vendors = {s.key: s.share for s in soc.by_vendor.shares}
    assert vendors == {"Huawei Investment & Holding": approx(0.75), "Qualcomm": approx(0.25)}
    # mean soc exposure: (2*0.5 + 1*0.3 + 1*0.5)/4 = 1.8/4 = 0.45
    assert soc.exposure == approx(0.45)
    fw = f.layer("firmware")
    # DE weight 2, LT weight 1 -> 2/3, 1/3; HHI = (4/9 + 1/9)*10^4 = 5555.56; cam-2 has none
    assert fw.by_jurisdiction.hhi == approx(50000 / 9)
    assert (fw.devices, fw.absent) == (2, 1)
    app = f.layer("application")
    assert app.unknown_share == 0.0  # the FR viewer drives; busybox is still counted below
    assert f.unknown_suppliers == 1 and f.devices_with_unknown == 1


def test_concentration_n50_with_five_buckets() -> None:
    c = concentration({"A": 3, "B": 2.5, "C": 2, "D": 1.5, "E": 1}, {}, 2500)
    # shares .30 .25 .20 .15 .10; HHI = (.09+.0625+.04+.0225+.01)*10^4 = 2250 (not high)
    assert c.hhi == approx(2250)
    assert not c.high
    # .30 < .5, .30+.25 = .55 >= .5 -> N50 = 2
    assert c.n50 == 2
    assert c.top1 is not None and c.top1.key == "A"
    assert concentration({}, {}, 2500).n50 == 0


def test_unknown_supplier_is_a_bucket_not_hidden() -> None:
    bom = cam2()
    unknown_soc = bom.__class__(
        bom.device, (comp("mystery-soc", "soc", None, kind="device"),), bom.source
    )
    f = fleet_dune([score_device(unknown_soc, POLICY, TODAY)], POLICY)
    soc = f.layer("soc")
    assert soc.by_jurisdiction.shares[0].key == "unknown"
    assert soc.unknown_share == 1.0
    # unknown: J=0.5, S=0 -> 0.25 -> DDI = 100*0.25*0.25 = 6.25
    assert f.ddi == approx(6.25)


def test_another_home_country_changes_the_results() -> None:
    cn = DunePolicy(home="CN", restricted=frozenset({"DE"}))
    d = score_device(cam1(), cn, TODAY)
    # soc now home -> 0; firmware DE restricted J=1,S=0,A=0.3 -> 1*1*0.65 = 0.65;
    # os 0.05, crypto 0.025, sensor JP other 0.255; app FR now other 0.6*1*0.5 = 0.3
    # DDI = 100*(0 + 0.15*0.65 + 0.15*0.05 + 0.15*0.025 + 0.1*0.255 + 0 + 0.1*0.3)
    #     = 100*(0.0975 + 0.0075 + 0.00375 + 0.0255 + 0.03) = 16.425
    assert d.layer("soc").exposure == 0.0
    assert d.layer("firmware").exposure == approx(0.65)
    assert d.ddi == approx(16.425)
    assert d.grade == "E" and d.worst_layer == "firmware"
    assert score_device(cam2(), cn, TODAY).grade == "A"
    assert d.home == "CN"


def test_unset_home_counts_every_known_vendor_as_other() -> None:
    unset = DunePolicy()
    d = score_device(cam2(), unset, TODAY)
    # HiSilicon: no home, so CN is "other": 0.6*1*0.5 = 0.3 -> DDI 100*0.25*0.3 = 7.5, grade C
    assert d.layer("soc").driver is not None
    assert d.layer("soc").driver.category == "other"
    assert d.ddi == approx(7.5)
    assert d.grade == "C" and d.home == "unset"
    # community stays community: cam-1 os = 0.1*0.5*1 = 0.05
    assert score_device(cam1(), unset, TODAY).layer("os").exposure == approx(0.05)


def test_layer_weights_and_substitutability_are_configuration() -> None:
    weights = {layer: 0.0 for layer in POLICY.layer_weights}
    weights["soc"] = 1.0
    p = DunePolicy(
        home="DE",
        restricted=frozenset({"CN"}),
        layer_weights=weights,
        substitutability={**POLICY.substitutability, "soc": 0.5},
    )
    # soc only: 1 * (1-0.5) * 0.5 = 0.25 -> DDI 25
    assert score_device(cam2(), p, TODAY).ddi == approx(25.0)


def test_aging_reasons() -> None:
    past = comp("a", "os", None, lifecycle=Lifecycle(status="supported", eol="2025-12-31"))
    bom = cam2().__class__(cam2().device, (past,), "agent")
    drv = score_device(bom, POLICY, TODAY).layer("os").driver
    assert drv is not None and drv.a == 1.0 and drv.a_reason == "end of life 2025-12-31"
    behind = comp("b", "os", None, lifecycle=Lifecycle(status="supported", versions_behind=1))
    bom = cam2().__class__(cam2().device, (behind,), "agent")
    drv = score_device(bom, POLICY, TODAY).layer("os").driver
    assert drv is not None and drv.a == 0.0 and drv.a_reason == "current"


def test_rollup_by_tag_and_ranking() -> None:
    devices = [score_device(b, POLICY, TODAY) for b in fleet()]
    groups = dict(rollup(devices, "district", POLICY))
    assert set(groups) == {"north", "south"}
    # north: cam-1 (w2, 17.675) and cam-2 (w1, 12.5) -> (35.35 + 12.5)/3 = 15.95
    assert groups["north"].ddi == approx(15.95)
    assert groups["south"].ddi == approx(16.875)
    assert dict(rollup(devices, "street", POLICY)).keys() == {"(untagged)"}
    assert [d.device_id for d in rank_devices(devices)] == ["cam-1", "gw-1", "cam-2"]


def test_cache_gives_the_same_scores_and_keys_firmware_by_release_date() -> None:
    from dataclasses import replace

    from sbom.dune import ExposureCache

    cache = ExposureCache(POLICY, TODAY)
    plain = [score_device(b, POLICY, TODAY) for b in fleet()]
    cached = [score_device(b, POLICY, TODAY, cache=cache) for b in fleet()]
    assert cached == plain
    gw = gw1()
    # the same firmware component object on a device with recent firmware is not stale
    fresh = replace(gw, device=replace(gw.device, firmware_release_date="2025-11-01"))
    d = score_device(fresh, POLICY, TODAY, cache=cache)
    drv = d.layer("firmware").driver
    assert drv is not None and drv.a == 0.0
    again = [score_device(b, POLICY, TODAY, cache=cache) for b in fleet()]
    assert again == plain and cache.hits > 0
