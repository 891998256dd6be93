"""The running agent holds no more than it uses (docs/agent.md, "Footprint").

Pins the savings of agent/deferred.py and the small `run` parser on a real agent process that
reports to a real mosquitto: after delivering reports it has not imported argparse, inspect,
ssl, hashlib or urllib.request, and no OpenSSL library is mapped into it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.mqtt_support import Recorder, write_config
from tests.support.services import wait_until

pytestmark = pytest.mark.integration

# Runs the agent's CLI; when the test creates the trigger file, records sys.modules and stops
# the agent the way systemd does (SIGTERM).
HARNESS = """
import json, os, signal, sys, threading, time
trigger, out = sys.argv[1], sys.argv[2]
def dump():
    while not os.path.exists(trigger):
        time.sleep(0.05)
    with open(out, "w") as fh:
        json.dump(sorted(sys.modules), fh)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=dump, daemon=True).start()
from agent.cli import main
sys.argv[1:] = sys.argv[3:]
sys.exit(main())
"""

NOT_RESIDENT = (
    "argparse",  # `run` flags are read by agent.cli.parse_run_args
    "shutil",  # argparse's help formatter imports it (and bz2, lzma)
    "inspect",  # dataclasses imports it, agent/deferred.py defers it
    "ast",
    "dis",
    "ssl",  # plain mqtt:// broker: paho gets a stand-in
    "_ssl",
    "hashlib",
    "_hashlib",
    "urllib.request",
    "http.client",
    "email",
    "queue",
    "agent.inventory",  # runs in the inventory child
    "agent.once",
)


def openssl_mapped(pid: int) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted(
        {ln.split()[-1] for ln in maps.splitlines() if "libssl" in ln or "libcrypto" in ln}
    )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {}
    yield state
    proc = state.get("proc")
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_plain_agent_keeps_unused_modules_and_openssl_out(
    mosquitto: Any, tmp_path: Path, harness: dict[str, Any]
) -> None:
    rec = Recorder(mosquitto.port).start()
    try:
        cfg = write_config(tmp_path, mosquitto.port, "dev-1", "dev-1-pw")
        trigger, out = tmp_path / "dump-now", tmp_path / "modules.json"
        log = (tmp_path / "agent.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        proc = harness["proc"] = subprocess.Popen(
            [sys.executable, "-c", HARNESS, str(trigger), str(out), "run", "--config", str(cfg)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_until(
            lambda: len(rec.of("dev-1", "health")) >= 3 and rec.of("dev-1", "inventory"),
            30,
            "health reports and the inventory",
        )
        assert openssl_mapped(proc.pid) == []
        # re-executed itself (same PID) with one malloc arena
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=1" in environ
        trigger.touch()
        assert proc.wait(30) == 0, (tmp_path / "agent.log").read_text()
    finally:
        rec.stop()
    loaded = set(json.loads(out.read_text()))
    assert {"paho.mqtt.client", "sqlite3", "dataclasses", "agent.loop"} <= loaded  # it ran
    # what this interpreter imports before any agent code runs (site, .pth files) is not ours
    startup = subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    added = loaded - set(json.loads(startup.stdout))
    assert sorted(added.intersection(NOT_RESIDENT)) == []


def test_operator_malloc_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import cli

    def no_exec(*args: object) -> None:
        raise AssertionError("must not re-exec")

    monkeypatch.setattr(os, "execv", no_exec)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    cli._reexec_with_malloc_env()
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
