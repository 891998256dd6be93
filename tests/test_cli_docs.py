"""Every `dunewatch` and `dunewatch-agent` command has help with an example and a docs entry."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, (*path, name))


def _all_commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    from agent.cli import build_parser as agent_parser
    from collector.cli import build_parser

    return [
        *_leaves(build_parser(), ("dunewatch",)),
        *_leaves(agent_parser(), ("dunewatch-agent",)),
    ]


COMMANDS = _all_commands()


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_example_and_is_documented(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    help_text = parser.format_help()
    assert "example" in help_text.lower(), f"{' '.join(path)} --help shows no example"
    assert " ".join(path) in DOCS, f"{' '.join(path)} is not mentioned in README.md or docs/"


def test_every_command_group_is_registered() -> None:
    names = {p[1] for p, _ in COMMANDS if p[0] == "dunewatch"}
    assert {
        "up",
        "demo",
        "collector",
        "devices",
        "device",
        "snmp",
        "firmware-db",
        "sbom",
        "dune",
        "report",
        "alerts",
    } <= names
