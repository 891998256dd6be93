"""Hardware hints from the device tree: board model and the SoC's compatible string.

On a live system the tree is under proc/device-tree; in a firmware image we read the flattened
device tree blobs (boot/*.dtb) ourselves. By devicetree convention the root node's last
`compatible` entry names the SoC (e.g. "qcom,ipq4019"); firmware_db maps it to a part and maker.
"""

from __future__ import annotations

import struct

from agent.inventory import rootfs, system
from sbom.model import CONFIDENCE_MEDIUM, EVIDENCE_DEVICE_TREE
from sbom.scanners.interface import KIND_DEVICE, Finding, ScanContext, ScanResult

FDT_MAGIC = 0xD00DFEED
_FDT_BEGIN_NODE, _FDT_END_NODE, _FDT_PROP, _FDT_NOP, _FDT_END = 1, 2, 3, 4, 9
DTB_DIRS = ("boot", "boot/dtbs", "boot/dtb")
MAX_DTB = 4 * 1024 * 1024


def fdt_root_props(blob: bytes) -> dict[str, bytes]:
    """Properties of the root node of a flattened device tree blob (empty if not a valid FDT)."""
    if len(blob) < 40 or struct.unpack_from(">I", blob, 0)[0] != FDT_MAGIC:
        return {}
    _, total, off_struct, off_strings, _, _, _, _, _, size_struct = struct.unpack_from(
        ">10I", blob, 0
    )
    end = min(len(blob), total, off_struct + size_struct)
    pos, depth = off_struct, 0
    props: dict[str, bytes] = {}
    try:
        while pos + 4 <= end:
            (token,) = struct.unpack_from(">I", blob, pos)
            pos += 4
            if token == _FDT_BEGIN_NODE:
                depth += 1
                name_end = blob.index(b"\x00", pos)
                pos = (name_end + 4) & ~3
                if depth > 1:
                    return props  # root properties come before the first child node
            elif token == _FDT_PROP:
                length, nameoff = struct.unpack_from(">II", blob, pos)
                pos += 8
                value = blob[pos : pos + length]
                pos = (pos + length + 3) & ~3
                name_start = off_strings + nameoff
                name = blob[name_start : blob.index(b"\x00", name_start)].decode("ascii", "replace")
                if depth == 1:
                    props[name] = value
            elif token != _FDT_NOP:  # end of the root node, end of tree, or garbage
                return props
    except (ValueError, struct.error):
        return props
    return props


def _strings(value: bytes) -> list[str]:
    return [s.decode("ascii", "replace") for s in value.split(b"\x00") if s]


def soc_finding(compat: list[str], evidence_path: str) -> Finding | None:
    if len(compat) < 2 or "," not in compat[-1]:
        return None
    prefix, _, part = compat[-1].partition(",")
    return Finding(
        name=part,
        version=None,
        kind=KIND_DEVICE,
        evidence=EVIDENCE_DEVICE_TREE,
        evidence_path=evidence_path,
        scanner="devicetree",
        confidence=CONFIDENCE_MEDIUM,
        part_kind="soc",
        vendor=prefix,
        product=compat[-1],
    )


class DeviceTreeScanner:
    name = "devicetree"

    def scan(self, ctx: ScanContext) -> ScanResult:
        dt = system.device_tree(ctx.root)
        if dt:
            base = next(b for b in system.DT_DIRS if rootfs.resolve(ctx.root, b) is not None)
            return self._result(dt.get("model"), dt.get("compatible") or [], dt.get("serial"), base)
        for d in DTB_DIRS:
            for entry in rootfs.listdir(ctx.root, d):
                if not entry.endswith(".dtb"):
                    continue
                props = fdt_root_props(rootfs.read_bytes(ctx.root, f"{d}/{entry}", MAX_DTB) or b"")
                if props:
                    model = _strings(props.get("model", b""))
                    return self._result(
                        model[0] if model else None,
                        _strings(props.get("compatible", b"")),
                        None,
                        f"{d}/{entry}",
                    )
        return ScanResult()

    def _result(
        self, model: str | None, compat: list[str], serial: str | None, path: str
    ) -> ScanResult:
        facts = [("board", model)] if model else []
        if compat:
            facts.append(("compatible", " ".join(compat)))
        if serial:
            facts.append(("serial", serial))
        soc = soc_finding(compat, f"{path}/compatible" if not path.endswith(".dtb") else path)
        return ScanResult(findings=(soc,) if soc else (), facts=tuple(facts))
