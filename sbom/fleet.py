"""BOMs from the collector's stored inventories: one device, or the whole fleet plus an index.

Only the three store reads below are used, so any `collector.store.Store` works (and tests can
pass a real SQLite store). A device whose BOM fails is recorded in the index with its error; the
export goes on with the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sbom import output
from sbom.builders.agent_inventory import AgentInventoryBuilder
from sbom.errors import SbomError
from sbom.knowledge import Classifier
from sbom.model import DeviceBom

INDEX_NAME = "index.json"


class InventoryStore(Protocol):
    def current_inventory(self, device_id: str) -> dict[str, Any] | None: ...

    def devices(self) -> Sequence[Any]: ...

    def device(self, device_id: str) -> Any: ...


@dataclass(frozen=True)
class FleetEntry:
    device_id: str
    file: str | None
    components: int
    source: str | None
    simulated: bool
    error: str | None = None


def device_bom(store: InventoryStore, device_id: str, classifier: Classifier) -> DeviceBom:
    """The BOM of one device from its current stored inventory."""
    body = store.current_inventory(device_id)
    if body is None:
        raise SbomError(
            f"device {device_id!r}: no stored inventory",
            tip="list devices with `dunewatch devices`; agents send inventory on start",
        )
    detail = store.device(device_id)
    summary = getattr(detail, "summary", None)
    tags: Mapping[str, str] = getattr(summary, "tags", None) or {}
    crit = getattr(summary, "criticality", None)
    return AgentInventoryBuilder(
        device_id,
        body,
        classifier=classifier,
        tags=dict(tags),
        criticality=float(crit) if crit is not None else 1.0,
        simulated=bool(getattr(summary, "simulated", False)),
    ).build()


def bom_file_name(device_id: str, fmt: str) -> str:
    return f"{device_id}.cdx.{fmt}"


def export_fleet(
    store: InventoryStore,
    outdir: Path,
    classifier: Classifier,
    *,
    fmt: str = "json",
    reproducible: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[FleetEntry]:
    """Write one validated BOM per device with an inventory, then index.json listing them all."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summaries = list(store.devices())
    entries: list[FleetEntry] = []
    for i, summary in enumerate(summaries):
        device_id = str(summary.device_id)
        simulated = bool(getattr(summary, "simulated", False))
        if progress is not None:
            progress("fleet", i, len(summaries))
        try:
            bom = device_bom(store, device_id, classifier)
            name = bom_file_name(device_id, fmt)
            output.write(bom, outdir / name, fmt, reproducible=reproducible)
            entries.append(FleetEntry(device_id, name, len(bom.components), bom.source, simulated))
        except SbomError as exc:
            entries.append(FleetEntry(device_id, None, 0, None, simulated, str(exc)))
    if progress is not None:
        progress("fleet", len(summaries), len(summaries))
    index = {
        "format": f"CycloneDX 1.6 {fmt}",
        "devices": [
            {
                "device_id": e.device_id,
                "file": e.file,
                "components": e.components,
                "source": e.source,
                "simulated": e.simulated,
                "error": e.error,
            }
            for e in entries
        ],
    }
    tmp = outdir / f".{INDEX_NAME}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, outdir / INDEX_NAME)
    return entries
