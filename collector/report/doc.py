"""Plain-data views of a report (dicts, lists, numbers), shared by the JSON, CSV and HTML formats.

Numbers are rounded here, once, so every format shows the same figure.
"""

from __future__ import annotations

from typing import Any

from collector.report.interface import DeviceEntry, ReportData
from sbom.aging import AgingAssessment
from sbom.dune import ComponentExposure, Concentration, FleetDune
from sbom.model import Component
from sbom.policy import CAT_OTHER, DunePolicy


def r(x: float | None, n: int = 4) -> float | None:
    return None if x is None else round(x, n)


def policy_doc(p: DunePolicy) -> dict[str, Any]:
    return {
        "home": p.home_label,
        "allied": sorted(p.allied),
        "restricted": sorted(p.restricted),
        "jurisdiction_risk": dict(p.jurisdiction_risk),
        "layer_weights": dict(p.layer_weights),
        "substitutability_defaults": dict(p.substitutability),
        "grade_bounds": list(p.grade_bounds),
        "hhi_high": p.hhi_high,
        "source": p.source,
        "note": policy_note(p),
    }


def policy_note(p: DunePolicy) -> str:
    if p.home is None:
        return (
            "home jurisdiction unset: every supplier with a known country counts as "
            f"'{CAT_OTHER}' (J={p.jurisdiction_risk[CAT_OTHER]:g}); set home in the policy "
            "to distinguish home, allied and restricted suppliers"
        )
    return f"home jurisdiction {p.home}"


def concentration_doc(c: Concentration) -> dict[str, Any]:
    return {
        "hhi": r(c.hhi, 1),
        "high": c.high,
        "top1": {"key": c.top1.key, "share": r(c.top1.share)} if c.top1 else None,
        "n50": c.n50,
        "shares": [
            {"key": s.key, "share": r(s.share), "weight": r(s.weight), "devices": s.devices}
            for s in c.shares
        ],
    }


def fleet_doc(f: FleetDune) -> dict[str, Any]:
    return {
        "devices": f.devices,
        "ddi": r(f.ddi, 2),
        "weight": r(f.weight),
        "grades": dict(f.grades),
        "components": f.components,
        "unknown_suppliers": f.unknown_suppliers,
        "devices_with_unknown_suppliers": f.devices_with_unknown,
        "simulated_devices": f.simulated,
        "home": f.home,
        "layers": [
            {
                "layer": x.layer,
                "weight": x.weight,
                "devices": x.devices,
                "absent": x.absent,
                "exposure": r(x.exposure),
                "ddi_points": r(100 * x.weight * x.exposure, 3),
                "unknown_share": r(x.unknown_share),
                "grades": dict(x.grades),
                "by_jurisdiction": concentration_doc(x.by_jurisdiction),
                "by_vendor": concentration_doc(x.by_vendor),
            }
            for x in f.layers
        ],
    }


def driver_doc(c: ComponentExposure) -> dict[str, Any]:
    return {
        "component": c.name,
        "version": c.version,
        "supplier": c.supplier,
        "owner": c.owner,
        "country": c.country,
        "category": c.category,
        "j": c.j,
        "s": c.s,
        "s_source": c.s_source,
        "a": c.a,
        "aging": c.a_reason,
        "exposure": r(c.exposure),
        "evidence": c.evidence,
        "evidence_path": c.evidence_path,
        "confidence": c.confidence,
    }


def aging_doc(a: AgingAssessment) -> dict[str, Any]:
    hw = a.hardware
    fw = a.firmware
    return {
        "hardware": {
            "installed": hw.installed,
            "installed_source": hw.installed_source,
            "age_years": r(hw.age_years, 2),
            "service_life_years": hw.service_life_years,
            "remaining_years": r(hw.remaining_years, 2),
            "status": hw.status,
        },
        "firmware": None
        if fw is None
        else {
            "version": fw.version,
            "release_date": fw.release_date,
            "age_days": fw.age_days,
            "latest": fw.latest,
            "latest_release_date": fw.latest_release_date,
            "versions_behind": fw.versions_behind,
            "outdated": fw.outdated,
            "stale": fw.stale,
            "reason": fw.reason,
        },
        "eol": [_finding(f) for f in a.eol],
        "approaching_eol": [_finding(f) for f in a.approaching],
        "unsupported": [
            {
                "what": u.what,
                "name": u.name,
                "since": u.since,
                "reason": u.reason,
                "source": u.source,
            }
            for u in a.unsupported
        ],
        "saturation": [
            {
                "metric": s.metric,
                "threshold": s.threshold,
                "start": s.start,
                "end": s.end,
                "duration_s": s.duration_s,
                "mean": r(s.mean, 2),
                "peak": s.peak,
                "ongoing": s.ongoing,
            }
            for s in a.saturation
        ],
    }


