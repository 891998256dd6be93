"""CycloneDX output: structure, golden files, and validation independent of the library."""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource

from sbom import output
from sbom.builders.rootfs import RootfsBuilder
from sbom.knowledge import Classifier
from sbom.model import Component, DeviceBom, DeviceInfo
from tests.sbom.conftest import GOLDEN, ROOTS, FakeKnowledge

SCHEMAS = files("cyclonedx.schema._res")
UPDATE = os.environ.get("DUNEWATCH_UPDATE_GOLDEN") == "1"


def _schema_validator() -> Draft7Validator:
    def load(name: str) -> Any:
        return json.loads((SCHEMAS / name).read_text())

    registry: Registry[Any] = Registry().with_resources(
        ("http://cyclonedx.org/schema/" + n, Resource.from_contents(load(n)))
        for n in (
            "spdx.SNAPSHOT.schema.json",
            "jsf-0.82.SNAPSHOT.schema.json",
            "cryptography-defs.SNAPSHOT.schema.json",
        )
    )
    return Draft7Validator(
        load("bom-1.6.SNAPSHOT.schema.json"), registry=registry, format_checker=FormatChecker()
    )


def _xsd() -> etree.XMLSchema:
    path = Path(str(SCHEMAS / "bom-1.6.SNAPSHOT.xsd"))
    return etree.XMLSchema(etree.parse(str(path)))


def _bom(name: str) -> DeviceBom:
    return RootfsBuilder(ROOTS / name, classifier=Classifier(FakeKnowledge())).build()


def _masked(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    doc["metadata"].pop("tools", None)  # library and our own version: not part of the golden
    return doc


@pytest.mark.parametrize("name", ["debian", "openwrt", "alpine"])
def test_json_is_valid_per_jsonschema_and_matches_golden(name: str) -> None:
    text = output.render(_bom(name), "json", reproducible=True)
    errors = [e.message for e in _schema_validator().iter_errors(json.loads(text))]
    assert errors == []
    golden = GOLDEN / f"{name}.cdx.json"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(_masked(text), indent=2, sort_keys=True) + "\n")
    assert _masked(text) == json.loads(golden.read_text())


def test_xml_is_valid_per_xsd() -> None:
    text = output.render(_bom("openwrt"), "xml", reproducible=True)
    schema = _xsd()
    doc = etree.fromstring(text.encode())
    assert schema.validate(doc), schema.error_log.last_error


def test_reproducible_output_is_byte_identical() -> None:
    a = output.render(_bom("alpine"), reproducible=True)
    b = output.render(_bom("alpine"), reproducible=True)
    assert a == b
    assert json.loads(a)["metadata"]["timestamp"].startswith("1970-01-01T00:00:00")
    c = json.loads(output.render(_bom("alpine")))
    assert c["serialNumber"] != json.loads(a)["serialNumber"]


def test_structure_device_parts_firmware_os_packages() -> None:
    doc = json.loads(output.render(_bom("openwrt"), reproducible=True))
    device = doc["metadata"]["component"]
    assert device["type"] == "device" and device["name"] == "Linksys EA8300 (Dallas)"
    (soc,) = device["components"]
    assert soc["type"] == "device" and soc["name"] == "IPQ4019"
    assert soc["manufacturer"] == {"name": "Example Silicon", "address": {"country": "ZZ"}}
    props = {p["name"]: p["value"] for p in soc["properties"]}
    assert props["dunewatch:layer"] == "soc" and props["dunewatch:jurisdiction"] == "ZZ"
    assert props["dunewatch:supplier:owner"] == "Example Holdings"
    types = {c["name"]: c["type"] for c in doc["components"]}
    assert types["openwrt"] in ("firmware", "operating-system")
    assert types["linux"] == "operating-system"
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    ssl = next(c for c in doc["components"] if c["name"] == "libopenssl3")
    assert ssl["purl"].startswith("pkg:generic/openwrt/libopenssl3@3.0.13-1?")
    assert ssl["cpe"] == "cpe:2.3:a:openssl:openssl:3.0.13:*:*:*:*:*:*:*"
    assert ssl["supplier"] == {"name": "OpenSSL", "address": {"country": "XX"}}
    ssl_props = {p["name"]: p["value"] for p in ssl["properties"]}
    assert ssl_props["dunewatch:layer"] == "crypto"
    assert ssl_props["dunewatch:lifecycle:status"] == "supported"
    assert ssl_props["dunewatch:evidence"] == "package-db"
    assert ssl["evidence"]["occurrences"] == [{"location": "usr/lib/opkg/status"}]
    # unknown to the knowledge base: never guessed
    dns = next(c for c in doc["components"] if c["name"] == "dnsmasq")
    dns_props = {p["name"]: p["value"] for p in dns["properties"]}
    assert dns_props["dunewatch:layer"] == "application"
    assert dns_props["dunewatch:jurisdiction"] == "unknown"
    assert dns_props["dunewatch:lifecycle:status"] == "unknown"
    assert "supplier" not in dns
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert set(deps["device:gw-openwrt-fixture"]) == {"hw:soc:IPQ4019", "fw:openwrt@23.05.3"}
    assert "os:openwrt@23.05.3" in deps["fw:openwrt@23.05.3"]
    assert ssl["bom-ref"] in deps["os:openwrt@23.05.3"]
    assert all(ref in by_ref or ref.startswith(("device:", "hw:")) for ref in deps)


def test_debian_purls() -> None:
    doc = json.loads(output.render(_bom("debian"), reproducible=True))
    purls = {c["name"]: c.get("purl") for c in doc["components"]}
    assert purls["libssl3"] == (
        "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12.11"
    )
    assert purls["zlib1g"].startswith("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?")
    assert purls["PyYAML"] == "pkg:pypi/pyyaml@6.0"
    alpine = json.loads(output.render(_bom("alpine"), reproducible=True))
    apurls = {c["name"]: c.get("purl") for c in alpine["components"]}
    assert apurls["musl"] == (
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
    )


def test_invalid_bom_is_never_written(tmp_path: Path) -> None:
    bad = DeviceBom(
        device=DeviceInfo(device_id="x-1"),
        components=(
            Component(
                name="blob",
                version="1",
                kind="firmware",
                layer="firmware",
                evidence="declared",
                hashes=(("SHA-256", "not-hex"),),
            ),
        ),
        source="rootfs",
    )
    target = tmp_path / "x.json"
    with pytest.raises(output.OutputError, match="device x-1"):
        output.write(bad, target)
    assert list(tmp_path.iterdir()) == []


def test_xml_and_json_describe_the_same_components(tmp_path: Path) -> None:
    from sbom.diff import diff_files

    bom = _bom("debian")
    j = output.write(bom, tmp_path / "a.json", "json")
    x = output.write(bom, tmp_path / "a.xml", "xml")
    assert diff_files(j, x).empty
