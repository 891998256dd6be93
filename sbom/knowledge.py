"""Classification of components through the firmware_db knowledge base, behind a small adapter.

The builders never guess: whatever the knowledge base does not know stays layer 'application',
supplier unknown and lifecycle unknown. `Knowledge` is the narrow interface we call; the real
implementation is `firmware_db.open_default()`, and tests may pass a fake of this interface.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from sbom.model import (
    LAYER_APPLICATION,
    LAYER_SENSOR_RADIO,
    LAYER_SOC,
    LAYERS,
    Lifecycle,
    Supplier,
)

log = logging.getLogger("dunewatch.sbom")


class Knowledge(Protocol):
    """The four firmware_db lookups the SBOM needs (duck-typed results, see firmware_db.models)."""

    def component_info(self, name: str, manager: str | None) -> Any: ...

    def vendor(self, name: str) -> Any: ...

    def part(self, name_or_compatible: str) -> Any: ...

    def lifecycle(self, product: str, version: str) -> Any: ...


class NullKnowledge:
    """Knows nothing: every component is an unclassified application of unknown supplier."""

    def component_info(self, name: str, manager: str | None) -> Any:
        return None

    def vendor(self, name: str) -> Any:
        return None

    def part(self, name_or_compatible: str) -> Any:
        return None

    def lifecycle(self, product: str, version: str) -> Any:
        return None


def load_knowledge() -> Knowledge:
    """The shipped knowledge base, or NullKnowledge (with a warning) when it cannot be opened."""
    try:
        from firmware_db import open_default

        kb: Knowledge = open_default()
        return kb
    except Exception as exc:  # noqa: BLE001 - a missing/broken KB degrades to "unknown", loudly
        log.warning(
            "knowledge base unavailable (%s): suppliers and lifecycles will be unknown", exc
        )
        return NullKnowledge()


_EPOCH_RE = re.compile(r"^\d+:")
_REVISION_RE = re.compile(r"-(?:r\d+|[A-Za-z0-9.+~]*\d[A-Za-z0-9.+~]*)$")
_SUFFIX_RE = re.compile(r"[+~](?:dfsg|ds|really|deb|git|repack|b\d|build|ubuntu)[^-]*$", re.I)


def upstream_version(version: str, manager: str | None) -> str:
    """The upstream part of a distro version: '1:1.2.13.dfsg-1' → '1.2.13', '3.1.4-r5' → '3.1.4'."""
    v = _EPOCH_RE.sub("", version.strip())
    if manager in ("dpkg", "opkg", "apk") and "-" in v:
        v = _REVISION_RE.sub("", v)
    v = _SUFFIX_RE.sub("", v)
    v = re.sub(r"\.(?:dfsg|ds)\d*$", "", v, flags=re.I)
    return v or version


_CPE_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def cpe23(vendor: str, product: str, version: str | None, part: str = "a") -> str:
    """A CPE 2.3 formatted string; punctuation other than . _ - is backslash-escaped."""

    def esc(value: str | None) -> str:
        if not value:
            return "*"
        return _CPE_SAFE.sub(lambda m: "\\" + m.group(0), value.lower().replace(" ", "_"))

    return f"cpe:2.3:{part}:{esc(vendor)}:{esc(product)}:{esc(version)}:*:*:*:*:*:*:*"


@dataclass(frozen=True)
class Classification:
    """What the knowledge base says about one component (unknowns stay None/'unknown')."""

    layer: str = LAYER_APPLICATION
    product: str | None = None
    supplier: Supplier | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    cpe: str | None = None
    substitutability: float | None = None
    source: str | None = None


def _get(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if obj is not None else None


class Classifier:
    """Turns names into layers, suppliers, CPEs and lifecycle via a `Knowledge`; caches lookups."""

    def __init__(self, kb: Knowledge | None = None) -> None:
        self.kb: Knowledge = kb if kb is not None else NullKnowledge()
        self._vendors: dict[str, Supplier | None] = {}
        self._lifecycles: dict[tuple[str, str], Lifecycle] = {}
        # classified components by finding, filled by sbom.builders.components.to_component
        self.memo: dict[Any, Any] = {}
        # (parts, rest, errors) by inventory sections, filled by sbom.builders.agent_inventory
        self.bom_memo: dict[Any, Any] = {}

    def _safe(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the BOM
            log.debug("knowledge %s%r failed: %s", what, args, exc)
            return None

    def supplier(self, name: str | None, community: bool = False) -> Supplier | None:
        """Supplier for a vendor name; the ultimate owner's country when the KB knows it."""
        if not name:
            return None
        if name not in self._vendors:
            org = self._safe("vendor", self.kb.vendor, name)
            if org is None:
                self._vendors[name] = (
                    Supplier(name=name, community=community) if community else None
                )
            else:
                self._vendors[name] = Supplier(
                    name=str(_get(org, "name") or name),
                    owner=_get(org, "ultimate_parent"),
                    country=_get(org, "controlling_country"),
                    community=bool(_get(org, "community")) or community,
                    source=_get(org, "source"),
                )
        found = self._vendors[name]
        if found is None:
            return Supplier(name=name)
        return found

    def lifecycle(self, product: str | None, version: str | None) -> Lifecycle:
        if not product or not version:
            return Lifecycle()
        key = (product, version)
        if key not in self._lifecycles:
            res = self._safe("lifecycle", self.kb.lifecycle, product, version)
            if res is None:
                self._lifecycles[key] = Lifecycle()
            else:
                self._lifecycles[key] = Lifecycle(
                    status=str(_get(res, "status") or "unknown"),
                    eol=_get(res, "eol"),
                    cycle=_get(res, "cycle"),
                    latest=_get(res, "latest"),
                    versions_behind=_get(res, "versions_behind"),
                    source=_get(res, "source"),
                )
        return self._lifecycles[key]

    def component(
        self,
        name: str,
        version: str | None,
        manager: str | None,
        *,
        product_hint: str | None = None,
        cpe_hint: tuple[str, str] | None = None,
        cpe_part: str = "a",
    ) -> Classification:
        """Classify a package or identified binary; `product_hint` tries a second name."""
        info = self._safe("component_info", self.kb.component_info, name, manager)
        if info is None and product_hint and product_hint != name:
            info = self._safe("component_info", self.kb.component_info, product_hint, manager)
        upstream = upstream_version(version, manager) if version else None
        if upstream and "linux" in (name, product_hint):
            m = re.match(r"\d+\.\d+(?:\.\d+)?", upstream)  # '6.1.0-18-amd64' → '6.1.0'
            upstream = m.group(0) if m else upstream
        cpe: str | None
        if info is None:
            cpe = cpe23(cpe_hint[0], cpe_hint[1], upstream, cpe_part) if cpe_hint else None
            return Classification(product=product_hint, cpe=cpe)
        layer = _get(info, "layer")
        product = _get(info, "product") or product_hint
        cpe_vendor, cpe_product = _get(info, "cpe_vendor"), _get(info, "cpe_product")
        if cpe_vendor and cpe_product:
            cpe = cpe23(cpe_vendor, cpe_product, upstream, cpe_part)
        else:
            cpe = cpe23(cpe_hint[0], cpe_hint[1], upstream, cpe_part) if cpe_hint else None
        subst = _get(info, "substitutability")
        return Classification(
            layer=layer if layer in LAYERS else LAYER_APPLICATION,
            product=product,
            supplier=self.supplier(_get(info, "supplier"), bool(_get(info, "community"))),
            lifecycle=self.lifecycle(product, upstream),
            cpe=cpe,
            substitutability=float(subst) if subst is not None else None,
            source=_get(info, "source"),
        )

    def part(self, key: str) -> Any:
        """firmware_db Part for a model name or devicetree compatible, or None."""
        return self._safe("part", self.kb.part, key)

    @staticmethod
    def part_layer(kind: str | None) -> str:
        return LAYER_SOC if kind in (None, "soc", "module") else LAYER_SENSOR_RADIO