def _finding(f: Any) -> dict[str, Any]:
    return {
        "component": f.name,
        "version": f.version,
        "layer": f.layer,
        "status": f.status,
        "eol": f.eol,
        "days_left": f.days_left,
        "source": f.source,
    }


def component_doc(c: Component) -> dict[str, Any]:
    sup = c.supplier
    lc = c.lifecycle
    return {
        "name": c.name,
        "version": c.version,
        "kind": c.kind,
        "layer": c.layer,
        "purl": c.purl,
        "cpe": c.cpe,
        "supplier": sup.name if sup else None,
        "owner": sup.owner if sup else None,
        "country": sup.country if sup else None,
        "community": sup.community if sup else False,
        "lifecycle": lc.status,
        "eol": lc.eol,
        "latest": lc.latest,
        "evidence": c.evidence,
        "confidence": c.confidence,
    }


def device_doc(e: DeviceEntry, rank: int) -> dict[str, Any]:
    d = e.dune
    doc: dict[str, Any] = {
        "rank": rank,
        "device_id": d.device_id,
        "vendor": d.vendor,
        "model": d.model,
        "device_class": d.device_class,
        "tags": dict(d.tags),
        "simulated": d.simulated,
        "criticality_weight": d.weight,
        "ddi": r(d.ddi, 2),
        "grade": d.grade,
        "worst_layer": d.worst_layer,
        "components": d.components,
        "unknown_suppliers": d.unknown_suppliers,
        "layers": {
            x.layer: {
                "weight": x.weight,
                "exposure": r(x.exposure),
                "grade": x.grade,
                "components": x.components,
                "unknown": x.unknown,
                "driver": driver_doc(x.driver) if x.driver else None,
            }
            for x in d.layers
            if x.driver is not None
        },
        "aging": aging_doc(e.aging),
    }
    if e.components is not None:
        doc["sbom"] = [component_doc(c) for c in e.components]
    return doc


def report_doc(data: ReportData, devices: bool = True) -> dict[str, Any]:
    doc = {
        "report": {
            "title": data.title,
            "generated_at": data.generated_at,
            "today": data.today,
            "source": data.source,
            "simulated_devices": data.simulated,
            "by": data.by_tag,
        },
        "policy": policy_doc(data.policy),
        "fleet": fleet_doc(data.fleet),
        "groups": [{"tag": data.by_tag, "value": k, **fleet_doc(f)} for k, f in data.groups],
        "aging": {
            "devices": data.aging.devices,
            "hardware": dict(data.aging.hardware),
            "firmware_outdated": data.aging.firmware_outdated,
            "firmware_stale": data.aging.firmware_stale,
            "devices_with_eol": data.aging.with_eol,
            "devices_with_approaching_eol": data.aging.with_approaching,
            "devices_unsupported": data.aging.unsupported,
            "devices_saturated": data.aging.saturated,
            "eol_by_month": [
                {"month": m, "reached": a, "approaching": b} for m, a, b in data.aging.months
            ],
            "nearest": [
                {
                    "date": t.date,
                    "device_id": t.device_id,
                    "component": t.name,
                    "layer": t.layer,
                    "status": t.status,
                }
                for t in data.aging.timeline
            ],
        },
        "skipped": [{"device_id": d, "reason": r} for d, r in data.skipped],
        "alerts": {
            "note": data.alerts_note,
            "open": [
                {
                    "id": a.id,
                    "rule_id": a.rule_id,
                    "device_id": a.device_id,
                    "severity": a.severity,
                    "status": a.status,
                    "summary": a.summary,
                    "first_seen": a.first_seen,
                    "last_seen": a.last_seen,
                }
                for a in data.alerts
            ],
        },
    }
    if devices:
        doc["devices"] = [device_doc(e, i + 1) for i, e in enumerate(data.devices)]
    return doc
