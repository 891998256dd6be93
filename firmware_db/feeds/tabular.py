"""Read user files as records: CSV (header row) or JSON (array, or an object holding arrays)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, TextIO

from firmware_db.feeds.interface import record_error
from firmware_db.feeds.jsonstream import JsonStream, JsonStreamError


def records(
    feed: str, stream: TextIO, source: str, json_key: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (index, record); CSV when the name says so or the text does not start with JSON."""
    js = JsonStream(stream)
    first = js.peek()
    if first in ("[", "{"):
        try:
            for index, item in js.items(None if first == "[" else json_key):
                if not isinstance(item, dict):
                    raise record_error(feed, source, index, None, "record is not an object")
                yield index, item
        except JsonStreamError as exc:
            raise record_error(feed, source, exc.index, None, f"malformed JSON: {exc}") from exc
        return
    reader = csv.DictReader(js.lines())
    for index, row in enumerate(reader):
        if None in row:
            raise record_error(feed, source, index, None, f"CSV line {index + 2} has extra fields")
        yield index, dict(row)
