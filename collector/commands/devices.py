"""Command group (not yet built): registers no commands until its library lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this group's commands to the `dunewatch` parser."""
