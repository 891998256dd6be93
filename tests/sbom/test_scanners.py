"""Scanner units: kernel images, device tree blobs, OS banners."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from sbom.builders.rootfs import RootfsBuilder
from sbom.scanners.devicetree import DeviceTreeScanner, fdt_root_props
from sbom.scanners.interface import ScanContext
from sbom.scanners.kernel import KernelScanner, image_banner
from sbom.scanners.osrelease import OsReleaseScanner

BANNER = b"Linux version 5.10.110 (builder@host) (gcc version 10.3.0) #1 SMP PREEMPT\n"


def _fdt(props: dict[str, bytes], child: bool = True) -> bytes:
    """A minimal flattened device tree (spec v17) built by hand: root properties + one child."""
    strings = b""
    offsets = {}
    for name in props:
        offsets[name] = len(strings)
        strings += name.encode() + b"\0"

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 4)

    struct_block = struct.pack(">I", 1) + pad(b"\0")
    for name, value in props.items():
        struct_block += struct.pack(">III", 3, len(value), offsets[name]) + pad(value)
    if child:
        struct_block += struct.pack(">I", 1) + pad(b"cpus\0") + struct.pack(">I", 2)
    struct_block += struct.pack(">II", 2, 9)
    off_rsv = 40
    off_struct = off_rsv + 16
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    header = struct.pack(
        ">10I",
        0xD00DFEED,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        len(strings),
        len(struct_block),
    )
    return header + b"\0" * 16 + struct_block + strings


def test_fdt_root_properties() -> None:
    blob = _fdt({"model": b"Example Cam X1\0", "compatible": b"example,x1\0rockchip,rv1126\0"})
    props = fdt_root_props(blob)
    assert props["model"] == b"Example Cam X1\0"
    assert props["compatible"].split(b"\0")[:2] == [b"example,x1", b"rockchip,rv1126"]
    assert fdt_root_props(b"garbage" * 10) == {}
    assert fdt_root_props(blob[:60]) == {}  # truncated: no crash


def test_dtb_in_image_gives_board_and_soc(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/board.dtb").write_bytes(
        _fdt({"compatible": b"example,x1\0rockchip,rv1126\0", "model": b"Example Cam X1\0"})
    )
    result = DeviceTreeScanner().scan(ScanContext(root=tmp_path))
    assert dict(result.facts)["board"] == "Example Cam X1"
    (soc,) = result.findings
    assert (soc.name, soc.vendor, soc.product, soc.part_kind) == (
        "rv1126",
        "rockchip",
        "rockchip,rv1126",
        "soc",
    )
    assert soc.evidence_path == "boot/board.dtb"


def test_kernel_banner_plain_gzip_and_uimage(tmp_path: Path) -> None:
    assert image_banner(b"\0" * 100 + BANNER) == "5.10.110"
    # bzImage/zImage style: a gzip stream after a decompressor stub
    assert image_banner(b"\x00MZstub" * 50 + gzip.compress(b"\0" * 4096 + BANNER)) == "5.10.110"
    uimage = struct.pack(">I", 0x27051956) + b"\0" * 28 + b"Linux-3.0.8".ljust(32, b"\0")
    assert image_banner(uimage + b"\0" * 64) == "3.0.8"
    assert image_banner(b"no kernel here") is None
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-5.10.110").write_bytes(gzip.compress(BANNER))
    (tmp_path / "lib/modules/5.10.110").mkdir(parents=True)
    (found,) = KernelScanner().scan(ScanContext(root=tmp_path)).findings
    assert (found.version, found.evidence, found.evidence_path) == (
        "5.10.110",
        "binary-version-string",
        "boot/vmlinuz-5.10.110",
    )


def test_os_from_banner_when_no_release_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/banner").write_text(
        "  _______                     ________        __\n OpenWrt 19.07.10, r11427-9ce6aa9d8d\n"
    )
    (found,) = OsReleaseScanner().scan(ScanContext(root=tmp_path)).findings
    assert (found.name, found.version, found.confidence) == ("openwrt", "19.07.10", "medium")


def test_empty_root_still_gives_a_valid_bom(tmp_path: Path) -> None:
    from sbom import output

    bom = RootfsBuilder(tmp_path, device_id="empty-1").build()
    assert [c.kind for c in bom.components] == ["firmware"]
    output.render(bom)  # validates
