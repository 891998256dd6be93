"""Alpine (and OpenWrt 24+) packages from lib/apk/db/installed."""

from __future__ import annotations

from agent.inventory.packages import read_apk
from sbom.scanners._packages import scan_packages
from sbom.scanners.interface import ScanContext, ScanResult


class ApkScanner:
    name = "apk"

    def scan(self, ctx: ScanContext) -> ScanResult:
        return scan_packages(ctx, self.name, read_apk, "alpine")
