"""The agent's inventory: what a device is and runs, as the `inventory` body of docs/protocol.md.

Standard library only. Each reader runs on its own; a failing one is named under "errors" and the
rest of the inventory still goes out: one broken package database must never hide the others.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from agent.inventory import system
from agent.inventory.errors import InventoryError, PackageDbError
from agent.inventory.packages import READERS, Package

__all__ = ["InventoryError", "Package", "PackageDbError", "collect", "inventory_hash"]


def _agent_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("dunewatch")
    except (ImportError, PackageNotFoundError):
        return "0+unknown"


def inventory_hash(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact) of every key but "hash" itself."""
    rest = {k: v for k, v in body.items() if k != "hash"}
    canon = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def collect(root: Path = Path("/"), firmware: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the inventory body for the system under `root` (the live system by default).

    `firmware` is the declared vendor firmware (from the agent's config), passed through as is.
    """
    body: dict[str, Any] = {
        "source": "agent",
        "agent": {"version": _agent_version(), "python": platform.python_version()},
    }
    errors: dict[str, str] = {}

    def run(key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (OSError, ValueError, UnicodeError, InventoryError) as exc:
            errors[key] = _error_text(exc)
            return None

    for key, fn in (
        ("hostname", lambda: system.hostname(root)),
        ("machine_id", lambda: system.machine_id(root)),
        ("macs", lambda: system.macs(root)),
        ("os", lambda: system.os_identity(root)),
        ("kernel", lambda: system.kernel(root)),
        ("hardware", lambda: system.hardware(root)),
    ):
        value = run(key, fn)
        if value not in (None, {}, []):
            body[key] = value
    if firmware:
        body["firmware"] = dict(firmware)
    body["parts"] = system.parts(body.get("hardware", {}))
    packages: list[Package] = []
    for manager, reader in READERS:
        found: list[Package] | None = run(f"packages.{manager}", partial(reader, root))
        if found:
            packages.extend(found)
    body["packages"] = [p.to_dict() for p in packages]
    if errors:
        body["errors"] = errors
    body["hash"] = inventory_hash(body)
    return body
