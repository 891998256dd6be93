"""Lifecycle rules: outdated firmware, end of life reached or approaching, unsupported devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

from collector.alerts.config import AlertsConfig
from collector.alerts.model import ComponentState, Finding, FleetSnapshot, severity_rank

FIRMWARE_OUTDATED = "firmware.outdated"
EOL_REACHED = "eol.reached"
EOL_APPROACHING = "eol.approaching"
UNSUPPORTED = "support.unsupported"


def snapshot_day(snapshot: FleetSnapshot) -> date:
    return datetime.fromtimestamp(snapshot.taken_at, UTC).date()


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def eol_days_left(comp: ComponentState, today: date) -> int | None:
    day = _parse_day(comp.eol)
    return None if day is None else (day - today).days


def label(comp: ComponentState) -> str:
    return f"{comp.name} {comp.version}" if comp.version else comp.name


def comp_evidence(comp: ComponentState) -> dict[str, object]:
    """What on-call needs to find and replace one component: name, version, lifecycle source."""
    return {
        "component": comp.name,
        "version": comp.version,
        "layer": comp.layer,
        "status": comp.status,
        "eol": comp.eol,
        "cycle": comp.cycle,
        "latest": comp.latest,
        "source": comp.source,
    }


def listing(parts: list[str], limit: int = 3) -> str:
    """The first `limit` items of a worst-first list, then how many more, for a summary line."""
    shown = ", ".join(parts[:limit])
    return shown + (f", and {len(parts) - limit} more" if len(parts) > limit else "")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def is_eol(comp: ComponentState, today: date) -> bool:
    left = eol_days_left(comp, today)
    return left <= 0 if left is not None else comp.status == "eol"


class FirmwareOutdatedRule:
    """Firmware versions behind the vendor's latest, or no firmware release for too long."""

    rule_ids = (FIRMWARE_OUTDATED,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        today = snapshot_day(snapshot)
        for dev in snapshot.devices:
            reasons: list[str] = []
            behind = dev.firmware_versions_behind
            if behind is not None and behind >= config.firmware_min_versions_behind:
                reasons.append(f"{behind} version(s) behind {dev.firmware_latest or 'the latest'}")
            released = _parse_day(dev.firmware_release_date)
            age_days = (today - released).days if released else None
            if (
                config.firmware_max_age is not None
                and age_days is not None
                and age_days * 86400.0 > config.firmware_max_age
            ):
                reasons.append(f"released {age_days} days ago")
            if not reasons:
                continue
            yield Finding(
                rule_id=FIRMWARE_OUTDATED,
                device_id=dev.device_id,
                severity="medium",
                summary=f"{dev.device_id} firmware {dev.firmware_version or '?'}: "
                + "; ".join(reasons),
                evidence={
                    "firmware": dev.firmware_version,
                    "latest": dev.firmware_latest,
                    "versions_behind": behind,
                    "release_date": dev.firmware_release_date,
                    "age_days": age_days,
                },
            )


class EolReachedRule:
    """Components (or the device model itself) past their end-of-life date: one alert per device.

    One alert per device, not per component, so a fleet of look-alike devices does not flood the
    alert list; the evidence lists every end-of-life component, longest past first.
    """

    rule_ids = (EOL_REACHED,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        today = snapshot_day(snapshot)
        for dev in snapshot.devices:
            hits = [(comp, eol_days_left(comp, today)) for comp in dev.components]
            hits = [(comp, left) for comp, left in hits if is_eol(comp, today)]
            if not hits:
                continue
            # worst first: longest past its date; a bare "eol" status without a date after those
            hits.sort(
                key=lambda h: (h[1] is None, h[1] if h[1] is not None else 0, h[0].layer, h[0].name)
            )
            parts = [label(c) + (f" since {c.eol}" if c.eol else "") for c, _ in hits]
            yield Finding(
                rule_id=EOL_REACHED,
                device_id=dev.device_id,
                severity="high",
                summary=f"{dev.device_id}: {counted(len(hits), 'component')} past end of life "
                f"({listing(parts)})",
                evidence={
                    "count": len(hits),
                    "components": [
                        {**comp_evidence(c), "days_past": None if left is None else -left}
                        for c, left in hits
                    ],
                },
            )


def _approaching_severity(left: int | None) -> str:
    # a date within 90 days, or a source that says "approaching" without a date, is medium
    return "low" if left is not None and left > 90 else "medium"


class EolApproachingRule:
    """End of life within the configured window (default 180 days): one alert per device.

    Severity follows the component nearest its date; the evidence lists them soonest first.
    """

    rule_ids = (EOL_APPROACHING,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        today = snapshot_day(snapshot)
        window_days = config.eol_approaching / 86400.0
        for dev in snapshot.devices:
            hits: list[tuple[ComponentState, int | None]] = []
            for comp in dev.components:
                left = eol_days_left(comp, today)
                if left is not None:
                    if not 0 < left <= window_days:
                        continue
                elif comp.status != "approaching_eol":
                    continue
                hits.append((comp, left))
            if not hits:
                continue
            hits.sort(
                key=lambda h: (
                    -severity_rank(_approaching_severity(h[1])),
                    h[1] is None,
                    h[1] if h[1] is not None else 0,
                    h[0].layer,
                    h[0].name,
                )
            )
            worst_left = hits[0][1]
            parts = [
                label(c)
                + (f" on {c.eol}" if c.eol else " (date unknown)")
                + (f" ({left} days)" if left is not None else "")
                for c, left in hits
            ]
            yield Finding(
                rule_id=EOL_APPROACHING,
                device_id=dev.device_id,
                severity=_approaching_severity(worst_left),
                summary=f"{dev.device_id}: {counted(len(hits), 'component')} reaching end of "
                f"life ({listing(parts)})",
                evidence={
                    "count": len(hits),
                    "days_left": worst_left,
                    "components": [{**comp_evidence(c), "days_left": left} for c, left in hits],
                },
            )


class UnsupportedRule:
    """The device model or its vendor is out of support (firmware_db / asset register)."""

    rule_ids = (UNSUPPORTED,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        for dev in snapshot.devices:
            if dev.support_status != "unsupported":
                continue
            what = " ".join(x for x in (dev.vendor, dev.model) if x) or "model"
            detail = f": {dev.support_detail}" if dev.support_detail else ""
            yield Finding(
                rule_id=UNSUPPORTED,
                device_id=dev.device_id,
                severity="high",
                summary=f"{dev.device_id}: {what} is out of support{detail}",
                evidence={
                    "vendor": dev.vendor,
                    "model": dev.model,
                    "support_end": dev.support_end,
                    "detail": dev.support_detail,
                },
            )
