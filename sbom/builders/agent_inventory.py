"""An inventory body (docs/protocol.md, from the agent or built by the SNMP poller) → DeviceBom."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sbom.builders.components import to_component
from sbom.builders.interface import BuilderError
from sbom.knowledge import Classifier
from sbom.model import (
    CONFIDENCE_HIGH,
    CONFIDENCE_MEDIUM,
    EVIDENCE_DECLARED,
    EVIDENCE_DEVICE_TREE,
    EVIDENCE_DMI,
    EVIDENCE_OS_RELEASE,
    EVIDENCE_PACKAGE_DB,
    EVIDENCE_SNMP,
    LAYER_FIRMWARE,
    Component,
    DeviceBom,
    DeviceInfo,
)
from sbom.scanners.interface import (
    KIND_APPLICATION,
    KIND_DEVICE,
    KIND_FIRMWARE,
    KIND_LIBRARY,
    KIND_OS,
    Finding,
)

_EVIDENCE_WORDS = {
    "device-tree": EVIDENCE_DEVICE_TREE,
    "dmi": EVIDENCE_DMI,
    "snmp": EVIDENCE_SNMP,
    "declared": EVIDENCE_DECLARED,
}


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and str(value) else None


def _section(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BuilderError(f"inventory section {key!r} must be an object")
    return value


_orjson_dumps: Callable[..., bytes] | None
try:  # optional (the server extra): a content key ten times cheaper than repr
    from orjson import OPT_PASSTHROUGH_SUBCLASS as _PASSTHROUGH
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - depends on the installation
    _PASSTHROUGH = 0
    _orjson_dumps = None


def _content_key(value: Any) -> bytes | str | None:
    """A key telling apart every JSON-shaped value the builder could read differently.

    orjson's encoding where it is exact: it refuses subclasses, non-string keys, integers
    beyond 64 bits and unknown types, and writes NaN as null, so any null goes to repr (which
    also tells tuples from lists and 1 from 1.0 from True). orjson writes tuples as lists: the
    caller keeps out values where that matters. None when neither is a content key.
    """
    if _orjson_dumps is not None:
        try:
            key: bytes = _orjson_dumps(value, option=_PASSTHROUGH)
        except TypeError:
            pass
        else:
            if b"null" not in key:
                return key
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an odd value with a broken repr: build without memo
        return None
    return None if " at 0x" in text else text  # an object shown by address is not content


# distinct (parts, os, kernel, packages) sets kept per classifier; cleared when full
_BOM_MEMO_MAX = 50_000


class AgentInventoryBuilder:
    """Build from a stored inventory body; works for `source: snmp` inventories as well."""

    name = "inventory"

    def __init__(
        self,
        device_id: str,
        body: Mapping[str, Any],
        *,
        classifier: Classifier | None = None,
        tags: Mapping[str, str] | None = None,
        criticality: float = 1.0,
        simulated: bool = False,
    ) -> None:
        if not isinstance(body, Mapping):
            raise BuilderError(f"{device_id}: inventory must be a JSON object")
        self.device_id = device_id
        self.body = body
        self.classifier = classifier or Classifier()
        self.tags = tuple(sorted((tags or {}).items()))
        self.criticality = criticality
        self.simulated = simulated

    def build(self) -> DeviceBom:
        body = self.body
        source = _str(body.get("source")) or "agent"
        hw, fw = _section(body, "hardware"), _section(body, "firmware")
        tail, part_errors = self._shared(body, source)
        errors = list(part_errors)
        vendor = _str(hw.get("vendor"))
        fw_version = _str(fw.get("version"))
        model = _str(hw.get("model")) or _str(hw.get("board"))
        head: list[Component] = []
        if fw_version or fw.get("name"):
            fw_vendor = _str(fw.get("vendor")) or vendor
            head.append(
                Component(
                    name=_str(fw.get("name")) or f"{model or self.device_id}-firmware",
                    version=fw_version,
                    kind=KIND_FIRMWARE,
                    layer=LAYER_FIRMWARE,
                    evidence=_EVIDENCE_WORDS.get(str(fw.get("source")), EVIDENCE_DECLARED),
                    confidence=CONFIDENCE_HIGH,
                    supplier=self.classifier.supplier(fw_vendor) if fw_vendor else None,
                    properties=(("dunewatch:scanner", "inventory"),),
                )
            )
        device = DeviceInfo(
            device_id=self.device_id,
            vendor=vendor,
            model=model,
            hw_revision=_str(hw.get("hw_revision")),
            serial=_str(hw.get("serial")),
            device_class=_str(hw.get("device_class")),
            firmware_version=fw_version,
            firmware_release_date=_str(fw.get("release_date")),
            criticality=self.criticality,
            tags=self.tags,
            manufacturer=self.classifier.supplier(vendor) if vendor else None,
            simulated=self.simulated,
        )
        props = [("dunewatch:inventory:source", source)]
        for key in ("hostname", "machine_id", "hash"):
            if _str(body.get(key)):
                props.append((f"dunewatch:inventory:{key}", str(body[key])))
        reported = body.get("errors") or {}
        if isinstance(reported, dict):
            errors = [f"{k}: {v}" for k, v in sorted(reported.items())] + errors
        return DeviceBom(
            device=device,
            components=(*head, *tail),
            tail=tail,
            source=source,
            properties=tuple(props),
            errors=tuple(errors),
        )

    def _shared(
        self, body: Mapping[str, Any], source: str
    ) -> tuple[tuple[Component, ...], tuple[str, ...]]:
        """The parts, OS, kernel and package components, with the parts left out.

        They depend only on the source and those four sections (not on the device's identity,
        firmware or hardware), and a fleet repeats the same sets on thousands of devices: the
        result is memoized on the classifier under a content key of those sections.
        """
        memo: dict[Any, tuple[tuple[Component, ...], tuple[str, ...]]] = self.classifier.bom_memo
        packages = body.get("packages")
        key = (
            _content_key((source, body.get("parts"), body.get("os"), body.get("kernel"), packages))
            if not packages or isinstance(packages, list)  # a tuple is refused, a list is not
            else None
        )
        if key is not None:
            hit = memo.get(key)
            if hit is not None:
                return hit
        found = self._build_shared(body, source)
        if key is not None:
            if len(memo) >= _BOM_MEMO_MAX:
                memo.clear()
            memo[key] = found
        return found

    def _build_shared(
        self, body: Mapping[str, Any], source: str
    ) -> tuple[tuple[Component, ...], tuple[str, ...]]:
        snmp = source == "snmp"
        os_, kernel = _section(body, "os"), _section(body, "kernel")
        findings: list[Finding] = []
        errors: list[str] = []
        for i, part in enumerate(body.get("parts") or []):
            if not isinstance(part, dict):
                raise BuilderError(f"{self.device_id}: inventory parts[{i}] must be an object")
            if part.get("kind") == "chassis":  # the box itself: that is the metadata component
                continue
            if not _str(part.get("model")):
                errors.append(f"parts[{i}]: no model, part left out")
                continue
            findings.append(
                Finding(
                    name=str(part["model"]),
                    version=_str(part.get("hw_revision") or part.get("revision")),
                    kind=KIND_DEVICE,
                    evidence=_EVIDENCE_WORDS.get(str(part.get("evidence")), EVIDENCE_DECLARED),
                    evidence_path=None,
                    scanner="inventory",
                    confidence=_str(part.get("confidence")) or CONFIDENCE_MEDIUM,
                    part_kind=_str(part.get("kind")) or "module",
                    vendor=_str(part.get("vendor")),
                    product=_str(part.get("compatible")) or str(part["model"]),
                )
            )
        os_id = _str(os_.get("id"))
        os_version = _str(os_.get("debian_version") or os_.get("alpine_release")) or _str(
            os_.get("version_id")
        )
        distro = f"{os_id}-{os_version}" if os_id and os_version else os_id
        if os_id:
            findings.append(
                Finding(
                    name=os_id,
                    version=os_version,
                    kind=KIND_OS,
                    evidence=EVIDENCE_SNMP if snmp else EVIDENCE_OS_RELEASE,
                    evidence_path=_str(os_.get("source")),
                    scanner="inventory",
                    product=os_id,
                )
            )
        if _str(kernel.get("release")):
            findings.append(
                Finding(
                    name="linux",
                    version=_str(kernel.get("release")),
                    kind=KIND_OS,
                    evidence=EVIDENCE_SNMP if snmp else EVIDENCE_OS_RELEASE,
                    evidence_path=_str(kernel.get("source")),
                    scanner="inventory",
                    arch=_str(kernel.get("arch")),
                    product="linux",
                    cpe_hint=("linux", "linux_kernel"),
                )
            )
        packages = body.get("packages") or []
        if not isinstance(packages, list):
            raise BuilderError(f"{self.device_id}: inventory 'packages' must be a list")
        for i, pkg in enumerate(packages):
            if not isinstance(pkg, dict) or not _str(pkg.get("name")):
                raise BuilderError(f"{self.device_id}: inventory packages[{i}] needs a 'name'")
            manager = _str(pkg.get("manager")) or ("snmp" if snmp else None)
            name = str(pkg["name"])
            findings.append(
                Finding(
                    name=name,
                    version=_str(pkg.get("version")),
                    kind=KIND_LIBRARY
                    if manager == "pypi" or name.startswith("lib")
                    else KIND_APPLICATION,
                    evidence=EVIDENCE_SNMP if snmp else EVIDENCE_PACKAGE_DB,
                    evidence_path=None,
                    scanner="inventory",
                    manager=manager,
                    arch=_str(pkg.get("arch")),
                    namespace=os_id if manager in ("dpkg", "apk", "opkg") else None,
                    distro=distro if manager in ("dpkg", "apk", "opkg") else None,
                    confidence=CONFIDENCE_HIGH if not snmp else CONFIDENCE_MEDIUM,
                )
            )
        components = [to_component(f, self.classifier) for f in findings]
        parts = [c for c in components if c.kind == KIND_DEVICE]
        rest = [c for c in components if c.kind != KIND_DEVICE]
        return (*parts, *rest), tuple(errors)
