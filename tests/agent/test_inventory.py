"""Inventory readers on fixture root filesystems in real formats, and on this machine's own root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent import envelope
from agent.inventory import collect, inventory_hash, rootfs, system
from agent.inventory.errors import PackageDbError
from agent.inventory.packages import read_apk, read_dpkg, read_opkg, read_python

ROOTS = Path(__file__).resolve().parents[1] / "data" / "rootfs"
DEBIAN, OPENWRT, ALPINE = ROOTS / "debian", ROOTS / "openwrt", ROOTS / "alpine"


def _dpkg_query(admindir: Path) -> dict[str, str]:
    """Installed packages and versions according to dpkg itself (the independent oracle)."""
    exe = shutil.which("dpkg-query")
    if exe is None:
        pytest.skip("dpkg-query not installed")
    out = subprocess.run(
        [
            exe,
            f"--admindir={admindir}",
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status not in ("not-installed", "config-files"):
            found[name] = version
    return found


def test_dpkg_fixture_matches_dpkg_query() -> None:
    pkgs = read_dpkg(DEBIAN)
    assert {p.name: p.version for p in pkgs} == _dpkg_query(DEBIAN / "var/lib/dpkg")
    assert "rsyslog" not in {p.name for p in pkgs}  # config-files only: removed
    assert all(p.manager == "dpkg" and p.db == "var/lib/dpkg/status" for p in pkgs)


def test_dpkg_fields_and_files() -> None:
    by_name = {p.name: p for p in read_dpkg(DEBIAN, with_files=True)}
    ssl = by_name["libssl3"]
    assert ssl.source == "openssl" and ssl.arch == "amd64"
    assert "/usr/lib/x86_64-linux-gnu/libssl.so.3" in ssl.files  # from info/libssl3:amd64.list
    assert "/usr/bin/openssl" in by_name["openssl"].files  # from info/openssl.list
    assert by_name["zlib1g"].version.startswith("1:")  # epoch kept verbatim
    assert read_dpkg(DEBIAN)[0].files == ()  # files only on request


def test_dpkg_on_this_machine_matches_dpkg_query() -> None:
    if not Path("/var/lib/dpkg/status").is_file():
        pytest.skip("not a dpkg system")
    mine = {p.name: p.version for p in read_dpkg(Path("/"))}
    assert mine == _dpkg_query(Path("/var/lib/dpkg"))


def test_opkg_fixture() -> None:
    pkgs = read_opkg(OPENWRT, with_files=True)
    names = [p.name for p in pkgs]
    # var/lib/opkg is a symlink to usr/lib/opkg: each package once; not-installed ones left out
    assert names == sorted(set(names))
    assert set(names) == {
        "libc",
        "busybox",
        "dropbear",
        "dnsmasq",
        "libopenssl3",
        "libmbedtls12",
        "kernel",
    }
    by_name = {p.name: p for p in pkgs}
    assert by_name["busybox"].version == "1.36.1-1"
    assert by_name["busybox"].arch == "arm_cortex-a7_neon-vfpv4"
    assert "/bin/busybox" in by_name["busybox"].files
    assert by_name["libopenssl3"].files == ("/usr/lib/libssl.so.3", "/usr/lib/libcrypto.so.3")


def test_apk_fixture() -> None:
    pkgs = {p.name: p for p in read_apk(ALPINE, with_files=True)}
    assert {n: p.version for n, p in pkgs.items()} == {
        "musl": "1.2.4_git20230717-r4",
        "busybox": "1.36.1-r15",
        "libcrypto3": "3.1.4-r5",
        "libssl3": "3.1.4-r5",
        "apk-tools": "2.14.0-r5",
    }
    assert pkgs["libcrypto3"].source == "openssl"
    assert pkgs["busybox"].files == ("/bin/busybox", "/etc/securetty")


def test_python_dist_info_and_egg_info() -> None:
    deb = {p.name: p for p in read_python(DEBIAN)}
    assert {n: p.version for n, p in deb.items()} == {"PyYAML": "6.0", "six": "1.16.0"}
    assert deb["six"].db.endswith("six-1.16.0.egg-info/PKG-INFO")
    (req,) = read_python(ALPINE, with_files=True)
    assert (req.name, req.version, req.manager) == ("requests", "2.31.0", "pypi")
    # RECORD paths are relative to site-packages, even the ones that climb out of it
    assert "/usr/bin/normalizer" in req.files
    assert "/usr/lib/python3.11/site-packages/requests/api.py" in req.files


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_broken_dpkg_status_names_file_and_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"var/lib/dpkg/status": "Package: a\nStatus: install ok installed\nVersion: 1\n\njunk\n"},
    )
    with pytest.raises(PackageDbError) as err:
        read_dpkg(root)
    assert err.value.path == "var/lib/dpkg/status" and err.value.line == 5
    assert "var/lib/dpkg/status:5" in str(err.value)


def test_installed_without_version_is_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"usr/lib/opkg/status": "Package: x\nStatus: install ok installed\n"})
    with pytest.raises(PackageDbError, match=r"usr/lib/opkg/status:1: .*'x' has no Version"):
        read_opkg(root)


def test_opkg_version_from_control_file(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "usr/lib/opkg/status": "Package: x\nStatus: install user installed\n",
            "usr/lib/opkg/info/x.control": "Package: x\nVersion: 2.0-1\nArchitecture: all\n",
        },
    )
    assert [(p.name, p.version) for p in read_opkg(root)] == [("x", "2.0-1")]


def test_broken_apk_and_python(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "lib/apk/db/installed": "P:ok\nV:1-r0\n\nP:bad\nnot a field\n",
            "usr/lib/python3.11/site-packages/x-1.dist-info/METADATA": "Name: x\n",
        },
    )
    with pytest.raises(PackageDbError, match=r"lib/apk/db/installed:5"):
        read_apk(root)
    with pytest.raises(PackageDbError, match=r"x-1.dist-info/METADATA: .*no Version"):
        read_python(root)
    (tmp_path / "lib/apk/db/installed").write_text("P:ok\nV:1-r0\n\nV:2\n")
    with pytest.raises(PackageDbError, match=r"installed:4: record without P"):
        read_apk(root)


def test_missing_databases_mean_no_packages(tmp_path: Path) -> None:
    for reader in (read_dpkg, read_opkg, read_apk, read_python):
        assert reader(tmp_path) == []


def test_collect_debian_fixture_is_a_valid_inventory() -> None:
    body = collect(DEBIAN)
    env = envelope.make("cam-1", "b" * 32, 1, envelope.KIND_INVENTORY, body)  # validates the body
    assert env.body["source"] == "agent"
    assert body["os"]["id"] == "debian" and body["os"]["source"] == "etc/os-release"
    assert body["os"]["debian_version"] == (DEBIAN / "etc/debian_version").read_text().strip()
    assert body["kernel"]["release"] == "6.1.0-18-amd64"  # lib -> usr/lib -> modules
    assert body["hostname"] == "cam-debian-fixture"
    managers = {(p["name"], p["manager"]) for p in body["packages"]}
    assert ("libssl3", "dpkg") in managers and ("PyYAML", "pypi") in managers
    assert body["hash"] == inventory_hash(body)
    assert "errors" not in body


def test_collect_openwrt_fixture() -> None:
    body = collect(OPENWRT)
    assert body["os"] == {
        "id": "openwrt",
        "name": "OpenWrt",
        "version_id": "23.05.3",
        "pretty_name": "OpenWrt 23.05.3 r23809-234f1a2efa",
        "build_id": "r23809-234f1a2efa",
        "source": "etc/openwrt_release",
    }
    assert body["hostname"] == "gw-openwrt-fixture"  # from UCI etc/config/system
    assert body["macs"] == ["02:00:5e:10:00:01"]  # lo and all-zero addresses left out
    assert body["kernel"]["release"] == "5.15.150"
    hw = body["hardware"]
    assert hw["board"] == "Linksys EA8300 (Dallas)"
    assert hw["compatible"] == ["linksys,ea8300", "qcom,ipq4019"]
    assert hw["cpu_model"] == "ARMv7 Processor rev 5 (v7l)"
    assert body["parts"][0]["kind"] == "soc" and body["parts"][0]["compatible"] == "qcom,ipq4019"
    assert {p["manager"] for p in body["packages"]} == {"opkg"}


def test_collect_alpine_fixture() -> None:
    body = collect(ALPINE)
    assert body["os"]["id"] == "alpine" and body["os"]["alpine_release"] == "3.19.1"
    assert {p["name"] for p in body["packages"] if p["manager"] == "apk"} >= {"musl", "libssl3"}


def test_one_broken_database_does_not_hide_the_rest(tmp_path: Path) -> None:
    shutil.copytree(ALPINE, tmp_path / "root", symlinks=True)
    root = tmp_path / "root"
    _tree(root, {"var/lib/dpkg/status": "garbage line\n"})
    body = collect(root)
    assert body["errors"] == {
        "packages.dpkg": "PackageDbError: var/lib/dpkg/status:1: "
        "expected 'Field: value', got 'garbage line'"
    }
    assert {p["manager"] for p in body["packages"]} == {"apk", "pypi"}
    envelope.make("a-1", "b" * 32, 1, envelope.KIND_INVENTORY, body)


def test_hash_changes_exactly_with_the_inventory(tmp_path: Path) -> None:
    shutil.copytree(ALPINE, tmp_path / "root", symlinks=True)
    root = tmp_path / "root"
    first, again = collect(root), collect(root)
    assert first["hash"] == again["hash"]
    db = root / "lib/apk/db/installed"
    db.write_text(db.read_text().replace("V:1.36.1-r15", "V:1.36.1-r16"))
    assert collect(root)["hash"] != first["hash"]


def test_symlinks_never_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "img"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text('ID=inside\nNAME="Inside"\n')
    # absolute links are resolved inside the image, '..' stops at its root
    os.symlink("/usr/lib/os-release", root / "etc/os-release")
    os.symlink("../../../../../../etc/hostname-outside", root / "etc/hostname")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname-outside").write_text("host-file\n")
    assert system.os_identity(root)["id"] == "inside"
    assert rootfs.resolve(root, "etc/hostname") is None  # not the host's file
    assert system.hostname(root) is None
    (root / "etc/hostname-outside").write_text("image-file\n")
    assert rootfs.resolve(root, "etc/hostname") == root / "etc/hostname-outside"
    assert system.hostname(root) == "image-file"
    os.symlink("loop", root / "loop")
    assert rootfs.resolve(root, "loop/x") is None


def test_live_root() -> None:
    body = collect(Path("/"))
    assert body["kernel"]["release"] == os.uname().release
    assert body["kernel"]["source"] == "uname"
    assert body["hostname"] == os.uname().nodename
    envelope.make("live-1", "b" * 32, 1, envelope.KIND_INVENTORY, body)


def test_elf_arch() -> None:
    head = Path(os.path.realpath("/bin/sh")).read_bytes()[:64]
    assert system.elf_arch(head) == os.uname().machine
    assert system.elf_arch(b"not an elf") is None
