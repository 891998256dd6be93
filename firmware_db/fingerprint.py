"""Identify an agentless device from SNMP: sysObjectID prefix + sysDescr pattern -> vendor, model.

The rules are data (data/snmp_fingerprints.csv, every row with its source); this module only
loads and applies them. Vendor OIDs (`model_oid`, `firmware_oid`) name values a poller should
GET when a rule matches, for vendors that keep model and firmware in their private MIB.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Final

from firmware_db.errors import FirmwareDbError

COLUMNS: Final = (
    "pen_prefix",
    "sysdescr_regex",
    "vendor",
    "model",
    "model_oid",
    "firmware_regex",
    "firmware_oid",
    "device_class",
    "confidence",
    "source",
)
_OID_RE: Final = re.compile(r"^1(\.\d+)+$")
CONFIDENCES: Final = ("high", "medium", "low")


class FingerprintError(FirmwareDbError):
    """The fingerprint table is malformed."""


@dataclass(frozen=True)
class FingerprintRule:
    line: int
    prefix: tuple[int, ...]
    descr: re.Pattern[str] | None
    vendor: str | None
    model: str | None
    model_oid: str | None
    firmware: re.Pattern[str] | None
    firmware_oid: str | None
    device_class: str | None
    confidence: str
    source: str

    def matches(self, object_id: tuple[int, ...] | None, descr: str) -> re.Match[str] | bool:
        if self.prefix and (object_id is None or object_id[: len(self.prefix)] != self.prefix):
            return False
        if self.descr is not None:
            return self.descr.search(descr) or False
        return True

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (int(bool(self.prefix) and self.descr is not None), len(self.prefix), -self.line)


@dataclass(frozen=True)
class Fingerprint:
    """What the rules say about one device; None where the rules do not know."""

    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    device_class: str | None = None
    confidence: str = "low"
    source: str | None = None
    model_oid: str | None = None  # still to GET when model is None
    firmware_oid: str | None = None

    @property
    def pending_oids(self) -> tuple[str, ...]:
        """Vendor OIDs whose values would fill a missing model or firmware version."""
        out = []
        if self.model is None and self.model_oid:
            out.append(self.model_oid)
        if self.firmware_version is None and self.firmware_oid:
            out.append(self.firmware_oid)
        return tuple(out)

    def with_oid_values(self, values: Mapping[str, object]) -> Fingerprint:
        """Fill model/firmware from GET results of `pending_oids` (absent values are ignored)."""
        model, firmware = self.model, self.firmware_version
        if model is None and self.model_oid and values.get(self.model_oid):
            model = str(values[self.model_oid])
        if firmware is None and self.firmware_oid and values.get(self.firmware_oid):
            firmware = str(values[self.firmware_oid])
        return Fingerprint(
            self.vendor,
            model,
            firmware,
            self.device_class,
            self.confidence,
            self.source,
            self.model_oid,
            self.firmware_oid,
        )


def _pattern(text: str, where: str) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise FingerprintError(f"{where}: bad regex {text!r}: {exc}") from None


def _oid(text: str, where: str) -> str | None:
    text = text.strip().lstrip(".")
    if not text:
        return None
    if not _OID_RE.match(text):
        raise FingerprintError(f"{where}: {text!r} is not a numeric OID")
    return text


def parse_rules(text: str, source: str) -> tuple[FingerprintRule, ...]:
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise FingerprintError(f"{source}: header must be {','.join(COLUMNS)}")
    rules = []
    for n, row in enumerate(reader, start=1):
        where = f"{source}: rule {n}"
        prefix_text = _oid(row["pen_prefix"] or "", where + " pen_prefix")
        conf = row["confidence"] or "low"
        if conf not in CONFIDENCES:
            raise FingerprintError(f"{where}: confidence {conf!r} not in {', '.join(CONFIDENCES)}")
        if not row["source"]:
            raise FingerprintError(f"{where}: every rule needs a source")
        descr = _pattern(row["sysdescr_regex"] or "", where + " sysdescr_regex")
        if not prefix_text and descr is None:
            raise FingerprintError(f"{where}: needs a pen_prefix or a sysdescr_regex")
        rules.append(
            FingerprintRule(
                line=n,
                prefix=tuple(int(p) for p in prefix_text.split(".")) if prefix_text else (),
                descr=descr,
                vendor=row["vendor"] or None,
                model=row["model"] or None,
                model_oid=_oid(row["model_oid"] or "", where + " model_oid"),
                firmware=_pattern(row["firmware_regex"] or "", where + " firmware_regex"),
                firmware_oid=_oid(row["firmware_oid"] or "", where + " firmware_oid"),
                device_class=row["device_class"] or None,
                confidence=conf,
                source=row["source"],
            )
        )
    return tuple(sorted(rules, key=lambda r: r.specificity, reverse=True))


@lru_cache(maxsize=1)
def default_rules() -> tuple[FingerprintRule, ...]:
    text = files("firmware_db").joinpath("data/snmp_fingerprints.csv").read_text("utf-8")
    return parse_rules(text, "firmware_db/data/snmp_fingerprints.csv")


def load_rules(path: Path) -> tuple[FingerprintRule, ...]:
    return parse_rules(path.read_text(encoding="utf-8"), str(path))


def _group(m: re.Match[str] | bool, name: str) -> str | None:
    if isinstance(m, re.Match) and name in m.re.groupindex:
        val = m.group(name)
        return val.strip() if val else None
    return None


def fingerprint(
    sys_object_id: str | None,
    sys_descr: str | None,
    rules: Iterable[FingerprintRule] | None = None,
) -> Fingerprint:
    """The most specific matching rule's identity, or an empty Fingerprint."""
    descr = sys_descr or ""
    oid: tuple[int, ...] | None = None
    if sys_object_id:
        try:
            oid = tuple(int(p) for p in sys_object_id.strip().lstrip(".").split("."))
        except ValueError:
            oid = None
    for rule in rules if rules is not None else default_rules():
        m = rule.matches(oid, descr)
        if not m:
            continue
        model = rule.model or _group(m, "model")
        firmware = _group(m, "firmware")
        if firmware is None and rule.firmware is not None:
            fm = rule.firmware.search(descr)
            if fm:
                firmware = (
                    fm.group("firmware") if "firmware" in fm.re.groupindex else fm.group(0)
                ).strip() or None
        return Fingerprint(
            vendor=rule.vendor,
            model=model,
            firmware_version=firmware,
            device_class=rule.device_class,
            confidence=rule.confidence,
            source=rule.source,
            model_oid=rule.model_oid,
            firmware_oid=rule.firmware_oid,
        )
    return Fingerprint()
