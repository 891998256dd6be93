"""docs/deploy.md is executable: its `sh` blocks run verbatim, in order, against real services.

Only the first block (where things go) is replaced: the directories point into tmp_path and the
broker, metrics, SNMP and Datasette addresses at free loopback ports. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "deploy.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def _free(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sandbox() -> Iterator[dict[str, str]]:
    # mosquitto reads its files after dropping to its own user: pytest's tmp_path sits under a
    # 0700 directory it cannot enter, so the sandbox is a world-traversable directory of its own
    tmp_path = Path(tempfile.mkdtemp(prefix="dunewatch-deploy-"))
    tmp_path.chmod(0o755)
    env = {
        "DW_ETC": str(tmp_path / "etc"),
        "DW_DATA": str(tmp_path / "data"),
        "DW_RUN": str(tmp_path / "run"),
        "DW_HOST": "localhost",
        "DW_LISTEN": "127.0.0.1",
        "DW_PORT": str(_free()),
        "DW_METRICS": f"127.0.0.1:{_free()}",
        "DW_MQTT_STATE": str(tmp_path / "mqtt-state"),
        "DW_CAMERA": f"127.0.0.1:{_free(socket.SOCK_DGRAM)}",
        "DW_DATASETTE_PORT": str(_free()),
    }
    yield env
    # whatever the script started and did not stop (it failed half way): stop it by pid
    run = Path(env["DW_RUN"])
    # (a daemon the guide stopped removes its pid file on its way out, so one listed here may be
    # gone by the time it is read)
    for pid_file in run.glob("*.pid") if run.is_dir() else ():
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (ValueError, IndexError, FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_first_block_only_sets_variables() -> None:
    first = sh_blocks(DOC.read_text())[0]
    names = set(re.findall(r"\b(DW_[A-Z_]+)=", first))
    lines = [ln for ln in first.splitlines() if ln.strip() and not ln.startswith("#")]
    assert all(ln.startswith("export ") for ln in lines), lines
    assert names == {
        "DW_ETC",
        "DW_DATA",
        "DW_RUN",
        "DW_HOST",
        "DW_LISTEN",
        "DW_PORT",
        "DW_METRICS",
        "DW_MQTT_STATE",
        "DW_CAMERA",
        "DW_DATASETTE_PORT",
    }


def test_every_deployment_command_in_the_guide_runs(sandbox: dict[str, str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("the guide hands files to the mosquitto user with chown: needs root")
    for tool, pkg in (
        ("mosquitto", "mosquitto"),
        ("mosquitto_passwd", "mosquitto"),
        ("openssl", "openssl"),
        ("curl", "curl"),
    ):
        require_tool(tool, pkg)
    for tool in ("sqlite-utils", "datasette"):
        require_tool(tool, f"pip: {tool}")
    blocks = sh_blocks(DOC.read_text())
    exports = "".join(f"export {k}={v!s}\n" for k, v in sandbox.items())
    script = "set -euo pipefail\n" + exports + "\n".join(blocks[1:])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    run = Path(sandbox["DW_RUN"])
    logs = "".join(
        f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
        for p in sorted(run.glob("*.log"))
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + logs
    data = Path(sandbox["DW_DATA"])
    # the agent's one-shot report from the bundle is the contract's envelopes
    once = json.loads((run / "once.json").read_text())
    assert once
    # the gateway reached the collector over TLS and the report names it
    assert "gw-0007" in proc.stdout
    assert (data / "report.html").stat().st_size > 10_000
    assert "gw-0007" in (run / "devices.json").read_text()
    # the targets file holds the SNMPv3 camera, with its secrets kept out of `snmp list`
    assert "cam-0001" in proc.stdout and "authpass123" not in proc.stdout
