"""The operating system: os-release, openwrt_release, debian_version, else banner/issue text."""

from __future__ import annotations

import re

from agent.inventory import rootfs, system
from sbom.model import CONFIDENCE_MEDIUM, EVIDENCE_OS_RELEASE
from sbom.scanners.interface import KIND_OS, Finding, ScanContext, ScanResult

BANNER_FILES = ("etc/banner", "etc/issue", "etc/issue.net", "etc/motd")
_BANNER_RE = re.compile(
    r"(OpenWrt|LEDE|Buildroot|Poky|Yocto|Debian GNU/Linux|Ubuntu|Alpine Linux|Raspbian)"
    r"[^\d\n]{0,24}(\d[\w.\-]*)"
)
_BANNER_IDS = {
    "OpenWrt": "openwrt",
    "LEDE": "lede",
    "Buildroot": "buildroot",
    "Poky": "poky",
    "Yocto": "poky",
    "Debian GNU/Linux": "debian",
    "Ubuntu": "ubuntu",
    "Alpine Linux": "alpine",
    "Raspbian": "raspbian",
}


def os_finding(ctx: ScanContext) -> Finding | None:
    ident = system.os_identity(ctx.root)
    if ident.get("id"):
        version = (
            ident.get("debian_version") or ident.get("alpine_release") or ident.get("version_id")
        )
        extra = tuple(
            (f"dunewatch:os:{k}", str(ident[k]))
            for k in ("pretty_name", "codename", "build_id")
            if ident.get(k)
        )
        return Finding(
            name=str(ident["id"]),
            version=str(version) if version else None,
            kind=KIND_OS,
            evidence=EVIDENCE_OS_RELEASE,
            evidence_path=str(ident.get("source")),
            scanner="osrelease",
            vendor=str(ident["id"]),
            product=str(ident["id"]),
            extra=extra,
        )
    for rel in BANNER_FILES:
        text = rootfs.read_text(ctx.root, rel, limit=65536)
        m = _BANNER_RE.search(text or "")
        if m:
            os_id = _BANNER_IDS[m.group(1)]
            return Finding(
                name=os_id,
                version=m.group(2).rstrip(".,-"),
                kind=KIND_OS,
                evidence=EVIDENCE_OS_RELEASE,
                evidence_path=rel,
                scanner="osrelease",
                confidence=CONFIDENCE_MEDIUM,
                vendor=os_id,
                product=os_id,
            )
    return None


class OsReleaseScanner:
    name = "osrelease"

    def scan(self, ctx: ScanContext) -> ScanResult:
        found = os_finding(ctx)
        facts = []
        host = system.hostname(ctx.root)
        if host:
            facts.append(("hostname", host))
        mid = system.machine_id(ctx.root)
        if mid:
            facts.append(("machine_id", mid))
        return ScanResult(findings=(found,) if found else (), facts=tuple(facts))
