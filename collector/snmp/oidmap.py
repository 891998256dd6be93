"""The declarative OID map (data/oids.toml) as frozen values the poller and builders read."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from collector.snmp.interface import OidMapError

GROUP_IDENTITY: Final = "identity"
GROUP_HEALTH: Final = "health"
GROUP_INVENTORY: Final = "inventory"
GROUPS: Final = (GROUP_IDENTITY, GROUP_HEALTH, GROUP_INVENTORY)
TYPES: Final = ("str", "hex", "int", "oid")
_OID_RE: Final = re.compile(r"^1(\.\d+)+$")


def oid_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@dataclass(frozen=True)
class Scalar:
    name: str
    oid: tuple[int, ...]
    group: str
    type: str


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    oid: tuple[int, ...]  # entry OID + column number; rows live below it
    type: str


@dataclass(frozen=True)
class Table:
    name: str
    entry: tuple[int, ...]
    group: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class PartRule:
    pattern: re.Pattern[str]
    kind: str


@dataclass(frozen=True)
class OidMap:
    scalars: tuple[Scalar, ...]
    tables: tuple[Table, ...]
    constants: dict[str, Any]
    part_rules: tuple[PartRule, ...]
    package_patterns: tuple[re.Pattern[str], ...] = ()

    def scalars_for(self, groups: tuple[str, ...]) -> tuple[Scalar, ...]:
        return tuple(s for s in self.scalars if s.group in groups)

    def columns_for(self, groups: tuple[str, ...]) -> tuple[Column, ...]:
        return tuple(c for t in self.tables if t.group in groups for c in t.columns)

    def part_kind(self, entity_class: int | None, text: str) -> str | None:
        mapping: dict[str, str] = self.constants.get("part_class", {})
        by_class = mapping.get(str(entity_class)) if entity_class is not None else None
        if by_class == "chassis":  # the box itself, whatever its description says
            return by_class
        for rule in self.part_rules:
            if rule.pattern.search(text):
                return rule.kind
        return by_class


def _check_oid(text: Any, where: str) -> tuple[int, ...]:
    if not isinstance(text, str) or not _OID_RE.match(text):
        raise OidMapError(f"{where}: {text!r} is not a numeric OID like 1.3.6.1.2.1.1.1.0")
    return oid_tuple(text)


def _check_choice(val: Any, allowed: tuple[str, ...], where: str) -> str:
    if val not in allowed:
        raise OidMapError(f"{where}: {val!r} is not one of {', '.join(allowed)}")
    return str(val)


def parse_oidmap(doc: dict[str, Any], source: str) -> OidMap:
    scalars = []
    for name, spec in doc.get("scalars", {}).items():
        where = f"{source}: scalars.{name}"
        oid = _check_oid(spec.get("oid"), where + ".oid")
        if oid[-1] != 0:
            raise OidMapError(f"{where}.oid: a scalar OID must end in .0")
        scalars.append(
            Scalar(
                name,
                oid,
                _check_choice(spec.get("group"), GROUPS, where + ".group"),
                _check_choice(spec.get("type", "str"), TYPES, where + ".type"),
            )
        )
    tables = []
    for tname, spec in doc.get("tables", {}).items():
        where = f"{source}: tables.{tname}"
        entry = _check_oid(spec.get("entry"), where + ".entry")
        cols = []
        for cname, cspec in spec.get("columns", {}).items():
            col = cspec.get("col")
            if isinstance(col, bool) or not isinstance(col, int) or col < 1:
                raise OidMapError(f"{where}.columns.{cname}: 'col' must be a column number >= 1")
            ctype = _check_choice(cspec.get("type", "str"), TYPES, f"{where}.columns.{cname}.type")
            cols.append(Column(tname, cname, (*entry, col), ctype))
        if not cols:
            raise OidMapError(f"{where}: no columns")
        group = _check_choice(spec.get("group"), GROUPS, where + ".group")
        tables.append(Table(tname, entry, group, tuple(cols)))
    rules = []
    for i, rule in enumerate(doc.get("part_rules", [])):
        try:
            rules.append(PartRule(re.compile(rule["pattern"]), str(rule["kind"])))
        except (KeyError, re.error) as exc:
            raise OidMapError(f"{source}: part_rules[{i}]: {exc}") from None
    pkgs = []
    for i, rule in enumerate(doc.get("package_patterns", [])):
        try:
            pat = re.compile(rule["pattern"])
        except (KeyError, re.error) as exc:
            raise OidMapError(f"{source}: package_patterns[{i}]: {exc}") from None
        if "name" not in pat.groupindex:
            raise OidMapError(f"{source}: package_patterns[{i}]: needs a (?P<name>...) group")
        pkgs.append(pat)
    return OidMap(
        tuple(scalars),
        tuple(tables),
        dict(doc.get("constants", {})),
        tuple(rules),
        tuple(pkgs),
    )


def load_oidmap(path: Path | None = None) -> OidMap:
    """The packaged map, or a user's own file with the same layout."""
    if path is None:
        text = files("collector.snmp").joinpath("data/oids.toml").read_text(encoding="utf-8")
        source = "collector/snmp/data/oids.toml"
    else:
        text = path.read_text(encoding="utf-8")
        source = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OidMapError(f"{source}: not valid TOML: {exc}") from None
    return parse_oidmap(doc, source)
