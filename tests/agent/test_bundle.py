"""The single-file bundle runs in a fresh venv that holds only psutil and paho-mqtt."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import paho
import psutil
import pytest

from agent import envelope as wire

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy"))
from build_bundle import build  # type: ignore[import-not-found]  # noqa: E402

pytestmark = pytest.mark.integration


def _site_packages(venv: Path) -> Path:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _install_runtime(venv: Path) -> str:
    """pip from the index (or its cache); if that is unreachable, copy this machine's installs."""
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "psutil",
            "paho-mqtt>=2,<3",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if pip.returncode == 0:
        return "pip"
    site = _site_packages(venv)
    for mod in (psutil, paho):
        src = Path(mod.__file__).parent  # type: ignore[arg-type]
        shutil.copytree(src, site / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    return "copied"


def test_bundle_holds_only_the_agent_and_runs_in_a_bare_venv(tmp_path: Path) -> None:
    pyz = build(tmp_path / "dunewatch-agent.pyz")
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names and "agent/cli.py" in names and "agent/envelope.py" in names
    assert all(n.startswith(("__main__.py", "agent/")) for n in names), names
    # byte-code only beside its source, never stale __pycache__ copies from the checkout
    assert all(n[:-1] in names for n in names if n.endswith(".pyc"))
    assert not any("__pycache__" in n for n in names)

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    _install_runtime(venv)
    py = str(venv / "bin" / "python")
    # the venv really is bare: no server-side libraries and not our editable checkout
    probe = subprocess.run(
        [
            py,
            "-c",
            "import importlib.util as u; print([m for m in ('sqlite_utils', 'pysnmp', 'collector',"
            " 'agent') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "[]"

    out = subprocess.run(
        [py, str(pyz), "once", "--json", "--device-id", "bundle-test"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert wire.from_dict(report["health"]).body["cpu"]["n"] >= 1
    assert wire.from_dict(report["inventory"]).device_id == "bundle-test"
