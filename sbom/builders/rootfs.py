"""Root filesystem (a directory, or a tar / tar.gz archive) → DeviceBom.

Archives are hostile until proven otherwise: every member is checked before anything is written
(no absolute paths, no '..', no device or FIFO nodes, no links that leave the root, limits on
entry count and total size), then extracted with tarfile's 'data' filter into a temporary
directory that is removed afterwards. Absolute symlinks, normal in images (`var/run -> /run`),
are rewritten to the same target inside the extraction root, which is what they mean there.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sbom.builders.components import to_component
from sbom.builders.interface import BuilderError, UnsafeArchiveError
from sbom.knowledge import Classifier
from sbom.model import (
    CONFIDENCE_MEDIUM,
    EVIDENCE_FILESYSTEM,
    LAYER_FIRMWARE,
    Component,
    DeviceBom,
    DeviceInfo,
)
from sbom.scanners import SCANNERS, Finding, ScanContext, Scanner
from sbom.scanners.interface import KIND_DEVICE, KIND_FIRMWARE, KIND_OS, Progress

_DEVICE_ID_BAD = re.compile(r"[^A-Za-z0-9._:-]+")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar")


@dataclass(frozen=True)
class ExtractLimits:
    max_entries: int = 500_000
    max_total_bytes: int = 8 * 1024**3
    max_member_bytes: int = 2 * 1024**3


def _check_link(archive: str, member: tarfile.TarInfo) -> None:
    """Symlinks: absolute ones are re-rooted; relative ones must stay inside the root."""
    target = member.linkname
    base = posixpath.dirname(member.name)
    if target.startswith("/"):
        inside = posixpath.normpath(target.lstrip("/")) or "."
        member.linkname = posixpath.relpath(inside, base or ".")
        return
    joined = posixpath.normpath(posixpath.join(base, target))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}: member {member.name!r}: symlink to {target!r} leaves the root"
        )


def check_member(archive: str, member: tarfile.TarInfo) -> None:
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {name!r}: absolute path")
    if ".." in name.split("/"):
        raise UnsafeArchiveError(f"{archive}: member {name!r}: path traversal ('..')")
    if member.ischr() or member.isblk() or member.isfifo():
        raise UnsafeArchiveError(f"{archive}: member {name!r}: device or FIFO node")
    if member.issym():
        _check_link(archive, member)
    elif member.islnk():
        target = posixpath.normpath(member.linkname)
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise UnsafeArchiveError(
                f"{archive}: member {name!r}: hard link to {member.linkname!r} leaves the root"
            )
    elif not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {name!r}: unsupported member type")


def safe_extract(archive: Path, dest: Path, limits: ExtractLimits = ExtractLimits()) -> int:
    """Check every member, then extract with the 'data' filter; returns the member count."""
    label = archive.name
    try:
        with tarfile.open(archive, "r:*") as tf:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tf:
                if len(members) >= limits.max_entries:
                    raise UnsafeArchiveError(
                        f"{label}: more than {limits.max_entries} entries (limit); "
                        f"stopped at member {member.name!r}"
                    )
                check_member(label, member)
                if member.size > limits.max_member_bytes:
                    raise UnsafeArchiveError(
                        f"{label}: member {member.name!r}: {member.size} bytes exceeds the "
                        f"per-file limit {limits.max_member_bytes}"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise UnsafeArchiveError(
                        f"{label}: total size exceeds {limits.max_total_bytes} bytes at member "
                        f"{member.name!r}"
                    )
                members.append(member)
            for member in members:
                try:
                    tf.extract(member, dest, set_attrs=False, filter="data")
                except tarfile.FilterError as exc:
                    raise UnsafeArchiveError(f"{label}: member {member.name!r}: {exc}") from exc
            return len(members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise UnsafeArchiveError(f"{label}: {exc}") from exc
        raise BuilderError(f"{label}: cannot read archive: {exc}") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def image_name(path: Path) -> str:
    name = path.name
    for suffix in _ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name or "rootfs"


def _device_id(text: str) -> str:
    cleaned = _DEVICE_ID_BAD.sub("-", text).strip("-._:")[:128]
    return cleaned or "rootfs"


class RootfsBuilder:
    """Scan a root filesystem directory or archive into a DeviceBom."""

    name = "rootfs"

    def __init__(
        self,
        path: Path,
        *,
        device_id: str | None = None,
        classifier: Classifier | None = None,
        progress: Progress | None = None,
        limits: ExtractLimits = ExtractLimits(),
        scanners: tuple[Scanner, ...] | None = None,
    ) -> None:
        self.path = Path(path)
        if device_id is not None and not device_id.strip():
            raise BuilderError("device id must not be empty")
        self.device_id = device_id
        self.classifier = classifier or Classifier()
        self.progress = progress
        self.limits = limits
        self.scanners = scanners

    def build(self) -> DeviceBom:
        if self.path.is_dir():
            return self._scan(self.path, ())
        if not self.path.is_file():
            raise BuilderError(f"{self.path}: no such directory or archive")
        if not tarfile.is_tarfile(self.path):
            raise BuilderError(f"{self.path}: not a directory or a tar / tar.gz archive")
        digest = sha256_file(self.path)
        with tempfile.TemporaryDirectory(prefix="dunewatch-rootfs-") as tmp:
            count = safe_extract(self.path, Path(tmp), self.limits)
            if self.progress is not None:
                self.progress("extract", count, count)
            return self._scan(Path(tmp), (("SHA-256", digest),))

    def _scan(self, root: Path, hashes: tuple[tuple[str, str], ...]) -> DeviceBom:
        scanners = self.scanners if self.scanners is not None else tuple(s() for s in SCANNERS)
        ctx = ScanContext(root=root, progress=self.progress)
        findings: list[Finding] = []
        errors: list[str] = []
        facts: dict[str, str] = {}
        for i, scanner in enumerate(scanners):
            if self.progress is not None:
                self.progress(scanner.name, i, len(scanners))
            result = scanner.scan(ctx)
            findings.extend(result.findings)
            errors.extend(result.errors)
            facts.update(result.facts)
            distro_id, distro = ctx.distro_id, ctx.distro
            for f in result.findings:
                if f.kind == KIND_OS and f.scanner == "osrelease":
                    distro_id = f.name
                    distro = f"{f.name}-{f.version}" if f.version else f.name
            ctx = ScanContext(
                root=root,
                owned=ctx.owned | result.owned,
                distro_id=distro_id,
                distro=distro,
                progress=self.progress,
            )
        if self.progress is not None:
            self.progress("classify", 0, len(findings))
        components = [to_component(f, self.classifier) for f in findings]
        os_version = next(
            (f.version for f in findings if f.kind == KIND_OS and f.scanner == "osrelease"), None
        )
        fw_name = image_name(self.path.resolve() if self.path.name in ("", ".") else self.path)
        firmware = Component(
            name=fw_name,
            version=os_version,
            kind=KIND_FIRMWARE,
            layer=LAYER_FIRMWARE,
            evidence=EVIDENCE_FILESYSTEM,
            confidence=CONFIDENCE_MEDIUM,
            evidence_path=self.path.name or None,
            hashes=hashes,
            properties=(("dunewatch:scanner", "rootfs"),),
        )
        device = DeviceInfo(
            device_id=self.device_id or _device_id(facts.get("hostname") or fw_name),
            model=facts.get("board"),
            serial=facts.get("serial"),
            firmware_version=os_version,
        )
        parts = [c for c in components if c.kind == KIND_DEVICE]
        rest = [c for c in components if c.kind != KIND_DEVICE]
        props = tuple(sorted((f"dunewatch:scan:{k}", v) for k, v in facts.items()))
        return DeviceBom(
            device=device,
            components=(firmware, *parts, *rest),
            source="rootfs",
            properties=props,
            errors=tuple(errors),
        )
