"""Hostile input and faults on the ingest path: fuzzed payloads, a locked database."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import envelope as E
from collector.config import IngestSettings
from collector.store.sqlite import SqliteStore
from tests.collector.helpers import Publisher, health, running_consumer, stored_seqs
from tests.support.services import wait_until

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
json_any = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(1), json_any),
        "device": st.one_of(st.sampled_from(["d1", "d2", "bad/id", ""]), json_any),
        "boot": st.one_of(st.sampled_from(["b1", "b2"]), json_any),
        "seq": st.one_of(st.integers(-3, 2**64), json_any),
        "ts": st.one_of(st.floats(), st.integers(), json_any),
        "kind": st.one_of(st.sampled_from(E.KINDS), json_any),
        "body": st.one_of(
            st.fixed_dictionaries(
                {"interval": st.one_of(st.just(10), json_any)},
                optional={
                    "cpu": json_any,
                    "state": st.sampled_from(["online", "offline"]),
                    "type": json_any,
                    "first_seq": json_any,
                    "last_seq": json_any,
                    "count": json_any,
                    "packages": json_any,
                    "hash": json_any,
                    "hardware": json_any,
                },
            ),
            json_any,
        ),
        "extra": json_any,
    },
)
payloads = st.one_of(
    st.binary(max_size=200),
    envelope_like.map(lambda d: json.dumps(d, allow_nan=True).encode()),
)


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = SqliteStore(tmp_path_factory.mktemp("fuzz") / "f.db")
    yield s
    s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.tuples(st.sampled_from(["d1", "d2"]), st.sampled_from(E.KINDS), payloads), max_size=8
    )
)
def test_fuzzed_payloads_are_rejected_or_stored_never_crash(
    fuzz_store: SqliteStore, batch: list[tuple[str, str, bytes]]
) -> None:
    good = []
    for dev, kind, payload in batch:
        try:
            good.append(E.parse(payload, f"dunewatch/v1/{dev}/{kind}"))
        except E.EnvelopeError as exc:
            assert exc.reason in {
                "oversized",
                "not_json",
                "bad_topic",
                "bad_type",
                "missing_field",
                "bad_field",
                "bad_version",
                "bad_kind",
                "bad_device_id",
                "device_mismatch",
                "kind_mismatch",
                "bad_body",
            }
    before = fuzz_store.ingest_stats()
    result = fuzz_store.apply(good, time.time())
    after = fuzz_store.ingest_stats()
    assert result.accepted + result.duplicates == len(good)
    assert after.accepted - before.accepted == result.accepted
    for env in good:  # whatever was accepted is readable back
        assert fuzz_store.device(env.device_id) is not None


@pytest.mark.integration
def test_locked_database_then_ingest_resumes(mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    SqliteStore(db).close()
    boot = E.new_boot_id()
    with running_consumer(mosquitto.port, db, IngestSettings(batch_ms=50), busy_timeout=0.3) as (
        consumer,
        _,
    ):
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # someone else holds the write lock
        try:
            pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
            for seq in (1, 2, 3):
                pub.send_env(health("dev-1", boot, seq, time.time()))
            wait_until(
                lambda: consumer.counters.total("store_errors") >= 1, 60, "a failed batch commit"
            )
            assert "locked" in consumer.last_error
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: stored_seqs(db, "dev-1") == {1, 2, 3}, 60, "ingest resumed")
        pub.close()
