"""Differences between two CycloneDX BOMs (JSON or XML): components added, removed and changed.

Components are matched by identity without version: the package URL's type/namespace/name (plus
its arch qualifier) when there is one, else CycloneDX type + name. Hardware parts nested under the
metadata component count too, so a swapped SoC or radio shows up.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from sbom.errors import SbomError


class DiffError(SbomError):
    """A BOM file that cannot be read or is not CycloneDX."""


@dataclass(frozen=True, order=True)
class Entry:
    key: str
    name: str
    version: str | None
    type: str


@dataclass(frozen=True)
class Change:
    key: str
    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class BomDiff:
    added: tuple[Entry, ...] = ()
    removed: tuple[Entry, ...] = ()
    changed: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [{"name": e.name, "version": e.version, "type": e.type} for e in self.added],
            "removed": [
                {"name": e.name, "version": e.version, "type": e.type} for e in self.removed
            ],
            "changed": [{"name": c.name, "old": c.old, "new": c.new} for c in self.changed],
        }

    def lines(self) -> list[str]:
        out = [f"+ {e.name} {e.version or ''}".rstrip() for e in self.added]
        out += [f"- {e.name} {e.version or ''}".rstrip() for e in self.removed]
        out += [f"~ {c.name} {c.old or '?'} -> {c.new or '?'}" for c in self.changed]
        return out


def identity(ctype: str, name: str, purl: str | None) -> str:
    if purl:
        try:
            p = PackageURL.from_string(purl)
        except ValueError:
            pass
        else:
            arch = (p.qualifiers or {}).get("arch") if isinstance(p.qualifiers, dict) else None
            ns = f"{p.namespace}/" if p.namespace else ""
            return f"pkg:{p.type}/{ns}{p.name}" + (f"?arch={arch}" if arch else "")
    return f"{ctype}:{name}"


def _walk_json(comps: list[Any]) -> Iterator[Entry]:
    for c in comps or []:
        if not isinstance(c, dict) or "name" not in c:
            continue
        ctype = str(c.get("type", "library"))
        version = c.get("version")
        yield Entry(identity(ctype, str(c["name"]), c.get("purl")), str(c["name"]), version, ctype)
        yield from _walk_json(c.get("components") or [])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _walk_xml(parent: ET.Element) -> Iterator[Entry]:
    for comps in (ch for ch in parent if _local(ch.tag) == "components"):
        for c in (ch for ch in comps if _local(ch.tag) == "component"):
            fields = {_local(ch.tag): (ch.text or "").strip() for ch in c}
            if "name" not in fields:
                continue
            ctype = c.get("type", "library")
            yield Entry(
                identity(ctype, fields["name"], fields.get("purl")),
                fields["name"],
                fields.get("version") or None,
                ctype,
            )
            yield from _walk_xml(c)


def load_entries(path: Path) -> list[Entry]:
    """Every component of a BOM file, nested hardware parts included."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise DiffError(f"{path}: cannot read: {exc}") from exc
    stripped = text.lstrip()
    if stripped.startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DiffError(f"{path}: not valid XML: {exc}") from exc
        if _local(root.tag) != "bom":
            raise DiffError(f"{path}: not a CycloneDX BOM (root element {_local(root.tag)!r})")
        entries = list(_walk_xml(root))
        for meta in (ch for ch in root if _local(ch.tag) == "metadata"):
            for comp in (ch for ch in meta if _local(ch.tag) == "component"):
                entries.extend(_walk_xml(comp))
        return entries
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiffError(f"{path}: not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise DiffError(f"{path}: not a CycloneDX BOM (no bomFormat 'CycloneDX')")
    entries = list(_walk_json(doc.get("components") or []))
    meta_comp: dict[str, Any] = (doc.get("metadata") or {}).get("component") or {}
    entries.extend(_walk_json(meta_comp.get("components") or []))
    return entries


def diff_entries(old: list[Entry], new: list[Entry]) -> BomDiff:
    by_old: dict[str, list[Entry]] = defaultdict(list)
    by_new: dict[str, list[Entry]] = defaultdict(list)
    for e in old:
        by_old[e.key].append(e)
    for e in new:
        by_new[e.key].append(e)
    added: list[Entry] = []
    removed: list[Entry] = []
    changed: list[Change] = []
    for key in sorted(set(by_old) | set(by_new)):
        o = {e.version: e for e in by_old.get(key, [])}
        n = {e.version: e for e in by_new.get(key, [])}
        gone = [o[v] for v in o if v not in n]
        came = [n[v] for v in n if v not in o]
        if len(gone) == 1 and len(came) == 1:
            changed.append(Change(key, came[0].name, gone[0].version, came[0].version))
        else:
            removed.extend(gone)
            added.extend(came)
    return BomDiff(tuple(sorted(added)), tuple(sorted(removed)), tuple(changed))


def diff_files(old: Path, new: Path) -> BomDiff:
    return diff_entries(load_entries(old), load_entries(new))
