"""The scanner axis: each scanner reads one kind of evidence from a root filesystem.

A scanner takes the root and the set of files already claimed by package databases and returns
`Finding`s (raw, unclassified) plus the files it claims. Classification into DDI layers, suppliers
and lifecycle happens once, in the builder, so every scanner stays a small parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sbom.errors import SbomError
from sbom.model import CONFIDENCE_HIGH

# CycloneDX component types used here
KIND_LIBRARY = "library"
KIND_APPLICATION = "application"
KIND_OS = "operating-system"
KIND_FIRMWARE = "firmware"
KIND_DEVICE = "device"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class ScannerError(SbomError):
    """A scanner met evidence it cannot read; names the file (relative to the root) and why."""


@dataclass(frozen=True)
class Finding:
    """One thing a scanner identified, with where it was found."""

    name: str
    version: str | None
    kind: str  # CycloneDX component type
    evidence: str  # one of sbom.model.EVIDENCE_*
    evidence_path: str | None  # file relative to the scanned root
    scanner: str
    manager: str | None = None
    arch: str | None = None
    confidence: str = CONFIDENCE_HIGH
    source_package: str | None = None
    part_kind: str | None = None  # hardware: soc, image_sensor, radio, module, chassis
    vendor: str | None = None  # raw vendor hint (os-release ID, devicetree prefix)
    product: str | None = None  # lifecycle/KB product key hint (binary signatures)
    cpe_hint: tuple[str, str] | None = None  # (cpe vendor, cpe product) from our own tables
    namespace: str | None = None  # purl namespace (distro id) for packages
    distro: str | None = None  # purl distro qualifier, e.g. debian-12.5
    extra: tuple[tuple[str, str], ...] = ()  # more dunewatch: properties


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...] = ()
    owned: frozenset[str] = frozenset()  # absolute in-image paths claimed by a package
    errors: tuple[str, ...] = ()  # one line each; the scan goes on
    facts: tuple[tuple[str, str], ...] = ()  # device facts (hostname, board, serial...)


@dataclass(frozen=True)
class ScanContext:
    """What earlier scanners learned that later ones need."""

    root: Path
    owned: frozenset[str] = field(default_factory=frozenset)
    distro_id: str | None = None
    distro: str | None = None  # "<id>-<version>"
    progress: Progress | None = None


class Scanner(Protocol):
    name: str

    def scan(self, ctx: ScanContext) -> ScanResult: ...
