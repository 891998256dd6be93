"""OS identity, kernel, hardware and network identity of a root: live system or offline image.

Every function takes the root path. On the live root (`/`) the kernel comes from `os.uname()` and
hardware from /proc and /sys; on an offline image only files inside the image are read.
"""

from __future__ import annotations

import os
import re
import shlex
import struct
from pathlib import Path
from typing import Any, Final

from agent.inventory import rootfs

OS_RELEASE_FILES: Final = ("etc/os-release", "usr/lib/os-release")
OPENWRT_RELEASE: Final = "etc/openwrt_release"
DEBIAN_VERSION: Final = "etc/debian_version"
ALPINE_RELEASE: Final = "etc/alpine-release"
DMI_DIR: Final = "sys/class/dmi/id"
DT_DIRS: Final = ("proc/device-tree", "sys/firmware/devicetree/base")

_MAC_RE: Final = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_KVER_RE: Final = re.compile(r"^\d+\.\d+")
# ELF e_machine → the `uname -m` spelling, to name an offline image's architecture.
_ELF_MACHINES: Final = {
    3: "i686",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv64",
    258: "loongarch64",
}


def _shell_vars(text: str) -> dict[str, str]:
    """KEY=value lines as os-release and openwrt_release write them (shell quoting)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, comments=False, posix=True)
        except ValueError:
            words = [raw.strip("'\"")]
        out[key.strip()] = " ".join(words)
    return out


def os_identity(root: Path) -> dict[str, Any]:
    """OS id/name/version from os-release, else openwrt_release, else debian_version."""
    for rel in OS_RELEASE_FILES:
        text = rootfs.read_text(root, rel, limit=65536)
        if text is None:
            continue
        v = _shell_vars(text)
        out: dict[str, Any] = {
            "id": v.get("ID"),
            "name": v.get("NAME"),
            "version_id": v.get("VERSION_ID"),
            "pretty_name": v.get("PRETTY_NAME"),
            "source": rel,
        }
        if v.get("VERSION_CODENAME"):
            out["codename"] = v["VERSION_CODENAME"]
        if v.get("BUILD_ID"):
            out["build_id"] = v["BUILD_ID"]
        _add_point_release(root, out)
        return {k: val for k, val in out.items() if val is not None}
    text = rootfs.read_text(root, OPENWRT_RELEASE, limit=65536)
    if text is not None:
        v = _shell_vars(text)
        dist_id = v.get("DISTRIB_ID", "OpenWrt")
        out = {
            "id": dist_id.lower(),
            "name": dist_id,
            "version_id": v.get("DISTRIB_RELEASE"),
            "pretty_name": v.get("DISTRIB_DESCRIPTION"),
            "source": OPENWRT_RELEASE,
        }
        if v.get("DISTRIB_REVISION"):
            out["build_id"] = v["DISTRIB_REVISION"]
        return {k: val for k, val in out.items() if val is not None}
    text = rootfs.read_text(root, DEBIAN_VERSION, limit=4096)
    if text is not None and text.strip():
        ver = text.strip().splitlines()[0]
        return {
            "id": "debian",
            "name": "Debian GNU/Linux",
            "version_id": ver.split(".")[0],
            "pretty_name": f"Debian GNU/Linux {ver}",
            "debian_version": ver,
            "source": DEBIAN_VERSION,
        }
    return {}


def _add_point_release(root: Path, out: dict[str, Any]) -> None:
    """os-release says '12'; debian_version says '12.5': keep the precise one too."""
    for rel, key in ((DEBIAN_VERSION, "debian_version"), (ALPINE_RELEASE, "alpine_release")):
        text = rootfs.read_text(root, rel, limit=4096)
        if text and text.strip():
            out[key] = text.strip().splitlines()[0]


def elf_arch(data: bytes) -> str | None:
    """`uname -m`-style architecture from an ELF header, or None."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    endian = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", data, 18)
    name = _ELF_MACHINES.get(machine)
    if name == "mips" and data[4] == 2:
        return "mips64"
    return name


def kernel(root: Path) -> dict[str, Any]:
    """Kernel release and arch: uname on the live root, lib/modules and ELF headers offline."""
    if rootfs.is_live(root):
        u = os.uname()
        return {"release": u.release, "arch": u.machine, "source": "uname"}
    out: dict[str, Any] = {}
    releases = [n for n in rootfs.listdir(root, "lib/modules") if _KVER_RE.match(n)]
    if not releases:
        releases = [
            n.split("-", 1)[1]
            for n in rootfs.listdir(root, "boot")
            if n.startswith("vmlinuz-") and _KVER_RE.match(n.split("-", 1)[1])
        ]
        if releases:
            out["source"] = "boot"
    else:
        out["source"] = "lib/modules"
    if releases:
        releases.sort(key=_version_key)
        out["release"] = releases[-1]
        if len(releases) > 1:
            out["other_releases"] = releases[:-1]
    for rel in ("bin/busybox", "bin/sh", "usr/bin/env", "bin/ls", "sbin/init"):
        head = rootfs.read_bytes(root, rel, limit=64)
        arch = elf_arch(head or b"")
        if arch:
            out["arch"] = arch
            break
    return out


