"""OpenWrt/Yocto packages from usr/lib/opkg and var/lib/opkg status files."""

from __future__ import annotations

from agent.inventory.packages import read_opkg
from sbom.scanners._packages import scan_packages
from sbom.scanners.interface import ScanContext, ScanResult


class OpkgScanner:
    name = "opkg"

    def scan(self, ctx: ScanContext) -> ScanResult:
        return scan_packages(ctx, self.name, read_opkg, "openwrt")
