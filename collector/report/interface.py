"""The report-format axis: one `ReportData` value, rendered by one module per format.

The analysis (DDI, concentration, aging, alerts) is done once in `build.py`; formats only lay the
figures out, so HTML, JSON, CSV and Markdown can never disagree about a number.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from collector.errors import CollectorError
from sbom.aging import AgingAssessment, AgingSummary
from sbom.dune import DeviceDune, FleetDune
from sbom.model import Component
from sbom.policy import DunePolicy


class ReportError(CollectorError):
    """Base error of the report axis (unknown format, unwritable output, no devices...)."""


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    dune: DeviceDune
    aging: AgingAssessment
    # The SBOM components, kept only for the most exposed devices (drill-down); None otherwise.
    components: tuple[Component, ...] | None = None

    @property
    def device_id(self) -> str:
        return self.dune.device_id


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An open (or acknowledged) alert as the report shows it."""

    id: int
    rule_id: str
    device_id: str | None
    severity: str
    status: str
    summary: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class ReportData:
    title: str
    generated_at: str  # ISO 8601 UTC
    today: str  # ISO date the lifecycle and aging figures are computed for
    source: str  # where the devices came from (a database path, "synthetic fleet", ...)
    policy: DunePolicy
    fleet: FleetDune
    aging: AgingSummary
    devices: tuple[DeviceEntry, ...]  # every device, most exposed first
    by_tag: str | None = None
    groups: tuple[tuple[str, FleetDune], ...] = ()
    alerts: tuple[AlertRow, ...] = ()
    alerts_note: str = "no alerts store"  # where alerts came from, or why there are none
    detail: int = 100  # how many of the top devices carry their SBOM components
    skipped: tuple[tuple[str, str], ...] = ()  # (device id, reason) devices not analysed

    @property
    def simulated(self) -> int:
        return self.fleet.simulated


class ReportFormat(Protocol):
    name: str
    suffix: str

    def write(self, data: ReportData, out: TextIO) -> None:
        """Write the whole document; formats with one entry per device stream them."""
        ...


def render(fmt: ReportFormat, data: ReportData) -> str:
    """The document as one string (tests, small fleets)."""
    buf = io.StringIO()
    fmt.write(data, buf)
    return buf.getvalue()


def write_report(fmt: ReportFormat, data: ReportData, out: Path) -> Path:
    """Write to a temporary file, then replace `out`: a failed run never leaves half a file."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fmt.write(data, fh)
        tmp.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write report {out}: {exc.strerror or exc}") from None
    return out