def _version_key(text: str) -> list[tuple[int, str]]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.\-+~_]", text)]


def _first_line(root: Path, rel: str) -> str | None:
    text = rootfs.read_text(root, rel, limit=4096)
    if text is None:
        return None
    text = text.replace("\x00", "").strip()
    return text.splitlines()[0].strip() if text else None


_DMI_PLACEHOLDERS: Final = frozenset(
    {"", "to be filled by o.e.m.", "default string", "system product name", "not specified", "none"}
)


def _dmi(root: Path, key: str) -> str | None:
    value = _first_line(root, f"{DMI_DIR}/{key}")
    if value is None or value.lower() in _DMI_PLACEHOLDERS:
        return None
    return value


def cpu_model(root: Path) -> str | None:
    """CPU/SoC name from /proc/cpuinfo (x86/ARM 'model name', old ARM 'Processor', MIPS)."""
    text = rootfs.read_text(root, "proc/cpuinfo", limit=1024 * 1024)
    if not text:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "processor", "cpu model", "hardware", "system type", "cpu"):
        found = fields.get(key)
        if found and not found.isdigit():
            return found
    return None


def device_tree(root: Path) -> dict[str, Any]:
    """Board model, compatible strings and serial number from the flattened device tree."""
    for base in DT_DIRS:
        model = _first_line(root, f"{base}/model")
        compat_raw = rootfs.read_bytes(root, f"{base}/compatible", limit=4096)
        if model is None and compat_raw is None:
            continue
        out: dict[str, Any] = {}
        if model:
            out["model"] = model
        if compat_raw:
            out["compatible"] = [
                c.decode("ascii", "replace") for c in compat_raw.split(b"\x00") if c
            ]
        serial = _first_line(root, f"{base}/serial-number")
        if serial:
            out["serial"] = serial
        return out
    return {}


def hardware(root: Path) -> dict[str, Any]:
    """Vendor/model/serial from DMI, board/compatible from the device tree, CPU from cpuinfo."""
    out: dict[str, Any] = {}
    sources: list[str] = []
    vendor = _dmi(root, "sys_vendor") or _dmi(root, "board_vendor")
    model = _dmi(root, "product_name") or _dmi(root, "board_name")
    if vendor or model:
        sources.append("dmi")
        out["vendor"] = vendor
        out["model"] = model
        out["serial"] = _dmi(root, "product_serial") or _dmi(root, "board_serial")
        out["hw_revision"] = _dmi(root, "product_version")
        out["board"] = _dmi(root, "board_name")
    dt = device_tree(root)
    if dt:
        sources.append("device-tree")
        out.setdefault("board", None)
        out["board"] = out["board"] or dt.get("model")
        if dt.get("compatible"):
            out["compatible"] = dt["compatible"]
        if not out.get("serial") and dt.get("serial"):
            out["serial"] = dt["serial"]
    cpu = cpu_model(root)
    if cpu:
        sources.append("cpuinfo")
        out["cpu_model"] = cpu
    if sources:
        out["source"] = "+".join(sources)
    return {k: v for k, v in out.items() if v is not None}


def parts(hw: dict[str, Any]) -> list[dict[str, Any]]:
    """The SoC named by the device tree: by convention the root node's last compatible string.

    The agent reports the raw devicetree vendor prefix (e.g. 'qcom'); mapping it to a company is
    the server's knowledge base's job, so nothing is guessed here.
    """
    compat = hw.get("compatible") or []
    if len(compat) < 2 or "," not in compat[-1]:
        return []
    prefix, _, part = compat[-1].partition(",")
    return [
        {
            "kind": "soc",
            "vendor": prefix,
            "model": part,
            "compatible": compat[-1],
            "evidence": "device-tree",
            "confidence": "medium",
        }
    ]


def hostname(root: Path) -> str | None:
    if rootfs.is_live(root):
        return os.uname().nodename
    name = _first_line(root, "etc/hostname")
    if name:
        return name
    text = rootfs.read_text(root, "etc/config/system", limit=65536)  # OpenWrt UCI
    if text:
        m = re.search(r"^\s*option\s+hostname\s+'?\"?([^'\"\s]+)", text, re.M)
        if m:
            return m.group(1)
    return None


def machine_id(root: Path) -> str | None:
    for rel in ("etc/machine-id", "var/lib/dbus/machine-id"):
        value = _first_line(root, rel)
        if value and re.fullmatch(r"[0-9a-f]{32}", value):
            return value
    return None


def macs(root: Path) -> list[str]:
    """Unique hardware addresses of the network interfaces (loopback and all-zero ones left out)."""
    found: set[str] = set()
    for name in rootfs.listdir(root, "sys/class/net"):
        if name == "lo":
            continue
        value = (_first_line(root, f"sys/class/net/{name}/address") or "").lower()
        if _MAC_RE.match(value) and value != "00:00:00:00:00:00":
            found.add(value)
    return sorted(found)
