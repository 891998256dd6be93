"""Installed-package readers for dpkg, opkg, apk and Python, each on a root path.

They parse the package managers' own databases (never run a tool of the image), so they work on a
live system and on an unpacked firmware image alike. A database that breaks its format raises
`PackageDbError` naming the file and line; a missing database simply means "no such packages".
"""

from __future__ import annotations

import csv
import email.parser
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.inventory import rootfs
from agent.inventory.errors import PackageDbError

MANAGER_DPKG: Final = "dpkg"
MANAGER_OPKG: Final = "opkg"
MANAGER_APK: Final = "apk"
MANAGER_PYPI: Final = "pypi"

DPKG_STATUS: Final = "var/lib/dpkg/status"
DPKG_INFO: Final = "var/lib/dpkg/info"
OPKG_STATUS_FILES: Final = ("usr/lib/opkg/status", "var/lib/opkg/status")
APK_INSTALLED: Final = "lib/apk/db/installed"
# Where Python distributions live on Debian, OpenWrt, Alpine and Buildroot images, and in venvs.
PYTHON_SITE_PATTERNS: Final = (
    "usr/lib/python3*/site-packages",
    "usr/lib/python3*/dist-packages",
    "usr/lib/python3/dist-packages",
    "usr/local/lib/python3*/site-packages",
    "usr/local/lib/python3*/dist-packages",
    "usr/lib64/python3*/site-packages",
    "lib/python3*/site-packages",
)

# dpkg/opkg states whose files are (at least partly) on disk.
_ABSENT_STATES: Final = frozenset({"not-installed", "config-files"})
_FIELD_RE: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.+-]*):[ \t]?(.*)$")


@dataclass(frozen=True)
class Package:
    """One installed package as its manager recorded it."""

    name: str
    version: str
    manager: str
    arch: str | None = None
    source: str | None = None  # source package (dpkg Source, opkg Source, apk origin)
    files: tuple[str, ...] = ()  # absolute paths inside the image; only filled with with_files
    db: str = ""  # database file it came from, relative to the root

    def to_dict(self) -> dict[str, str]:
        """The wire-contract form (docs/protocol.md `packages[]`)."""
        out = {"name": self.name, "version": self.version, "manager": self.manager}
        if self.arch:
            out["arch"] = self.arch
        return out


