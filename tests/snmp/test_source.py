"""The SNMP ingest source inside the collector: targets file -> polls -> real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.ingest import SOURCE_TYPES
from collector.snmp.interface import SnmpError
from collector.snmp.simulator import Snmpsim
from collector.snmp.source import SnmpSource
from collector.snmp.targets import Target, save_targets
from collector.store import open_store
from tests.snmp.conftest import dead_port
from tests.support.services import wait_until

pytestmark = pytest.mark.integration


def test_source_is_registered_and_validates_config() -> None:
    assert "snmp" in dict(SOURCE_TYPES)
    with pytest.raises(SnmpError, match="targets file or targets"):
        SnmpSource()
    with pytest.raises(SnmpError, match="jitter"):
        SnmpSource(targets_path=Path("t.toml"), jitter=2)


def test_source_polls_targets_into_the_store(snmpsim: Snmpsim, tmp_path: Path) -> None:
    targets_file = tmp_path / "snmp-targets.toml"
    cam = snmpsim.device("camera").v3_target(
        device_id="cam-1", interval=0.3, tags=(("district", "north"),)
    )
    gw = snmpsim.device("gateway").v2c_target(device_id="gw-1", interval=0.3)
    dead = Target(
        host="127.0.0.1",
        port=dead_port(),
        version="2c",
        community="x",
        timeout=0.2,
        retries=0,
        interval=0.3,
        device_id="dead-1",
    )
    badkey = snmpsim.device("nvr").v3_target(device_id="nvr-1", auth_key="wrong-key!", interval=0.3)
    save_targets(targets_file, [cam, gw, dead, badkey])
    store = open_store(tmp_path / "c.db")
    source = SnmpSource(targets_path=targets_file, jitter=0.1)
    source.start(store)
    try:

        def polled() -> bool:
            for dev in ("cam-1", "gw-1", "dead-1", "nvr-1"):
                d = store.device(dev)
                if d is None or d.last_poll is None:
                    return False
            return True

        wait_until(polled, timeout=30, what="every target polled once")
        wait_until(lambda: source.stats().get("polls", 0) >= 8, timeout=30, what="8 polls")
    finally:
        source.stop()
        stats = source.stats()
    try:
        cam_d = store.device("cam-1")
        assert cam_d is not None and cam_d.last_poll is not None
        assert cam_d.last_poll["outcome"] == "ok"
        assert cam_d.summary.source == "snmp" and cam_d.summary.tags == {"district": "north"}
        assert (cam_d.summary.vendor, cam_d.summary.model) == ("Hikvision", "DS-2CD2143G2-I")
        assert cam_d.summary.firmware == "V5.7.3 build 220112"
        dead_d = store.device("dead-1")
        assert dead_d is not None and dead_d.last_poll is not None
        assert dead_d.last_poll["outcome"] == "timeout"
        nvr_d = store.device("nvr-1")
        assert nvr_d is not None and nvr_d.last_poll is not None
        assert nvr_d.last_poll["outcome"] == "auth_failure"
        assert "authentication failed" in nvr_d.last_poll["detail"]
        assert stats["outcome_ok"] >= 2 and stats.get("store_errors", 0) == 0
    finally:
        store.close()


def test_collector_config_builds_the_snmp_source(tmp_path: Path) -> None:
    from collector.config import config_from_dict
    from collector.ingest import StoreOpener, make_source

    db = tmp_path / "data" / "dunewatch.db"
    cfg = config_from_dict(
        {"store": {"path": str(db)}, "sources": [{"type": "snmp", "targets": "t.toml"}]}
    )
    src = make_source(cfg.sources[0], cfg, StoreOpener(db))
    assert isinstance(src, SnmpSource) and src.name == "snmp"
    assert src.targets_path == tmp_path / "data" / "t.toml"
    default = make_source({"type": "snmp"}, cfg, StoreOpener(db))
    assert isinstance(default, SnmpSource)
    assert default.targets_path == tmp_path / "data" / "snmp-targets.toml"
    with pytest.raises(SnmpError, match=r"unknown key\(s\) interval"):
        make_source({"type": "snmp", "interval": 5}, cfg, StoreOpener(db))
