"""Values the knowledge base returns: frozen, one type per field, safe to share across threads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

STATUS_SUPPORTED: Final = "supported"
STATUS_APPROACHING_EOL: Final = "approaching_eol"
STATUS_EOL: Final = "eol"
STATUS_UNKNOWN: Final = "unknown"
STATUSES: Final = (STATUS_SUPPORTED, STATUS_APPROACHING_EOL, STATUS_EOL, STATUS_UNKNOWN)
APPROACHING_DAYS: Final = 180  # DESIGN §6: aging 0.7 within 180 days of EOL


@dataclass(frozen=True)
class Organization:
    """A supplier; jurisdiction follows the ultimate owner, not the brand on the box."""

    name: str
    aliases: tuple[str, ...]
    hq_country: str | None
    ultimate_parent: str | None
    parent_country: str | None
    community: bool
    roles: tuple[str, ...]
    iana_pens: tuple[int, ...]
    source: str
    flags: tuple[str, ...] = ()

    @property
    def controlling_country(self) -> str | None:
        """The owner's country when sourced, else the headquarters country."""
        return self.parent_country or self.hq_country


@dataclass(frozen=True)
class ComponentInfo:
    """What a package or binary name is, for layer assignment and lifecycle/vuln matching."""

    name: str
    layer: str
    product: str | None  # lifecycle product key (e.g. 'openssl', 'linux')
    supplier: str | None  # organization or community project name
    community: bool
    cpe_vendor: str | None
    cpe_product: str | None
    substitutability: float | None
    source: str


@dataclass(frozen=True)
class LifecycleResult:
    product: str
    version: str
    status: str  # one of STATUSES
    eol: str | None  # ISO date, None when not published (or only a yes/no is published)
    cycle: str | None
    latest: str | None
    versions_behind: int | None
    release_date: str | None
    support_end: str | None
    source: str | None
    reason: str  # one line: why this status

    def as_dict(self) -> dict[str, object]:
        return {
            "product": self.product,
            "version": self.version,
            "status": self.status,
            "eol": self.eol,
            "cycle": self.cycle,
            "latest": self.latest,
            "versions_behind": self.versions_behind,
            "release_date": self.release_date,
            "support_end": self.support_end,
            "source": self.source,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)  # many are kept in memory
class Vulnerability:
    id: str
    aliases: tuple[str, ...]
    severity: str | None  # CRITICAL/HIGH/MEDIUM/LOW as published
    cvss: float | None
    kev: bool
    kev_date: str | None
    epss: float | None
    summary: str
    fixed_version: str | None
    source: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "severity": self.severity,
            "cvss": self.cvss,
            "kev": self.kev,
            "kev_date": self.kev_date,
            "epss": self.epss,
            "summary": self.summary,
            "fixed_version": self.fixed_version,
            "source": self.source,
        }


@dataclass(frozen=True)
class Part:
    kind: str  # soc | image_sensor | radio
    manufacturer: str
    family: str | None
    part_number: str
    compatibles: tuple[str, ...]
    substitutability: float | None
    source: str


@dataclass(frozen=True)
class DeviceModel:
    vendor: str
    model: str
    odm: str | None
    device_class: str | None
    hw_revision: str | None
    launch: str | None
    end_of_sale: str | None
    end_of_support: str | None
    end_of_life: str | None
    source: str

    def status(self, today: str) -> str:
        """supported / approaching_eol / eol from vendor dates; unknown when none is published."""
        from datetime import date, timedelta

        end = self.end_of_life or self.end_of_support
        if not end:
            return STATUS_UNKNOWN
        d, t = date.fromisoformat(end), date.fromisoformat(today)
        if d <= t:
            return STATUS_EOL
        if d <= t + timedelta(days=APPROACHING_DAYS):
            return STATUS_APPROACHING_EOL
        return STATUS_SUPPORTED


@dataclass(frozen=True)
class FirmwareRelease:
    vendor: str
    model: str
    version: str
    release_date: str | None
    track: str | None
    kernel: str | None
    openssl: str | None
    busybox: str | None
    latest: bool
    source: str


@dataclass(frozen=True)
class Asset:
    """One row of the user's asset register: what the DDI and aging layer read per device."""

    device_id: str
    install_date: str | None
    criticality: float
    vendor: str | None
    model: str | None
    tags: tuple[tuple[str, str], ...]
    source: str


@dataclass(frozen=True)
class ImportResult:
    feed: str
    records: int
    source: str
