"""Debian/Ubuntu packages from var/lib/dpkg/status (+ info/*.list ownership)."""

from __future__ import annotations

from agent.inventory.packages import read_dpkg
from sbom.scanners._packages import scan_packages
from sbom.scanners.interface import ScanContext, ScanResult


class DpkgScanner:
    name = "dpkg"

    def scan(self, ctx: ScanContext) -> ScanResult:
        return scan_packages(ctx, self.name, read_dpkg, "debian")
