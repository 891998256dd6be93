"""`dunewatch sbom` commands end to end, with a real SQLite collector store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent import envelope
from agent.inventory import collect
from collector.cli import build_parser, main
from collector.store import open_store
from tests.sbom.conftest import ROOTS

SUBCOMMANDS = ("scan", "device", "fleet", "diff")


def _store_with_inventories(db: Path) -> None:
    store = open_store(db)
    try:
        envs = [
            envelope.make(dev, "b" * 32, 1, envelope.KIND_INVENTORY, collect(ROOTS / name))
            for dev, name in (("gw-1", "openwrt"), ("cam-1", "debian"))
        ]
        store.apply(envs, time.time())
        store.ensure_device("cam-2", tags={"district": "north"}, simulated=True)
    finally:
        store.close()


def test_scan_and_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.xml"
    assert main(["sbom", "scan", str(ROOTS / "openwrt"), "-o", str(old), "--reproducible"]) == 0
    assert main(["sbom", "scan", str(ROOTS / "debian"), "-o", str(new), "--format", "xml"]) == 0
    assert json.loads(old.read_text())["specVersion"] == "1.6"
    assert new.read_text().lstrip().startswith("<?xml")
    capsys.readouterr()
    assert main(["sbom", "diff", str(old), str(new), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert {"name": "libssl3", "version": "3.0.19-1~deb12u2", "type": "library"} in result["added"]
    assert any(r["name"] == "busybox" for r in result["removed"])
    assert main(["sbom", "diff", str(old), str(old)]) == 0


def test_diff_reports_version_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    import shutil

    shutil.copytree(ROOTS / "alpine", root, symlinks=True)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["sbom", "scan", str(root), "-o", str(a), "-q"]) == 0
    db = root / "lib/apk/db/installed"
    db.write_text(db.read_text().replace("V:1.36.1-r15", "V:1.36.1-r16"))
    assert main(["sbom", "scan", str(root), "-o", str(b), "-q"]) == 0
    capsys.readouterr()
    assert main(["sbom", "diff", str(a), str(b)]) == 1
    assert capsys.readouterr().out.splitlines() == ["~ busybox 1.36.1-r15 -> 1.36.1-r16"]


def test_device_and_fleet_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fleet.db"
    _store_with_inventories(db)
    out = tmp_path / "gw-1.json"
    assert main(["sbom", "device", "gw-1", "--db", str(db), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["metadata"]["component"]["bom-ref"] == "device:gw-1"
    assert {c["name"] for c in doc["components"]} >= {"busybox", "dropbear", "openwrt"}
    assert main(["sbom", "device", "cam-2", "--db", str(db)]) == 2
    assert "device 'cam-2': no stored inventory" in capsys.readouterr().err

    boms = tmp_path / "boms"
    assert main(["sbom", "fleet", str(boms), "--db", str(db), "-q"]) == 0
    index = json.loads((boms / "index.json").read_text())
    rows = {r["device_id"]: r for r in index["devices"]}
    assert rows["gw-1"]["file"] == "gw-1.cdx.json" and rows["gw-1"]["error"] is None
    assert rows["cam-1"]["components"] > 5
    assert rows["cam-2"]["file"] is None and "no stored inventory" in rows["cam-2"]["error"]
    assert rows["cam-2"]["simulated"] is True
    assert sorted(p.name for p in boms.iterdir()) == [
        "cam-1.cdx.json",
        "gw-1.cdx.json",
        "index.json",
    ]


def test_missing_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sbom", "fleet", str(tmp_path / "o"), "--db", str(tmp_path / "none.db")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("dunewatch: error: no collector database at")


def test_hostile_archive_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import tarfile

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    assert main(["sbom", "scan", str(archive), "-o", str(tmp_path / "o.json")]) == 2
    (line, *rest) = capsys.readouterr().err.splitlines()
    assert line == (
        "dunewatch: error: evil.tar.gz: member '../../etc/cron.d/x': path traversal ('..')"
    )
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_has_an_example_and_docs(name: str) -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["sbom"]  # type: ignore[union-attr]
    cmd = sub._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
    assert "example: dunewatch sbom " + name in (cmd.epilog or "")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sbom.md").read_text()
    assert f"dunewatch sbom {name}" in docs
