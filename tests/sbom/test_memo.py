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


def _inventory(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "source": "agent",
        "hostname": "cam-1",
        "hardware": {"vendor": "Hikvision", "model": "DS-2CD2143G0-I", "serial": "A1"},
        "firmware": {"vendor": "Hikvision", "version": "V5.5.0", "release_date": "2019-06-01"},
        "os": {"id": "linux", "version_id": "3.18"},
        "kernel": {"release": "3.18.20", "arch": "armv7l"},
        "parts": [{"kind": "soc", "vendor": "HiSilicon", "model": "Hi3516DV300"}],
        "packages": [{"name": "openssl", "version": "1.0.2k", "manager": "opkg"}],
    }
    body.update(over)
    return body


def test_devices_alike_share_one_component_tail() -> None:
    from sbom.builders.agent_inventory import AgentInventoryBuilder

    cls = Classifier()
    a = AgentInventoryBuilder("cam-1", _inventory(), classifier=cls).build()
    b = AgentInventoryBuilder(
        "cam-2", _inventory(hostname="cam-2", firmware={"version": "V5.6"}), classifier=cls
    ).build()
    fresh = AgentInventoryBuilder("cam-1", _inventory(), classifier=Classifier()).build()
    assert a.shared_tail() is b.shared_tail() and len(a.tail) == 4
    assert a == fresh and a.components[-4:] == a.tail
    assert a.components[0].version == "V5.5.0" and b.components[0].version == "V5.6"
    # a different version, or the same value with another type, is another key
    c = AgentInventoryBuilder(
        "cam-3",
        _inventory(packages=[{"name": "openssl", "version": 1.0, "manager": "opkg"}]),
        classifier=cls,
    ).build()
    d = AgentInventoryBuilder(
        "cam-4",
        _inventory(packages=[{"name": "openssl", "version": 1, "manager": "opkg"}]),
        classifier=cls,
    ).build()
    assert c.components[-1].version == "1.0" and d.components[-1].version == "1"


def test_a_tuple_of_packages_is_still_refused_after_the_list_was_memoized() -> None:
    import pytest

    from sbom.builders.agent_inventory import AgentInventoryBuilder
    from sbom.builders.interface import BuilderError

    cls = Classifier()
    body = _inventory()
    AgentInventoryBuilder("cam-1", body, classifier=cls).build()
    with pytest.raises(BuilderError, match="must be a list"):
        AgentInventoryBuilder(
            "cam-1",
            _inventory(packages=tuple(body["packages"])),  # type: ignore[arg-type]
            classifier=cls,
        ).build()


def test_a_replaced_component_list_drops_the_shared_tail() -> None:
    from dataclasses import replace

    from sbom.builders.agent_inventory import AgentInventoryBuilder

    bom = AgentInventoryBuilder("cam-1", _inventory(), classifier=Classifier()).build()
    assert replace(bom, components=bom.components[:2]).shared_tail() == ()
