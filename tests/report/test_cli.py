"""`dunewatch dune` and `dunewatch report` over a real SQLite store and the shipped firmware_db."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from collector.cli import main
from tests.report.storefleet import make_store

TODAY = "2026-01-01"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path / "dunewatch.db", time.time())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dune_fleet_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dune", "--db", str(db), "--json", "--today", TODAY)
    assert code == 0
    doc = json.loads(out)
    assert doc["policy"]["home"] == "unset"
    assert "every supplier with a known country counts as 'other'" in doc["policy"]["note"]
    fleet = doc["fleet"]
    assert fleet["devices"] == 2 and fleet["simulated_devices"] == 2
    soc = next(x for x in fleet["layers"] if x["layer"] == "soc")
    # HiSilicon (owner in CN per the reference data) on cam-1 (criticality 2), Qualcomm (US)
    # on gw-1 (1): CN 2/3, US 1/3 -> HHI = (4/9 + 1/9) * 10^4 = 5555.6
    assert {s["key"]: s["share"] for s in soc["by_jurisdiction"]["shares"]} == {
        "CN": pytest.approx(2 / 3, abs=1e-4),
        "US": pytest.approx(1 / 3, abs=1e-4),
    }
    assert soc["by_jurisdiction"]["hhi"] == pytest.approx(5555.6, abs=0.1)
    assert doc["skipped"] == [{"device_id": "nvr-9", "reason": "no inventory received yet"}]


def test_dune_device_explains_drivers(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dune", "--db", str(db), "--device", "cam-1", "--today", TODAY)
    assert code == 0
    assert "cam-1 (simulated)" in out
    assert "Hi3516DV300" in out and "HiSilicon -> Huawei" in out
    code, out, _ = run(
        capsys, "dune", "--db", str(db), "--device", "cam-1", "--json", "--today", TODAY
    )
    dev = json.loads(out)["device"]
    soc = dev["layers"]["soc"]["driver"]
    assert (soc["component"], soc["country"], soc["evidence"]) == ("Hi3516DV300", "CN", "declared")
    fw = dev["layers"]["firmware"]["driver"]
    assert fw["a"] == 1.0 and "no firmware since 2019-06-01" in fw["aging"]


def test_another_home_country_changes_the_fleet(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def soc_exposure(policy: str) -> float:
        f = tmp_path / "policy.toml"
        f.write_text(policy, encoding="utf-8")
        _, out, _ = run(
            capsys, "dune", "--db", str(db), "--json", "--today", TODAY, "--policy", str(f)
        )
        layers = json.loads(out)["fleet"]["layers"]
        return float(next(x for x in layers if x["layer"] == "soc")["exposure"])

    # S=0 for SoCs, A=0: exposure = J * 0.5; weights cam-1 2, gw-1 1
    # home CN: cam-1 0, gw-1 US other 0.3 -> (0 + 0.3) / 3 = 0.1
    assert soc_exposure('home = "CN"\n') == pytest.approx(0.1)
    # home US, CN restricted: cam-1 1.0*0.5 = 0.5, gw-1 0 -> (2*0.5) / 3 = 0.3333
    assert soc_exposure('home = "US"\nrestricted = ["CN"]\n') == pytest.approx(1 / 3, abs=1e-4)


def test_dune_by_tag(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dune", "--db", str(db), "--by", "district", "--today", TODAY)
    assert code == 0
    assert "north" in out and "south" in out
    assert "nvr-9: no inventory received yet" in out


@pytest.mark.parametrize("fmt", ["html", "json", "csv", "md"])
def test_report_formats(
    db: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / f"fleet.{fmt}"
    code, out, _ = run(
        capsys, "report", "--db", str(db), "--format", fmt, "-o", str(out_path),
        "--by", "district", "--today", TODAY,
    )  # fmt: skip
    assert code == 0 and f"wrote {out_path}" in out and "1 not analysed" in out
    text = out_path.read_text(encoding="utf-8")
    if fmt == "json":
        doc = json.loads(text)
        assert [d["device_id"] for d in doc["devices"]] == ["cam-1", "gw-1"]
        gw = doc["devices"][1]
        assert [s["metric"] for s in gw["aging"]["saturation"]] == ["cpu"]
        assert doc["alerts"]["note"] == "no alert has been evaluated on this database yet"
        assert "sbom" in doc["devices"][0]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["device_id"] for r in rows] == ["cam-1", "gw-1"]
        assert rows[0]["district"] == "north" and rows[0]["simulated"] == "simulated"
        assert rows[1]["saturated"] == "cpu"
    elif fmt == "md":
        assert "**Simulated:** 2 of 2 devices are simulated." in text
        assert "| north |" in text
    else:
        assert 'id="simulated-banner"' in text and "cam-1" in text


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "dune", "--db", str(tmp_path / "none.db"))
    assert code == 2 and err.startswith("dunewatch: error: no collector database at")
    bad = tmp_path / "p.toml"
    bad.write_text('home = "Germany"\n', encoding="utf-8")
    db = make_store(tmp_path / "d.db", time.time())
    code, _, err = run(capsys, "dune", "--db", str(db), "--policy", str(bad))
    assert code == 2 and "p.toml: policy home: 'GERMANY' is not an ISO 3166-1" in err
    code, _, err = run(capsys, "dune", "--db", str(db), "--device", "nope")
    assert code == 2 and "device nope: not in the collector database" in err
    code, _, err = run(capsys, "dune", "--db", str(db), "--today", "soon")
    assert code == 2 and "--today 'soon'" in err
    code, _, err = run(
        capsys, "report", "--db", str(db), "--format", "md", "-o", str(tmp_path / "x" / "r.md"),
        "--top", "-1",
    )  # fmt: skip
    assert code == 2 and "--top -1" in err


def test_report_lists_open_alerts_from_the_alert_store(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.alerts.model import Finding
    from collector.alerts.store import AlertStore

    alerts = AlertStore(db)
    try:
        opened = alerts.open_alert(
            Finding("dune.grade", "cam-1", "high", "cam-1: firmware layer graded E", {}, "fw"),
            time.time(),
            None,
        )
        closed = alerts.open_alert(
            Finding("offline", "gw-1", "medium", "gw-1 offline", {}), time.time(), None
        )
        alerts.resolve(closed.id, "test", time.time())
    finally:
        alerts.close()
    out_path = tmp_path / "fleet.json"
    code, _, _ = run(capsys, "report", "--db", str(db), "--format", "json", "-o", str(out_path))
    assert code == 0
    doc = json.loads(out_path.read_text(encoding="utf-8"))["alerts"]
    assert doc["note"] == "from the alerts store"
    assert [(a["id"], a["rule_id"], a["status"]) for a in doc["open"]] == [
        (opened.id, "dune.grade", "open")
    ]


def test_malformed_inventory_is_listed_not_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.store import open_store

    db = make_store(tmp_path / "d.db", time.time())
    store = open_store(db)
    try:
        # what a faulty poller could store: the report names it instead of scoring it as empty
        bad = {"hash": "bad", "source": "snmp", "packages": "busybox"}
        store.record_poll("nvr-9", time.time(), "ok", inventory=bad)
    finally:
        store.close()
    code, out, _ = run(capsys, "dune", "--db", str(db), "--json", "--today", TODAY)
    assert code == 0
    doc = json.loads(out)
    assert doc["fleet"]["devices"] == 2
    assert doc["skipped"] == [
        {"device_id": "nvr-9", "reason": "nvr-9: inventory 'packages' must be a list"}
    ]
