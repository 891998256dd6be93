"""Open a feed location: a local file (optionally .gz) or, when online, an http(s) URL."""

from __future__ import annotations

import gzip
import io
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from firmware_db.feeds.interface import FeedError

TIMEOUT_S = 60


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


@contextmanager
def open_text(location: str) -> Iterator[TextIO]:
    """A UTF-8 text stream over the location; gzip is detected by name or magic bytes."""
    try:
        if is_url(location):
            req = urllib.request.Request(location, headers={"User-Agent": "dunewatch-firmware-db"})
            raw = urllib.request.urlopen(req, timeout=TIMEOUT_S)  # noqa: S310 - http(s) only
        else:
            path = Path(location)
            if not path.is_file():
                raise FeedError(f"{location}: no such file")
            raw = path.open("rb")
    except OSError as exc:
        raise FeedError(f"{location}: cannot open ({exc})") from exc
    with raw:
        buffered = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
        head = buffered.peek(2)[:2]
        binary = gzip.GzipFile(fileobj=buffered) if head == b"\x1f\x8b" else buffered
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            yield text
        except UnicodeDecodeError as exc:
            raise FeedError(f"{location}: not UTF-8 text ({exc.reason})") from exc
        except (OSError, EOFError) as exc:
            raise FeedError(f"{location}: read failed ({exc})") from exc