def _paragraphs(text: str, rel: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Deb822-style paragraphs (dpkg and opkg status) with the line each one starts on."""
    fields: dict[str, str] = {}
    start = 0
    last: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                yield start, fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise PackageDbError(rel, lineno, "continuation line outside a field")
            fields[last] += "\n" + line[1:]
            continue
        m = _FIELD_RE.match(line)
        if m is None:
            raise PackageDbError(rel, lineno, f"expected 'Field: value', got {line[:60]!r}")
        if not fields:
            start = lineno
        last = m.group(1)
        fields[last] = m.group(2).strip()
    if fields:
        yield start, fields


def _state_present(status: str) -> bool:
    words = status.split()
    return len(words) == 3 and words[2] not in _ABSENT_STATES


def _list_file(root: Path, rel: str) -> tuple[str, ...]:
    text = rootfs.read_text(root, rel)
    if text is None:
        return ()
    return tuple(ln for ln in text.splitlines() if ln and ln not in ("/.", "/"))


def _source_name(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(" (", 1)[0].strip() or None


def read_dpkg(root: Path, with_files: bool = False) -> list[Package]:
    """Packages present per var/lib/dpkg/status (files from info/<pkg>[:<arch>].list)."""
    text = rootfs.read_text(root, DPKG_STATUS)
    if text is None:
        return []
    out: list[Package] = []
    for start, f in _paragraphs(text, DPKG_STATUS):
        name = f.get("Package")
        if not name:
            raise PackageDbError(DPKG_STATUS, start, "paragraph without a Package field")
        if not _state_present(f.get("Status", "")):
            continue
        version = f.get("Version")
        if not version:
            raise PackageDbError(DPKG_STATUS, start, f"installed package {name!r} has no Version")
        arch = f.get("Architecture") or None
        files: tuple[str, ...] = ()
        if with_files:
            files = _list_file(root, f"{DPKG_INFO}/{name}:{arch}.list") or _list_file(
                root, f"{DPKG_INFO}/{name}.list"
            )
        out.append(
            Package(
                name, version, MANAGER_DPKG, arch, _source_name(f.get("Source")), files, DPKG_STATUS
            )
        )
    return sorted(out, key=lambda p: (p.name, p.arch or ""))


def read_opkg(root: Path, with_files: bool = False) -> list[Package]:
    """Packages per usr/lib/opkg/status and var/lib/opkg/status (OpenWrt, Yocto/OE images)."""
    out: dict[tuple[str, str], Package] = {}
    seen: set[Path] = set()
    for rel in OPKG_STATUS_FILES:
        real = rootfs.resolve(root, rel)
        if real is None or real in seen:
            continue
        seen.add(real)
        text = rootfs.read_text(root, rel)
        if text is None:
            continue
        info = posixpath.join(posixpath.dirname(rel), "info")
        for start, f in _paragraphs(text, rel):
            name = f.get("Package")
            if not name:
                raise PackageDbError(rel, start, "paragraph without a Package field")
            if "Status" in f and not _state_present(f["Status"]):
                continue
            version = f.get("Version")
            if not version:  # some opkg builds keep the version only in the control file
                ctl = rootfs.read_text(root, f"{info}/{name}.control") or ""
                version = next(
                    (
                        fields.get("Version")
                        for _, fields in _paragraphs(ctl, f"{info}/{name}.control")
                    ),
                    None,
                )
            if not version:
                raise PackageDbError(rel, start, f"installed package {name!r} has no Version")
            files = _list_file(root, f"{info}/{name}.list") if with_files else ()
            arch = f.get("Architecture") or None
            pkg = Package(
                name, version, MANAGER_OPKG, arch, _source_name(f.get("Source")), files, rel
            )
            out.setdefault((name, arch or ""), pkg)
    return sorted(out.values(), key=lambda p: (p.name, p.arch or ""))


def read_apk(root: Path, with_files: bool = False) -> list[Package]:
    """Packages per lib/apk/db/installed (Alpine, OpenWrt 24+): one-letter keys, blank lines."""
    text = rootfs.read_text(root, APK_INSTALLED)
    if text is None:
        return []
    out: list[Package] = []
    rec: dict[str, str] = {}
    files: list[str] = []
    cur_dir = ""
    start = 0

    def flush() -> None:
        if not start:
            return
        if "P" not in rec or "V" not in rec:
            raise PackageDbError(APK_INSTALLED, start, "record without P: (name) or V: (version)")
        out.append(
            Package(
                rec["P"],
                rec["V"],
                MANAGER_APK,
                rec.get("A") or None,
                rec.get("o") or None,
                tuple(files),
                APK_INSTALLED,
            )
        )

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            flush()
            rec, files, cur_dir, start = {}, [], "", 0
            continue
        if len(line) < 2 or line[1] != ":" or not line[0].isalpha():
            raise PackageDbError(APK_INSTALLED, lineno, f"expected 'X:value', got {line[:60]!r}")
        start = start or lineno
        key, value = line[0], line[2:]
        if key == "F":
            cur_dir = value
        elif key == "R":
            if with_files:
                files.append("/" + posixpath.join(cur_dir, value))
        else:
            rec.setdefault(key, value)
    flush()
    return sorted(out, key=lambda p: (p.name, p.arch or ""))


_HEADER_PARSER: Final = email.parser.HeaderParser()


def _metadata_headers(data: bytes) -> str:
    """Only the header block of METADATA/PKG-INFO: the long description is never needed."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    end = text.find("\n\n")
    return text if end < 0 else text[: end + 1]


def _record_files(root: Path, site_rel: str, dist_rel: str) -> tuple[str, ...]:
    text = rootfs.read_text(root, f"{dist_rel}/RECORD")
    if text is not None:
        rows = csv.reader(io.StringIO(text))
        paths = [row[0] for row in rows if row]
    else:
        text = rootfs.read_text(root, f"{dist_rel}/installed-files.txt")
        if text is None:
            return ()
        paths = [posixpath.join(posixpath.basename(dist_rel), ln) for ln in text.splitlines() if ln]
    out = []
    for p in paths:
        full = posixpath.normpath(posixpath.join("/", site_rel, p))
        out.append(full)
    return tuple(sorted(set(out)))


def python_site_dirs(root: Path, patterns: tuple[str, ...] = PYTHON_SITE_PATTERNS) -> list[str]:
    """Root-relative site-packages directories, each real directory once."""
    seen: set[Path] = set()
    out: list[str] = []
    for pattern in patterns:
        for rel in rootfs.glob(root, pattern):
            real = rootfs.resolve(root, rel)
            if real is None or real in seen or not real.is_dir():
                continue
            seen.add(real)
            out.append(rel)
    return out


def read_python(
    root: Path,
    with_files: bool = False,
    site_patterns: tuple[str, ...] = PYTHON_SITE_PATTERNS,
) -> list[Package]:
    """Distributions from *.dist-info/METADATA and *.egg-info/PKG-INFO (never runs Python)."""
    out: dict[str, Package] = {}
    for site in python_site_dirs(root, site_patterns):
        for entry in rootfs.listdir(root, site):
            if entry.endswith(".dist-info"):
                meta_rel = f"{site}/{entry}/METADATA"
            elif entry.endswith(".egg-info"):
                meta_rel = f"{site}/{entry}/PKG-INFO"
                real = rootfs.resolve(root, f"{site}/{entry}")
                # old distutils installs write the egg-info as a single file
                if real is not None and real.is_file():
                    meta_rel = f"{site}/{entry}"
            else:
                continue
            data = rootfs.read_bytes(root, meta_rel, limit=4 * 1024 * 1024)
            if data is None:
                raise PackageDbError(meta_rel, None, "distribution metadata file is missing")
            msg = _HEADER_PARSER.parsestr(_metadata_headers(data))
            name, version = msg.get("Name"), msg.get("Version")
            if not name or not version:
                raise PackageDbError(meta_rel, None, "metadata has no Name or no Version header")
            key = re.sub(r"[-_.]+", "-", str(name)).lower()
            if key in out:
                continue
            files = _record_files(root, site, f"{site}/{entry}") if with_files else ()
            out[key] = Package(str(name), str(version), MANAGER_PYPI, None, None, files, meta_rel)
    return sorted(out.values(), key=lambda p: p.name.lower())


READERS: Final = (
    (MANAGER_DPKG, read_dpkg),
    (MANAGER_OPKG, read_opkg),
    (MANAGER_APK, read_apk),
    (MANAGER_PYPI, read_python),
)


def owned_files(packages: list[Package]) -> set[str]:
    """Every path any package claims, for telling unpackaged binaries apart."""
    return {f for p in packages for f in p.files}
