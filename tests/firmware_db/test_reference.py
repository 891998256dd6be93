from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

import firmware_db
from firmware_db.reference import DATA_DIR, FILES
from firmware_db.store import KnowledgeBase

TODAY = date(2026, 11, 23)


def test_every_reference_row_has_a_source() -> None:
    for name in FILES:
        with (DATA_DIR / name).open(encoding="utf-8") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                assert (row.get("source") or "").strip(), f"{name} line {line} has no source"


def test_open_default_is_shared_and_loaded() -> None:
    kb = firmware_db.open_default()
    assert kb is firmware_db.open_default()
    assert kb.stats()["tables"]["organizations"] > 80


@pytest.mark.parametrize(
    ("product", "version", "status", "eol", "cycle", "latest"),
    [
        ("openssl", "1.1.1w", "eol", "2023-09-11", "1.1.1", "1.1.1w"),
        ("libssl3", "3.0.11-1~deb12u2", "eol", "2026-09-07", "3.0", "3.0.16"),
        ("openssl", "3.4.0", "supported", None, "3.4", "3.4.1"),
        ("linux", "6.1.55", "supported", "2027-12-31", "6.1", "6.1.147"),
        (
            "linux-image-5.10.0-28-amd64",
            "5.10.0-28-amd64",
            "approaching_eol",
            "2026-12-31",
            "5.10",
            "5.10.240",
        ),
        ("linux", "4.14.336", "eol", "2024-01-10", "4.14", "4.14.336"),
        ("busybox", "1.36.1", "eol", None, "1.36", "1.36.1"),
        ("busybox", "1.37.0", "supported", None, "1.37", "1.37.0"),
        ("python3", "3.11.2", "supported", "2027-10-31", "3.11", "3.11.11"),
        ("alpine", "3.18.4", "eol", "2025-05-09", "3.18", "3.18.12"),
        ("openwrt", "24.10.0", "supported", None, "24.10", "24.10.0"),
    ],
)
def test_lifecycle_lookups(
    product: str, version: str, status: str, eol: str | None, cycle: str, latest: str
) -> None:
    r = firmware_db.open_default().lifecycle(product, version, today=TODAY)
    assert (r.status, r.eol, r.cycle, r.latest) == (status, eol, cycle, latest)
    assert r.source and r.source.startswith("endoflife-date/endoflife.date:products/")


def test_approaching_eol_window() -> None:
    kb = firmware_db.open_default()
    assert kb.lifecycle("openssl", "3.0.2", today=date(2026, 4, 1)).status == "approaching_eol"
    assert kb.lifecycle("openssl", "3.0.2", today=date(2026, 4, 1)).versions_behind == 14
    assert kb.lifecycle("openssl", "3.0.2", today=date(2025, 1, 1)).status == "supported"
    assert kb.lifecycle("openssl", "3.0.2", today=date(2026, 9, 7)).status == "eol"
    assert kb.lifecycle("openssl", "1.1.1t", today=TODAY).versions_behind == 3


@pytest.mark.parametrize(
    ("product", "version"),
    [("ubuntu", "22.04"), ("nosuchthing", "1.0"), ("openssl", "0.9.8zh"), ("openssl", "")],
)
def test_unknown_is_never_guessed(product: str, version: str) -> None:
    r = firmware_db.open_default().lifecycle(product, version, today=TODAY)
    assert r.status == "unknown" and r.eol is None
    assert r.reason


@pytest.mark.parametrize(
    ("name", "org", "country"),
    [
        ("HIKVISION", "Hikvision", "CN"),
        ("Hangzhou Hikvision Digital Technology Co., Ltd.", "Hikvision", "CN"),
        ("hikvision digital technology", "Hikvision", "CN"),
        ("HiLook", "Hikvision", "CN"),
        ("海康威视", "Hikvision", "CN"),
        ("Axis Communications AB", "Axis", "JP"),  # brand in SE, owner Canon in JP
        ("Tapo", "TP-Link Systems", "US"),
        ("Samsung Techwin", "Hanwha Vision", "KR"),
        ("Freescale Semiconductor", "NXP", "NL"),
        ("OMNIVISION", "OmniVision", "CN"),  # HQ in US, owned by Will Semiconductor
        ("  sony   corporation ", "Sony", "JP"),
    ],
)
def test_vendor_resolution(name: str, org: str, country: str) -> None:
    o = firmware_db.open_default().vendor(name)
    assert o is not None and o.name == org
    assert o.controlling_country == country


