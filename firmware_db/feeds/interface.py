"""The feed axis: one module per public or user feed, each loading rows into the database.

A feed parses a text stream record by record and writes through `firmware_db.store` helpers;
`firmware_db.feeds.import_feed` wraps the whole load in one transaction, so a malformed record
rolls everything back and the error names that record.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol, TextIO

from firmware_db.errors import FirmwareDbError


class FeedError(FirmwareDbError):
    """A feed could not be read or one of its records is malformed (nothing was kept)."""


class Feed(Protocol):
    name: str
    description: str

    def load(
        self, conn: sqlite3.Connection, stream: TextIO, source: str, options: dict[str, str]
    ) -> int:
        """Parse `stream` and write its records; return how many were stored."""
        ...


def record_error(
    feed: str, source: str, index: int, record_id: str | None, problem: str
) -> FeedError:
    where = f"record {index}" + (f" ({record_id})" if record_id else "")
    return FeedError(
        f"{feed} feed {source}: {where}: {problem}",
        tip="nothing from this file was kept; fix or re-download the feed and import it again",
    )
