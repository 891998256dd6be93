"""Digital Dune Index (DESIGN §6): per component, layer, device, fleet and tag roll-up.

Pure functions over `DeviceBom` values and a `DunePolicy`, so every figure can be checked by
hand and nothing here touches the store or the network. Each score keeps the component that
drives it, with supplier, owner, country, evidence and confidence, so a report can say *why*.

    E = J · (1 − S) · (0.5 + 0.5 · A)        component exposure
    E_L = max E over the layer's components   (one non-substitutable foreign part is enough)
    DDI = 100 · Σ W_L · E_L                   device index, 0..100
    grade = policy.grade(max E_L)             A..E by the worst layer

Fleet concentration per layer attributes each device's criticality weight to the jurisdiction
and to the vendor (ultimate owner) of that layer's driving component; HHI = Σ share² · 10⁴,
top-1 share, and N50 = how many buckets (largest first) cover half the weight. "unknown" and
"community" are buckets of their own: unknown suppliers are counted and shown, never hidden.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sbom.model import LAYER_FIRMWARE, LAYERS, Component, DeviceBom, DeviceInfo, Supplier
from sbom.policy import CAT_COMMUNITY, CAT_UNKNOWN, GRADES, DunePolicy

UNKNOWN: str = "unknown"
COMMUNITY: str = "community"
NO_TAG: str = "(untagged)"


@dataclass(frozen=True, slots=True)
class ComponentExposure:
    """One component's exposure with every factor behind it."""

    name: str
    version: str | None
    layer: str
    supplier: str | None
    owner: str | None
    country: str | None
    category: str  # home / allied / other / restricted / community / unknown
    j: float
    s: float
    s_source: str  # "component" (firmware_db/SBOM) or "layer default"
    a: float
    a_reason: str
    exposure: float
    evidence: str
    confidence: str
    evidence_path: str | None = None

    jurisdiction: str = UNKNOWN  # bucket for concentration: country, "community" or "unknown"
    vendor: str = UNKNOWN  # bucket for vendor concentration: the ultimate owner, else the brand
    # Order among a layer's components, highest drives: exposure, then the riskier
    # jurisdiction, the less substitutable part, then by name so a driver is always the same.
    rank: tuple[float, float, float, str, str] = (0.0, 0.0, 0.0, "", "")


@dataclass(frozen=True, slots=True)
class LayerExposure:
    layer: str
    weight: float
    exposure: float
    grade: str
    driver: ComponentExposure | None  # None when the device has no component in this layer
    components: int
    unknown: int  # components whose supplier's country is unknown


@dataclass(frozen=True, slots=True)
class DeviceDune:
    device_id: str
    ddi: float  # 0..100
    grade: str
    worst_layer: str | None
    layers: tuple[LayerExposure, ...]
    components: int
    unknown_suppliers: int
    weight: float  # criticality weight used in fleet means
    tags: tuple[tuple[str, str], ...]
    vendor: str | None
    model: str | None
    device_class: str | None
    simulated: bool
    home: str  # policy home jurisdiction or "unset"

    def layer(self, name: str) -> LayerExposure:
        for layer in self.layers:
            if layer.layer == name:
                return layer
        raise KeyError(name)

    def tag(self, key: str) -> str | None:
        for k, v in self.tags:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Share:
    key: str
    weight: float
    share: float  # 0..1
    devices: int


@dataclass(frozen=True, slots=True)
class Concentration:
    shares: tuple[Share, ...]  # largest first
    hhi: float  # 0..10000
    top1: Share | None
    n50: int
    high: bool  # hhi above the policy threshold


@dataclass(frozen=True, slots=True)
class LayerFleet:
    layer: str
    weight: float
    devices: int  # devices with at least one component in this layer
    absent: int  # devices without
    exposure: float  # criticality-weighted mean layer exposure over devices that have it
    by_jurisdiction: Concentration
    by_vendor: Concentration
    unknown_share: float  # share of the layer's weight driven by an unknown supplier
    grades: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class FleetDune:
    devices: int
    ddi: float  # criticality-weighted mean device DDI
    weight: float
    grades: tuple[tuple[str, int], ...]
    layers: tuple[LayerFleet, ...]
    components: int
    unknown_suppliers: int  # components with unknown supplier country
    devices_with_unknown: int
    simulated: int
    home: str

    def layer(self, name: str) -> LayerFleet:
        for layer in self.layers:
            if layer.layer == name:
                return layer
        raise KeyError(name)


