"""Where reports get their devices: the collector store, turned into `DeviceInput` values.

Each stored inventory (agent or SNMP, same format) becomes a classified `DeviceBom` through the
SBOM builder and firmware_db; placement tags, criticality and the simulated flag come from the
store and the asset register. A device that cannot be analysed (no inventory yet, a malformed
one) is listed with the reason instead of silently counting as "no exposure".
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.report.build import DeviceInput, build_report
from collector.report.interface import AlertRow, ReportData, ReportError
from sbom.aging import Sample
from sbom.errors import SbomError
from sbom.policy import DunePolicy

log = logging.getLogger("dunewatch.report")


@dataclass(frozen=True)
class Skipped:
    device_id: str
    reason: str


# saturation metric of sbom.aging -> the rollup metrics (GLOB patterns) it is read from
_ROLLUP_OF = {"cpu": "cpu.pct", "mem": "mem.pct", "disk": "disk.*.pct"}


def samples_from_rollups(rollups: Sequence[Any]) -> tuple[Sample, ...]:
    """One aging sample per rollup bucket (its mean; disk: the fullest mount), in time order.

    The health the aging analysis looks for (a metric at its level for an hour) is read from
    the rollups, not the day's raw reports: 2,880 per device at a 30 s interval, 288 million
    for a city, which no report could read."""
    by_ts: dict[float, dict[str, float]] = {}
    for r in rollups:
        vals = by_ts.setdefault(r.bucket, {})
        if r.metric == "cpu.pct":
            vals["cpu"] = r.avg
        elif r.metric == "mem.pct":
            vals["mem"] = r.avg
        elif r.metric.startswith("disk."):
            vals["disk"] = max(vals.get("disk", r.avg), r.avg)
    return tuple(
        Sample(ts, v.get("cpu"), v.get("mem"), v.get("disk")) for ts, v in sorted(by_ts.items())
    )


class StoreSource:
    """Iterate a store's devices as report inputs; `skipped` fills as the iteration runs.

    The store is read in chunks of `chunk` devices: one read for their current inventories and
    one for their health windows per chunk (the store's bulk reads), instead of two per device,
    with memory bounded by the chunk. `batched=False` reads one device at a time; both give the
    same inputs.
    """

    def __init__(
        self,
        store: Any,
        kb: Any = None,
        *,
        device_id: str | None = None,
        health_window_s: float = 86400.0,
        now: float | None = None,
        batched: bool = True,
        chunk: int = 2000,
        policy: DunePolicy | None = None,
    ) -> None:
        if chunk < 1:
            raise ReportError(f"chunk: {chunk} must be >= 1")
        self.store = store
        self.kb = kb
        self.device_id = device_id
        self.health_window_s = health_window_s
        pct = (policy or DunePolicy()).saturation_pct
        self.levels = {_ROLLUP_OF[m]: float(v) for m, v in pct.items() if m in _ROLLUP_OF}
        self.now = now
        self.batched = batched
        self.chunk = chunk
        self.skipped: list[Skipped] = []

    def __iter__(self) -> Iterator[DeviceInput]:
        from sbom.builders.agent_inventory import AgentInventoryBuilder
        from sbom.knowledge import Classifier

        classifier = Classifier(self.kb) if self.kb is not None else Classifier()
        now = self.now if self.now is not None else time.time()
        since = now - self.health_window_s
        summaries = self.store.devices()
        if self.device_id is not None:
            summaries = [s for s in summaries if s.device_id == self.device_id]
        batched = self.batched
        for lo in range(0, len(summaries), self.chunk):
            chunk = summaries[lo : lo + self.chunk]
            if batched:
                ids = [s.device_id for s in chunk]
                inventories = self.store.current_inventories(ids)
                history = self.store.saturation_rollups(ids, since, self.levels)
            for summary in chunk:
                dev_id = summary.device_id
                if batched:
                    inventory = inventories.get(dev_id)
                else:
                    inventory = self.store.current_inventory(dev_id)
                if inventory is None:
                    self.skipped.append(Skipped(dev_id, "no inventory received yet"))
                    continue
                tags = dict(summary.tags)
                criticality = summary.criticality
                asset = self._asset(dev_id)
                if asset is not None:
                    for k, v in asset.tags:
                        tags.setdefault(k, v)
                    if criticality is None:
                        criticality = asset.criticality
                try:
                    bom = AgentInventoryBuilder(
                        dev_id,
                        inventory,
                        classifier=classifier,
                        tags=tags,
                        criticality=1.0 if criticality is None else float(criticality),
                        simulated=summary.simulated,
                    ).build()
                except SbomError as exc:
                    log.warning("report: %s skipped: %s", dev_id, exc)
                    self.skipped.append(Skipped(dev_id, str(exc)))
                    continue
                if summary.simulated and not bom.device.simulated:
                    bom = replace(bom, device=replace(bom.device, simulated=True))
                if batched:
                    rollups: Sequence[Any] = history.get(dev_id, ())
                else:
                    rollups = self.store.saturation_rollups([dev_id], since, self.levels).get(
                        dev_id, ()
                    )
                yield DeviceInput(bom, samples_from_rollups(rollups), summary.first_seen)

    def _asset(self, device_id: str) -> Any:
        if self.kb is None or not hasattr(self.kb, "asset"):
            return None
        return self.kb.asset(device_id)


def _fold_fresh_health(store: Any) -> None:
    """Fold what arrived before the current bucket began into the rollups, as the serve loop
    does each bucket, so a report on a database no collector is serving sees all of it; under
    a running serve there is nothing left to fold."""
    now = time.time()
    try:
        store.rollup(received_before=now - now % store.rollup_bucket)
    except Exception as exc:  # a read-only copy: report on what is rolled up
        log.warning("report: health not rolled up (%s); saturation from the rollups so far", exc)


def open_alerts(db_path: Any) -> tuple[tuple[AlertRow, ...], str]:
    """Open and acknowledged alerts from the alert tables, when the database has them."""

    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return (), f"alerts unavailable: {exc}"
    if row is None:
        return (), "no alert has been evaluated on this database yet"
    from collector.alerts.store import AlertStore

    alerts = AlertStore(db_path)
    try:
        rows = tuple(
            AlertRow(
                a.id,
                a.rule_id,
                a.device_id,
                a.severity,
                a.status,
                a.summary,
                a.first_seen,
                a.last_seen,
            )
            for a in alerts.open_alerts()
        )
    finally:
        alerts.close()
    return rows, "from the alerts store"


def report_from_db(
    db_path: Path,
    *,
    policy: DunePolicy,
    kb: Any,
    today: dt.date,
    by_tag: str | None = None,
    device_id: str | None = None,
    detail: int = 100,
    title: str = "dunewatch fleet report",
) -> ReportData:
    """The whole analysis of one collector database (the `dune` and `report` commands)."""
    from collector.store import open_store

    if not Path(db_path).exists():
        raise ReportError(
            f"no collector database at {db_path}",
            tip="pass --db PATH, set DUNEWATCH_DATA, or start `dunewatch collector serve` first",
        )
    store = open_store(db_path)
    try:
        _fold_fresh_health(store)
        source = StoreSource(store, kb, device_id=device_id, policy=policy)
        data = build_report(
            source,
            policy,
            today,
            kb=kb,
            by_tag=by_tag,
            detail=detail,
            title=title,
            source=str(db_path),
        )
    finally:
        store.close()
    if device_id is not None and not data.devices:
        why = next((s.reason for s in source.skipped if s.device_id == device_id), None)
        raise ReportError(f"device {device_id}: " + (why or "not in the collector database"))
    alerts, note = open_alerts(db_path)
    return replace(
        data,
        alerts=alerts,
        alerts_note=note,
        skipped=tuple((s.device_id, s.reason) for s in source.skipped),
    )
