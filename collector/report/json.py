"""JSON report: every figure of the analysis, every device, for other tools to read."""

from __future__ import annotations

import json

from collector.report.doc import report_doc
from collector.report.interface import ReportData


class JsonReport:
    name = "json"
    suffix = ".json"

    def render(self, data: ReportData) -> str:
        return json.dumps(report_doc(data), ensure_ascii=False, indent=1) + "\n"


FORMAT = JsonReport()
