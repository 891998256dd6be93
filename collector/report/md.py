"""Markdown report: the fleet summary and the most exposed devices, for tickets and wikis."""

from __future__ import annotations

from typing import TextIO

from collector.report.charts import LAYER_LABELS
from collector.report.doc import policy_note
from collector.report.interface import ReportData
from sbom.dune import Concentration

TOP = 20


def _esc(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _top1(c: Concentration) -> str:
    return f"{_esc(c.top1.key)} {c.top1.share:.0%}" if c.top1 else "-"


class MarkdownReport:
    name = "md"
    suffix = ".md"

    def write(self, data: ReportData, out: TextIO) -> None:
        out.write(self.text(data))

    def text(self, data: ReportData) -> str:
        f = data.fleet
        out: list[str] = [f"# {_esc(data.title)}", ""]
        out.append(
            f"Generated {data.generated_at} for {data.today} from {_esc(data.source or '-')}; "
            f"policy: {_esc(policy_note(data.policy))}."
        )
        if data.simulated:
            out += ["", f"**Simulated:** {data.simulated} of {f.devices} devices are simulated."]
        grades = ", ".join(f"{g} {n}" for g, n in f.grades)
        out += [
            "",
            "## Fleet summary",
            "",
            f"- Devices: {f.devices}",
            f"- Fleet DDI (criticality-weighted): **{f.ddi:.1f}**",
            f"- Grades: {grades}",
            f"- Components with unknown supplier: {f.unknown_suppliers} "
            f"(on {f.devices_with_unknown} devices)",
            f"- Devices with end-of-life components: {data.aging.with_eol}; "
            f"approaching: {data.aging.with_approaching}; "
            f"outdated firmware: {data.aging.firmware_outdated}; "
            f"stale firmware: {data.aging.firmware_stale}",
            f"- Open alerts: {len(data.alerts)}",
            "",
            "## DDI by layer and concentration",
            "",
            "| layer | weight | devices | mean exposure | DDI points | HHI jurisdiction "
            "| top-1 jurisdiction | N50 | HHI vendor | top-1 vendor | unknown |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
        ]
        for x in f.layers:
            j, v = x.by_jurisdiction, x.by_vendor
            out.append(
                f"| {LAYER_LABELS.get(x.layer, x.layer)} | {x.weight:g} | {x.devices} "
                f"| {x.exposure:.3f} | {100 * x.weight * x.exposure:.2f} "
                f"| {j.hhi:.0f}{' (high)' if j.high else ''} | {_top1(j)} | {j.n50} "
                f"| {v.hhi:.0f}{' (high)' if v.high else ''} | {_top1(v)} "
                f"| {x.unknown_share:.0%} |"
            )
        if data.groups:
            out += [
                "",
                f"## By {_esc(data.by_tag)}",
                "",
                "| value | devices | DDI | grade E |",
                "|---|---:|---:|---:|",
            ]
            for key, g in data.groups:
                out.append(f"| {_esc(key)} | {g.devices} | {g.ddi:.1f} | {dict(g.grades)['E']} |")
        out += [
            "",
            f"## Most exposed devices (top {min(TOP, len(data.devices))} of {len(data.devices)})",
            "",
            "| # | device | DDI | grade | worst layer | driver | country | aging |",
            "|---:|---|---:|---|---|---|---|---|",
        ]
        for i, e in enumerate(data.devices[:TOP], 1):
            d = e.dune
            drv = d.layer(d.worst_layer).driver if d.worst_layer else None
            sim = " (simulated)" if d.simulated else ""
            out.append(
                f"| {i} | {_esc(d.device_id)}{sim} | {d.ddi:.1f} | {d.grade} "
                f"| {_esc(d.worst_layer or '-')} | {_esc(drv.name if drv else '-')} "
                f"| {_esc(drv.jurisdiction if drv else '-')} | {e.aging.findings} findings |"
            )
        out += ["", "## End of life (nearest dates)", ""]
        if data.aging.timeline:
            out += ["| date | device | component | status |", "|---|---|---|---|"]
            for t in data.aging.timeline:
                out.append(f"| {t.date} | {_esc(t.device_id)} | {_esc(t.name)} | {t.status} |")
        else:
            out.append("No end-of-life dates known.")
        out += ["", "## Open alerts", ""]
        if data.alerts:
            out += ["| id | severity | device | summary |", "|---:|---|---|---|"]
            for a in data.alerts:
                out.append(
                    f"| {a.id} | {a.severity} | {_esc(a.device_id or 'fleet')} "
                    f"| {_esc(a.summary)} |"
                )
        else:
            out.append(f"None ({_esc(data.alerts_note)}).")
        return "\n".join(out) + "\n"


FORMAT = MarkdownReport()
