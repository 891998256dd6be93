"""Fingerprint rules (firmware_db/data/snmp_fingerprints.csv) and the OID map data file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from collector.snmp.interface import OidMapError
from collector.snmp.oidmap import load_oidmap, parse_oidmap
from firmware_db.fingerprint import (
    FingerprintError,
    default_rules,
    fingerprint,
    parse_rules,
)

HEADER = (
    "pen_prefix,sysdescr_regex,vendor,model,model_oid,firmware_regex,firmware_oid,"
    "device_class,confidence,source\n"
)


def test_every_rule_has_a_source_and_vendors_are_reference_names() -> None:
    from importlib.resources import files

    ref_names: set[str] = set()
    text = files("firmware_db").joinpath("data/snmp_fingerprints.csv").read_text("utf-8")
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    assert len(rows) == len(default_rules()) > 20
    for row in rows:
        assert row["source"].strip(), row
        if row["vendor"]:
            ref_names.add(row["vendor"])
    # Vendor names double as supplier keys for the Dune Index.
    assert {"Hikvision", "Dahua", "Axis", "Teltonika"} <= ref_names


def test_enterprise_prefix_and_vendor_oids() -> None:
    fp = fingerprint("1.3.6.1.4.1.39165.1.1", "IP camera")
    assert (fp.vendor, fp.device_class) == ("Hikvision", "camera")
    assert fp.model is None
    assert fp.pending_oids == ("1.3.6.1.4.1.39165.1.1.0", "1.3.6.1.4.1.39165.1.3.0")
    filled = fp.with_oid_values(
        {"1.3.6.1.4.1.39165.1.1.0": "DS-X", "1.3.6.1.4.1.39165.1.3.0": None}
    )
    assert (filled.model, filled.firmware_version) == ("DS-X", None)


def test_prefix_matches_whole_arcs_only() -> None:
    # 1.3.6.1.4.1.3681 must not match Axis's 1.3.6.1.4.1.368
    assert fingerprint("1.3.6.1.4.1.3681.1", "").vendor is None
    assert fingerprint("1.3.6.1.4.1.368.1", "").vendor == "Axis"


def test_sysdescr_patterns_give_model_and_firmware() -> None:
    gw = fingerprint("1.3.6.1.4.1.8072.3.2.10", "Teltonika RUTX11 RUTX_R_00.07.06.10")
    assert (gw.vendor, gw.model, gw.firmware_version, gw.device_class) == (
        "Teltonika",
        "RUTX11",
        "RUTX_R_00.07.06.10",
        "gateway",
    )
    linux = fingerprint("1.3.6.1.4.1.8072.3.2.10", "Linux gw 5.15.0 #1 SMP armv7l")
    assert (linux.vendor, linux.device_class) == (None, "linux")
    axis = fingerprint(None, "AXIS P1365 Mk II Network Camera 7.40.1")
    assert (axis.vendor, axis.model, axis.firmware_version) == ("Axis", "P1365", "7.40.1")
    assert fingerprint("1.3.6.1.4.1.99999", "something").vendor is None
    assert fingerprint("not-an-oid", "").vendor is None


def test_most_specific_rule_wins() -> None:
    rules = parse_rules(
        HEADER
        + "1.3.6.1.4.1.32473,,Wide,,,,,,low,doc PEN\n"
        + "1.3.6.1.4.1.32473.1,,Narrow,,,,,,low,doc PEN\n"
        + "1.3.6.1.4.1.32473,^Ex (?P<model>\\S+),Both,,,,,camera,high,doc PEN\n",
        "test",
    )
    assert fingerprint("1.3.6.1.4.1.32473.1.5", "Ex M1", rules).vendor == "Both"
    assert fingerprint("1.3.6.1.4.1.32473.1.5", "Other", rules).vendor == "Narrow"
    assert fingerprint("1.3.6.1.4.1.32473.2", "Other", rules).vendor == "Wide"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (",,V,,,,,,low,src", "needs a pen_prefix or a sysdescr_regex"),
        ("1.3.x,,V,,,,,,low,src", "not a numeric OID"),
        ("1.3.6,(,V,,,,,,low,src", "bad regex"),
        ("1.3.6,,V,,,,,,sure,src", "confidence 'sure'"),
        ("1.3.6,,V,,,,,,low,", "needs a source"),
    ],
)
def test_bad_rules_are_named(row: str, message: str) -> None:
    with pytest.raises(FingerprintError, match=message):
        parse_rules(HEADER + row + "\n", "rules.csv")
    with pytest.raises(FingerprintError, match="header"):
        parse_rules("a,b\n", "rules.csv")


def test_oid_map_loads_and_rejects_bad_entries(tmp_path: Path) -> None:
    m = load_oidmap()
    names = {s.name for s in m.scalars}
    assert {"sysDescr", "sysObjectID", "sysUpTime", "sysName", "sysLocation", "sysContact"} <= names
    tables = {t.name for t in m.tables}
    assert {"entPhysicalTable", "hrStorageTable", "hrSWInstalledTable", "ifTable"} <= tables
    assert m.part_kind(3, "Industrial LTE router") == "chassis"
    assert m.part_kind(9, "LTE modem") == "radio"
    assert m.part_kind(9, "CMOS image sensor") == "image_sensor"
    assert m.part_kind(12, "") == "soc"
    assert m.part_kind(10, "port 1") is None
    with pytest.raises(OidMapError, match=r"scalars.x.oid: 'sysDescr' is not a numeric OID"):
        parse_oidmap({"scalars": {"x": {"oid": "sysDescr", "group": "health"}}}, "m.toml")
    with pytest.raises(OidMapError, match="must end in .0"):
        parse_oidmap({"scalars": {"x": {"oid": "1.3.6.1", "group": "health"}}}, "m.toml")
    with pytest.raises(OidMapError, match="group: 'often'"):
        parse_oidmap({"scalars": {"x": {"oid": "1.3.6.0", "group": "often"}}}, "m.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[tables.t]\nentry = '1.3.6'\ngroup = 'health'\n")
    with pytest.raises(OidMapError, match="tables.t: no columns"):
        load_oidmap(bad)
