"""SBOM test fixtures: real Debian binaries, fixture roots and a small fake knowledge base."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import IN_CI

ROOTS = Path(__file__).resolve().parents[1] / "data" / "rootfs"
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"

# Debian packages whose binaries carry the version strings the ELF scanner must find.
REAL_DEBS = (
    "busybox-static",
    "libssl3",
    "dropbear-bin",
    "dnsmasq-base",
    "lighttpd",
    "curl",
    "libcurl4",
    "libsqlite3-0",
    "libmbedcrypto7",
    "libwolfssl35",
    "zlib1g",
    "openvpn",
    "wpasupplicant",
    "libsnmp40",
    "mosquitto",
    "libc6",
    "openssh-client",
)


@dataclass(frozen=True)
class RealDebs:
    root: Path  # every package extracted into one tree (no package database)
    versions: dict[str, str]  # package name -> Debian version, read from the .deb itself


def _unavailable(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg + " (CI must be able to download Debian packages)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def real_debs(tmp_path_factory: pytest.TempPathFactory) -> RealDebs:
    """`apt-get download` the packages and `dpkg-deb -x` them: real binaries, real versions."""
    apt, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg_deb is None:
        _unavailable("apt-get/dpkg-deb not installed")
    assert apt is not None and dpkg_deb is not None
    base = tmp_path_factory.mktemp("debs")
    dl = base / "download"
    dl.mkdir()
    dl.chmod(0o777)  # apt drops to the _apt user for downloads
    try:
        proc = subprocess.run(
            [apt, "download", *REAL_DEBS], cwd=dl, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        _unavailable("apt-get download timed out")
    debs = sorted(dl.glob("*.deb"))
    if proc.returncode != 0 or len(debs) != len(REAL_DEBS):
        _unavailable(f"apt-get download failed: {proc.stderr.strip()[-300:]}")
    root = base / "root"
    versions = {}
    for deb in debs:
        subprocess.run([dpkg_deb, "-x", str(deb), str(root)], check=True)
        fields = subprocess.run(
            [dpkg_deb, "-f", str(deb), "Package", "Version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info = dict(line.split(": ", 1) for line in fields.splitlines())
        versions[info["Package"]] = info["Version"]
    return RealDebs(root=root, versions=versions)


@dataclass(frozen=True)
class FakeOrg:
    name: str
    ultimate_parent: str | None
    controlling_country: str | None
    community: bool
    source: str


@dataclass(frozen=True)
class FakeInfo:
    layer: str
    product: str | None
    supplier: str | None
    community: bool
    cpe_vendor: str | None
    cpe_product: str | None
    substitutability: float | None
    source: str


@dataclass(frozen=True)
class FakePart:
    kind: str
    manufacturer: str
    part_number: str
    substitutability: float | None


@dataclass(frozen=True)
class FakeLifecycle:
    status: str
    eol: str | None
    cycle: str | None
    latest: str | None
    versions_behind: int | None
    source: str


class FakeKnowledge:
    """A tiny stand-in for firmware_db with invented test entries (not reference data)."""

    orgs = {
        "Example Silicon": FakeOrg("Example Silicon", "Example Holdings", "ZZ", False, "test"),
        "OpenSSL": FakeOrg("OpenSSL", None, "XX", False, "test"),
        "BusyBox": FakeOrg("BusyBox", None, None, True, "test"),
        "Example Cameras": FakeOrg("Example Cameras", None, "XY", False, "test"),
    }
    infos = {
        "busybox": FakeInfo("os", "busybox", "BusyBox", True, "busybox", "busybox", None, "test"),
        "libssl3": FakeInfo("crypto", "openssl", "OpenSSL", False, "openssl", "openssl", 0.5, "t"),
        "libopenssl3": FakeInfo(
            "crypto", "openssl", "OpenSSL", False, "openssl", "openssl", 0.5, "t"
        ),
        "openssl": FakeInfo("crypto", "openssl", "OpenSSL", False, "openssl", "openssl", 0.5, "t"),
        "linux": FakeInfo("os", "linux", None, True, "linux", "linux_kernel", None, "test"),
    }

    def component_info(self, name: str, manager: str | None) -> Any:
        return self.infos.get(name)

    def vendor(self, name: str) -> Any:
        return self.orgs.get(name)

    def part(self, name_or_compatible: str) -> Any:
        if name_or_compatible.lower() in ("qcom,ipq4019", "ipq4019"):
            return FakePart("soc", "Example Silicon", "IPQ4019", 0.0)
        return None

    def lifecycle(self, product: str, version: str) -> Any:
        if product == "openssl":
            return FakeLifecycle("supported", "2026-09-07", "3.0", "3.0.99", 3, "test")
        return None


@pytest.fixture
def fake_kb() -> FakeKnowledge:
    return FakeKnowledge()
