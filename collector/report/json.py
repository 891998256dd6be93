"""JSON report: every figure of the analysis and every device, for other tools to read.

Streamed: the summary first, then one device per line, so a 100,000-device fleet never needs the
whole document in memory.
"""

from __future__ import annotations

import json
from typing import TextIO

from collector.report.doc import device_doc, report_doc
from collector.report.interface import ReportData


class JsonReport:
    name = "json"
    suffix = ".json"

    def write(self, data: ReportData, out: TextIO) -> None:
        head = report_doc(data, devices=False)
        text = json.dumps(head, ensure_ascii=False, indent=1)
        # the summary, then "devices" streamed as its last key
        out.write(text[: text.rindex("}")].rstrip() + ',\n "devices": [')
        sep = "\n"
        for i, entry in enumerate(data.devices):
            out.write(sep)
            out.write(
                json.dumps(device_doc(entry, i + 1), ensure_ascii=False, separators=(",", ":"))
            )
            sep = ",\n"
        out.write("\n ]\n}\n")


FORMAT = JsonReport()
