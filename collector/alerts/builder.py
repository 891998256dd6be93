"""Assemble the read-only fleet snapshot the rules look at, from the real parts.

Sources: the collector store (devices, liveness, latest health, health history, ingest counters),
the SBOM builder (stored inventory -> classified components with lifecycles), firmware_db
(vulnerabilities, device models, firmware releases), and the Digital Dune Index and aging analysis
of sbom/. A device whose data cannot be assembled is logged, named in the errors and marked
incomplete, so the engine does not auto-resolve its alerts on missing evidence.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.alerts.config import AlertsConfig
from collector.alerts.interface import PassCancelled
from collector.alerts.model import (
    ComponentState,
    Concentration,
    DeviceState,
    FleetSnapshot,
    HealthSample,
    LayerGrade,
    LossCounts,
    MetricWindow,
    VulnRef,
)
from collector.alerts.rules.health import SATURATION as SATURATION_RULE
from collector.alerts.store import AlertStore
from sbom.aging import AgingCache, assess_device
from sbom.dune import ExposureCache, fleet_dune, score_device
from sbom.policy import DunePolicy

log = logging.getLogger("dunewatch.alerts")

# Devices read from the store per query (latest health, health windows, inventories).
CHUNK = 1000
# (device summary from the store, stored inventory body) -> sbom.model.DeviceBom
BomBuilder = Callable[[Any, Mapping[str, Any]], Any]


def default_bom_builder(kb: Any) -> BomBuilder:
    """Stored inventory (agent or SNMP, same format) -> DeviceBom, classified through `kb`.

    Tags and criticality come from the store, completed by the asset register when it has them.
    """
    from sbom.builders.agent_inventory import AgentInventoryBuilder
    from sbom.knowledge import Classifier

    classifier = Classifier(kb) if kb is not None else Classifier()

    def build(summary: Any, inventory: Mapping[str, Any]) -> Any:
        tags = dict(summary.tags)
        criticality = summary.criticality
        asset = kb.asset(summary.device_id) if kb is not None and hasattr(kb, "asset") else None
        if asset is not None:
            for k, v in asset.tags:
                tags.setdefault(k, v)
            if criticality is None:
                criticality = asset.criticality
        return AgentInventoryBuilder(
            summary.device_id,
            inventory,
            classifier=classifier,
            tags=tags,
            criticality=1.0 if criticality is None else float(criticality),
            simulated=summary.simulated,
        ).build()

    return build


class VulnLookup:
    """firmware_db vulnerability lookups, cached for one pass: a fleet repeats the same versions."""

    def __init__(self, kb: Any) -> None:
        self.kb = kb if kb is not None and hasattr(kb, "vulnerabilities") else None
        self._cache: dict[tuple[str | None, ...], tuple[VulnRef, ...]] = {}

    def __call__(self, comp: Any) -> tuple[VulnRef, ...]:
        if self.kb is None or not comp.version:
            return ()
        key = (comp.purl, comp.cpe, comp.name, comp.version)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if comp.purl:
            found = self.kb.vulnerabilities(purl=comp.purl, version=comp.version)
        elif comp.cpe:
            found = self.kb.vulnerabilities(cpe=comp.cpe)
        else:
            found = self.kb.vulnerabilities(name=comp.name, version=comp.version)
        refs = tuple(
            VulnRef(
                id=v.id,
                severity=v.severity,
                cvss=v.cvss,
                kev=bool(v.kev),
                kev_date=v.kev_date,
                fixed_version=v.fixed_version,
            )
            for v in found
        )
        self._cache[key] = refs
        return refs


def _components(
    bom: Any, vulns: VulnLookup, aging: Any, memo: dict[Any, Any]
) -> tuple[ComponentState, ...]:
    """Equal states are one object across devices (`memo`, one per pass): a fleet repeats the
    same components (10,000 simulated devices: 80,000 states, 10,000 distinct)."""
    out: list[ComponentState] = []
    for comp in bom.components:
        lc = comp.lifecycle
        refs = vulns(comp)  # the lookup's cached tuple: its identity stands for its content
        key = (comp.name, comp.version, comp.layer, lc.status, lc.eol, lc.cycle, lc.latest,
               lc.versions_behind, lc.source, id(refs))  # fmt: skip
        state = memo.get(key)
        if state is None:
            state = memo[key] = ComponentState(
                name=comp.name,
                version=comp.version,
                layer=comp.layer,
                status=lc.status,
                eol=lc.eol,
                cycle=lc.cycle,
                latest=lc.latest,
                versions_behind=lc.versions_behind,
                source=lc.source,
                vulns=refs,
            )
        out.append(state)
    # The device model itself, when the vendor catalogue dates it (aging puts it on layer 'device').
    if aging is not None:
        for f in (*aging.eol, *aging.approaching):
            if f.layer == "device":
                out.append(
                    ComponentState(
                        name=f.name,
                        version=None,
                        layer="device",
                        status=f.status,
                        eol=f.eol,
                        source=f.source,
                    )
                )
    return tuple(out)


def _grades(dune: Any, memo: dict[Any, Any]) -> tuple[LayerGrade, ...]:
    out = []
    for layer in dune.layers:
        d = layer.driver
        if d is None:
            continue
        grade = LayerGrade(
            layer=layer.layer,
            grade=layer.grade,
            exposure=layer.exposure,
            driver=f"{d.name} {d.version}" if d.version else d.name,
            supplier=d.owner or d.supplier,
            country=d.country,
        )
        out.append(memo.setdefault(grade, grade))
    return tuple(out)


def _concentration(fleet: Any) -> tuple[Concentration, ...]:
    out = []
    for layer in fleet.layers:
        for dim, conc in (("jurisdiction", layer.by_jurisdiction), ("vendor", layer.by_vendor)):
            if conc.top1 is None:
                continue
            out.append(
                Concentration(
                    layer=layer.layer,
                    dimension=dim,
                    hhi=round(conc.hhi, 2),
                    top1=conc.top1.key,
                    top1_share=round(conc.top1.share, 4),
                    n50=conc.n50,
                )
            )
    return tuple(out)


def build_snapshot(
    db: str | Path,
    *,
    kb: Any = None,
    config: AlertsConfig,
    now: float,
    alert_store: AlertStore,
    policy: Any = None,
    bom_builder: BomBuilder | None = None,
    cancel: Callable[[], bool] | None = None,
    windows: WindowCache | None = None,
    roll_up: bool = True,
) -> tuple[FleetSnapshot, tuple[str, ...]]:
    """Snapshot of the fleet in the collector database at `db`, plus per-device errors.

    `cancel` is asked between chunks of devices; when it says yes, PassCancelled is raised (a
    pass over a large fleet takes a minute, shutdown should not wait for it). `windows` keeps
    the saturation windows from one pass to the next while they cannot have changed. `roll_up`
    folds what arrived before the current bucket first; a service beside a serve loop, which
    does that each bucket, leaves it off (two folds at once would group the same reports twice)."""
    from collector.store import open_store

    errors: list[str] = []
    if kb is None:
        try:
            from firmware_db import open_default

            kb = open_default()
        except Exception as exc:  # knowledge is optional: rules needing it then find nothing
            errors.append(f"knowledge base unavailable: {exc}")
            kb = None
    builder = bom_builder or default_bom_builder(kb)
    policy = policy or DunePolicy()
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    vulns = VulnLookup(kb)
    # one pass: each distinct component (and shared component tail) scored and aged once
    caches = (ExposureCache(policy, today), AgingCache())
    memo: dict[Any, Any] = {}  # equal component states and grades shared across devices
    store = open_store(db)
    devices: list[DeviceState] = []
    scored: list[Any] = []
    incomplete: set[str] = set()
    simulated_all = True
    try:
        if roll_up:
            _roll_up(store, now, errors)
        since = now - config.saturation_window
        key = (
            store.rollup_mark(),
            -(-since // store.rollup_bucket),  # the window's first bucket
            config.saturation_threshold,
            tuple(sorted(config.saturation_metrics)),
            SATURATION_RULE in config.disabled,
        )
        cached = windows.windows if windows is not None and windows.key == key else None
        fresh: dict[str, tuple[MetricWindow, ...]] = {}
        whole = True  # every chunk read at once: `fresh` has every device's windows
        summaries = store.devices()
        stats = store.ingest_stats_by_device()
        counters = {}
        for s in summaries:
            st = stats.get(s.device_id)
            counters[s.device_id] = (st.accepted, st.gap, st.dropped) if st else (0, 0, 0)
        # one short write transaction for every device's loss sample, before the reads
        losses = alert_store.loss_in_windows(now, config.telemetry_window, counters)
        for lo in range(0, len(summaries), CHUNK):
            if cancel is not None and cancel():
                raise PassCancelled(f"alert pass cancelled after {lo} of {len(summaries)} devices")
            chunk = summaries[lo : lo + CHUNK]
            ids = [s.device_id for s in chunk]
            reads = _Reads(store, ids, since, config, cached)
            fresh.update(reads.windows)
            whole = whole and reads.bulk is not None
            for s in chunk:
                simulated_all = simulated_all and s.simulated
                try:
                    state, dune = _device_state(
                        reads, s, kb, now, today, builder, policy, vulns, caches, memo,
                        losses.get(s.device_id),
                    )  # fmt: skip
                except Exception as exc:  # one broken device must not hide the fleet
                    log.warning("alerts: cannot assess %s: %s", s.device_id, exc)
                    errors.append(f"device {s.device_id}: {type(exc).__name__}: {exc}")
                    incomplete.add(s.device_id)
                    continue
                devices.append(state)
                if dune is not None:
                    scored.append(dune)
        if windows is not None and cached is None and whole:
            windows.key, windows.windows = key, fresh
    finally:
        store.close()
    concentration: tuple[Concentration, ...] = ()
    if scored:
        concentration = _concentration(fleet_dune(scored, policy))
    snapshot = FleetSnapshot(
        taken_at=now,
        devices=tuple(devices),
        concentration=concentration,
        simulated=bool(devices) and simulated_all,
        incomplete=frozenset(incomplete),
    )
    return snapshot, tuple(errors)


def build_liveness_snapshot(db: str | Path, *, now: float) -> FleetSnapshot:
    """The offline devices only, for the liveness rules between full passes: read by the status
    index, so such a pass costs with the devices that are offline, not with the fleet (a full
    pass over 100,000 devices reads every one: seconds; with inventories, a minute)."""
    from collector.store import open_store

    store = open_store(db)
    try:
        offline = store.devices(status="offline")
    finally:
        store.close()
    devices = tuple(_state(s) for s in offline)
    return FleetSnapshot(
        taken_at=now, devices=devices, simulated=bool(devices) and all(d.simulated for d in devices)
    )


@dataclass
class WindowCache:
    """The saturation windows of the last whole pass, kept by a long-running service: they
    change only when the rollups do or the window's first bucket moves (once a bucket, five
    minutes by default), while passes run every minute."""

    key: tuple[Any, ...] | None = None
    windows: dict[str, tuple[MetricWindow, ...]] = field(default_factory=dict)


# saturation metric -> the rollup metrics (GLOB patterns) it is judged on, and back
ROLLUP_METRICS = {"cpu": "cpu.pct", "memory": "mem.pct", "disk": "disk.*.pct"}
_METRIC_OF = {pattern: m for m, pattern in ROLLUP_METRICS.items() if "*" not in pattern}


def metric_window(w: Any, threshold: float) -> MetricWindow:
    """A store RollupWindow as the saturation rule sees it (disk: one per mount)."""
    name: str = w.metric
    if name.startswith("disk.") and name.endswith(".pct"):
        metric, mount = "disk", name[len("disk.") : -len(".pct")]
    else:
        metric = _METRIC_OF.get(name, name)
        mount = None
    return MetricWindow(
        metric=metric,
        reports=w.n,
        over=w.over,
        threshold=threshold,
        mean=w.avg,
        peak=w.max,
        mount=mount,
    )


def _roll_up(store: Any, now: float, errors: list[str]) -> None:
    """Fold what arrived before the current bucket began, as the serve loop does each bucket,
    so a one-off pass (`dunewatch alerts evaluate`) judges saturation on the rollups serve
    would have."""
    try:
        store.rollup(received_before=now - now % store.rollup_bucket)
    except Exception as exc:  # a locked or read-only database: judge on what is rolled up
        log.warning("alerts: rolling up health before the pass failed: %s", exc)
        errors.append(f"rollup: {type(exc).__name__}: {exc}")


class _Reads:
    """A chunk's stored data, read with three queries instead of three per device; when the
    chunk cannot be read at once (a malformed stored document), each device is read on its
    own, so only the broken one fails.

    The saturation window comes from the rollups, not the raw reports: its cost is per device
    and metric, whatever the reporting rate (docs/alerts.md)."""

    def __init__(
        self,
        store: Any,
        ids: list[str],
        since: float,
        config: AlertsConfig,
        cached: Mapping[str, tuple[MetricWindow, ...]] | None = None,
    ) -> None:
        self.store, self.since = store, since
        self.threshold = config.saturation_threshold
        self.patterns = (
            ()
            if SATURATION_RULE in config.disabled
            else tuple(ROLLUP_METRICS[m] for m in config.saturation_metrics)
        )
        self.windows: dict[str, tuple[MetricWindow, ...]] = {}
        try:
            self.bulk: tuple[Mapping[str, Any], Mapping[str, Any]] | None = (
                store.latest_health_headlines(ids),
                store.current_inventories(ids),
            )
            if cached is not None:
                self.windows = {d: cached[d] for d in ids if d in cached}
            else:
                self.windows = self._windows(ids)
        except Exception as exc:
            log.warning("alerts: reading %d devices at once failed (%s); one by one", len(ids), exc)
            self.bulk = None

    def _windows(self, ids: list[str]) -> dict[str, tuple[MetricWindow, ...]]:
        if not self.patterns:
            return {}
        found = self.store.rollup_windows(ids, self.since, self.patterns, self.threshold)
        return {d: tuple(metric_window(w, self.threshold) for w in ws) for d, ws in found.items()}

    def device(self, dev_id: str) -> tuple[HealthSample | None, tuple[MetricWindow, ...], Any]:
        """(latest health figures, saturation windows, current inventory) of one device."""
        if self.bulk is not None:
            latest, inventories = self.bulk
            windows, inventory = self.windows.get(dev_id, ()), inventories.get(dev_id)
        else:  # one by one: a stored document the bulk read stumbled on fails only its device
            st = self.store
            windows = self._windows([dev_id]).get(dev_id, ())
            latest, inventory = st.latest_health_headlines([dev_id]), st.current_inventory(dev_id)
        h = latest.get(dev_id)
        sample = None if h is None else HealthSample(
            h.ts, h.cpu, h.memory, h.disk, h.disk_mount, h.temperature, h.temperature_sensor
        )  # fmt: skip
        return sample, windows, inventory


def _device_state(
    reads: _Reads,
    s: Any,
    kb: Any,
    now: float,
    today: dt.date,
    builder: BomBuilder,
    policy: Any,
    vulns: VulnLookup,
    caches: tuple[ExposureCache, AgingCache] | None = None,
    memo: dict[Any, Any] | None = None,
    loss: LossCounts | None = None,
) -> tuple[DeviceState, Any]:
    memo = {} if memo is None else memo
    dev_id = s.device_id
    latest, windows, inventory = reads.device(dev_id)
    fields: dict[str, Any] = {}
    dune = None
    if inventory is not None:
        bom = builder(s, inventory)
        exposure, aging_cache = caches if caches is not None else (None, None)
        aging = assess_device(
            bom, kb, [], today, policy=policy, first_seen=s.first_seen, cache=aging_cache
        )
        fw = aging.firmware
        if fw is not None:
            fields.update(
                firmware_version=fw.version,
                firmware_latest=fw.latest,
                firmware_versions_behind=fw.versions_behind,
                firmware_release_date=fw.release_date,
            )
        if aging.unsupported:
            u = aging.unsupported[0]
            fields.update(
                support_status="unsupported", support_detail=u.reason, support_end=u.since
            )
        dune = score_device(bom, policy, today, cache=exposure)
        fields["layer_grades"] = _grades(dune, memo)
        fields["components"] = _components(bom, vulns, aging, memo)
    state = _state(s, latest_health=latest, health_windows=windows, loss=loss, **fields)
    return state, dune


def _state(s: Any, **fields: Any) -> DeviceState:
    """A device's state from its store summary (identity, liveness, tags) plus `fields`; the
    firmware version the store knows unless the inventory's aging gave one."""
    if "firmware_version" not in fields:
        fields["firmware_version"] = s.firmware or None
    return DeviceState(
        device_id=s.device_id,
        status=s.status,
        status_since=s.status_since,
        last_seen=s.last_seen,
        tags=dict(s.tags),
        criticality=s.criticality,
        simulated=s.simulated,
        vendor=s.vendor,
        model=s.model,
        **fields,
    )
