"""Probes: real psutil readings, failure isolation and the 1 KB budget of the health message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent import envelope as wire
from agent.config import PROBE_NAMES as CONFIG_PROBES
from agent.probes import PROBE_NAMES, ProbeError, build_probes, run_probes
from agent.probes.uptime import UptimeProbe


class Broken:
    name = "temp"

    def collect(self) -> dict[str, Any]:
        raise PermissionError("/sys/class/hwmon/hwmon0/temp1_input")


class Fine:
    name = "procs"

    def collect(self) -> dict[str, Any]:
        return {"procs": 3}


def test_config_and_registry_know_the_same_probes() -> None:
    assert CONFIG_PROBES == PROBE_NAMES


def test_real_probes_make_a_valid_health_body_under_one_kilobyte() -> None:
    probes = build_probes(agent_stats=lambda: {"outbox": 0, "outbox_bytes": 0, "drops": 0})
    run_probes(probes, 10)  # first round primes the CPU counters
    body = run_probes(probes, 10)
    env = wire.make("gw-1", "b" * 32, 123456, wire.KIND_HEALTH, body)
    assert wire.parse(env.encode()).body == body
    assert len(env.encode()) <= 1024, env.encode()
    assert body["interval"] == 10 and isinstance(body["interval"], int)
    assert 0 <= body["cpu"]["pct"] <= 100 and body["cpu"]["n"] >= 1
    assert body["mem"]["total"] > body["mem"]["avail"] > 0
    assert "/" in body["disk"] or body["disk"]
    assert body["uptime"] > 0 and body["procs"] > 1
    assert body["agent"]["rss"] > 1 and "outbox" in body["agent"]
    assert "errors" not in body


def test_a_failing_probe_is_recorded_and_the_others_still_report() -> None:
    body = run_probes([Broken(), Fine()], 5)
    assert body["procs"] == 3
    assert body["errors"] == {"temp": "PermissionError: /sys/class/hwmon/hwmon0/temp1_input"}
    wire.make("gw-1", "b", 1, wire.KIND_HEALTH, body)  # still a valid report


def test_unreadable_proc_entry_is_a_probe_error(tmp_path: Path) -> None:
    body = run_probes([UptimeProbe(tmp_path), Fine()], 5)
    assert body["errors"]["uptime"].startswith("FileNotFoundError")
    assert body["procs"] == 3


def test_uptime_reads_the_given_root(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "uptime").write_text("3600.50 7000.00\n")
    assert UptimeProbe(tmp_path).collect()["uptime"] == 3600
    (tmp_path / "proc" / "uptime").write_text("garbage\n")
    body = run_probes([UptimeProbe(tmp_path)], 5)
    assert "unparsable" in body["errors"]["uptime"]


def test_unknown_probe_name_is_rejected() -> None:
    try:
        build_probes(["cpu", "gpu"])
    except ProbeError as exc:
        assert "gpu" in str(exc)
    else:
        raise AssertionError("unknown probe accepted")


def test_long_error_text_is_truncated() -> None:
    class Noisy:
        name = "net"

        def collect(self) -> dict[str, Any]:
            raise OSError("x" * 5000)

    body = run_probes([Noisy()], 5)
    assert len(body["errors"]["net"]) <= 120
