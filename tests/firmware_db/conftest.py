from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_db import open_database
from firmware_db.store import KnowledgeBase

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    """A file database with the shipped reference data loaded."""
    base = open_database(tmp_path / "kb.sqlite")
    yield base
    base.close()
