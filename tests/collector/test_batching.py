"""When ingest ends a batch: the rules both MQTT readers share."""

from __future__ import annotations

from collector.config import IngestSettings
from collector.ingest.mqtt import IDLE_FLUSH_SECONDS, IDLE_MIN_ROWS, STALL_SECONDS, Consumer
from collector.metrics import Counters
from tests.collector.helpers import broker_settings


def _consumer(batch_ms: int = 250, batch_rows: int = 2000) -> Consumer:
    # never started: only the batching rules are exercised
    ingest = IngestSettings(batch_ms=batch_ms, batch_rows=batch_rows)
    return Consumer(broker_settings(1883), ingest, store=None, counters=Counters(1))  # type: ignore[arg-type]


NOW = 1000.0  # the rules only compare times: a fixed clock keeps the tests exact


def _pending(c: Consumer, rows: int, filled_in: float, quiet_for: float) -> None:
    """`rows` messages that arrived over `filled_in` seconds, the last `quiet_for` seconds ago."""
    c._pending = [(0, i + 1, 1, None, b"") for i in range(rows)]  # type: ignore[misc]
    c._last_arrival = NOW - quiet_for
    c._batch_started = c._last_arrival - filled_in


def test_a_pause_after_a_fast_fill_ends_the_batch() -> None:
    # a backlog arrives window by window: the broker waits for our acks, so commit now
    c = _consumer()
    _pending(c, 500, filled_in=0.02, quiet_for=IDLE_FLUSH_SECONDS * 1.5)
    batch = c._take_batch(now=NOW)
    assert batch is not None and len(batch) == 500
    assert c._pending == []


def test_a_short_pause_leaves_a_small_batch_open() -> None:
    # fewer than IDLE_MIN_ROWS: a short pause is not yet a reason to commit
    c = _consumer()
    _pending(c, IDLE_MIN_ROWS - 1, filled_in=0.005, quiet_for=IDLE_FLUSH_SECONDS * 1.5)
    assert c._take_batch(now=NOW) is None
    assert len(c._pending) == IDLE_MIN_ROWS - 1


def test_a_stall_ends_any_batch() -> None:
    c = _consumer()
    _pending(c, 3, filled_in=0.06, quiet_for=STALL_SECONDS * 1.5)
    batch = c._take_batch(now=NOW)
    assert batch is not None and len(batch) == 3


def test_age_and_size_limits_end_the_batch() -> None:
    c = _consumer(batch_ms=100)
    _pending(c, 10, filled_in=0.15, quiet_for=0.0)  # older than batch_ms
    assert c._take_batch(now=NOW) is not None
    c = _consumer(batch_rows=50)
    _pending(c, 50, filled_in=0.001, quiet_for=0.0)  # full
    assert c._take_batch(now=NOW) is not None
    c = _consumer()
    _pending(c, 10, filled_in=0.001, quiet_for=0.0)  # young, small, still arriving
    assert c._take_batch(now=NOW) is None
    assert c._take_batch(force=True, now=NOW) is not None


def test_nothing_pending_is_never_a_batch() -> None:
    assert _consumer()._take_batch(force=True, now=NOW) is None
