"""`dunewatch up` and `dunewatch demo` end to end, run as a user types them (the real CLI).

Short durations keep the whole file well under a minute; every wait is on a condition.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from collector.stack import local_device_id
from collector.store import DeviceSummary, open_store
from tests.support.services import require_tool, wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 180


def _cli() -> list[str]:
    exe = shutil.which("dunewatch")
    return [exe] if exe else [sys.executable, "-m", "collector.cli"]


def _tiny_rootfs(root: Path) -> Path:
    """A root filesystem small enough to scan in a moment (the real / takes minutes)."""
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    (root / "var/lib/dpkg/status").write_text(
        "Package: openssl\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\n"
        "Architecture: amd64\n\n"
    )
    return root


def _devices(db: Path, prefix: str) -> list[DeviceSummary]:
    store = open_store(db)
    try:
        return [d for d in store.devices() if d.device_id.startswith(prefix)]
    finally:
        store.close()


def _inventory(db: Path, device_id: str) -> dict[str, object] | None:
    store = open_store(db)
    try:
        return store.current_inventory(device_id)
    finally:
        store.close()


def _health_count(db: Path, device_id: str) -> int:
    store = open_store(db)
    try:
        return len(store.health_history(device_id, since=0.0))
    finally:
        store.close()


def _env_without_mosquitto() -> dict[str, str]:
    """PATH with every directory holding mosquitto removed, and no sbin fallback."""
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "mosquitto").exists()
    ]
    py_dir = str(Path(sys.executable).parent)
    if py_dir not in keep:
        keep.insert(0, py_dir)
    return {**os.environ, "PATH": os.pathsep.join(keep), "DUNEWATCH_SEARCH_SBIN": "0"}


def test_demo_runs_the_whole_system_and_writes_the_report(tmp_path: Path) -> None:
    require_tool("mosquitto", "mosquitto")
    data = tmp_path / "data"
    proc = subprocess.run(
        [
            *_cli(),
            "demo",
            "--devices",
            "16",
            "--duration",
            "8",
            "--data-dir",
            str(data),
            "--scan-root",
            str(_tiny_rootfs(tmp_path / "rootfs")),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, err = proc.stdout, proc.stderr
    # where things are, then the summary: states, fleet DDI by layer, top alerts
    for line in ("database", "report", "metrics", "broker"):
        assert any(r.startswith(line) for r in out.splitlines()), out
    assert "mosquitto" in out.splitlines()[0]
    assert "Devices by state" in out and "SIMULATED" in out
    assert "Fleet Digital Dune Index" in out
    assert "Top alerts" in out
    assert "stopped cleanly" in err
    # progress was visible on stderr while it ran
    assert "simulated fleet: " in err and "[" in err
    # the report exists and labels the simulated fleet
    report = data / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    assert "simulated" in report.read_text(encoding="utf-8").lower()
    # the database holds the fleet, every simulated device flagged, and this machine, not flagged
    db = data / "dunewatch.db"
    sims = _devices(db, "sim-")
    assert len(sims) == 16 and all(d.simulated for d in sims)
    assert {d.status for d in sims} <= {"online", "offline", "stale"}
    assert all(d.tags.get("simulated") == "true" and d.tags.get("district") for d in sims)
    local = _devices(db, "local-")
    # this machine: real, reported health, and said `offline` when the run ended
    assert [(d.simulated, d.status) for d in local] == [(False, "offline")]
    assert _health_count(db, local[0].device_id) > 0
    # the simulated inventories arrived through the broker with their simulated flag
    agent_sim = next(d for d in sims if d.source == "agent")
    inv = _inventory(db, agent_sim.device_id)
    assert inv is not None and inv["simulated"] is True
    # the agentless simulated devices were polled over SNMPv3 and have an inventory
    snmp_sims = [d for d in sims if d.source == "snmp"]
    assert snmp_sims
    assert any(_inventory(db, d.device_id) for d in snmp_sims)
    # the machine's own SBOM was written
    assert json.loads((data / "this-machine.cdx.json").read_text())["bomFormat"] == "CycloneDX"


def test_up_falls_back_to_the_embedded_broker_and_reuses_its_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env_without_mosquitto()
    args = [*_cli(), "--log-format", "json", "up", "--duration", "3", "--data-dir", str(data)]
    args.append("--no-scan")
    first = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "embedded" in first.stdout.splitlines()[0]
    # logs and progress are JSON lines for a log shipper, the warning among them
    logs = [json.loads(line) for line in first.stderr.splitlines() if line.strip()]
    assert any("MQTT 3.1.1 only, no shared subscriptions" in r["msg"] for r in logs)
    assert any(r["msg"] == "stopped cleanly" for r in logs)
    creds = json.loads((data / "credentials.json").read_text())
    assert oct((data / "credentials.json").stat().st_mode & 0o777) == "0o600"
    db = data / "dunewatch.db"
    local = [d.device_id for d in _devices(db, "local-")]
    assert len(local) == 1
    assert _health_count(db, local[0]) > 0, "the local agent's health reached the database"
    # a second run reuses the directory: same credentials, same device, more reports
    second = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads((data / "credentials.json").read_text()) == creds
    assert [d.device_id for d in _devices(db, "local-")] == local
    assert (data / "report.html").is_file()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_cleanly_on_a_signal_and_serves_metrics(tmp_path: Path, sig: int) -> None:
    require_tool("mosquitto", "mosquitto")
    data = tmp_path / "data"
    refresh = ["--report-every", "1"] if sig == signal.SIGINT else []
    proc = subprocess.Popen(
        [*_cli(), "up", "--data-dir", str(data), "--no-scan", *refresh],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("credentials") for line in lines):
            line = proc.stdout.readline()
            assert line, "up exited before printing where things are"
            lines.append(line)
        metrics = next(line.split()[1] for line in lines if line.startswith("metrics"))
        assert metrics.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(metrics, timeout=10) as resp:
            assert b"dunewatch_" in resp.read()
        db = data / "dunewatch.db"
        wait_until(
            lambda: [d.status for d in _devices(db, "local-")] == ["online"],
            timeout=30,
            what="the local agent online",
        )
        if refresh:  # a long run keeps its report fresh
            wait_until((data / "report.html").is_file, timeout=60, what="a refreshed report")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert f"{signal.Signals(sig).name}: stopping" in err and "stopped cleanly" in err
    assert ("report refreshed" in err) == bool(refresh)
    # the local agent said goodbye: offline by clean shutdown, not by silence
    assert [d.status for d in _devices(db, "local-")] == ["offline"]
    # nothing left listening: the mosquitto this run started is gone
    with pytest.raises(OSError):
        urllib.request.urlopen(metrics, timeout=2)


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    bad = subprocess.run(
        [*_cli(), "demo", "--devices", "-3"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "--devices" in bad.stderr and "must be >= 0" in bad.stderr
    url = subprocess.run(
        [*_cli(), "up", "--broker", "http://x", "--data-dir", str(tmp_path / "d"), "--no-scan"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert url.returncode == 2
    assert "broker URL 'http://x': scheme must be mqtt:// or mqtts://" in url.stderr
    assert "Traceback" not in url.stderr


def test_up_uses_a_broker_given_by_url(tmp_path: Path, mosquitto_factory: Any) -> None:
    """An existing broker: the collector logs in with the URL's user, the local agent as itself
    with the password the operator enrolled (kept in credentials.json)."""
    data = tmp_path / "data"
    data.mkdir()
    dev = local_device_id()
    (data / "credentials.json").write_text(json.dumps({"users": {dev: "agent-pw"}}))
    broker = mosquitto_factory({dev: "agent-pw"})
    url = f"mqtt://collector:collector-pw@127.0.0.1:{broker.port}"
    proc = subprocess.run(
        [*_cli(), "up", "--broker", url, "--duration", "3", "--data-dir", str(data), "--no-scan"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"127.0.0.1:{broker.port} (url, MQTT 5)" in proc.stdout.splitlines()[0]
    assert "is not managed here" in proc.stderr
    assert not (data / "mosquitto").exists()  # nothing of ours was started
    assert _health_count(data / "dunewatch.db", dev) > 0
