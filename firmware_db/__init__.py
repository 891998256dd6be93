"""firmware_db: who controls a component, its lifecycle and its known vulnerabilities.

`open_default()` gives a knowledge base over the shipped, sourced reference data (built in
memory once per process, a few milliseconds); `KnowledgeBase.open(path)` opens a database that
also holds imported feeds. Importing this package is cheap: heavy work happens on first call.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware_db.store import KnowledgeBase

__all__ = ["default_db_path", "open_database", "open_default"]

_lock = threading.Lock()
_default: KnowledgeBase | None = None


def open_default() -> KnowledgeBase:
    """The shared in-memory knowledge base over the shipped reference data."""
    global _default
    with _lock:
        if _default is None:
            from firmware_db.store import KnowledgeBase, connect

            kb = KnowledgeBase(connect(":memory:"), ":memory:")
            kb.load_reference()
            _default = kb
        return _default


def default_db_path() -> Path:
    """Where the CLI keeps its database: $DUNEWATCH_DATA, else the user's data directory."""
    base = os.environ.get("DUNEWATCH_DATA")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".local" / "share") / "dunewatch"
    return root / "firmware_db.sqlite"


def open_database(path: str | Path | None = None) -> KnowledgeBase:
    """Open a database file, (re)loading the reference data when it is missing or outdated."""
    from firmware_db.reference import data_hash
    from firmware_db.store import KnowledgeBase

    target = Path(path) if path else default_db_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase.open(target)
    row = kb.connection.execute("SELECT value FROM meta WHERE key = 'reference_hash'").fetchone()
    if row is None or row[0] != data_hash():
        kb.load_reference()
    return kb
