"""Path handling inside a root that may be an offline image: resolve like a chroot would.

An image's absolute symlinks (``etc/os-release -> /usr/lib/os-release``) must point back into the
image, never at the host, and ``..`` must stop at the image root. Every reader goes through
these helpers, so a hostile or simply foreign root filesystem can never make us read a host file.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

MAX_SYMLINK_HOPS = 40


def resolve(root: Path, rel: str) -> Path | None:
    """Host path of ``rel`` inside ``root`` with symlinks re-rooted; None if missing or looping."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        cur = os.path.join(root, *done, name)
        try:
            st = os.lstat(cur)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return None
            try:
                target = os.readlink(cur)
            except OSError:
                return None
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        else:
            done.append(name)
    return Path(root, *done)


def read_bytes(root: Path, rel: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
    """Contents of a regular file inside the root (at most ``limit`` bytes), or None."""
    path = resolve(root, rel)
    if path is None:
        return None
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def read_text(root: Path, rel: str, limit: int = 16 * 1024 * 1024) -> str | None:
    data = read_bytes(root, rel, limit)
    return None if data is None else data.decode("utf-8", "replace")


def listdir(root: Path, rel: str) -> list[str]:
    """Sorted entry names of a directory inside the root; empty if it is missing."""
    path = resolve(root, rel)
    if path is None:
        return []
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def glob(root: Path, pattern: str) -> list[str]:
    """Root-relative paths matching a ``/``-separated fnmatch pattern, resolved inside the root."""
    found = [""]
    for seg in (p for p in pattern.split("/") if p):
        nxt: list[str] = []
        for base in found:
            if any(ch in seg for ch in "*?["):
                nxt.extend(
                    f"{base}/{n}".lstrip("/")
                    for n in listdir(root, base)
                    if fnmatch.fnmatchcase(n, seg)
                )
            elif resolve(root, f"{base}/{seg}") is not None:
                nxt.append(f"{base}/{seg}".lstrip("/"))
        found = nxt
    return found


def is_live(root: Path) -> bool:
    """True when the root is the running system (so /proc, uname and friends describe it)."""
    try:
        return os.path.samefile(root, "/")
    except OSError:
        return False
