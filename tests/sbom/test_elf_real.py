"""The ELF scanner on real Debian binaries: every product found with the packaged version."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sbom.knowledge import upstream_version
from sbom.scanners.elf import ElfScanner, identify, load_signatures
from sbom.scanners.interface import ScanContext
from tests.sbom.conftest import RealDebs

# product found in the binaries -> Debian package that ships them
PRODUCTS = {
    "busybox": "busybox-static",
    "openssl": "libssl3",
    "dropbear": "dropbear-bin",
    "dnsmasq": "dnsmasq-base",
    "lighttpd": "lighttpd",
    "curl": "curl",
    "libcurl": "libcurl4",
    "sqlite": "libsqlite3-0",
    "mbedtls": "libmbedcrypto7",
    "wolfssl": "libwolfssl35",
    "zlib": "zlib1g",
    "openvpn": "openvpn",
    "wpa_supplicant": "wpasupplicant",
    "net-snmp": "libsnmp40",
    "mosquitto": "mosquitto",
    "glibc": "libc6",
    "openssh": "openssh-client",
}


def _scan(root: Path, owned: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    result = ElfScanner().scan(ScanContext(root=root, owned=owned))
    found: dict[str, list[str]] = {}
    for f in result.findings:
        found.setdefault(f.name, []).append(f.version or "")
    return found


def test_every_product_with_its_packaged_version(real_debs: RealDebs) -> None:
    found = _scan(real_debs.root)
    for product, package in PRODUCTS.items():
        expected = upstream_version(real_debs.versions[package], "dpkg")
        assert found.get(product) == [expected], (product, found.get(product), expected)
    # nothing else is claimed: programs linking libcrypto/libcurl are not reported as them
    assert set(found) == set(PRODUCTS)


def test_binary_evidence_points_at_the_file(real_debs: RealDebs) -> None:
    result = ElfScanner().scan(ScanContext(root=real_debs.root))
    by_name = {f.name: f for f in result.findings}
    assert by_name["busybox"].evidence_path == "bin/busybox"
    assert by_name["openssl"].evidence_path.endswith("libcrypto.so.3")
    assert by_name["openssl"].cpe_hint == ("openssl", "openssl")
    assert by_name["dropbear"].evidence == "binary-version-string"
    facts = dict(result.facts)
    assert int(facts["elf_files"]) >= len(PRODUCTS)


def test_owned_files_are_left_to_the_package_database(real_debs: RealDebs) -> None:
    owned = frozenset({"/bin/busybox", "/usr/sbin/dnsmasq"})
    found = _scan(real_debs.root, owned)
    assert "busybox" not in found and "dnsmasq" not in found
    assert "lighttpd" in found


def test_ownership_follows_usr_merge_symlinks(tmp_path: Path, real_debs: RealDebs) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    shutil.copy(real_debs.root / "bin/busybox", tmp_path / "usr/bin/busybox")
    os.symlink("usr/bin", tmp_path / "bin")
    # dpkg lists /bin/busybox; on a merged-/usr root the file lives at usr/bin/busybox
    assert "busybox" not in _scan(tmp_path, frozenset({"/bin/busybox"}))
    assert "busybox" in _scan(tmp_path)


def test_openssl_banner_in_a_program_is_not_openssl(tmp_path: Path) -> None:
    """A program that prints 'built with OpenSSL ...' (nginx -V) merely links libcrypto."""
    elf = Path(os.path.realpath("/bin/true")).read_bytes()
    banner = b"\x00built with OpenSSL 1.1.1w  11 Sep 2023\x00"
    sigs = load_signatures()
    assert identify("nginx", elf + banner, sigs) == []
    hits = identify("libcrypto.so.1.1", elf + banner, sigs)
    assert [(s.product, v) for s, v in hits] == [("openssl", "1.1.1w")]
    # the name alone is not enough either: the full banner with its date must be there
    assert identify("libcrypto.so.1.1", elf + b"OpenSSL 1.1.1w", sigs) == []


def test_non_elf_and_special_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/busybox.txt").write_bytes(b"BusyBox v1.36.1 (text, not ELF)" * 4)
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/bin/true", tmp_path / "link-to-host")
    result = ElfScanner().scan(ScanContext(root=tmp_path))
    assert result.findings == ()
    assert dict(result.facts)["elf_files"] == "0"
