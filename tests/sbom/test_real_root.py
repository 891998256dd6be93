"""Accuracy on this machine's real Debian root: every dpkg package with its exact version."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sbom import output
from sbom.builders.rootfs import RootfsBuilder
from sbom.scanners.dpkg import DpkgScanner
from sbom.scanners.osrelease import OsReleaseScanner
from sbom.scanners.python import PythonScanner


def test_every_dpkg_package_with_its_exact_version() -> None:
    exe = shutil.which("dpkg-query")
    if exe is None or not Path("/var/lib/dpkg/status").is_file():
        pytest.skip("not a dpkg system")
    out = subprocess.run(
        [
            exe,
            "--admindir=/var/lib/dpkg",
            "-W",
            "-f",
            "${db:Status-Status} ${Package} ${Version}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {
        (name, version)
        for status, name, version in (line.split(" ", 2) for line in out.splitlines())
        if status not in ("not-installed", "config-files")
    }
    bom = RootfsBuilder(
        Path("/"),
        device_id="this-host",
        scanners=(OsReleaseScanner(), DpkgScanner(), PythonScanner()),
    ).build()
    doc = json.loads(output.render(bom))  # the whole thing must validate, too
    got = {
        (c["name"], c["version"])
        for c in doc["components"]
        if c.get("purl", "").startswith("pkg:deb/")
    }
    assert got == expected
    assert len(expected) > 100
