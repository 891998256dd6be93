"""Reports: the fleet's DDI, concentration, aging and alerts as HTML, JSON, CSV or Markdown."""

from __future__ import annotations

from collector.report import csv, html, json, md
from collector.report.interface import ReportError, ReportFormat

FORMATS: tuple[ReportFormat, ...] = (html.FORMAT, json.FORMAT, csv.FORMAT, md.FORMAT)


def get_format(name: str) -> ReportFormat:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ReportError(f"unknown report format {name!r}; choose one of {[f.name for f in FORMATS]}")
