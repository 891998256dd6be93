"""A hand-made three-device fleet whose DDI, HHI and N50 are computed by hand in the tests.

The devices are invented for the worked examples (labelled simulated); supplier countries are
configuration inputs here, not claims about any real product.
"""

from __future__ import annotations

import datetime as dt

from sbom.model import Component, DeviceBom, DeviceInfo, Lifecycle, Supplier

TODAY = dt.date(2026, 1, 1)

HISILICON = Supplier("HiSilicon", owner="Huawei Investment & Holding", country="CN")
ACME = Supplier("Acme Kamera GmbH", country="DE")
LINUX = Supplier("Linux kernel", community=True)
OPENSSL = Supplier("OpenSSL", community=True)
OPENWRT = Supplier("OpenWrt", community=True)
SONY = Supplier("Sony Semiconductor Solutions", owner="Sony Group", country="JP")
FRAPP = Supplier("Logiciel SA", country="FR")
QUALCOMM = Supplier("Qualcomm", country="US")
TELTONIKA = Supplier("Teltonika", country="LT")


def comp(
    name: str,
    layer: str,
    supplier: Supplier | None,
    *,
    lifecycle: Lifecycle | None = None,
    s: float | None = None,
    kind: str = "library",
) -> Component:
    return Component(
        name=name,
        version="1",
        kind=kind,
        layer=layer,
        evidence="declared",
        supplier=supplier,
        lifecycle=lifecycle or Lifecycle(status="supported"),
        substitutability=s,
    )


def cam1() -> DeviceBom:
    return DeviceBom(
        DeviceInfo(
            "cam-1",
            vendor="Acme",
            model="X1",
            device_class="camera",
            criticality=2.0,
            tags=(("district", "north"),),
            simulated=True,
        ),
        (
            comp("Hi3516DV300", "soc", HISILICON, kind="device"),
            comp(
                "acme-fw",
                "firmware",
                ACME,
                lifecycle=Lifecycle(status="supported", versions_behind=3, latest="4"),
                kind="firmware",
            ),
            comp("linux", "os", LINUX, lifecycle=Lifecycle(status="eol", eol="2023-12-01")),
            comp("openssl", "crypto", OPENSSL),
            comp(
                "IMX335",
                "sensor_radio",
                SONY,
                s=0.5,
                lifecycle=Lifecycle(status="supported", eol="2026-04-11"),
                kind="device",
            ),
            comp("busybox", "application", None),
            comp("viewer", "application", FRAPP, s=0.0),
        ),
        "agent",
    )


def gw1() -> DeviceBom:
    return DeviceBom(
        DeviceInfo(
            "gw-1",
            vendor="Teltonika",
            model="RUTX11",
            device_class="gateway",
            firmware_release_date="2023-07-01",
            tags=(("district", "south"),),
            simulated=True,
        ),
        (
            comp("IPQ4018", "soc", QUALCOMM, kind="device"),
            comp(
                "rutx-fw",
                "firmware",
                TELTONIKA,
                lifecycle=Lifecycle(status="supported", versions_behind=0),
                kind="firmware",
            ),
            comp("openwrt", "os", OPENWRT),
        ),
        "snmp",
    )


def cam2() -> DeviceBom:
    return DeviceBom(
        DeviceInfo(
            "cam-2",
            vendor="Acme",
            device_class="camera",
            tags=(("district", "north"),),
            simulated=True,
        ),
        (comp("Hi3518EV300", "soc", HISILICON, kind="device"),),
        "agent",
    )


def fleet() -> list[DeviceBom]:
    return [cam1(), gw1(), cam2()]
