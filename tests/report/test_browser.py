"""The HTML report opened from a file in headless Chromium: sections, charts, drill-down."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from collector.report import get_format
from collector.report.build import DeviceInput, build_report
from collector.report.interface import AlertRow, write_report
from sbom.policy import DunePolicy
from tests.dune.fleet import TODAY, fleet
from tests.support.services import require_tool

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    policy = DunePolicy(home="DE", allied=frozenset({"FR"}), restricted=frozenset({"CN"}))
    alert = AlertRow(
        7, "dune.grade", "gw-1", "high", "open", "gw-1: firmware layer graded E", 1.8e9, 1.8e9
    )
    data = build_report(
        [DeviceInput(b) for b in fleet()],
        policy,
        TODAY,
        by_tag="district",
        alerts=[alert],
        alerts_note="from the alerts store",
        source="worked-example fleet (simulated)",
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    return write_report(get_format("html"), data, tmp_path / "report.html")


@pytest.mark.integration
def test_report_renders_offline_in_chromium(report_file: Path, tmp_path: Path) -> None:
    exe = require_tool("chromium", "chromium")
    from playwright.sync_api import expect, sync_playwright

    external: list[str] = []
    problems: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            external.append(url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.route("**/*", route)
            page.goto(report_file.resolve().as_uri())
            for section in ("summary", "ddi-layers", "concentration", "groups", "aging",
                            "devices", "alerts"):  # fmt: skip
                expect(page.locator(f"section#{section} h2")).to_be_visible()
            expect(page.locator("#simulated-banner")).to_contain_text("3 of 3 devices")
            expect(page.locator("#fleet-ddi")).to_have_text("16.2")
            charts = page.locator("figure.chart > svg")
            expect(charts).to_have_count(7)
            for i in range(7):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100
            # bars carry native tooltips; the stacked chart has one per layer and country
            titles = page.locator("#chart-jurisdiction svg title").all_text_contents()
            assert "SoC / chip: CN 75.0 %" in titles
            expect(page.locator("#concentration-table tbody tr")).to_have_count(7)
            expect(page.locator('#concentration-table tr[data-layer="soc"]')).to_contain_text(
                "6250"
            )
            cam = page.locator('details[data-device="cam-1"]')
            drivers = cam.locator("table.drivers")
            expect(drivers).to_be_hidden()
            cam.locator("summary").first.click()
            expect(drivers).to_be_visible()
            expect(drivers).to_contain_text("Hi3516DV300")
            expect(drivers).to_contain_text("Huawei Investment & Holding")
            cam.locator("details.sbom > summary").click()
            expect(cam.locator("table.sbom-table tbody tr")).to_have_count(7)
            expect(page.locator("#alerts-table")).to_contain_text("firmware layer graded E")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert external == []
    assert problems == []
