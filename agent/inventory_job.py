"""Inventory for the loop: collected in a short-lived child process, merged with declared facts.

Why a child: reading package databases allocates megabytes of short-lived objects and imports
modules the steady-state agent never needs; CPython keeps that memory, so a long-running agent
would carry it forever. A child that runs once an hour costs a fraction of a second of CPU and
leaves the agent's RSS untouched. The child runs this same code (from a checkout, a wheel or the
zipapp), so there is one definition of the inventory.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.config import DeviceSection
from agent.errors import AgentError

CHILD_TIMEOUT = 300.0


class InventoryJobError(AgentError):
    """The inventory child failed or returned something unusable."""


def declared_firmware(device: DeviceSection) -> dict[str, Any] | None:
    if not (device.firmware_version or device.firmware_vendor):
        return None
    return {
        "vendor": device.firmware_vendor or device.vendor or None,
        "version": device.firmware_version or None,
        "release_date": device.firmware_release_date or None,
        "source": "declared",
    }


def build_inventory(root: Path, device: DeviceSection) -> dict[str, Any]:
    """The collected inventory plus what the operator declared, with the hash recomputed."""
    from agent.inventory import collect, inventory_hash

    body = collect(root, firmware=declared_firmware(device))
    declared = {
        k: v
        for k, v in (("vendor", device.vendor), ("model", device.model), ("serial", device.serial))
        if v
    }
    if declared:
        hw = dict(body.get("hardware") or {})
        hw.update(declared)
        hw["declared"] = sorted(declared)
        body["hardware"] = hw
    body["hash"] = inventory_hash(body)
    return body


def _path_entry() -> str:
    """The sys.path entry holding the agent package: a directory, or the .pyz file itself."""
    return str(Path(__file__).resolve().parent.parent)


_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from agent.inventory_job import child_main; sys.exit(child_main())"
)


def collect_in_child(
    root: Path, device: DeviceSection, timeout: float = CHILD_TIMEOUT
) -> dict[str, Any]:
    """Run build_inventory() in a fresh interpreter and return its body."""
    import json
    import subprocess

    request = json.dumps({"root": str(root), "device": asdict(device)})
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, _path_entry()],
            input=request.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InventoryJobError(f"inventory child failed: {exc}") from None
    if out.returncode != 0:
        tail = out.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise InventoryJobError(f"inventory child exited {out.returncode}: {tail[0]}")
    try:
        body = json.loads(out.stdout)
    except ValueError as exc:
        raise InventoryJobError(f"inventory child printed no JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("hash"), str):
        raise InventoryJobError("inventory child returned no inventory body")
    return body


def child_main() -> int:
    """Entry of the child: a JSON request on stdin, the inventory body as JSON on stdout."""
    import json

    req: Mapping[str, Any] = json.load(sys.stdin)
    body = build_inventory(Path(req["root"]), DeviceSection(**req["device"]))
    sys.stdout.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
    return 0
