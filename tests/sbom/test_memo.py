"""Classification is memoized per classifier: same finding → the same component object."""

from __future__ import annotations

from sbom.builders.components import to_component
from sbom.knowledge import Classifier
from sbom.model import EVIDENCE_PACKAGE_DB
from sbom.scanners.interface import Finding


class CountingClassifier(Classifier):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def component(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().component(*args, **kwargs)  # type: ignore[arg-type]


def test_repeated_findings_are_classified_once() -> None:
    cls = CountingClassifier()
    f = Finding(
        "busybox",
        "1.36.1-1",
        "application",
        EVIDENCE_PACKAGE_DB,
        "usr/lib/opkg/status",
        "opkg",
        manager="opkg",
        distro="openwrt-23.05.3",
    )
    first = to_component(f, cls)
    again = to_component(Finding(**f.__dict__), cls)
    other = to_component(Finding(**{**f.__dict__, "version": "1.36.1-2"}), cls)
    assert again is first and cls.calls == 2
    assert other.version == "1.36.1-2" and other.purl != first.purl
