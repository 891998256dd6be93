"""The Linux kernel: lib/modules/<release>, and the banner inside kernel images under boot/.

Kernel images are usually compressed: the banner ("Linux version 6.1.0-18-amd64 (...)") is looked
for in the raw file, then inside an embedded gzip stream (bzImage/zImage), and a U-Boot uImage
header's image name ("Linux-3.0.8") is read as a last resort.
"""

from __future__ import annotations

import re
import struct
import zlib

from agent.inventory import rootfs, system
from sbom.model import CONFIDENCE_MEDIUM, EVIDENCE_BINARY, EVIDENCE_FILESYSTEM
from sbom.scanners.interface import KIND_OS, Finding, ScanContext, ScanResult

IMAGE_PREFIXES = ("vmlinuz", "vmlinux", "zImage", "bzImage", "uImage", "Image", "kernel")
MAX_IMAGE = 64 * 1024 * 1024
MAX_INFLATE = 96 * 1024 * 1024
_BANNER_RE = re.compile(rb"Linux version (\d+\.\d+[\w.+~-]*) \(")
_UIMAGE_MAGIC = 0x27051956
_UIMAGE_NAME_RE = re.compile(rb"Linux-(\d+\.\d+[\w.+~-]*)")


def image_banner(data: bytes) -> str | None:
    """Kernel release from an image: plain banner, gzip-embedded banner, or uImage name."""
    m = _BANNER_RE.search(data)
    if m:
        return m.group(1).decode("ascii", "replace")
    start = data.find(b"\x1f\x8b\x08")
    while start >= 0:
        try:
            inflated = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[start:], MAX_INFLATE)
        except zlib.error:
            inflated = b""
        m = _BANNER_RE.search(inflated)
        if m:
            return m.group(1).decode("ascii", "replace")
        start = data.find(b"\x1f\x8b\x08", start + 3)
    if len(data) >= 64 and struct.unpack(">I", data[:4])[0] == _UIMAGE_MAGIC:
        m = _UIMAGE_NAME_RE.search(data[32:64])
        if m:
            return m.group(1).decode("ascii", "replace")
    return None


class KernelScanner:
    name = "kernel"

    def scan(self, ctx: ScanContext) -> ScanResult:
        found: dict[str, Finding] = {}
        for rel in sorted(rootfs.listdir(ctx.root, "boot")):
            if not rel.startswith(IMAGE_PREFIXES):
                continue
            data = rootfs.read_bytes(ctx.root, f"boot/{rel}", limit=MAX_IMAGE)
            release = image_banner(data or b"")
            if release and release not in found:
                found[release] = Finding(
                    name="linux",
                    version=release,
                    kind=KIND_OS,
                    evidence=EVIDENCE_BINARY,
                    evidence_path=f"boot/{rel}",
                    scanner=self.name,
                    product="linux",
                    cpe_hint=("linux", "linux_kernel"),
                )
        info = system.kernel(ctx.root)
        release = info.get("release")
        if release and release not in found:
            found[release] = Finding(
                name="linux",
                version=release,
                kind=KIND_OS,
                evidence=EVIDENCE_FILESYSTEM,
                evidence_path=f"{info.get('source', 'lib/modules')}",
                scanner=self.name,
                confidence=CONFIDENCE_MEDIUM,
                arch=info.get("arch"),
                product="linux",
                cpe_hint=("linux", "linux_kernel"),
            )
        facts = (("arch", info["arch"]),) if info.get("arch") else ()
        return ScanResult(findings=tuple(found.values()), facts=facts)
