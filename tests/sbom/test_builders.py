"""Inventory bodies (agent and SNMP) → DeviceBom, and classification through the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.inventory import collect
from sbom.builders import AgentInventoryBuilder, BuilderError, RootfsBuilder
from sbom.knowledge import Classifier, NullKnowledge, cpe23, upstream_version
from tests.sbom.conftest import ROOTS, FakeKnowledge


def test_agent_inventory_matches_rootfs_scan_of_the_same_tree() -> None:
    """The agent's view and the offline scan agree on every package (one parser for both)."""
    for name in ("debian", "openwrt", "alpine"):
        body = collect(ROOTS / name)
        inv = AgentInventoryBuilder(f"{name}-1", body).build()
        scan = RootfsBuilder(ROOTS / name).build()

        def pkgs(bom: Any) -> set[tuple[str, str, str | None]]:
            return {(c.name, c.version, c.purl) for c in bom.components if c.manager}

        assert pkgs(inv) == pkgs(scan)
        assert len(pkgs(inv)) == len(body["packages"])


def test_inventory_device_and_firmware(fake_kb: FakeKnowledge) -> None:
    body = collect(ROOTS / "openwrt", firmware={"vendor": "Example Cameras", "version": "2.4.1"})
    body["hardware"]["vendor"] = "Example Cameras"
    bom = AgentInventoryBuilder(
        "gw-7", body, classifier=Classifier(fake_kb), tags={"district": "north"}, criticality=2
    ).build()
    d = bom.device
    assert (d.device_id, d.vendor, d.firmware_version, d.criticality) == (
        "gw-7",
        "Example Cameras",
        "2.4.1",
        2,
    )
    assert d.manufacturer is not None and d.manufacturer.country == "XY"
    assert d.tags == (("district", "north"),)
    fw = bom.components[0]
    assert (fw.kind, fw.layer, fw.version) == ("firmware", "firmware", "2.4.1")
    soc = next(c for c in bom.components if c.kind == "device")
    assert soc.name == "IPQ4019" and soc.supplier is not None and soc.supplier.country == "ZZ"
    ssl = next(c for c in bom.components if c.name == "libopenssl3")
    assert (ssl.layer, ssl.lifecycle.status, ssl.substitutability) == ("crypto", "supported", 0.5)


def test_snmp_inventory() -> None:
    body = {
        "source": "snmp",
        "hardware": {
            "vendor": "ACME",
            "model": "X200",
            "serial": "S1",
            "source": "snmp",
            "device_class": "camera",
        },
        "firmware": {"version": "2.4.1-build7731", "source": "snmp"},
        "parts": [
            {"kind": "chassis", "vendor": "ACME", "model": "X200", "evidence": "snmp"},
            {"kind": "soc", "vendor": "HiSilicon", "model": "Hi3516DV300", "evidence": "snmp"},
            {"kind": "module", "vendor": "ACME", "model": None, "evidence": "snmp"},
        ],
        "packages": [{"name": "webserver", "version": "1.0", "manager": "snmp"}],
    }
    bom = AgentInventoryBuilder("cam-9", body, classifier=Classifier(NullKnowledge())).build()
    assert bom.source == "snmp" and bom.device.device_class == "camera"
    web = next(c for c in bom.components if c.name == "webserver")
    assert web.purl == "pkg:generic/webserver@1.0" and web.evidence == "snmp"
    assert web.layer == "application" and web.supplier is None  # unknown: never guessed
    (part,) = [c for c in bom.components if c.kind == "device"]  # chassis = the device itself
    assert (part.name, part.evidence, part.part_kind) == ("Hi3516DV300", "snmp", "soc")
    assert bom.errors == ("parts[2]: no model, part left out",)
    fw = bom.components[0]
    assert fw.evidence == "snmp" and fw.version == "2.4.1-build7731"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"packages": {"a": 1}}, "'packages' must be a list"),
        ({"packages": [{"version": "1"}]}, r"packages\[0\] needs a 'name'"),
        ({"parts": ["soc"]}, r"parts\[0\] must be an object"),
        ({"os": "debian"}, "section 'os' must be an object"),
    ],
)
def test_bad_inventory_names_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BuilderError, match=message):
        AgentInventoryBuilder("d-1", body).build()


def test_failing_knowledge_base_degrades_to_unknown() -> None:
    class Broken(NullKnowledge):
        def component_info(self, name: str, manager: str | None) -> Any:
            raise RuntimeError("database locked")

    bom = RootfsBuilder(ROOTS / "alpine", classifier=Classifier(Broken())).build()
    assert {c.layer for c in bom.components if c.manager} == {"application"}


@pytest.mark.parametrize(
    ("version", "manager", "expected"),
    [
        ("1:1.2.13.dfsg-1", "dpkg", "1.2.13"),
        ("3.0.19-1~deb12u2", "dpkg", "3.0.19"),
        ("2.36-9+deb12u14", "dpkg", "2.36"),
        ("1.36.1-r15", "apk", "1.36.1"),
        ("2022.82-6", "opkg", "2022.82"),
        ("6.0", "pypi", "6.0"),
    ],
)
def test_upstream_version(version: str, manager: str, expected: str) -> None:
    assert upstream_version(version, manager) == expected


def test_cpe_escaping() -> None:
    assert cpe23("gnu", "glibc", "2.36") == "cpe:2.3:a:gnu:glibc:2.36:*:*:*:*:*:*:*"
    assert cpe23("x", "y", "1.0+b1", "o") == "cpe:2.3:o:x:y:1.0\\+b1:*:*:*:*:*:*:*"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no such directory or archive"):
        RootfsBuilder(tmp_path / "nope").build()


def test_with_the_shipped_knowledge_base() -> None:
    """The real firmware_db classifies the fixture's OpenSSL as crypto with a named supplier."""
    from sbom.knowledge import load_knowledge

    kb = load_knowledge()
    assert not isinstance(kb, NullKnowledge), "firmware_db.open_default() failed"
    bom = RootfsBuilder(ROOTS / "debian", classifier=Classifier(kb)).build()
    ssl = next(c for c in bom.components if c.name == "libssl3")
    assert ssl.layer == "crypto"
    assert ssl.supplier is not None and ssl.supplier.name
    assert ssl.cpe is not None and ssl.cpe.startswith("cpe:2.3:a:openssl:openssl:3.0.19:")
    kernel = next(c for c in bom.components if c.name == "linux")
    assert kernel.layer == "os" and kernel.cpe is not None and kernel.cpe.startswith("cpe:2.3:o:")
