"""ELF files that no package owns, identified by version strings from our own signature table.

Container-first scanners stop at package databases; embedded images ship BusyBox, dropbear,
OpenSSL and vendor daemons as bare files. We walk the tree without following symlinks, keep only
regular files with the ELF magic that no package database claims, and match the signature table
(sbom/data/binary_signatures.json) against their bytes through mmap, never loading the whole tree.
"""

from __future__ import annotations

import fnmatch
import json
import mmap
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from agent.inventory import rootfs
from sbom.model import CONFIDENCE_HIGH, EVIDENCE_BINARY
from sbom.scanners.interface import Finding, ScanContext, ScannerError, ScanResult

ELF_MAGIC = b"\x7fELF"
MAX_FILE = 128 * 1024 * 1024  # bigger "ELF files" are not what we look for; skipped and counted
SKIP_TOP = frozenset({"proc", "sys", "dev", "run", "tmp"})


@dataclass(frozen=True)
class Signature:
    product: str
    kind: str
    needle: bytes
    pattern: re.Pattern[bytes]
    file_names: tuple[str, ...]
    require: re.Pattern[bytes] | None
    cpe: tuple[str, str] | None


def load_signatures(path: Path | None = None) -> tuple[Signature, ...]:
    """The identifier table; a broken entry is an error naming the product."""
    if path is None:
        text = files("sbom").joinpath("data", "binary_signatures.json").read_text()
        where = "sbom/data/binary_signatures.json"
    else:
        text, where = path.read_text(), str(path)
    try:
        raw: dict[str, Any] = json.loads(text)
        out = []
        for entry in raw["signatures"]:
            out.append(
                Signature(
                    product=entry["product"],
                    kind=entry.get("kind", "application"),
                    needle=entry.get("needle", "").encode(),
                    pattern=re.compile(entry["pattern"].encode()),
                    file_names=tuple(entry.get("file_names", ())),
                    require=re.compile(entry["require"].encode()) if entry.get("require") else None,
                    cpe=(entry["cpe_vendor"], entry["cpe_product"])
                    if entry.get("cpe_vendor")
                    else None,
                )
            )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ScannerError(f"{where}: bad signature table: {exc}") from exc
    return tuple(out)


def identify(
    name: str, data: bytes | mmap.mmap, sigs: tuple[Signature, ...]
) -> list[tuple[Signature, str]]:
    """Every (signature, version) that matches one file's name and bytes, guards applied."""
    hits = []
    for sig in sigs:
        if sig.file_names and not any(fnmatch.fnmatchcase(name, pat) for pat in sig.file_names):
            continue
        if sig.needle and data.find(sig.needle) < 0:
            continue
        m = sig.pattern.search(data)
        if m is None:
            continue
        if sig.require is not None and sig.require.search(data) is None:
            continue
        hits.append((sig, m.group(1).decode("ascii", "replace")))
    return hits


def walk_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every regular file, symlinks and special files never followed."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel_dir) if rel_dir else root)
        except OSError:
            continue
        with it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if rel_dir or entry.name not in SKIP_TOP:
                        stack.append(rel)
                elif stat.S_ISREG(st.st_mode):
                    yield rel, st


def canonical_owned(root: Path, owned: frozenset[str]) -> set[str]:
    """Package-claimed paths with their directories resolved inside the root (usr-merge aware)."""
    dirs: dict[str, str | None] = {}
    out: set[str] = set()
    for path in owned:
        d, base = posixpath.split(path)
        if d not in dirs:
            real = rootfs.resolve(root, d)
            dirs[d] = None if real is None else os.path.relpath(real, root)
        rd = dirs[d]
        if rd is None:
            continue
        out.add(base if rd == "." else f"{rd}/{base}")
    return out


class ElfScanner:
    name = "elf"

    def __init__(self, signatures: tuple[Signature, ...] | None = None, max_file: int = MAX_FILE):
        self.signatures = signatures if signatures is not None else load_signatures()
        self.max_file = max_file

    def scan(self, ctx: ScanContext) -> ScanResult:
        owned = canonical_owned(ctx.root, ctx.owned)
        found: dict[tuple[str, str], list[str]] = {}
        kinds: dict[tuple[str, str], Signature] = {}
        elf_total = unowned = unidentified = skipped = 0
        seen = 0
        for rel, st in walk_files(ctx.root):
            seen += 1
            if ctx.progress is not None and seen % 2000 == 0:
                ctx.progress("elf", seen, 0)
            if st.st_size < 52:
                continue
            path = os.path.join(ctx.root, rel)
            try:
                with open(path, "rb") as fh:
                    if fh.read(4) != ELF_MAGIC:
                        continue
                    elf_total += 1
                    if rel in owned:
                        continue
                    unowned += 1
                    if st.st_size > self.max_file:
                        skipped += 1
                        continue
                    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                        hits = identify(posixpath.basename(rel), data, self.signatures)
            except (OSError, ValueError):
                skipped += 1
                continue
            if not hits:
                unidentified += 1
            for sig, version in hits:
                key = (sig.product, version)
                found.setdefault(key, []).append(rel)
                kinds[key] = sig
        findings = []
        for key, paths in sorted(found.items()):
            sig = kinds[key]
            paths.sort()
            extra = (("dunewatch:evidence:files", " ".join(paths[:20])),) if len(paths) > 1 else ()
            findings.append(
                Finding(
                    name=sig.product,
                    version=key[1],
                    kind=sig.kind,
                    evidence=EVIDENCE_BINARY,
                    evidence_path=paths[0],
                    scanner=self.name,
                    manager="binary",
                    confidence=CONFIDENCE_HIGH if sig.file_names or sig.require else "medium",
                    product=sig.product,
                    cpe_hint=sig.cpe,
                    extra=extra,
                )
            )
        facts = (
            ("elf_files", str(elf_total)),
            ("elf_unowned", str(unowned)),
            ("elf_unidentified", str(unidentified)),
            ("elf_skipped", str(skipped)),
        )
        return ScanResult(findings=tuple(findings), facts=facts)