def test_vendor_unknown_and_pen() -> None:
    kb = firmware_db.open_default()
    assert kb.vendor("Nonexistent Widgets GmbH") is None
    assert kb.vendor("") is None
    axis = kb.vendor_by_pen(368)
    assert axis is not None and axis.name == "Axis"
    hik = kb.vendor_by_pen(39165)
    assert hik is not None and hik.ultimate_parent and "CETC" in hik.ultimate_parent
    assert kb.vendor_by_pen(999999999) is None


def test_restricted_list_flags() -> None:
    kb = firmware_db.open_default()
    hik = kb.vendor("HiWatch")
    assert hik is not None and "us-fcc-covered-list@2022-11-25" in hik.flags
    axis = kb.vendor("Axis")
    assert axis is not None and axis.flags == ()


def test_community_suppliers() -> None:
    kb = firmware_db.open_default()
    busybox = kb.vendor("BusyBox")
    assert busybox is not None and busybox.community and busybox.controlling_country is None
    info = kb.component_info("busybox")
    assert info is not None and info.community and info.layer == "os"


@pytest.mark.parametrize(
    ("name", "manager", "layer", "product"),
    [
        ("libssl3", None, "crypto", "openssl"),
        ("libssl1.1", "dpkg", "crypto", "openssl"),
        ("linux-image-6.1.0-18-arm64", "dpkg", "os", "linux"),
        ("base-files", "opkg", "os", "openwrt"),
        ("base-files", "dpkg", "os", "debian"),
        ("libsqlite3-0", None, "db_runtime", None),
        ("dropbear", None, "application", None),
        ("LIBMBEDTLS14", None, "crypto", None),
    ],
)
def test_component_info(name: str, manager: str | None, layer: str, product: str | None) -> None:
    info = firmware_db.open_default().component_info(name, manager)
    assert info is not None and info.layer == layer and info.product == product
    assert info.supplier


def test_component_unknown() -> None:
    kb = firmware_db.open_default()
    assert kb.component_info("vendor-sdk-app") is None
    assert kb.component_info("base-files") is None  # ambiguous without a package manager


def test_parts() -> None:
    kb = firmware_db.open_default()
    p = kb.part("rockchip,rv1126")
    assert p is not None and p.manufacturer == "Rockchip" and p.kind == "soc"
    assert kb.part("Hi3516 CV300") == kb.part("hisilicon,hi3516cv300-crg")
    s = kb.part("sony,imx335")
    assert s is not None and s.kind == "image_sensor"
    assert kb.part("no,such-part") is None


def test_device_model_absent_means_unknown(kb: KnowledgeBase) -> None:
    assert kb.device_model("Hikvision", "DS-2CD2042WD-I") is None
    assert kb.firmware_releases("Hikvision", "DS-2CD2042WD-I") == []
    assert kb.latest_firmware("Hikvision", "DS-2CD2042WD-I") is None


def test_reload_is_idempotent(kb: KnowledgeBase) -> None:
    before = kb.stats()["tables"]
    kb.load_reference()
    assert kb.stats()["tables"] == before


def test_broken_reference_file_keeps_old_data(kb: KnowledgeBase, tmp_path: Path) -> None:
    bad = tmp_path / "data"
    bad.mkdir()
    for name in FILES:
        (bad / name).write_bytes((DATA_DIR / name).read_bytes())
    with (bad / "parts.csv").open("a", encoding="utf-8") as fh:
        fh.write("soc,Nobody,,X1,,,\n")  # no source
    before = kb.stats()["tables"]
    with pytest.raises(firmware_db.store.FirmwareDbError, match="parts.csv line"):
        kb.load_reference(bad)
    assert kb.stats()["tables"] == before


def test_old_schema_is_refused_with_a_tip(tmp_path: Path) -> None:
    import sqlite3

    from firmware_db.store import StoreError

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.close()
    with pytest.raises(StoreError, match="schema 1") as info:
        KnowledgeBase.open(path)
    assert "remove the file" in info.value.tip


def test_not_a_database(tmp_path: Path) -> None:
    from firmware_db.store import StoreError

    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable firmware_db database"):
        KnowledgeBase.open(path)
