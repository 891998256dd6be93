"""Root-filesystem scanners, one module each, run in the order of `SCANNERS`.

The OS scanner runs first (package URLs need the distro), package databases next (they claim
files), the ELF scanner last (it only looks at files no package claims).
"""

from __future__ import annotations

from sbom.scanners.apk import ApkScanner
from sbom.scanners.devicetree import DeviceTreeScanner
from sbom.scanners.dpkg import DpkgScanner
from sbom.scanners.elf import ElfScanner
from sbom.scanners.interface import Finding, ScanContext, Scanner, ScannerError, ScanResult
from sbom.scanners.kernel import KernelScanner
from sbom.scanners.opkg import OpkgScanner
from sbom.scanners.osrelease import OsReleaseScanner
from sbom.scanners.python import PythonScanner

SCANNERS: tuple[type[Scanner], ...] = (
    OsReleaseScanner,
    DpkgScanner,
    OpkgScanner,
    ApkScanner,
    PythonScanner,
    KernelScanner,
    DeviceTreeScanner,
    ElfScanner,
)

__all__ = ["SCANNERS", "Finding", "ScanContext", "ScanResult", "Scanner", "ScannerError"]
