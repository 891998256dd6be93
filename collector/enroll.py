"""Enrollment: per-device MQTT credentials, mosquitto password-file and ACL entries, store record.

A device's MQTT username is its device id; the ACL's `pattern write <root>/v1/%u/#` lets it write
only under its own topic. Files are rewritten atomically and other users' lines are kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.envelope import DEFAULT_ROOT, EnvelopeError, check_device_id, check_root
from collector.broker.passwords import acl_text, new_password, password_line
from collector.errors import CollectorError
from collector.store.interface import Store


class EnrollError(CollectorError):
    """A device id, tag or broker file that enrollment cannot use."""


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    password: str = field(repr=False)
    password_line: str
    acl: str
    tags: Mapping[str, str]
    passwd_file: Path | None = None
    acl_file: Path | None = None


def parse_tags(items: list[str] | None) -> dict[str, str]:
    """`k=v` strings into a dict; the error names the bad item."""
    tags: dict[str, str] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise EnrollError(f"tag {item!r} must look like key=value (e.g. district=north)")
        tags[key.strip()] = val.strip()
    return tags


def device_acl(root: str) -> str:
    """The ACL lines every device needs (one pattern covers all devices)."""
    return f"pattern write {root}/v1/%u/#\n"


def _atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_password(path: Path, username: str, line: str) -> None:
    """Add or replace `username`'s line in a mosquitto password file, keeping the others."""
    lines: list[str] = []
    if path.exists():
        for old in path.read_text(encoding="utf-8").splitlines():
            if old.split(":", 1)[0] != username and old.strip():
                lines.append(old)
    lines.append(line)
    # mosquitto drops privileges before reading it when started as root: keep it readable
    _atomic_write(path, "\n".join(lines) + "\n")


def ensure_acl(path: Path, root: str, readers: tuple[str, ...] = ("collector",)) -> bool:
    """Make sure the ACL holds the device pattern; return True when the file changed."""
    pattern = device_acl(root).strip()
    if not path.exists():
        _atomic_write(path, acl_text(root, readers))
        return True
    text = path.read_text(encoding="utf-8")
    if any(line.strip() == pattern for line in text.splitlines()):
        return False
    _atomic_write(path, text.rstrip("\n") + "\n" + pattern + "\n")
    return True


def enroll(
    device_id: str,
    tags: Mapping[str, str] | None = None,
    *,
    store: Store | None = None,
    passwd_file: Path | None = None,
    acl_file: Path | None = None,
    root: str = DEFAULT_ROOT,
    password: str | None = None,
) -> Enrollment:
    """Create credentials for one device; write them to the broker files and the store if given."""
    try:
        check_device_id(device_id)
        check_root(root)
    except EnvelopeError as exc:
        raise EnrollError(f"enroll: {exc.detail}") from None
    pw = password or new_password()
    line = password_line(device_id, pw)
    try:
        if passwd_file is not None:
            write_password(Path(passwd_file), device_id, line)
        if acl_file is not None:
            ensure_acl(Path(acl_file), root)
    except OSError as exc:
        raise EnrollError(
            f"enroll: cannot write broker file {exc.filename}: {exc.strerror}"
        ) from None
    if store is not None:
        store.ensure_device(device_id, tags=tags or {}, enrolled=True)
    return Enrollment(
        device_id=device_id,
        password=pw,
        password_line=line,
        acl=device_acl(root),
        tags=dict(tags or {}),
        passwd_file=passwd_file,
        acl_file=acl_file,
    )
