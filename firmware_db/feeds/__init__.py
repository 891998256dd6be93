"""Feed importers: the registry tuple and the one transactional entry point."""

from __future__ import annotations

import sqlite3
from typing import Final

from firmware_db.feeds.assets import AssetsFeed
from firmware_db.feeds.catalogue import CatalogueFeed, FirmwareFeed
from firmware_db.feeds.endoflife import EndOfLifeFeed
from firmware_db.feeds.epss import EpssFeed
from firmware_db.feeds.interface import Feed, FeedError
from firmware_db.feeds.kev import KevFeed
from firmware_db.feeds.nvd import NvdFeed
from firmware_db.feeds.osv import OsvFeed
from firmware_db.feeds.source import open_text
from firmware_db.models import ImportResult
from firmware_db.store import record_import

FEEDS: Final[tuple[Feed, ...]] = (
    EndOfLifeFeed(),
    NvdFeed(),
    OsvFeed(),
    KevFeed(),
    EpssFeed(),
    CatalogueFeed(),
    FirmwareFeed(),
    AssetsFeed(),
)

__all__ = ["FEEDS", "Feed", "FeedError", "feed_names", "get_feed", "import_feed"]


def feed_names() -> tuple[str, ...]:
    return tuple(f.name for f in FEEDS)


def get_feed(name: str) -> Feed:
    for feed in FEEDS:
        if feed.name == name:
            return feed
    raise FeedError(f"unknown feed {name!r}", tip=f"known feeds: {', '.join(feed_names())}")


def import_feed(
    conn: sqlite3.Connection, feed_name: str, location: str, **options: str
) -> ImportResult:
    """Load one file or URL in a single transaction: every record or none of them."""
    feed = get_feed(feed_name)
    with open_text(location) as stream:
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = feed.load(conn, stream, location, options)
            record_import(conn, feed.name, location, count)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return ImportResult(feed=feed.name, records=count, source=location)