def parse_date(text: str | None) -> dt.date | None:
    """ISO date (or datetime) to a date; None for missing or unparsable text."""
    if not text:
        return None
    return _parse_date(text[:10])


@functools.lru_cache(maxsize=65536)
def _parse_date(text: str) -> dt.date | None:
    # fleets repeat the same few thousand lifecycle dates: parse each once
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def months_between(earlier: dt.date, later: dt.date) -> float:
    return (later - earlier).days / 30.4375


def component_aging(
    comp: Component, device: DeviceInfo, policy: DunePolicy, today: dt.date
) -> tuple[float, str]:
    """A in [0, 1] with its reason: the strongest of EOL, approaching EOL, stale, behind."""
    lc = comp.lifecycle
    found: list[tuple[float, str]] = []
    eol = parse_date(lc.eol)
    if lc.status == "eol":
        found.append((policy.aging_eol, f"end of life{f' {lc.eol}' if lc.eol else ''}"))
    elif eol is not None and eol <= today:
        found.append((policy.aging_eol, f"end of life {lc.eol}"))
    elif eol is not None and (eol - today).days <= policy.eol_approaching_days:
        found.append((policy.aging_approaching, f"end of life {lc.eol} (approaching)"))
    elif lc.status == "approaching_eol":
        found.append((policy.aging_approaching, "end of life approaching"))
    if comp.layer == LAYER_FIRMWARE:
        released = parse_date(device.firmware_release_date)
        if (
            released is not None
            and lc.versions_behind in (None, 0)
            and months_between(released, today) > policy.stale_firmware_months
        ):
            found.append(
                (
                    policy.aging_eol,
                    f"no firmware since {released.isoformat()} "
                    f"(> {policy.stale_firmware_months} months)",
                )
            )
    behind = lc.versions_behind
    if behind is not None and behind >= policy.versions_behind_outdated:
        found.append((policy.aging_behind, f"{behind} versions behind {lc.latest or 'latest'}"))
    if not found:
        return 0.0, "current" if lc.status == "supported" else "no lifecycle data"
    return max(found, key=lambda f: f[0])


def component_exposure(
    comp: Component, device: DeviceInfo, policy: DunePolicy, today: dt.date
) -> ComponentExposure:
    sup = comp.supplier
    country = sup.country.upper() if sup is not None and sup.country else None
    community = bool(sup is not None and sup.community)
    category = policy.category(country, community)
    j = policy.jurisdiction_risk[category]
    if comp.substitutability is not None:
        s, s_source = min(1.0, max(0.0, comp.substitutability)), "component"
    else:
        s, s_source = policy.substitutability[comp.layer], "layer default"
    a, reason = component_aging(comp, device, policy, today)
    exposure = j * (1.0 - s) * (0.5 + 0.5 * a)
    return ComponentExposure(
        name=comp.name,
        version=comp.version,
        layer=comp.layer,
        supplier=sup.name if sup is not None else None,
        owner=sup.owner if sup is not None else None,
        country=country,
        category=category,
        j=j,
        s=s,
        s_source=s_source,
        a=a,
        a_reason=reason,
        exposure=exposure,
        evidence=comp.evidence,
        confidence=comp.confidence,
        evidence_path=comp.evidence_path,
        jurisdiction=COMMUNITY if category == CAT_COMMUNITY else (country or UNKNOWN),
        vendor=_vendor_bucket(sup, category),
        rank=(exposure, j, -s, comp.name, comp.version or ""),
    )


def _vendor_bucket(sup: Supplier | None, category: str) -> str:
    if sup is None:
        return UNKNOWN
    if category == CAT_COMMUNITY and not (sup.owner or sup.name):
        return COMMUNITY
    return sup.owner or sup.name or UNKNOWN


