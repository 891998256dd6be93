"""`dunewatch collector serve` as a process: SIGKILL mid-stream loses nothing, SIGTERM flushes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.broker.mosquitto import free_port
from tests.collector.helpers import Publisher, count, health, stored_seqs
from tests.support.services import wait_until

pytestmark = pytest.mark.integration


def _serve(
    port: int, db: Path, pwfile: Path, metrics: int, log: Path, config: str = ""
) -> subprocess.Popen[bytes]:
    conf = db.with_suffix(".toml")
    conf.write_text("[liveness]\nsweep_seconds = 0.2\n" + config)
    cmd = [
        sys.executable,
        "-m",
        "collector.cli",
        "collector",
        "serve",
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--db",
        str(db),
        "--username",
        "collector",
        "--password-file",
        str(pwfile),
        "--metrics",
        f"127.0.0.1:{metrics}",
        "--client-id",
        "serve-test",
        "--config",
        str(conf),
    ]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def test_sigkill_mid_stream_then_restart_loses_nothing(mosquitto: Any, tmp_path: Path) -> None:
    db, pw, log = tmp_path / "c.db", tmp_path / "pw", tmp_path / "serve.log"
    pw.write_text("collector-pw\n")
    mport = free_port()
    proc = _serve(mosquitto.port, db, pw, mport, log)
    try:
        wait_until(lambda: "dunewatch_broker_connected 1" in _metrics(mport), 30, "serve up")
        total = 4000
        boot = E.new_boot_id()
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        now = time.time()

        def stream() -> None:
            infos = [
                pub.client.publish(
                    "dunewatch/v1/dev-1/health", health("dev-1", boot, s, now + s).encode(), qos=1
                )
                for s in range(1, total + 1)
            ]
            for info in infos:
                assert info.rc == 0
                info.wait_for_publish(60)

        sender = threading.Thread(target=stream)
        sender.start()
        wait_until(
            lambda: db.exists() and count(db, "SELECT count(*) FROM health") >= 200,
            60,
            "part of the stream stored",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        stored_at_kill = count(db, "SELECT count(*) FROM health")
        sender.join(120)
        pub.close()
        assert stored_at_kill < total, "the kill should land mid-stream"
        proc = _serve(mosquitto.port, db, pw, mport, log)
        wait_until(
            lambda: stored_seqs(db, "dev-1") == set(range(1, total + 1)),
            60,
            "every published seq stored after restart",
        )
        assert count(db, "SELECT count(*) FROM health") == total  # each exactly once
        wait_until(lambda: "dunewatch_broker_connected 1" in _metrics(mport), 30, "metrics")
        text = _metrics(mport)
        assert "# TYPE dunewatch_ingest_messages_total counter" in text
        assert 'dunewatch_devices{status="online"} 1' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "collector stopped" in log.read_text()


def test_sigterm_commits_the_current_batch(mosquitto: Any, tmp_path: Path) -> None:
    db, pw, log = tmp_path / "c.db", tmp_path / "pw", tmp_path / "serve.log"
    pw.write_text("collector-pw\n")
    mport = free_port()
    # batches would only commit after 10 minutes or 100k rows: only SIGTERM can flush them
    proc = _serve(
        mosquitto.port, db, pw, mport, log, "[ingest]\nbatch_ms = 600000\nbatch_rows = 100000\n"
    )
    try:
        wait_until(lambda: "dunewatch_broker_connected 1" in _metrics(mport), 30, "serve up")
        pub = Publisher(mosquitto.port, "dev-2", "dev-2-pw")
        boot = E.new_boot_id()
        for s in range(1, 21):
            pub.send_env(health("dev-2", boot, s, time.time()))
        pub.close()
        wait_until(lambda: "dunewatch_ingest_received_total 20" in _metrics(mport), 30, "received")
        assert not db.exists() or count(db, "SELECT count(*) FROM health") == 0
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert stored_seqs(db, "dev-2") == set(range(1, 21))


def test_serve_flag_errors_are_one_line(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "collector.cli", "collector", "serve", "--broker", "http://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("dunewatch: error: broker url 'http://x' must look like")
    bad = tmp_path / "c.toml"
    bad.write_text("[ingest]\nworkers = 0\n")
    res = subprocess.run(
        [sys.executable, "-m", "collector.cli", "collector", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "workers 0 must be 1..64" in res.stderr


@pytest.mark.parametrize("reader", ["paho", "lean"])
def test_worker_processes_on_a_shared_subscription(
    mosquitto: Any, tmp_path: Path, reader: str
) -> None:
    db, pw, log = tmp_path / "c.db", tmp_path / "pw", tmp_path / "serve.log"
    pw.write_text("collector-pw\n")
    mport = free_port()
    proto = "3.1.1" if reader == "lean" else "5"
    conf = f'[ingest]\nworkers = 2\nreader = "{reader}"\n[broker]\nprotocol = "{proto}"\n'
    proc = _serve(mosquitto.port, db, pw, mport, log, conf)
    try:
        wait_until(lambda: "dunewatch_broker_connected 2" in _metrics(mport), 60, "2 workers up")
        boot = E.new_boot_id()
        pubs = [Publisher(mosquitto.port, d, f"{d}-pw") for d in ("dev-1", "dev-2")]
        now = time.time()
        infos = []
        for s in range(1, 301):
            for dev, p in zip(("dev-1", "dev-2"), pubs, strict=True):
                env = health(dev, boot, s, now + s)
                infos.append(p.client.publish(f"dunewatch/v1/{dev}/health", env.encode(), qos=1))
        for info in infos:
            info.wait_for_publish(60)
        for p in pubs:
            p.close()
        wait_until(
            lambda: (
                stored_seqs(db, "dev-1") == set(range(1, 301))
                and stored_seqs(db, "dev-2") == set(range(1, 301))
            ),
            60,
            "both streams",
        )
        assert count(db, "SELECT count(*) FROM health") == 600
        assert count(db, "SELECT sum(gap) FROM ingest_stats") == 0
        text = _metrics(mport)
        assert 'dunewatch_ingest_messages_total{result="accepted"} 600' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
