"""HTML report: one self-contained file (inline CSS and SVG, no script, no network).

A Content-Security-Policy meta tag forbids every external fetch, so a report opened from a file
on an offline machine looks exactly as it did where it was made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TextIO

from collector.report import charts
from collector.report.doc import policy_note
from collector.report.interface import ReportData
from sbom.policy import GRADES

TEMPLATE = "report.html.j2"


def _isotime(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("collector.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["isotime"] = _isotime
    return env


class HtmlReport:
    name = "html"
    suffix = ".html"

    def write(self, data: ReportData, out: TextIO) -> None:
        out.write(self.text(data))

    def text(self, data: ReportData) -> str:
        f = data.fleet
        today = dt.date.fromisoformat(data.today)
        svg = {
            "grades": charts.grade_chart(f),
            "hist": charts.ddi_histogram([e.dune.ddi for e in data.devices]),
            "layers": charts.layer_chart(f),
            "jurisdiction": charts.share_chart(f, "jurisdiction"),
            "vendor": charts.share_chart(f, "vendor"),
            "timeline": charts.timeline_chart(data.aging, today),
            "groups": charts.group_chart(data.groups, data.by_tag or "") if data.groups else "",
        }
        text: str = (
            _env()
            .get_template(TEMPLATE)
            .render(
                d=data,
                f=f,
                a=data.aging,
                policy=data.policy,
                policy_note=policy_note(data.policy),
                grades=dict(f.grades),
                grade_names=GRADES,
                labels=charts.LAYER_LABELS,
                charts=svg,
                shown=data.devices[: data.detail],
            )
        )
        return text


FORMAT = HtmlReport()
