"""Fixtures for the alerts tests: a real SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.alerts.store import AlertStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dunewatch.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[AlertStore]:
    s = AlertStore(db_path)
    yield s
    s.close()
