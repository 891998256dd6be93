"""Analysis commands: `dune` and `report` (Digital Dune Index, aging, reports) and `alerts`.

Two halves share this module: `register_dune_report` and `register_alerts` each add their own
commands, and `register` calls both so the CLI registry keeps one entry per module.
"""

from __future__ import annotations

import argparse
from typing import Any


def register_dune_report(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `dune` and `report`."""


def register_alerts(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `alerts`."""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this group's commands to the `dunewatch` parser."""
    register_dune_report(sub)
    register_alerts(sub)
