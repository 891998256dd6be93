"""Aging analysis (DESIGN §7): hardware age, firmware age, end of life, capacity saturation.

One call per device, `assess_device`, gives everything the aging report and the alert rules need,
as a frozen value. Knowledge-base lookups go through the small `AgingKnowledge` protocol (vendor
model catalogue, latest firmware, asset register), so the function also works with no knowledge
base at all (`kb=None`) on what the SBOM already carries.
"""

from __future__ import annotations

import datetime as dt
import heapq
import operator
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sbom.dune import months_between, parse_date
from sbom.model import LAYER_FIRMWARE, Component, DeviceBom
from sbom.policy import DunePolicy

HW_OK = "ok"
HW_APPROACHING = "approaching"  # less than policy.service_life_warn_years left
HW_PAST = "past"  # beyond the expected service life
HW_UNKNOWN = "unknown"

SATURATION_METRICS = ("cpu", "mem", "disk")


# --- what aging reads from the knowledge base (firmware_db satisfies it structurally) ---------


class ModelInfo(Protocol):
    @property
    def end_of_sale(self) -> str | None: ...
    @property
    def end_of_support(self) -> str | None: ...
    @property
    def end_of_life(self) -> str | None: ...
    @property
    def source(self) -> str: ...


class ReleaseInfo(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def release_date(self) -> str | None: ...


class AssetInfo(Protocol):
    @property
    def install_date(self) -> str | None: ...
    @property
    def source(self) -> str: ...


class AgingKnowledge(Protocol):
    def device_model(self, vendor: str, model: str) -> ModelInfo | None: ...
    def latest_firmware(self, vendor: str, model: str) -> ReleaseInfo | None: ...
    def asset(self, device_id: str) -> AssetInfo | None: ...


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """Health figures at one time; None where the report had no such section."""

    ts: float
    cpu: float | None = None
    mem: float | None = None
    disk: float | None = None  # the fullest mount

    @classmethod
    def from_body(cls, ts: float, body: Mapping[str, Any]) -> Sample:
        """From a health body of the wire contract (docs/protocol.md)."""

        def pct(section: object) -> float | None:
            if isinstance(section, Mapping):
                v = section.get("pct")
                if isinstance(v, int | float) and not isinstance(v, bool):
                    return float(v)
            return None

        disks = body.get("disk")
        disk_pcts = (
            [p for p in (pct(v) for v in disks.values()) if p is not None]
            if isinstance(disks, Mapping)
            else []
        )
        return cls(ts, pct(body.get("cpu")), pct(body.get("mem")), max(disk_pcts, default=None))

    def value(self, metric: str) -> float | None:
        v: float | None = getattr(self, metric)
        return v


@dataclass(frozen=True, slots=True)
class HardwareAge:
    installed: str | None  # ISO date
    installed_source: str  # "asset register", "first seen", or "unknown"
    age_years: float | None
    service_life_years: float
    remaining_years: float | None
    status: str  # HW_*


@dataclass(frozen=True, slots=True)
class FirmwareAge:
    version: str | None
    release_date: str | None
    age_days: int | None
    latest: str | None
    latest_release_date: str | None
    versions_behind: int | None
    outdated: bool  # a newer release exists
    stale: bool  # nothing newer, and the installed release is older than the policy allows
    reason: str


@dataclass(frozen=True, slots=True)
class LifecycleFinding:
    """A component (or the device model itself, layer 'device') with an end-of-life date."""

    name: str
    version: str | None
    layer: str
    status: str  # eol | approaching_eol
    eol: str | None
    days_left: int | None  # negative: days since end of life
    source: str | None


@dataclass(frozen=True, slots=True)
class Unsupported:
    what: str  # "model" (more kinds later)
    name: str
    since: str | None
    reason: str
    source: str | None


@dataclass(frozen=True, slots=True)
class SaturationFinding:
    """A metric at or above its threshold continuously for at least the policy window."""

    metric: str
    threshold: float
    start: float
    end: float
    duration_s: float
    mean: float
    peak: float
    ongoing: bool  # the run reaches the latest sample


@dataclass(frozen=True, slots=True)
class AgingAssessment:
    device_id: str
    hardware: HardwareAge
    firmware: FirmwareAge | None
    eol: tuple[LifecycleFinding, ...]
    approaching: tuple[LifecycleFinding, ...]
    unsupported: tuple[Unsupported, ...]
    saturation: tuple[SaturationFinding, ...]
    simulated: bool = False

    @property
    def firmware_outdated(self) -> bool:
        return self.firmware is not None and (self.firmware.outdated or self.firmware.stale)

    @property
    def findings(self) -> int:
        hw = self.hardware.status in (HW_PAST, HW_APPROACHING)
        return (
            len(self.eol)
            + len(self.approaching)
            + len(self.unsupported)
            + len(self.saturation)
            + int(self.firmware_outdated)
            + int(hw)
        )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    date: str  # ISO end-of-life date
    device_id: str
    name: str
    layer: str
    status: str  # eol | approaching_eol


@dataclass(frozen=True, slots=True)
class AgingSummary:
    devices: int
    hardware: tuple[tuple[str, int], ...]  # HW_* -> devices
    firmware_outdated: int
    firmware_stale: int
    with_eol: int
    with_approaching: int
    unsupported: int
    saturated: int
    months: tuple[tuple[str, int, int], ...]  # (YYYY-MM, reached, approaching) end-of-life dates
    timeline: tuple[TimelineEntry, ...]  # the `limit` entries nearest to today, by date


# --- analysis ----------------------------------------------------------------------------------


def hardware_age(
    device_class: str | None,
    installed: dt.date | None,
    installed_source: str,
    today: dt.date,
    policy: DunePolicy,
) -> HardwareAge:
    life = policy.service_life(device_class)
    if installed is None:
        return HardwareAge(None, "unknown", None, life, None, HW_UNKNOWN)
    age = max(0.0, (today - installed).days / 365.25)
    remaining = life - age
    if remaining <= 0:
        status = HW_PAST
    elif remaining < policy.service_life_warn_years:
        status = HW_APPROACHING
    else:
        status = HW_OK
    return HardwareAge(installed.isoformat(), installed_source, age, life, remaining, status)


def _run_finding(
    metric: str, threshold: float, run: list[tuple[float, float]], window: float, last_ts: float
) -> SaturationFinding | None:
    if len(run) < 2 or run[-1][0] - run[0][0] < window:
        return None
    values = [v for _, v in run]
    start, end = run[0][0], run[-1][0]
    return SaturationFinding(
        metric, threshold, start, end, end - start, statistics.fmean(values), max(values),
        end == last_ts,
    )  # fmt: skip


def find_saturation(samples: Sequence[Sample], policy: DunePolicy) -> tuple[SaturationFinding, ...]:
    """Longest run per metric at or above its threshold lasting at least the window.

    A gap between reports longer than half the window breaks a run: a device that was silent
    cannot be shown to have been saturated meanwhile.
    """
    if len(samples) < 2:  # a run needs two reports
        return ()
    window = policy.saturation_window_s
    max_gap = window / 2
    ordered = list(samples)
    stamps = [s.ts for s in ordered]
    if stamps != sorted(stamps):  # stores return history in order; other callers may not
        ordered.sort(key=lambda s: s.ts)
    found: list[SaturationFinding] = []
    last_ts = ordered[-1].ts if ordered else 0.0
    for metric in SATURATION_METRICS:
        threshold = policy.saturation_pct[metric]
        values = list(map(_GETTERS[metric], ordered))
        if len([v for v in values if v is not None and v >= threshold]) < 2:
            continue  # no run possible: skip the run bookkeeping (most devices, most metrics)
        best: SaturationFinding | None = None
        run: list[tuple[float, float]] = []

        for s, v in zip(ordered, values, strict=True):
            if v is None:
                continue  # the section was missing in that report: neither breaks nor extends
            if v >= threshold and (not run or s.ts - run[-1][0] <= max_gap):
                run.append((s.ts, v))
                continue
            cand = _run_finding(metric, threshold, run, window, last_ts)
            if cand is not None and (best is None or cand.duration_s > best.duration_s):
                best = cand
            run = [(s.ts, v)] if v >= threshold else []
        cand = _run_finding(metric, threshold, run, window, last_ts)
        if cand is not None and (best is None or cand.duration_s > best.duration_s):
            best = cand
        if best is not None:
            found.append(best)
    return tuple(found)


_GETTERS = {m: operator.attrgetter(m) for m in SATURATION_METRICS}


def _samples(points: Iterable[Any]) -> list[Sample]:
    return [p if type(p) is Sample else Sample.from_body(float(p.ts), p.body) for p in points]


def lifecycle_finding(
    comp: Component, today: dt.date, policy: DunePolicy
) -> LifecycleFinding | None:
    """The component's end-of-life finding (reached or approaching), or None."""
    lc = comp.lifecycle
    date = parse_date(lc.eol)
    days = (date - today).days if date is not None else None
    if lc.status == "eol" or (days is not None and days <= 0):
        status = "eol"
    elif (days is not None and days <= policy.eol_approaching_days) or (
        lc.status == "approaching_eol"
    ):
        status = "approaching_eol"
    else:
        return None
    return LifecycleFinding(comp.name, comp.version, comp.layer, status, lc.eol, days, lc.source)


class AgingCache:
    """Memo of aging work for one fleet run: component end-of-life findings (by identity), those
    of whole shared component tails (`DeviceBom.tail`), and hardware ages (by value). Bounded."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._by_id: dict[int, tuple[Component, dt.date, LifecycleFinding | None]] = {}
        self._tails: dict[int, tuple[tuple[Component, ...], dt.date, Any, _Findings]] = {}
        self._hardware: dict[tuple[Any, ...], tuple[DunePolicy, HardwareAge]] = {}

    def finding(
        self, comp: Component, today: dt.date, policy: DunePolicy
    ) -> LifecycleFinding | None:
        hit = self._by_id.get(id(comp))
        if hit is not None and hit[0] is comp and hit[1] == today:
            return hit[2]
        found = lifecycle_finding(comp, today, policy)
        if len(self._by_id) >= self.max_entries:
            self._by_id.clear()
        self._by_id[id(comp)] = (comp, today, found)
        return found

    def tail_findings(
        self, tail: tuple[Component, ...], today: dt.date, policy: DunePolicy
    ) -> _Findings:
        """(end of life, approaching) findings of a shared tail, in component order."""
        hit = self._tails.get(id(tail))
        if hit is not None and hit[0] is tail and hit[1] == today and hit[2] is policy:
            return hit[3]
        eol: list[LifecycleFinding] = []
        approaching: list[LifecycleFinding] = []
        _lifecycle_findings(tail, today, policy, self, eol, approaching)
        found = (tuple(eol), tuple(approaching))
        if len(self._tails) >= self.max_entries // 16:
            self._tails.clear()
        self._tails[id(tail)] = (tail, today, policy, found)
        return found

    def hardware(
        self,
        device_class: str | None,
        installed: dt.date | None,
        installed_source: str,
        today: dt.date,
        policy: DunePolicy,
    ) -> HardwareAge:
        """hardware_age, shared by devices of one class installed (or first seen) the same day."""
        key = (device_class, installed, installed_source, today, id(policy))
        hit = self._hardware.get(key)
        if hit is not None and hit[0] is policy:
            return hit[1]
        found = hardware_age(device_class, installed, installed_source, today, policy)
        if len(self._hardware) >= self.max_entries // 4:
            self._hardware.clear()
        self._hardware[key] = (policy, found)
        return found


_Findings = tuple[tuple[LifecycleFinding, ...], tuple[LifecycleFinding, ...]]


def _lifecycle_findings(
    comps: Iterable[Component],
    today: dt.date,
    pol: DunePolicy,
    cache: AgingCache | None,
    eol: list[LifecycleFinding],
    approaching: list[LifecycleFinding],
) -> None:
    for comp in comps:
        lc = comp.lifecycle
        if lc.eol is None and lc.status not in ("eol", "approaching_eol"):
            continue  # nothing dated or flagged: the common case, decided without parsing
        if cache is not None:
            finding = cache.finding(comp, today, pol)
        else:
            finding = lifecycle_finding(comp, today, pol)
        if finding is not None:
            (eol if finding.status == "eol" else approaching).append(finding)


def assess_device(
    bom: DeviceBom,
    kb: AgingKnowledge | None,
    health_points: Iterable[Any],
    today: dt.date,
    *,
    policy: DunePolicy | None = None,
    first_seen: float | None = None,
    cache: AgingCache | None = None,
) -> AgingAssessment:
    """Everything aging about one device.

    Pass one `AgingCache` for a whole fleet to evaluate each distinct component once.

    health_points: `Sample` values or anything with `.ts` and a wire-contract `.body`
    (e.g. the store's HealthPoint). first_seen: UNIX time the collector first saw the device,
    used for hardware age when the asset register has no install date.
    """
    pol = policy or DunePolicy()
    dev = bom.device

    # hardware age: the asset register first, else first seen
    installed: dt.date | None = None
    installed_source = "unknown"
    asset = kb.asset(dev.device_id) if kb is not None else None
    if asset is not None and parse_date(asset.install_date) is not None:
        installed = parse_date(asset.install_date)
        installed_source = f"asset register ({asset.source})" if asset.source else "asset register"
    elif first_seen is not None:
        installed = dt.datetime.fromtimestamp(first_seen, dt.UTC).date()
        installed_source = "first seen"
    if cache is not None:
        hardware = cache.hardware(dev.device_class, installed, installed_source, today, pol)
    else:
        hardware = hardware_age(dev.device_class, installed, installed_source, today, pol)

    # components past or near end of life (a shared tail's findings are worked out once)
    eol: list[LifecycleFinding] = []
    approaching: list[LifecycleFinding] = []
    comps = bom.components
    tail = bom.shared_tail() if cache is not None else ()
    if tail and cache is not None:
        _lifecycle_findings(comps[: len(comps) - len(tail)], today, pol, cache, eol, approaching)
        tail_eol, tail_approaching = cache.tail_findings(tail, today, pol)
        eol += tail_eol
        approaching += tail_approaching
    else:
        _lifecycle_findings(comps, today, pol, cache, eol, approaching)

    # the device model itself (vendor catalogue)
    unsupported: list[Unsupported] = []
    model = None
    if kb is not None and dev.vendor and dev.model:
        model = kb.device_model(dev.vendor, dev.model)
    if model is not None:
        end = model.end_of_life or model.end_of_support
        end_date = parse_date(end)
        name = f"{dev.vendor} {dev.model}"
        if end_date is not None:
            days = (end_date - today).days
            if days <= 0:
                which = "end of life" if model.end_of_life else "end of support"
                unsupported.append(Unsupported("model", name, end, f"{which} {end}", model.source))
                eol.append(LifecycleFinding(name, None, "device", "eol", end, days, model.source))
            elif days <= pol.eol_approaching_days:
                approaching.append(
                    LifecycleFinding(
                        name, None, "device", "approaching_eol", end, days, model.source
                    )
                )

    firmware = _firmware_age(bom, kb, today, pol)
    saturation = find_saturation(_samples(health_points), pol)
    return AgingAssessment(
        device_id=dev.device_id,
        hardware=hardware,
        firmware=firmware,
        eol=_by_date(eol),
        approaching=_by_date(approaching),
        unsupported=tuple(unsupported),
        saturation=saturation,
        simulated=dev.simulated,
    )


def _finding_order(f: LifecycleFinding) -> tuple[str, str]:
    return (f.eol or "", f.name)


def _by_date(findings: list[LifecycleFinding]) -> tuple[LifecycleFinding, ...]:
    if len(findings) < 2:
        return tuple(findings)
    return tuple(sorted(findings, key=_finding_order))


def _firmware_age(
    bom: DeviceBom, kb: AgingKnowledge | None, today: dt.date, pol: DunePolicy
) -> FirmwareAge | None:
    dev = bom.device
    fw = next((c for c in bom.components if c.layer == LAYER_FIRMWARE), None)
    version = dev.firmware_version or (fw.version if fw is not None else None)
    if version is None and fw is None:
        return None
    released = parse_date(dev.firmware_release_date)
    latest = fw.lifecycle.latest if fw is not None else None
    behind = fw.lifecycle.versions_behind if fw is not None else None
    latest_date: str | None = None
    if kb is not None and dev.vendor and dev.model:
        rel = kb.latest_firmware(dev.vendor, dev.model)
        if rel is not None:
            latest = latest or rel.version
            latest_date = rel.release_date
            if behind is None and version is not None:
                behind = 0 if rel.version == version else None
    if behind is not None:  # the lifecycle's count is authoritative when present
        outdated = behind > 0
    else:
        outdated = latest is not None and version is not None and latest != version
    age_days = (today - released).days if released is not None else None
    stale = (
        not outdated
        and released is not None
        and months_between(released, today) > pol.stale_firmware_months
    )
    if stale:
        reason = f"no firmware since {released} (> {pol.stale_firmware_months} months)"
    elif outdated:
        reason = f"{behind if behind else 'a'} newer release{'s' if (behind or 1) > 1 else ''}"
        reason += f" (latest {latest})" if latest else ""
    else:
        reason = "current" if latest or behind == 0 else "no release data"
    return FirmwareAge(
        version, released.isoformat() if released else None, age_days, latest, latest_date,
        behind, outdated, stale, reason,
    )  # fmt: skip


def summarize(
    assessments: Iterable[AgingAssessment], today: dt.date, limit: int = 50
) -> AgingSummary:
    """Fleet counts, end-of-life dates per month, and the entries nearest to today.

    Per-month counts keep the summary small for any fleet size; the `limit` nearest entries
    (either side of today) are what a reader acts on first.
    """
    n = 0
    hw = dict.fromkeys((HW_OK, HW_APPROACHING, HW_PAST, HW_UNKNOWN), 0)
    outdated = stale = with_eol = with_app = unsup = saturated = 0
    months: dict[str, list[int]] = {}
    nearest: list[tuple[int, str, str, str, str, str]] = []  # max-heap on distance via negation
    for a in assessments:
        n += 1
        hw[a.hardware.status] += 1
        if a.firmware is not None:
            outdated += a.firmware.outdated
            stale += a.firmware.stale
        with_eol += bool(a.eol)
        with_app += bool(a.approaching)
        unsup += bool(a.unsupported)
        saturated += bool(a.saturation)
        for f in (*a.eol, *a.approaching):
            date = parse_date(f.eol)
            if date is None or f.eol is None:
                continue
            slot = months.setdefault(f.eol[:7], [0, 0])
            slot[0 if f.status == "eol" else 1] += 1
            item = (-abs((date - today).days), f.eol, a.device_id, f.name, f.layer, f.status)
            if len(nearest) < limit:
                heapq.heappush(nearest, item)
            elif item > nearest[0]:
                heapq.heapreplace(nearest, item)
    timeline = tuple(
        TimelineEntry(d, dev, name, layer, status)
        for _, d, dev, name, layer, status in sorted(nearest, key=lambda i: (i[1], i[2], i[3]))
    )
    return AgingSummary(
        n,
        tuple(hw.items()),
        outdated,
        stale,
        with_eol,
        with_app,
        unsup,
        saturated,
        tuple((m, c[0], c[1]) for m, c in sorted(months.items())),
        timeline,
    )
