"""Lifecycle rules: outdated firmware, end of life reached or approaching, unsupported devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

from collector.alerts.config import AlertsConfig
from collector.alerts.model import ComponentState, Finding, FleetSnapshot

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


def _label(comp: ComponentState) -> str:
    return f"{comp.name} {comp.version}" if comp.version else comp.name


def _comp_evidence(comp: ComponentState) -> dict[str, object]:
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
    """A component, or the device model itself, is past its end-of-life date."""

    rule_ids = (EOL_REACHED,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        today = snapshot_day(snapshot)
        for dev in snapshot.devices:
            for comp in dev.components:
                if not is_eol(comp, today):
                    continue
                when = f" since {comp.eol}" if comp.eol else ""
                yield Finding(
                    rule_id=EOL_REACHED,
                    device_id=dev.device_id,
                    severity="high",
                    summary=f"{dev.device_id}: {_label(comp)} is end-of-life{when}",
                    evidence=_comp_evidence(comp),
                    key=f"{comp.layer}:{comp.name}",
                )


class EolApproachingRule:
    """End of life within the configured window (default 180 days)."""

    rule_ids = (EOL_APPROACHING,)

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterator[Finding]:
        today = snapshot_day(snapshot)
        window_days = config.eol_approaching / 86400.0
        for dev in snapshot.devices:
            for comp in dev.components:
                left = eol_days_left(comp, today)
                if left is not None:
                    if not 0 < left <= window_days:
                        continue
                elif comp.status != "approaching_eol":
                    continue
                yield Finding(
                    rule_id=EOL_APPROACHING,
                    device_id=dev.device_id,
                    severity="low" if left is not None and left > 90 else "medium",
                    summary=f"{dev.device_id}: {_label(comp)} reaches end-of-life on "
                    f"{comp.eol or '?'}" + (f" ({left} days)" if left is not None else ""),
                    evidence={**_comp_evidence(comp), "days_left": left},
                    key=f"{comp.layer}:{comp.name}",
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
