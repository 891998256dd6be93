"""DeviceBom → CycloneDX 1.6 JSON or XML, validated against the bundled schema before writing.

Shape (DESIGN §5): the metadata component is the device (type device, manufacturer with its
country) with its hardware parts nested as device components; top level holds the firmware, the
operating system(s) and every package or identified binary. Dependencies link device → firmware
and parts, firmware → operating system, operating system → packages. Our own facts are
`dunewatch:` properties. 1.6 is fixed on purpose: writing 1.5 silently drops manufacturer and
addresses.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import uuid
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.contact import OrganizationalEntity, PostalAddress
from cyclonedx.model.dependency import Dependency
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator
from jsonschema import Draft7Validator, ValidationError, validators
from jsonschema.exceptions import best_match
from packageurl import PackageURL
from referencing import Registry, Resource

from sbom.errors import SbomError
from sbom.model import (
    CONFIDENCE_HIGH,
    CONFIDENCE_LOW,
    CONFIDENCE_MEDIUM,
    EVIDENCE_BINARY,
    EVIDENCE_DECLARED,
    EVIDENCE_FILESYSTEM,
    EVIDENCE_OS_RELEASE,
    EVIDENCE_PACKAGE_DB,
    Component,
    DeviceBom,
    Supplier,
)

FORMATS: Final = ("json", "xml")
_TYPED_PURLS: Final = ("pkg:deb/", "pkg:apk/", "pkg:pypi/")  # the purl type names the manager
SCHEMA: Final = SchemaVersion.V1_6
REPRODUCIBLE_EPOCH: Final = 0  # 1970-01-01T00:00:00Z unless SOURCE_DATE_EPOCH says otherwise
_TYPES: Final = {
    "library": ComponentType.LIBRARY,
    "application": ComponentType.APPLICATION,
    "operating-system": ComponentType.OPERATING_SYSTEM,
    "firmware": ComponentType.FIRMWARE,
    "device": ComponentType.DEVICE,
}
_CONFIDENCE: Final = {
    CONFIDENCE_HIGH: Decimal("0.9"),
    CONFIDENCE_MEDIUM: Decimal("0.6"),
    CONFIDENCE_LOW: Decimal("0.3"),
}
_TECHNIQUE: Final = {
    EVIDENCE_PACKAGE_DB: AnalysisTechnique.MANIFEST_ANALYSIS,
    EVIDENCE_OS_RELEASE: AnalysisTechnique.MANIFEST_ANALYSIS,
    EVIDENCE_BINARY: AnalysisTechnique.BINARY_ANALYSIS,
    EVIDENCE_FILESYSTEM: AnalysisTechnique.FILENAME,
    EVIDENCE_DECLARED: AnalysisTechnique.ATTESTATION,
}


class OutputError(SbomError):
    """The BOM could not be rendered or failed schema validation (nothing was written)."""


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("dunewatch")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+unknown"


def jurisdiction(supplier: Supplier | None) -> str:
    if supplier is None:
        return "unknown"
    if supplier.country:
        return supplier.country
    return "community" if supplier.community else "unknown"


def _org(supplier: Supplier | None) -> OrganizationalEntity | None:
    if supplier is None:
        return None
    address = PostalAddress(country=supplier.country) if supplier.country else None
    return OrganizationalEntity(name=supplier.name, address=address)


def _props(c: Component) -> list[Property]:
    pairs: list[tuple[str, str]] = [
        ("dunewatch:layer", c.layer),
        ("dunewatch:lifecycle:status", c.lifecycle.status),
        ("dunewatch:jurisdiction", jurisdiction(c.supplier)),
        ("dunewatch:evidence", c.evidence),
        ("dunewatch:confidence", c.confidence),
    ]
    # purl, evidence.occurrences and supplier already carry manager, arch, path and name
    optional = (
        ("dunewatch:lifecycle:eol", c.lifecycle.eol),
        ("dunewatch:lifecycle:cycle", c.lifecycle.cycle),
        ("dunewatch:lifecycle:latest", c.lifecycle.latest),
        ("dunewatch:lifecycle:source", c.lifecycle.source),
        ("dunewatch:manager", None if (c.purl or "").startswith(_TYPED_PURLS) else c.manager),
        ("dunewatch:part_kind", c.part_kind),
        ("dunewatch:supplier:owner", c.supplier.owner if c.supplier else None),
    )
    pairs.extend((k, v) for k, v in optional if v)
    if c.lifecycle.versions_behind is not None:
        pairs.append(("dunewatch:lifecycle:versions_behind", str(c.lifecycle.versions_behind)))
    if c.substitutability is not None:
        pairs.append(("dunewatch:substitutability", f"{c.substitutability:g}"))
    pairs.extend(c.properties)
    return [Property(name=k, value=v) for k, v in pairs]


def _evidence(c: Component) -> ComponentEvidence:
    conf = _CONFIDENCE.get(c.confidence, Decimal("0.3"))
    method = Method(
        technique=_TECHNIQUE.get(c.evidence, AnalysisTechnique.OTHER),
        confidence=conf,
        value=f"{c.evidence}: {c.evidence_path}" if c.evidence_path else c.evidence,
    )
    field = IdentityField.PURL if c.purl else IdentityField.NAME
    occurrences = [Occurrence(location=c.evidence_path)] if c.evidence_path else None
    return ComponentEvidence(
        identity=[Identity(field=field, confidence=conf, methods=[method])],
        occurrences=occurrences,
    )


def _ref(c: Component) -> str:
    if c.purl:
        return c.purl
    prefix = {"device": "hw", "firmware": "fw", "operating-system": "os"}.get(c.kind, c.kind)
    version = f"@{c.version}" if c.version else ""
    return f"{prefix}:{c.part_kind + ':' if c.part_kind else ''}{c.name}{version}"


def _cdx(c: Component, ref: str) -> CdxComponent:
    is_hw = c.kind == "device"
    org = _org(c.supplier)
    return CdxComponent(
        type=_TYPES.get(c.kind, ComponentType.LIBRARY),
        name=c.name,
        version=c.version,
        bom_ref=ref,
        purl=PackageURL.from_string(c.purl) if c.purl else None,
        cpe=c.cpe,
        supplier=None if is_hw else org,
        manufacturer=org if is_hw else None,
        hashes=[HashType(alg=HashAlgorithm(alg), content=digest) for alg, digest in c.hashes],
        properties=_props(c),
        evidence=_evidence(c),
    )


def _timestamp(reproducible: bool) -> dt.datetime:
    if not reproducible:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH))
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def to_cyclonedx(bom: DeviceBom, *, reproducible: bool = False) -> Bom:
    """Build the cyclonedx-python-lib object model for one device."""
    d = bom.device
    refs: dict[str, int] = {}

    def unique(ref: str) -> str:
        n = refs.get(ref, 0)
        refs[ref] = n + 1
        return ref if n == 0 else f"{ref}#{n + 1}"

    parts, firmware, systems, rest = [], [], [], []
    for c in bom.components:
        cdx = _cdx(c, unique(_ref(c)))
        if c.kind == "device":
            parts.append(cdx)
        elif c.kind == "firmware":
            firmware.append(cdx)
        elif c.kind == "operating-system":
            systems.append(cdx)
        else:
            rest.append(cdx)
    dev_props = [("dunewatch:device_id", d.device_id), ("dunewatch:source", bom.source)]
    optional = (
        ("dunewatch:serial", d.serial),
        ("dunewatch:device_class", d.device_class),
        ("dunewatch:firmware_version", d.firmware_version),
        ("dunewatch:firmware_release_date", d.firmware_release_date),
        ("dunewatch:jurisdiction", jurisdiction(d.manufacturer) if d.manufacturer else None),
    )
    dev_props.extend((k, v) for k, v in optional if v)
    dev_props.append(("dunewatch:criticality", f"{d.criticality:g}"))
    if d.simulated:
        dev_props.append(("dunewatch:simulated", "true"))
    dev_props.extend((f"dunewatch:tag:{k}", v) for k, v in d.tags)
    dev_props.extend(bom.properties)
    dev_props.extend(("dunewatch:error", e) for e in bom.errors)
    maker = _org(d.manufacturer)
    device = CdxComponent(
        type=ComponentType.DEVICE,
        name=d.model or d.device_id,
        version=d.hw_revision,
        bom_ref=unique(f"device:{d.device_id}"),
        manufacturer=maker,
        supplier=maker,
        components=parts,
        properties=[Property(name=k, value=v) for k, v in dev_props],
    )
    out = Bom()
    out.metadata.component = device
    out.metadata.timestamp = _timestamp(reproducible)
    if d.manufacturer is not None:
        out.metadata.manufacturer = maker
    out.metadata.tools.components.add(
        CdxComponent(type=ComponentType.APPLICATION, name="dunewatch", version=_tool_version())
    )
    for cdx in (*firmware, *systems, *rest):
        out.components.add(cdx)
    distro = [s for s in systems if not str(s.bom_ref.value).startswith("os:linux@")] or systems
    edges: dict[CdxComponent, list[CdxComponent]] = {device: [*parts, *firmware] or systems or rest}
    for fw in firmware:
        edges[fw] = systems or rest
    if distro:
        edges[distro[0]] = [s for s in systems if s is not distro[0]] + rest
    # built directly: Bom.register_dependency searches linearly, quadratic on big images
    for cdx in (device, *parts, *firmware, *systems, *rest):
        kids = edges.get(cdx, [])
        out.dependencies.add(
            Dependency(ref=cdx.bom_ref, dependencies=[Dependency(ref=k.bom_ref) for k in kids])
        )
    if reproducible:
        digest = hashlib.sha256(d.device_id.encode())
        for ref in sorted(refs):
            digest.update(b"\0" + ref.encode())
        out.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, "dunewatch:" + digest.hexdigest())
    return out


def render(bom: DeviceBom, fmt: str = "json", *, reproducible: bool = False) -> str:
    """CycloneDX 1.6 text, already validated against the schema shipped with the library."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output_format = OutputFormat.JSON if fmt == "json" else OutputFormat.XML
    try:
        text = str(
            make_outputter(
                to_cyclonedx(bom, reproducible=reproducible), output_format, SCHEMA
            ).output_as_string(indent=2)
        )
    except Exception as exc:  # noqa: BLE001 - the library raises many unrelated types
        raise OutputError(f"device {bom.device.device_id}: cannot serialize BOM: {exc}") from exc
    validate(text, fmt, where=f"device {bom.device.device_id}")
    return text + ("\n" if not text.endswith("\n") else "")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    """uniqueItems in linear time (jsonschema's own is quadratic: 12 s for 750 components)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        key = json.dumps(item, sort_keys=True, separators=(",", ":"))
        if key in seen:
            yield ValidationError(f"{instance!r:.200} has non-unique elements")
            return
        seen.add(key)


@functools.cache
def _json_validator() -> Any:
    """Draft 7 validator over the 1.6 schema bundled with cyclonedx-python-lib (+ its refs)."""
    res = files("cyclonedx.schema._res")

    def load(name: str) -> Any:
        return json.loads((res / name).read_text(encoding="utf-8"))

    registry: Registry[Any] = Registry().with_resources(
        ("http://cyclonedx.org/schema/" + name, Resource.from_contents(load(name)))
        for name in (
            "spdx.SNAPSHOT.schema.json",
            "jsf-0.82.SNAPSHOT.schema.json",
            "cryptography-defs.SNAPSHOT.schema.json",
        )
    )
    cls = validators.extend(Draft7Validator, {"uniqueItems": _unique_items})
    return cls(load("bom-1.6.SNAPSHOT.schema.json"), registry=registry)


def validate(text: str, fmt: str = "json", where: str = "BOM") -> None:
    """Schema-validate a rendered BOM; raises OutputError naming the first problem."""
    if fmt == "json":
        error = best_match(_json_validator().iter_errors(json.loads(text)))
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise OutputError(
                f"{where}: CycloneDX 1.6 json schema validation failed at {path}: "
                f"{error.message[:300]}"
            )
        return
    found: Any = make_schemabased_validator(OutputFormat.XML, SCHEMA).validate_str(text)
    if found is not None:
        detail = str(getattr(found, "data", found)).splitlines()[0][:300]
        raise OutputError(f"{where}: CycloneDX 1.6 xml schema validation failed: {detail}")


def write(bom: DeviceBom, path: Path, fmt: str = "json", *, reproducible: bool = False) -> Path:
    """Render, validate, then write atomically (a half-written BOM never appears)."""
    text = render(bom, fmt, reproducible=reproducible)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
