"""Docs checked by tests: every collector command has --help with an example and a docs entry,
and every SQL query in docs/queries.md runs against a real database."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import envelope as E
from collector.cli import build_parser
from collector.cli import main as cli_main
from collector.store.sqlite import SqliteStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMANDS = [
    ["collector", "serve"],
    ["collector", "enroll"],
    ["collector", "stats"],
    ["devices"],
    ["device", "show"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_has_an_example_and_docs_mention(
    cmd: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example: dunewatch " + " ".join(cmd) in out
    assert "dunewatch " + " ".join(cmd) in (DOCS / "collector.md").read_text()


def _populated(db: Path) -> None:
    s = SqliteStore(db)
    now = time.time()
    s.ensure_device("gw-0007", tags={"district": "north"}, enrolled=True)
    boot = "b1"
    envs = [E.state("gw-0007", boot, True, "birth", interval=10)]
    envs += [
        E.make(
            "gw-0007",
            boot,
            i,
            "health",
            {"interval": 10, "cpu": {"pct": i}, "mem": {"pct": 40}, "disk": {"/": {"pct": 5}}},
            ts=now - 600 + i,
        )
        for i in range(1, 4)
    ]
    envs.append(
        E.make(
            "gw-0007",
            boot,
            5,
            "inventory",
            {
                "hardware": {"vendor": "Teltonika", "model": "RUTX11"},
                "firmware": {"version": "7.6"},
                "packages": [{"name": "busybox", "version": "1.36", "manager": "opkg"}],
            },
            ts=now,
        )
    )
    s.apply(envs, now)
    s.apply([E.make("cam-1", "c", 1, "health", {"interval": 10}, ts=now - 100)], now - 100)
    s.sweep_liveness(now)
    s.rollup()
    s.close()


def test_every_documented_query_runs(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    _populated(db)
    queries = re.findall(r"```sql\n(.*?)```", (DOCS / "queries.md").read_text(), re.S)
    assert len(queries) >= 10
    conn = sqlite3.connect(db)
    results = [conn.execute(q).fetchall() for q in queries]
    conn.close()
    assert results[0] == [(None, "offline", 1), ("north", "online", 1)]
    # the raw history along the device's chain: its three reports, oldest first
    assert [r[1:] for r in results[5]] == [(1, 1, 40), (2, 2, 40), (3, 3, 40)]
    # the coarse tier holds the same numbers (one day, or two around midnight UTC)
    assert {r[1:] for r in results[7]} == {(40.0, 40.0, 40.0)}
    # 5 accepted (birth, 3 health, inventory); seq 4 never arrived: one gap
    assert ("gw-0007", 5, 0, 1, 0, 16.67) in results[8]
    assert results[-2] == [("busybox", "1.36", "opkg")]


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """cli main() installs its own log handler on stderr; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("keep_logging")
def test_cli_commands_on_a_real_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    _populated(db)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    assert (
        cli_main(
            [
                "collector",
                "enroll",
                "cam-9",
                "--tag",
                "district=south",
                "--db",
                str(db),
                "--passwd",
                str(passwd),
                "--acl",
                str(acl),
            ]
        )
        == 0
    )
    assert passwd.read_text().startswith("cam-9:$7$101$")
    assert "pattern write dunewatch/v1/%u/#" in acl.read_text()
    assert cli_main(["devices", "--db", str(db), "--tag", "district=north"]) == 0
    out = capsys.readouterr().out
    assert "gw-0007" in out and "cam-1" not in out and "Teltonika RUTX11" in out
    assert cli_main(["devices", "--db", str(db), "--status", "offline", "--json"]) == 0
    assert '"device_id": "cam-1"' in capsys.readouterr().out
    assert cli_main(["device", "show", "gw-0007", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "unknown -> online  (birth)" in out and "gap 1" in out
    assert cli_main(["collector", "stats", "--db", str(db), "--json"]) == 0
    assert '"unenrolled": [\n    "cam-1"\n  ]' in capsys.readouterr().out
    assert cli_main(["device", "show", "nope", "--db", str(db)]) == 2
    assert "no device 'nope'" in capsys.readouterr().err
    assert cli_main(["devices", "--db", str(tmp_path / "missing.db")]) == 2
    assert cli_main(["collector", "enroll", "x", "--tag", "bad", "--db", str(db)]) == 2
