from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collector.cli import build_parser, main

COMMANDS = ("load", "import", "stats", "lookup", "vendor")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "firmware_db.md"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNEWATCH_DATA", str(tmp_path / "dw"))


def test_lookup_works_out_of_the_box(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["firmware-db", "lookup", "openssl", "1.1.1w", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "eol" and out["eol"] == "2023-09-11"
    assert out["cycle"] == "1.1.1" and out["latest"] == "1.1.1w"
    assert out["layer"] == "crypto" and out["vulnerabilities"] == []
    assert (tmp_path / "dw" / "firmware_db.sqlite").is_file()


def test_lookup_table_supported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["firmware-db", "lookup", "python3", "3.12.1", "--today", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^status\s+supported$", out, re.M)
    assert re.search(r"^eol\s+2028-10-31$", out, re.M)


def test_import_then_lookup_shows_vulns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_dir: Path
) -> None:
    db = str(tmp_path / "kb.sqlite")
    assert main(["firmware-db", "load", "--db", db]) == 0
    assert main(["firmware-db", "import", "nvd", str(data_dir / "nvd_small.json"), "--db", db]) == 0
    assert main(["firmware-db", "import", "kev", str(data_dir / "kev_small.json"), "--db", db]) == 0
    capsys.readouterr()
    assert main(["firmware-db", "lookup", "busybox", "1.35.0", "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "eol" and out["eol"] is None
    assert [v["id"] for v in out["vulnerabilities"]] == ["CVE-2022-48174"]
    assert out["vulnerabilities"][0]["kev"] is True
    assert main(["firmware-db", "stats", "--db", db, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["tables"]["vulns"] == 3 and stats["tables"]["kev"] == 2


def test_bad_feed_file_is_one_line_error(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    assert main(["firmware-db", "import", "kev", str(data_dir / "kev_bad_date.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("dunewatch: error: kev feed ") and "CVE-2021-45046" in err[0]
    assert err[1].startswith("  tip: nothing from this file was kept")


def test_vendor(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["firmware-db", "vendor", "Hangzhou Hikvision Digital Technology Co., Ltd.", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "Hikvision" and out["controlling_country"] == "CN"
    assert main(["firmware-db", "vendor", "368"]) == 0
    assert re.search(r"^name\s+Axis$", capsys.readouterr().out, re.M)
    assert main(["firmware-db", "vendor", "Acme Nonexistent Ltd"]) == 2
    assert "not in the knowledge base" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_example_and_docs(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["firmware-db", command, "--help"])
    assert info.value.code == 0
    assert "example: dunewatch firmware-db" in capsys.readouterr().out
    assert f"dunewatch firmware-db {command}" in DOCS.read_text(encoding="utf-8")
