"""The `dunewatch-agent` command line: help with examples, errors as one line each, once --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent import envelope as wire
from agent.cli import build_parser, main, parse_run_args

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("run", "once", "check-config")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"example: dunewatch-agent {command}" in capsys.readouterr().out


def test_every_command_is_documented() -> None:
    doc = (REPO / "docs" / "agent.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)  # type: ignore[arg-type]
    for command in COMMANDS:
        assert f"dunewatch-agent {command}" in doc


def test_once_json_prints_valid_envelopes() -> None:
    out = run_cli("once", "--json", "--device-id", "gw-test")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    health = wire.from_dict(report["health"])
    inventory = wire.from_dict(report["inventory"])
    assert health.device_id == inventory.device_id == "gw-test"
    assert health.kind == "health" and "cpu" in health.body
    assert inventory.body["hash"] and isinstance(inventory.body["packages"], list)


def test_once_text_without_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["once", "--no-inventory"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device ") and "cpu" in out


def test_check_config_ok_and_problems(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[agent]\ndevice_id = "gw-1"\n[broker]\nurl = "mqtt://127.0.0.1:1883"\n')
    out = run_cli("check-config", str(good))
    assert out.returncode == 0 and out.stdout.strip() == f"{good}: ok"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[agent]\ndevice_id = "gw-1"\ninterval = "x"\n'
        '[broker]\nurl = "mqtts://h"\ncert_file = "nope.pem"\n'
    )
    out = run_cli("check-config", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert all(line.startswith("dunewatch-agent: error: ") for line in lines), out.stderr
    assert any("interval: expected number" in line for line in lines)
    assert "Traceback" not in out.stderr


def test_run_without_device_id_is_one_clear_line() -> None:
    out = run_cli("run", "--broker", "mqtt://127.0.0.1:1")
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "dunewatch-agent: error: [agent] device_id is required (or --device-id)"
    )


def test_agent_version_matches_the_distribution() -> None:
    import tomllib

    import agent

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert agent.__version__ == meta["project"]["version"]


# `run` argument lists the small parser must read exactly as argparse does
SAME_AS_ARGPARSE = [
    ["run"],
    ["run", "--config", "/etc/dunewatch/agent.toml"],
    ["-v", "run", "--broker", "mqtts://hub.example:8883", "--device-id", "gw-0007"],
    ["--verbose", "run", "--interval", "10", "--interval=2.5", "--protocol", "3.1.1"],
    ["run", "--device-id=gw-1", "--username", "u", "--password-file", "pw file", "--outbox", ""],
    ["run", "--log-level", "debug", "--protocol=5", "--interval", "1e1", "--broker="],
    ["run", "--interval", " 7 ", "--config", "run"],
]

# ... and the ones it hands to argparse (help, abbreviations, values argparse may refuse)
LEFT_TO_ARGPARSE = [
    ["run", "--help"],
    ["run", "-h"],
    ["once", "--json"],
    ["check-config", "f.toml"],
    ["run", "--dev", "gw-1"],
    ["run", "--interval", "ten"],
    ["run", "--interval", "-5"],
    ["run", "--interval=-5"],
    ["run", "--protocol", "4"],
    ["run", "--log-level", "trace"],
    ["run", "--broker"],
    ["run", "--broker", "--device-id", "x"],
    ["run", "stray"],
    ["run", "--", "--config", "x"],
    ["run", "-v"],
    [],
]


@pytest.mark.parametrize("argv", SAME_AS_ARGPARSE, ids=" ".join)
def test_run_flags_parse_as_argparse_does(argv: list[str]) -> None:
    fast = parse_run_args(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_unusual_is_left_to_argparse(argv: list[str]) -> None:
    assert parse_run_args(argv) is None


def test_bad_run_flag_still_gets_argparse_message() -> None:
    out = run_cli("run", "--interval", "ten")
    assert out.returncode == 2
    assert "argument --interval: invalid float value: 'ten'" in out.stderr
