"""When ingest ends a batch: the rules both MQTT readers share."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from collector.config import ConfigError, IngestSettings
from collector.ingest.mqtt import (
    IDLE_FLUSH_SECONDS,
    IDLE_MIN_ROWS,
    MAX_PENDING_BATCHES,
    STALL_SECONDS,
    Consumer,
)
from collector.metrics import Counters
from collector.store.interface import ApplyResult
from tests.collector.helpers import broker_settings, health
from tests.support.services import wait_until


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


def _take(c: Consumer, force: bool = False) -> list[Any] | None:
    with c._cond:  # the rules run under the batch lock
        return c._take_batch(force=force, now=NOW)


def test_a_pause_after_a_fast_fill_ends_the_batch() -> None:
    # a backlog arrives window by window: the broker waits for our acks, so commit now
    c = _consumer()
    _pending(c, 500, filled_in=0.02, quiet_for=IDLE_FLUSH_SECONDS * 1.5)
    batch = _take(c)
    assert batch is not None and len(batch) == 500
    assert c._pending == []


def test_a_short_pause_leaves_a_small_batch_open() -> None:
    # fewer than IDLE_MIN_ROWS: a short pause is not yet a reason to commit
    c = _consumer()
    _pending(c, IDLE_MIN_ROWS - 1, filled_in=0.005, quiet_for=IDLE_FLUSH_SECONDS * 1.5)
    assert _take(c) is None
    assert len(c._pending) == IDLE_MIN_ROWS - 1


def test_a_stall_ends_any_batch() -> None:
    c = _consumer()
    _pending(c, 3, filled_in=0.06, quiet_for=STALL_SECONDS * 1.5)
    batch = _take(c)
    assert batch is not None and len(batch) == 3


def test_age_and_size_limits_end_the_batch() -> None:
    c = _consumer(batch_ms=100)
    _pending(c, 10, filled_in=0.15, quiet_for=0.0)  # older than batch_ms
    assert _take(c) is not None
    c = _consumer(batch_rows=50)
    _pending(c, 50, filled_in=0.001, quiet_for=0.0)  # full
    assert _take(c) is not None
    c = _consumer()
    _pending(c, 10, filled_in=0.001, quiet_for=0.0)  # young, small, still arriving
    assert _take(c) is None
    assert _take(c, force=True) is not None


def test_nothing_pending_is_never_a_batch() -> None:
    assert _take(_consumer(), force=True) is None


class _GatedStore:
    """A store whose commits wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def apply(self, envs: Sequence[Any], received: float, raw: Any = None) -> ApplyResult:
        self.entered.set()
        assert self.gate.wait(60)
        self.batches.append(len(envs))
        return ApplyResult(accepted=len(envs))

    def record_rejects(self, rejects: Sequence[Any]) -> None:
        pass


def test_a_reader_waits_while_the_commits_are_behind() -> None:
    store = _GatedStore()
    ingest = IngestSettings(batch_rows=10, batch_ms=20)
    c = Consumer(broker_settings(1883), ingest, store, Counters(1))  # type: ignore[arg-type]
    c._flusher = threading.Thread(target=c._flush_loop, daemon=True)
    c._flusher.start()
    cap = MAX_PENDING_BATCHES * ingest.batch_rows
    total = cap + 60
    msgs = [
        ("dunewatch/v1/d1/health", health("d1", "b1", i, 1.7e9 + i).encode(), i, 1)
        for i in range(1, total + 1)
    ]
    c.deliver_many(msgs[:1])
    assert store.entered.wait(20)  # a first batch is stuck in its commit
    reader = threading.Thread(target=lambda: [c.deliver_many([m]) for m in msgs[1:]], daemon=True)
    reader.start()
    # the reader stops once `cap` more are waiting
    wait_until(lambda: len(c._pending) == cap, 20, "pending messages reach the cap")
    reader.join(0.5)
    assert reader.is_alive() and len(c._pending) == cap
    store.gate.set()
    reader.join(30)
    assert not reader.is_alive()
    wait_until(lambda: sum(store.batches) == total, 20, "every message committed")
    assert max(store.batches) <= cap + 1
    c.stop()


def test_a_reader_pause_is_not_a_pause_in_the_stream() -> None:
    # the lean reader waits `read_pause` after a small read: only quiet beyond that counts
    c = _consumer()
    c.read_pause = 0.02
    _pending(c, 500, filled_in=0.02, quiet_for=IDLE_FLUSH_SECONDS + 0.015)
    assert _take(c) is None
    _pending(c, 500, filled_in=0.02, quiet_for=IDLE_FLUSH_SECONDS + 0.025)
    assert _take(c) is not None
    _pending(c, 3, filled_in=0.06, quiet_for=STALL_SECONDS + 0.015)
    assert _take(c) is None
    _pending(c, 3, filled_in=0.06, quiet_for=STALL_SECONDS + 0.025)
    assert _take(c) is not None


def test_the_read_pause_is_checked_and_capped_by_the_batch_age() -> None:
    assert IngestSettings().read_pause == 0.02
    assert IngestSettings(read_pause_ms=100, batch_ms=50).read_pause == 0.025
    assert IngestSettings(read_pause_ms=0).read_pause == 0.0
    for bad in (-1, 1001):
        with pytest.raises(ConfigError, match=f"read_pause_ms {bad} must be 0..1000"):
            IngestSettings(read_pause_ms=bad)