class ExposureCache:
    """Memo of component exposures for one policy and date: fleets repeat the same components.

    Looked up by identity first (builders share component objects), then by value. Exposure of
    a firmware component also depends on the device's firmware release date, so that is part
    of the key. Bounded: cleared when full, so memory stays flat on any fleet.
    """

    def __init__(self, policy: DunePolicy, today: dt.date, max_entries: int = 200_000) -> None:
        self.policy = policy
        self.today = today
        self.max_entries = max_entries
        self._by_id: dict[int, tuple[Component, str | None, ComponentExposure]] = {}
        self._by_value: dict[tuple[Component, str | None], ComponentExposure] = {}
        self._layers: dict[int, list[LayerExposure]] = {}
        self._tails: dict[int, _TailScores] = {}
        self.hits = 0
        self.misses = 0

    def layer(self, key: tuple[ComponentExposure, int, int], weight: float) -> LayerExposure:
        """The shared LayerExposure for (driver, components, unknown): devices alike share it."""
        found = self._layers.get(id(key[0]))
        if found is not None:
            for layer in found:
                if (
                    layer.driver is key[0]
                    and layer.components == key[1]
                    and layer.unknown == key[2]
                    and layer.weight == weight
                ):
                    return layer
        drv = key[0]
        layer = LayerExposure(
            drv.layer, weight, drv.exposure, self.policy.grade(drv.exposure), drv, key[1], key[2]
        )
        if len(self._layers) >= self.max_entries:
            self._layers.clear()
        self._layers.setdefault(id(drv), []).append(layer)
        return layer

    def get(self, comp: Component, device: DeviceInfo) -> ComponentExposure:
        fw = device.firmware_release_date if comp.layer == LAYER_FIRMWARE else None
        hit = self._by_id.get(id(comp))
        if hit is not None and hit[0] is comp and hit[1] == fw:
            self.hits += 1
            return hit[2]
        key = (comp, fw)
        try:
            found = self._by_value.get(key)
        except TypeError:  # an unhashable field slipped into a component: just compute
            return component_exposure(comp, device, self.policy, self.today)
        if found is None:
            self.misses += 1
            found = component_exposure(comp, device, self.policy, self.today)
            if len(self._by_value) >= self.max_entries:
                self._by_value.clear()
            self._by_value[key] = found
        else:
            self.hits += 1
        if len(self._by_id) >= self.max_entries // 4:  # identity hits need shared objects
            self._by_id.clear()
        self._by_id[id(comp)] = (comp, fw, found)
        return found


_NO_LAYER: dict[tuple[str, float], LayerExposure] = {}

# per layer: [driving exposure, components, components of unknown supplier country]
_Acc = dict[str, list[Any]]


def _accumulate(
    acc: _Acc,
    comps: Iterable[Component],
    dev: DeviceInfo,
    policy: DunePolicy,
    today: dt.date,
    cache: ExposureCache | None,
) -> None:
    """Fold components into per-layer accumulators, in order (the first of equal ranks drives)."""
    weights = policy.layer_weights
    get = cache.get if cache is not None else None
    by_id = cache._by_id if cache is not None else {}
    fw_date = dev.firmware_release_date
    for comp in comps:
        hit = by_id.get(id(comp))  # the cache's identity fast path, inlined: it runs per part
        if (
            hit is not None
            and hit[0] is comp
            and hit[1] == (fw_date if comp.layer == LAYER_FIRMWARE else None)
        ):
            ce = hit[2]
        elif get is not None:
            ce = get(comp, dev)
        else:
            ce = component_exposure(comp, dev, policy, today)
        a = acc.get(ce.layer)
        if a is None:
            if ce.layer in weights:  # else a layer this policy does not score
                acc[ce.layer] = [ce, 1, int(ce.category == CAT_UNKNOWN)]
            continue
        a[1] += 1
        if ce.category == CAT_UNKNOWN:
            a[2] += 1
        if ce.rank > a[0].rank:
            a[0] = ce


class _TailScores:
    """Per-layer accumulators and layer values of one shared component tail (see DeviceBom.tail)."""

    __slots__ = ("tail", "firmware", "by_fw")

    def __init__(self, tail: tuple[Component, ...]) -> None:
        self.tail = tail  # held, so the id it is filed under stays this tuple's
        # a firmware-layer component's exposure depends on the device's firmware release date
        self.firmware = any(c.layer == LAYER_FIRMWARE for c in tail)
        self.by_fw: dict[str | None, tuple[_Acc, dict[str, LayerExposure]]] = {}


