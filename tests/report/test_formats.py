"""Formats over one worked-example analysis: same figures everywhere, deterministic, offline."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from collector.report import FORMATS, get_format
from collector.report.build import DeviceInput, build_report
from collector.report.interface import ReportData, ReportError, render, write_report
from sbom.model import DeviceInfo
from sbom.policy import DunePolicy
from tests.dune.fleet import TODAY, cam1, fleet

POLICY = DunePolicy(home="DE", allied=frozenset({"FR"}), restricted=frozenset({"CN"}))
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def data(**kw: object) -> ReportData:
    return build_report(
        [DeviceInput(b) for b in fleet()], POLICY, TODAY, now=NOW, source="worked example", **kw
    )  # type: ignore[arg-type]


def test_registry() -> None:
    assert [f.name for f in FORMATS] == ["html", "json", "csv", "md"]
    with pytest.raises(ReportError, match="unknown report format 'pdf'"):
        get_format("pdf")


def test_json_carries_the_worked_example_figures() -> None:
    doc = json.loads(render(get_format("json"), data(by_tag="district")))
    # see tests/dune/test_dune.py for the arithmetic
    assert doc["fleet"]["ddi"] == 16.18
    assert [d["device_id"] for d in doc["devices"]] == ["cam-1", "gw-1", "cam-2"]
    assert doc["devices"][0]["ddi"] == 17.68 and doc["devices"][0]["grade"] == "D"
    soc = doc["fleet"]["layers"][0]
    assert soc["by_jurisdiction"]["hhi"] == 6250.0 and soc["by_jurisdiction"]["n50"] == 1
    assert doc["policy"]["home"] == "DE" and doc["report"]["simulated_devices"] == 3
    assert {g["value"]: g["ddi"] for g in doc["groups"]} == {"north": 15.95, "south": 16.88}
    drv = doc["devices"][0]["layers"]["soc"]["driver"]
    assert (drv["owner"], drv["country"], drv["category"], drv["evidence"]) == (
        "Huawei Investment & Holding",
        "CN",
        "restricted",
        "declared",
    )


def test_detail_limits_the_sbom_drill_down() -> None:
    d = data(detail=1)
    assert [e.components is not None for e in d.devices] == [True, False, False]
    assert d.devices[0].device_id == "cam-1"
    doc = json.loads(render(get_format("json"), d))
    assert "sbom" in doc["devices"][0] and "sbom" not in doc["devices"][1]
    assert all(e.components is None for e in data(detail=0).devices)
    with pytest.raises(ReportError, match="detail"):
        data(detail=-1)


def test_csv_rows_and_formula_guard() -> None:
    evil = cam1()
    evil = replace(evil, device=replace(evil.device, device_id="=cmd|'/c calc'!A1"))
    d = build_report([DeviceInput(evil)], POLICY, TODAY, now=NOW)
    rows = list(csv.reader(io.StringIO(render(get_format("csv"), d))))
    assert rows[0][:3] == ["rank", "device_id", "vendor"]
    assert rows[1][1] == "'=cmd|'/c calc'!A1"
    rows = list(csv.DictReader(io.StringIO(render(get_format("csv"), data()))))
    assert [(r["device_id"], r["ddi"], r["grade"]) for r in rows] == [
        ("cam-1", "17.68", "D"),
        ("gw-1", "16.88", "E"),
        ("cam-2", "12.5", "D"),
    ]
    assert rows[0]["soc_country"] == "CN" and rows[0]["eol_components"] == "linux"


def test_markdown() -> None:
    text = render(get_format("md"), data(by_tag="district"))
    assert "- Fleet DDI (criticality-weighted): **16.2**" in text
    assert "| SoC / chip | 0.25 | 3 | 0.450 | 11.25 | 6250 (high) | CN 75% | 1 |" in text
    assert "| 1 | cam-1 (simulated) | 17.7 | D | soc | Hi3516DV300 | CN |" in text
    assert "None (no alerts store)." in text


def test_html_is_self_contained_and_deterministic(tmp_path: Path) -> None:
    html = render(get_format("html"), data(by_tag="district"))
    assert html == render(get_format("html"), data(by_tag="district"))
    assert "Content-Security-Policy" in html
    assert "<script" not in html
    # the only URLs are SVG/XLink namespace names, never fetched
    urls = set(re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert html.count("<svg") == 7
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "chart ids must be unique across the page"
    out = write_report(get_format("html"), data(), tmp_path / "sub" / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_html_without_simulated_devices_has_no_banner_and_notes_unset_home() -> None:
    real = [replace(b, device=replace(b.device, simulated=False)) for b in fleet()]
    d = build_report([DeviceInput(b) for b in real], DunePolicy(), TODAY, now=NOW)
    html = render(get_format("html"), d)
    assert 'id="simulated-banner"' not in html
    assert "home jurisdiction unset" in html


def test_empty_fleet_renders() -> None:
    d = build_report([], POLICY, TODAY, now=NOW)
    for fmt in FORMATS:
        assert render(fmt, d)


def test_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ReportError, match="cannot write report"):
        write_report(get_format("md"), data(), blocker / "r.md")


def test_device_info_default_is_not_simulated() -> None:
    assert DeviceInfo("x").simulated is False
