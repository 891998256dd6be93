"""Digital Dune Index rules: a device's critical layer graded E, and fleet concentration."""

from __future__ import annotations

from collections.abc import Iterator

from collector.alerts.config import GRADES, AlertsConfig
from collector.alerts.model import Finding, FleetSnapshot

DUNE_GRADE = "dune.grade"
CONCENTRATION = "fleet.concentration"


class DuneGradeRule:
    """A critical layer at (or worse than) the configured grade, default E."""

    rule_ids = (DUNE_GRADE,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        floor = GRADES.index(config.dune_grade)
        for dev in snapshot.devices:
            for lg in dev.layer_grades:
                if lg.layer not in config.critical_layers or lg.grade not in GRADES:
                    continue
                if GRADES.index(lg.grade) < floor:
                    continue
                who = ", ".join(x for x in (lg.supplier, lg.country) if x)
                yield Finding(
                    rule_id=DUNE_GRADE,
                    device_id=dev.device_id,
                    severity="high",
                    summary=f"{dev.device_id}: {lg.layer} layer graded {lg.grade} "
                    f"(exposure {lg.exposure:.2f}"
                    + (f", driven by {lg.driver}" if lg.driver else "")
                    + (f" from {who}" if who else "")
                    + ")",
                    evidence={
                        "layer": lg.layer,
                        "grade": lg.grade,
                        "exposure": lg.exposure,
                        "driver": lg.driver,
                        "supplier": lg.supplier,
                        "country": lg.country,
                    },
                    key=lg.layer,
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