def _tail_scores(
    cache: ExposureCache, tail: tuple[Component, ...], dev: DeviceInfo
) -> tuple[_Acc, dict[str, LayerExposure]]:
    entry = cache._tails.get(id(tail))
    if entry is None or entry.tail is not tail:
        if len(cache._tails) >= cache.max_entries // 16:
            cache._tails.clear()
        entry = cache._tails[id(tail)] = _TailScores(tail)
    fw = dev.firmware_release_date if entry.firmware else None
    found = entry.by_fw.get(fw)
    if found is None:
        acc: _Acc = {}
        _accumulate(acc, tail, dev, cache.policy, cache.today, cache)
        weights = cache.policy.layer_weights
        layers = {name: cache.layer((a[0], a[1], a[2]), weights[name]) for name, a in acc.items()}
        if len(entry.by_fw) >= 4096:
            entry.by_fw.clear()
        found = entry.by_fw[fw] = (acc, layers)
    return found


def score_device(
    bom: DeviceBom,
    policy: DunePolicy,
    today: dt.date,
    *,
    weight: float | None = None,
    cache: ExposureCache | None = None,
) -> DeviceDune:
    """DDI of one device with the driving component of every layer.

    Pass one `ExposureCache` for a whole fleet to score each distinct component once, and each
    shared component tail (`DeviceBom.tail`) once: then only the device's own components are
    folded in per device. Either way the result is the same as folding every component in order.
    """
    weights = policy.layer_weights
    dev = bom.device
    comps = bom.components
    tail: tuple[Component, ...] = ()
    if cache is not None and policy is cache.policy and today == cache.today:
        tail = bom.shared_tail()
    acc: _Acc = {}
    if tail and cache is not None:
        base, pre = _tail_scores(cache, tail, dev)
        _accumulate(acc, comps[: len(comps) - len(tail)], dev, policy, today, cache)
    else:
        base, pre = {}, {}
        _accumulate(acc, comps, dev, policy, today, cache)
    layers: list[LayerExposure] = []
    total = 0.0
    worst: LayerExposure | None = None
    unknown_total = 0
    for name in LAYERS:
        w = weights[name]
        a = acc.get(name)
        layer: LayerExposure | None
        if a is None:
            layer = pre.get(name)
            if layer is None:
                layer = _NO_LAYER.get((name, w)) or _NO_LAYER.setdefault(
                    (name, w), LayerExposure(name, w, 0.0, policy.grade(0.0), None, 0, 0)
                )
                layers.append(layer)
                continue
            unknown_total += layer.unknown
        else:
            b = base.get(name)
            if b is not None:  # the tail follows the device's own parts: same fold, in order
                driver = b[0] if b[0].rank > a[0].rank else a[0]
                key = (driver, a[1] + b[1], a[2] + b[2])
            else:
                key = (a[0], a[1], a[2])
            driver = key[0]
            unknown_total += key[2]
            if cache is not None:
                layer = cache.layer(key, w)
            else:
                e = driver.exposure
                layer = LayerExposure(name, w, e, policy.grade(e), driver, key[1], key[2])
        e = layer.exposure
        total += w * e
        if worst is None or e > worst.exposure:
            worst = layer
        layers.append(layer)
    worst_e = worst.exposure if worst is not None else 0.0
    return DeviceDune(
        device_id=dev.device_id,
        ddi=100.0 * total,
        grade=policy.grade(worst_e),
        worst_layer=worst.layer if worst is not None else None,
        layers=tuple(layers),
        components=len(comps),
        unknown_suppliers=unknown_total,
        weight=policy.criticality_weight(dev.criticality) if weight is None else weight,
        tags=dev.tags,
        vendor=dev.vendor,
        model=dev.model,
        device_class=dev.device_class,
        simulated=dev.simulated,
        home=policy.home_label,
    )


