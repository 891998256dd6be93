"""Findings → classified Components, shared by every builder (one place for purls and layers)."""

from __future__ import annotations

import re

from packageurl import PackageURL

from sbom.knowledge import Classifier
from sbom.model import CONFIDENCE_HIGH, Component
from sbom.scanners.interface import KIND_DEVICE, KIND_OS, Finding


def _canonical_pypi(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def purl_for(f: Finding) -> str | None:
    """Package URL per the purl spec's registered types.

    dpkg → deb, apk → apk, pypi → pypi. OpenWrt's opkg has no registered type (a proposal is open
    upstream), so opkg packages use `generic` with the distro as namespace; binaries identified by
    version strings use `generic` too. Hardware and OS components carry no purl.
    """
    if not f.version or f.kind == KIND_DEVICE:
        return None
    quals = {k: v for k, v in (("arch", f.arch), ("distro", f.distro)) if v}
    if f.manager == "dpkg":
        p = PackageURL("deb", f.namespace or "debian", f.name, f.version, quals or None)
    elif f.manager == "apk":
        p = PackageURL("apk", f.namespace or "alpine", f.name.lower(), f.version, quals or None)
    elif f.manager == "pypi":
        p = PackageURL("pypi", None, _canonical_pypi(f.name), f.version)
    elif f.manager == "opkg":
        p = PackageURL("generic", f.namespace or "openwrt", f.name, f.version, quals or None)
    elif f.manager in ("binary", "snmp"):
        p = PackageURL("generic", None, f.name, f.version)
    else:
        return None
    return str(p.to_string())


# A city fleet runs the same firmware on thousands of devices: the same findings recur, so their
# classification (knowledge lookups, purl building) is memoized per classifier, within a bound.
_MEMO_MAX = 200_000


def to_component(f: Finding, classifier: Classifier) -> Component:
    """Classify one finding; unknown to the knowledge base → application, supplier unknown."""
    memo: dict[Finding, Component] = classifier.memo
    comp = memo.get(f)
    if comp is None:
        comp = _classify(f, classifier)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[f] = comp
    return comp


def _classify(f: Finding, classifier: Classifier) -> Component:
    if f.kind == KIND_DEVICE:
        return part_component(f, classifier)
    cls = classifier.component(
        f.name,
        f.version,
        f.manager,
        product_hint=f.product or f.source_package,
        cpe_hint=f.cpe_hint,
        cpe_part="o" if f.kind == KIND_OS else "a",
    )
    props = list(f.extra)
    if f.source_package and f.source_package != f.name:
        props.append(("dunewatch:source_package", f.source_package))
    return Component(
        name=f.name,
        version=f.version,
        kind=f.kind,
        layer=cls.layer,
        evidence=f.evidence,
        confidence=f.confidence,
        evidence_path=f.evidence_path,
        manager=f.manager,
        arch=f.arch,
        purl=purl_for(f),
        cpe=cls.cpe,
        supplier=cls.supplier,
        lifecycle=cls.lifecycle,
        substitutability=cls.substitutability,
        properties=tuple(props),
    )


def part_component(f: Finding, classifier: Classifier) -> Component:
    """A hardware part: firmware_db's part catalogue by compatible string or model, else raw."""
    part = None
    for key in (f.product, f.name):
        if key:
            part = classifier.part(key)
            if part is not None:
                break
    props = [("dunewatch:scanner", f.scanner)]
    if f.product and f.product != f.name:
        props.append(("dunewatch:compatible", f.product))
    if part is None:
        return Component(
            name=f.name,
            version=f.version,
            kind=KIND_DEVICE,
            layer=classifier.part_layer(f.part_kind),
            evidence=f.evidence,
            confidence=f.confidence,
            evidence_path=f.evidence_path,
            supplier=classifier.supplier(f.vendor) if f.vendor else None,
            part_kind=f.part_kind,
            properties=tuple(props),
        )
    kind = getattr(part, "kind", None) or f.part_kind
    subst = getattr(part, "substitutability", None)
    return Component(
        name=str(getattr(part, "part_number", f.name)),
        version=f.version,
        kind=KIND_DEVICE,
        layer=classifier.part_layer(kind),
        evidence=f.evidence,
        confidence=CONFIDENCE_HIGH if f.confidence == CONFIDENCE_HIGH else f.confidence,
        evidence_path=f.evidence_path,
        supplier=classifier.supplier(getattr(part, "manufacturer", None)),
        part_kind=kind,
        substitutability=float(subst) if subst is not None else None,
        properties=tuple(props),
    )
