"""Python distributions from site-packages metadata; the image's interpreter never runs."""

from __future__ import annotations

from agent.inventory.packages import read_python
from sbom.scanners._packages import scan_packages
from sbom.scanners.interface import ScanContext, ScanResult


class PythonScanner:
    name = "python"

    def scan(self, ctx: ScanContext) -> ScanResult:
        return scan_packages(ctx, self.name, read_python, None)