def concentration(
    weights: Mapping[str, float], counts: Mapping[str, int], high: float
) -> Concentration:
    """Shares, HHI (Σ share² · 10⁴), top-1 and N50 of weights per bucket."""
    total = sum(weights.values())
    if total <= 0:
        return Concentration((), 0.0, None, 0, False)
    shares = sorted(
        (Share(k, w, w / total, counts.get(k, 0)) for k, w in weights.items() if w > 0),
        key=lambda s: (-s.share, s.key),
    )
    hhi = sum(s.share * s.share for s in shares) * 10000.0
    n50 = 0
    acc = 0.0
    for s in shares:
        n50 += 1
        acc += s.share
        if acc >= 0.5 - 1e-12:
            break
    return Concentration(tuple(shares), hhi, shares[0], n50, hhi > high)


def fleet_dune(devices: Iterable[DeviceDune], policy: DunePolicy) -> FleetDune:
    """Fleet view: criticality-weighted DDI and per-layer concentration by jurisdiction/vendor."""
    n = 0
    wsum = 0.0
    ddi_sum = 0.0
    grades: dict[str, int] = dict.fromkeys(GRADES, 0)
    comps = unknown = with_unknown = simulated = 0
    lw: dict[str, float] = defaultdict(float)
    ln: dict[str, int] = defaultdict(int)
    le: dict[str, float] = defaultdict(float)
    lunk: dict[str, float] = defaultdict(float)
    lgrades: dict[str, dict[str, int]] = {name: dict.fromkeys(GRADES, 0) for name in LAYERS}
    jw: dict[str, dict[str, float]] = {name: defaultdict(float) for name in LAYERS}
    jc: dict[str, dict[str, int]] = {name: defaultdict(int) for name in LAYERS}
    vw: dict[str, dict[str, float]] = {name: defaultdict(float) for name in LAYERS}
    vc: dict[str, dict[str, int]] = {name: defaultdict(int) for name in LAYERS}
    for d in devices:
        n += 1
        w = d.weight
        wsum += w
        ddi_sum += w * d.ddi
        grades[d.grade] += 1
        comps += d.components
        unknown += d.unknown_suppliers
        with_unknown += d.unknown_suppliers > 0
        simulated += d.simulated
        for layer in d.layers:
            drv = layer.driver
            if drv is None:
                continue
            name = layer.layer
            lw[name] += w
            ln[name] += 1
            le[name] += w * layer.exposure
            lgrades[name][layer.grade] += 1
            jkey = drv.jurisdiction
            vkey = drv.vendor
            if drv.category == CAT_UNKNOWN:
                lunk[name] += w
            jw[name][jkey] += w
            jc[name][jkey] += 1
            vw[name][vkey] += w
            vc[name][vkey] += 1
    layers = []
    for name in LAYERS:
        total = lw.get(name, 0.0)
        layers.append(
            LayerFleet(
                layer=name,
                weight=policy.layer_weights[name],
                devices=ln.get(name, 0),
                absent=n - ln.get(name, 0),
                exposure=le[name] / total if total > 0 else 0.0,
                by_jurisdiction=concentration(jw[name], jc[name], policy.hhi_high),
                by_vendor=concentration(vw[name], vc[name], policy.hhi_high),
                unknown_share=lunk[name] / total if total > 0 else 0.0,
                grades=tuple(lgrades[name].items()),
            )
        )
    return FleetDune(
        devices=n,
        ddi=ddi_sum / wsum if wsum > 0 else 0.0,
        weight=wsum,
        grades=tuple(grades.items()),
        layers=tuple(layers),
        components=comps,
        unknown_suppliers=unknown,
        devices_with_unknown=with_unknown,
        simulated=simulated,
        home=policy.home_label,
    )


def rollup(
    devices: Iterable[DeviceDune], tag: str, policy: DunePolicy
) -> tuple[tuple[str, FleetDune], ...]:
    """The fleet view per value of one tag (district, street, owner department, ...).

    Devices without the tag form their own "(untagged)" group rather than vanishing.
    """
    groups: dict[str, list[DeviceDune]] = defaultdict(list)
    for d in devices:
        groups[d.tag(tag) or NO_TAG].append(d)
    return tuple((key, fleet_dune(groups[key], policy)) for key in sorted(groups))


def rank_devices(devices: Sequence[DeviceDune], limit: int | None = None) -> list[DeviceDune]:
    """Devices by exposure, highest DDI first (weight breaks ties: critical devices first)."""
    ranked = sorted(devices, key=lambda d: (-d.ddi, -d.weight, d.device_id))
    return ranked if limit is None else ranked[:limit]
