"""CSV report: one row per device (most exposed first), for spreadsheets and quick filtering."""

from __future__ import annotations

import csv
from typing import TextIO

from collector.report.doc import r
from collector.report.interface import ReportData
from sbom.model import LAYERS

_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """Strings a spreadsheet would run as a formula get a leading quote (CSV injection)."""
    if isinstance(value, str) and value.startswith(_RISKY):
        return "'" + value
    return value


class CsvReport:
    name = "csv"
    suffix = ".csv"

    def write(self, data: ReportData, out: TextIO) -> None:
        w = csv.writer(out, lineterminator="\n")
        head = ["rank", "device_id", "vendor", "model", "device_class", "tags", "simulated"]
        if data.by_tag:
            head.append(data.by_tag)
        head += ["criticality_weight", "ddi", "grade", "worst_layer", "unknown_suppliers"]
        for layer in LAYERS:
            head += [f"{layer}_exposure", f"{layer}_driver", f"{layer}_country"]
        head += [
            "hardware_status",
            "hardware_age_years",
            "firmware_version",
            "firmware_outdated",
            "firmware_stale",
            "eol_components",
            "approaching_eol",
            "unsupported",
            "saturated",
        ]
        w.writerow(head)
        for rank, e in enumerate(data.devices, 1):
            d, a = e.dune, e.aging
            row: list[object] = [
                rank,
                d.device_id,
                d.vendor or "",
                d.model or "",
                d.device_class or "",
                ";".join(f"{k}={v}" for k, v in d.tags),
                "simulated" if d.simulated else "",
            ]
            if data.by_tag:
                row.append(d.tag(data.by_tag) or "")
            row += [d.weight, r(d.ddi, 2), d.grade, d.worst_layer or "", d.unknown_suppliers]
            for x in d.layers:
                drv = x.driver
                if drv is None:
                    row += ["", "", ""]
                else:
                    row += [r(x.exposure), drv.name, drv.jurisdiction]
            fw = a.firmware
            row += [
                a.hardware.status,
                r(a.hardware.age_years, 2) if a.hardware.age_years is not None else "",
                (fw.version or "") if fw else "",
                int(fw.outdated) if fw else "",
                int(fw.stale) if fw else "",
                ";".join(f.name for f in a.eol),
                ";".join(f.name for f in a.approaching),
                ";".join(u.name for u in a.unsupported),
                ";".join(s.metric for s in a.saturation),
            ]
            w.writerow([_cell(v) for v in row])


FORMAT = CsvReport()
