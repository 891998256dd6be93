"""`collector serve` closes the alert loop: offline by will -> webhook; back online -> resolved."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.broker.mosquitto import free_port
from collector.config import AlertSettings, ConfigError, config_from_dict
from collector.service import Collector, build_alert_service
from tests.alerts.test_sinks import Hook
from tests.collector.helpers import Publisher
from tests.support.services import wait_until


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _events(hook: Hook, event: str) -> list[dict[str, Any]]:
    return [
        n
        for n in list(hook.received)
        if n["event"] == event and n["alert"]["rule_id"] == "device.offline"
    ]


@pytest.mark.integration
def test_offline_alert_delivered_and_resolved(mosquitto: Any, tmp_path: Path) -> None:
    db, pw, log = tmp_path / "c.db", tmp_path / "pw", tmp_path / "serve.log"
    pw.write_text("collector-pw\n")
    hook = Hook()
    sinks = tmp_path / "sinks.toml"
    sinks.write_text(f'[[sink]]\ntype = "webhook"\nname = "oncall"\nurl = "{hook.url}"\n')
    conf = tmp_path / "collector.toml"
    conf.write_text(
        '[liveness]\nsweep_seconds = 0.2\n\n[alerts]\nevery = 1\nsinks = "sinks.toml"\n'
    )
    mport = free_port()
    cmd = [
        sys.executable,
        "-m",
        "collector.cli",
        "collector",
        "serve",
        "--config",
        str(conf),
        "--broker",
        f"mqtt://127.0.0.1:{mosquitto.port}",
        "--db",
        str(db),
        "--username",
        "collector",
        "--password-file",
        str(pw),
        "--metrics",
        f"127.0.0.1:{mport}",
        "--client-id",
        "serve-alerts-test",
    ]
    boot = E.new_boot_id()
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: "alerts evaluated every 1s" in log.read_text(), 30, "serve up")
        will = E.state("dev-1", boot, False, "will").encode()
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw", will=will)
        # a long interval: silence cannot make it offline during the test, only the will can
        pub.send_env(E.state("dev-1", boot, True, "birth", interval=60))
        pub.kill()  # socket dropped without DISCONNECT: the broker publishes the last will
        wait_until(lambda: _events(hook, "opened"), 60, "offline alert at the webhook")
        (opened,) = _events(hook, "opened")
        assert opened["alert"]["device_id"] == "dev-1"
        assert opened["alert"]["status"] == "open"
        assert opened["alert"]["evidence"]["status"] == "offline"
        assert _events(hook, "resolved") == []
        # back: a new birth makes it online and the next pass resolves the alert
        pub2 = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        pub2.send_env(E.state("dev-1", E.new_boot_id(), True, "birth", interval=60))
        wait_until(lambda: _events(hook, "resolved"), 60, "resolution at the webhook")
        (resolved,) = _events(hook, "resolved")
        assert resolved["alert"]["id"] == opened["alert"]["id"]
        assert resolved["alert"]["status"] == "resolved"
        pub2.close()
        metrics = _metrics(mport)
        assert "dunewatch_alert_failures 0" in metrics
        passes = re.search(r"^dunewatch_alert_passes (\d+)$", metrics, re.M)
        assert passes is not None and int(passes.group(1)) >= 2, metrics
        # the first pass is full; with every = 1 the next full one waits for full_duty, and
        # liveness passes in between opened and resolved the offline alert
        full = re.search(r"^dunewatch_alert_full_passes (\d+)$", metrics, re.M)
        assert full is not None and 1 <= int(full.group(1)) <= int(passes.group(1)), metrics
        assert re.search(r"^dunewatch_alert_full_pass_seconds \S+$", metrics, re.M), metrics
        took = re.search(r"^dunewatch_alert_pass_seconds (\S+)$", metrics, re.M)
        assert took is not None and 0 < float(took.group(1)) < 60, metrics
        # the CPU the passes took, as a counter a scraper can rate
        assert "# TYPE dunewatch_alert_cpu_seconds_total counter" in metrics
        cpu = re.search(r"^dunewatch_alert_cpu_seconds_total (\S+)$", metrics, re.M)
        assert cpu is not None and 0 < float(cpu.group(1)) < 60 * int(passes.group(1)), metrics
        assert re.search(r"^dunewatch_maintenance_cpu_seconds_total \S+$", metrics, re.M)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        hook.close()
    # one opening and one resolution, each delivered once
    assert len(_events(hook, "opened")) == 1 and len(_events(hook, "resolved")) == 1


def test_rollup_width_is_configurable_and_validated(tmp_path: Path) -> None:
    doc = {"store": {"path": str(tmp_path / "c.db"), "rollup_bucket_seconds": 3600}}
    cfg = config_from_dict(doc)
    assert cfg.store.rollup_bucket_seconds == 3600
    assert Collector(cfg).opener.options["rollup_bucket"] == 3600  # what the serve loop opens
    assert config_from_dict({}).store.rollup_bucket_seconds == 300
    for bad in (0, 59, 7 * 60 + 1, 1.5, True, 86400 * 2, "3600"):
        with pytest.raises(ConfigError, match=f"rollup_bucket_seconds {bad!r} must be whole"):
            config_from_dict({"store": {"rollup_bucket_seconds": bad}})


def test_coarse_rollup_tier_is_configurable_and_validated(tmp_path: Path) -> None:
    store = config_from_dict({}).store
    assert (store.rollup_bucket_seconds, store.rollup_retention_days) == (300, 30)
    assert (store.coarse_rollup_bucket_seconds, store.coarse_rollup_retention_days) == (3600, 400)
    # a fine tier coarser than an hour takes the coarse tier's default along
    assert (
        config_from_dict(
            {"store": {"rollup_bucket_seconds": 7200}}
        ).store.coarse_rollup_bucket_seconds
        == 7200
    )
    doc = {
        "store": {
            "path": str(tmp_path / "c.db"),
            "coarse_rollup_bucket_seconds": 86400,
            "coarse_rollup_retention_days": 3650,
        }
    }
    opts = Collector(config_from_dict(doc)).opener.options
    assert (opts["coarse_bucket"], opts["coarse_retention_days"]) == (86400, 3650)
    with pytest.raises(ConfigError, match="coarse_rollup_bucket_seconds 900 must be a multiple"):
        config_from_dict(
            {"store": {"rollup_bucket_seconds": 600, "coarse_rollup_bucket_seconds": 900}}
        )
    with pytest.raises(ConfigError, match="coarse_rollup_bucket_seconds 61 must be whole"):
        config_from_dict({"store": {"coarse_rollup_bucket_seconds": 61}})
    for bad in (0, -1, "30", True):
        with pytest.raises(ConfigError, match=f"coarse_rollup_retention_days {bad!r} must be"):
            config_from_dict({"store": {"coarse_rollup_retention_days": bad}})


def test_page_cache_is_configurable_and_validated(tmp_path: Path) -> None:
    assert config_from_dict({}).store.cache_mb == 64
    doc = {"store": {"path": str(tmp_path / "c.db"), "cache_mb": 16}}
    coll = Collector(config_from_dict(doc))
    # the serve loop's connection and the ingest workers' both get it
    for opener in (coll.opener, coll.ingest_opener):
        st = opener.open()
        try:
            assert st.conn.execute("PRAGMA cache_size").fetchone()[0] == -16 * 1024
        finally:
            st.close()
    for bad in (0, -1, 1.5, "64", True, 65537):
        with pytest.raises(ConfigError, match=f"cache_mb {bad!r} must be a whole number"):
            config_from_dict({"store": {"cache_mb": bad}})


def test_alerts_table_parsed_and_validated(tmp_path: Path) -> None:
    (tmp_path / "sinks.toml").write_text('[[sink]]\ntype = "log"\n')
    (tmp_path / "alerts.toml").write_text("[offline]\nseverity = 'critical'\n")
    doc = {
        "store": {"path": str(tmp_path / "c.db")},
        "alerts": {"every": 5, "duty": 0.5, "sinks": "sinks.toml", "config": "alerts.toml"},
    }
    cfg = config_from_dict(doc, base=tmp_path)
    assert cfg.alerts.enabled and cfg.alerts.every == 5 and cfg.alerts.duty == 0.5
    assert cfg.alerts.sinks_file == tmp_path / "sinks.toml"  # relative to the config file
    svc = build_alert_service(cfg)
    assert svc is not None and svc.every == 5.0 and svc.duty == 0.5
    assert config_from_dict({}).alerts.duty == 0.25
    assert config_from_dict({}).alerts.full_duty == 0.02
    tuned = build_alert_service(config_from_dict({**doc, "alerts": {"full_duty": 0.01}}, tmp_path))
    assert tuned is not None and tuned.full_duty == 0.01
    assert [s.name for s in svc.sinks] == ["log"] and svc.config.offline_severity == "critical"
    assert config_from_dict({"alerts": {"enabled": False}}).alerts.enabled is False
    assert build_alert_service(config_from_dict({"alerts": {"enabled": False}})) is None
    for bad, msg in (
        ({"every": 0}, "between 1 and 86400"),
        ({"every": "often"}, "must be a number"),
        ({"duty": 0}, "duty 0 must be between 0.01 and 1"),
        ({"duty": 1.5}, "duty 1.5 must be between 0.01 and 1"),
        ({"duty": "half"}, "duty 'half' must be a number"),
        ({"full_duty": 0}, "full_duty 0 must be between 0.001 and 1"),
        ({"full_duty": True}, "full_duty True must be a number"),
        ({"enabled": "yes"}, "true or false"),
        ({"sinks": "missing.toml"}, "alerts sinks file .*missing.toml does not exist"),
        ({"colour": "red"}, r"unknown key\(s\) in \[alerts\]: colour"),
    ):
        with pytest.raises(ConfigError, match=msg):
            config_from_dict({"alerts": bad}, base=tmp_path)
    with pytest.raises(ConfigError, match="alerts policy file"):
        AlertSettings(policy_file=tmp_path / "nope.toml")


def test_maintenance_time_is_measured_for_metrics(tmp_path: Path) -> None:
    # rollups and retention run in the serve loop: /metrics shows what they cost
    cfg = config_from_dict(
        {"store": {"path": str(tmp_path / "m.db")}, "alerts": {"enabled": False}}
    )
    coll = Collector(cfg)
    coll.store = coll.opener.open()
    try:
        now = 1_795_400_000.0
        body = {"interval": 30, "cpu": {"pct": 5.0}}
        envs = [E.make(f"d{i}", "b", 1, "health", body, ts=now - 600) for i in range(2000)]
        coll.store.apply(envs, now - 600)
        before = _metric_value(coll.metrics_text(), "dunewatch_maintenance_cpu_seconds_total")
        coll.maintain(now)
        text = coll.metrics_text()
        assert coll.store.rollups("d0", 0)  # the maintenance folded the reports
        assert _metric_value(text, "dunewatch_maintenance_cpu_seconds_total") > before == 0
        assert _metric_value(text, "dunewatch_maintenance_seconds") > 0
        assert "# TYPE dunewatch_maintenance_seconds gauge" in text
    finally:
        coll.stop()


def _metric_value(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found is not None, text
    return float(found.group(1))
