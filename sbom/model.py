"""Values shared by the SBOM builders, the Digital Dune Index and aging analysis.

A device, whatever source it came from (agent inventory, SNMP poll, offline root filesystem), is
turned into one `DeviceBom`: the device itself plus classified components. CycloneDX output, the
DDI and aging all read this one shape, so they can never disagree about what a device runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# DDI layers (DESIGN §6) with their default weights; configuration may override the weights.
LAYER_SOC: Final = "soc"
LAYER_FIRMWARE: Final = "firmware"
LAYER_OS: Final = "os"
LAYER_CRYPTO: Final = "crypto"
LAYER_SENSOR_RADIO: Final = "sensor_radio"
LAYER_DB_RUNTIME: Final = "db_runtime"
LAYER_APPLICATION: Final = "application"
LAYERS: Final = (
    LAYER_SOC,
    LAYER_FIRMWARE,
    LAYER_OS,
    LAYER_CRYPTO,
    LAYER_SENSOR_RADIO,
    LAYER_DB_RUNTIME,
    LAYER_APPLICATION,
)
DEFAULT_LAYER_WEIGHTS: Final = {
    LAYER_SOC: 0.25,
    LAYER_FIRMWARE: 0.15,
    LAYER_OS: 0.15,
    LAYER_CRYPTO: 0.15,
    LAYER_SENSOR_RADIO: 0.10,
    LAYER_DB_RUNTIME: 0.10,
    LAYER_APPLICATION: 0.10,
}

# Where a fact came from, strongest first; the report shows it next to every score driver.
EVIDENCE_PACKAGE_DB: Final = "package-db"  # dpkg/opkg/apk/python metadata
EVIDENCE_BINARY: Final = "binary-version-string"  # version text found in an ELF file
EVIDENCE_DEVICE_TREE: Final = "device-tree"
EVIDENCE_DMI: Final = "dmi"
EVIDENCE_OS_RELEASE: Final = "os-release"
EVIDENCE_SNMP: Final = "snmp"
EVIDENCE_DECLARED: Final = "declared"  # asset register, user catalogue, agent config
EVIDENCE_FILESYSTEM: Final = "filesystem"  # directory layout, e.g. lib/modules/<kernel release>

CONFIDENCE_HIGH: Final = "high"
CONFIDENCE_MEDIUM: Final = "medium"
CONFIDENCE_LOW: Final = "low"


@dataclass(frozen=True)
class Supplier:
    """Who controls a component: the brand seen, and the ultimate owner whose country counts."""

    name: str
    owner: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2 of the controlling owner; None = unknown
    community: bool = False  # open-source community without a controlling vendor
    source: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    status: str = "unknown"  # supported | approaching_eol | eol | unknown
    eol: str | None = None  # ISO date
    cycle: str | None = None
    latest: str | None = None
    versions_behind: int | None = None
    source: str | None = None


@dataclass(frozen=True)
class Component:
    """One software component or hardware part of a device, classified into a DDI layer."""

    name: str
    version: str | None
    kind: str  # CycloneDX type: library, application, firmware, operating-system, device
    layer: str  # one of LAYERS
    evidence: str  # one of the EVIDENCE_* values
    confidence: str = CONFIDENCE_HIGH
    evidence_path: str | None = None  # file (relative to the scanned root) or OID it came from
    manager: str | None = None  # dpkg, opkg, apk, pypi, snmp, binary, ...
    arch: str | None = None
    purl: str | None = None
    cpe: str | None = None
    supplier: Supplier | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    substitutability: float | None = None  # S in [0, 1]; None = layer default
    part_kind: str | None = None  # for hardware: soc, image_sensor, radio, module, chassis
    hashes: tuple[tuple[str, str], ...] = ()  # (algorithm, hex digest), e.g. ("SHA-256", "ab..")
    properties: tuple[tuple[str, str], ...] = ()  # extra dunewatch:* name/value pairs


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    vendor: str | None = None
    model: str | None = None
    hw_revision: str | None = None
    serial: str | None = None
    device_class: str | None = None  # camera, nvr, gateway, server, ...
    firmware_version: str | None = None
    firmware_release_date: str | None = None
    criticality: float = 1.0
    tags: tuple[tuple[str, str], ...] = ()
    manufacturer: Supplier | None = None
    simulated: bool = False


@dataclass(frozen=True)
class DeviceBom:
    device: DeviceInfo
    components: tuple[Component, ...]
    source: str  # agent, snmp, rootfs
    properties: tuple[tuple[str, str], ...] = ()  # scan facts (counts, hostname, board, ...)
    errors: tuple[str, ...] = ()  # one line per evidence source that could not be read
    # The trailing components as one tuple object that devices alike share (the inventory
    # builder memoizes it): the analyses memoize their per-component work on its identity. Not
    # part of the value; `shared_tail()` checks it still is the end of `components`.
    tail: tuple[Component, ...] = field(default=(), compare=False, repr=False)

    def shared_tail(self) -> tuple[Component, ...]:
        """`tail` when it is the end of `components` (by identity), else ()."""
        tail = self.tail
        n = len(tail)
        if not n or n > len(self.components) or self.components[-n:] != tail:
            return ()
        return tail
