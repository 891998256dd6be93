"""Digital Dune Index rules: a device's critical layer graded E, and fleet concentration."""

from __future__ import annotations

from collections.abc import Iterator

from collector.alerts.config import GRADES, AlertsConfig
from collector.alerts.model import Finding, FleetSnapshot

DUNE_GRADE = "dune.grade"
CONCENTRATION = "fleet.concentration"


# Severity of the per-device alert by its worst critical layer: E is foreign-controlled core
# technology; a lowered `dune.grade` threshold also reports D and C, but less loudly.
GRADE_SEVERITY = {"E": "high", "D": "medium"}


class DuneGradeRule:
    """Critical layers at (or worse than) the configured grade, default E: one alert per device.

    One alert per device, not per layer, so a fleet of look-alike devices does not flood the
    alert list; the evidence lists every offending layer with its driver.
    """

    rule_ids = (DUNE_GRADE,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        floor = GRADES.index(config.dune_grade)
        for dev in snapshot.devices:
            hits = [
                lg
                for lg in dev.layer_grades
                if lg.layer in config.critical_layers
                and lg.grade in GRADES
                and GRADES.index(lg.grade) >= floor
            ]
            if not hits:
                continue
            # worst first: grade, then exposure, then layer name for a stable order
            hits.sort(key=lambda lg: (-GRADES.index(lg.grade), -lg.exposure, lg.layer))
            worst = hits[0]
            parts = []
            for lg in hits:
                who = ", ".join(x for x in (lg.supplier, lg.country) if x)
                parts.append(
                    f"{lg.layer} {lg.grade}"
                    + (
                        f" ({lg.driver}" + (f" from {who}" if who else "") + ")"
                        if lg.driver
                        else ""
                    )
                    + (f" (from {who})" if who and not lg.driver else "")
                )
            yield Finding(
                rule_id=DUNE_GRADE,
                device_id=dev.device_id,
                severity=GRADE_SEVERITY.get(worst.grade, "low"),
                summary=f"{dev.device_id}: {len(hits)} critical layer(s) graded "
                f"{config.dune_grade} or worse: " + "; ".join(parts),
                evidence={
                    "grade": worst.grade,
                    "threshold": config.dune_grade,
                    "layers": [
                        {
                            "layer": lg.layer,
                            "grade": lg.grade,
                            "exposure": lg.exposure,
                            "driver": lg.driver,
                            "supplier": lg.supplier,
                            "country": lg.country,
                        }
                        for lg in hits
                    ],
                },
            )


class ConcentrationRule:
    """Fleet dependence on one jurisdiction (or vendor) per layer: HHI or top-1 share too high."""

    rule_ids = (CONCENTRATION,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for c in snapshot.concentration:
            if c.dimension not in config.concentration_dimensions:
                continue
            if c.top1 in config.concentration_ignore:
                continue
            reasons = []
            if c.hhi > config.concentration_max_hhi:
                reasons.append(f"HHI {c.hhi:.0f} > {config.concentration_max_hhi:.0f}")
            top1_limit = config.concentration_max_top1
            if top1_limit is not None and c.top1_share >= top1_limit:
                reasons.append(f"top-1 share {c.top1_share:.0%} >= {top1_limit:.0%}")
            if not reasons:
                continue
            yield Finding(
                rule_id=CONCENTRATION,
                device_id=None,
                severity="high",
                summary=f"fleet {c.layer} layer concentrated by {c.dimension}: "
                + "; ".join(reasons)
                + (f" (top: {c.top1} {c.top1_share:.0%})" if c.top1 else ""),
                evidence={
                    "layer": c.layer,
                    "dimension": c.dimension,
                    "hhi": c.hhi,
                    "top1": c.top1,
                    "top1_share": c.top1_share,
                    "n50": c.n50,
                    "max_hhi": config.concentration_max_hhi,
                    "max_top1_share": top1_limit,
                },
                key=f"{c.layer}:{c.dimension}",
            )
