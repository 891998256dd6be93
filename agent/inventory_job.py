"""Inventory for the loop: collected in a short-lived child process, merged with declared facts.

Why a child: reading package databases allocates megabytes of short-lived objects and imports
modules the steady-state agent never needs; CPython keeps that memory, so a long-running agent
would carry it forever. A child that runs once an hour costs a fraction of a second of CPU and
leaves the agent's RSS untouched. For the loop the child also builds and encodes the inventory
envelope (with the seq the agent hands it): parsing the package list back into objects and
re-encoding it in the agent left about 1 MB of pymalloc arenas resident. The child runs this
same code (from a checkout, a wheel or the zipapp), so there is one definition of the inventory.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.config import DeviceSection
from agent.errors import AgentError

CHILD_TIMEOUT = 300.0


class InventoryJobError(AgentError):
    """The inventory child failed or returned something unusable."""


@dataclass(frozen=True)
class EncodedInventory:
    """An inventory envelope built and encoded by the child; the agent stores the bytes as-is."""

    hash: str
    packages: int
    seq: int
    ts: float
    payload: bytes


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


def encode_in_child(
    root: Path,
    device: DeviceSection,
    device_id: str,
    boot_id: str,
    seq: int,
    timeout: float = CHILD_TIMEOUT,
) -> EncodedInventory:
    """Run build_inventory() in a fresh interpreter that returns the encoded envelope with `seq`.

    The child prints one JSON header line (hash, package count, seq, ts), then the payload bytes.
    """
    import json
    import subprocess

    request = json.dumps(
        {
            "root": str(root),
            "device": asdict(device),
            "envelope": {"device": device_id, "boot": boot_id, "seq": seq},
        }
    )
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
    head, sep, payload = out.stdout.partition(b"\n")
    try:
        meta = json.loads(head)
        enc = EncodedInventory(
            hash=str(meta["hash"]),
            packages=int(meta["packages"]),
            seq=int(meta["seq"]),
            ts=float(meta["ts"]),
            payload=payload,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise InventoryJobError(f"inventory child printed no valid header ({exc})") from None
    if not sep or not payload.startswith(b"{") or enc.seq != seq:
        raise InventoryJobError("inventory child returned no envelope for this seq")
    return enc


def child_main() -> int:
    """Entry of the child: a JSON request on stdin, the inventory (body or envelope) on stdout."""
    import json

    req: Mapping[str, Any] = json.load(sys.stdin)
    body = build_inventory(Path(req["root"]), DeviceSection(**req["device"]))
    stamp = req.get("envelope")
    if stamp is None:
        sys.stdout.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
        return 0
    from agent import envelope as wire

    env = wire.make(stamp["device"], stamp["boot"], stamp["seq"], wire.KIND_INVENTORY, body)
    head = {
        "hash": body["hash"],
        "packages": len(body.get("packages", [])),
        "seq": env.seq,
        "ts": env.ts,
    }
    sys.stdout.write(json.dumps(head, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(env.encode())
    return 0
