"""Liveness through a real broker: online -> stale -> offline -> online, by silence and by will."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.liveness import LivenessConfigError, LivenessPolicy
from collector.store.sqlite import SqliteStore
from tests.collector.helpers import Publisher, health, running_consumer
from tests.support.services import wait_until

pytestmark = pytest.mark.integration

INTERVAL = 0.4


def _status(sweeper: SqliteStore, dev: str) -> str:
    sweeper.sweep_liveness(time.time())
    d = sweeper.device(dev)
    return d.summary.status if d else "missing"


def test_liveness_by_silence_and_by_last_will(mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    boot = E.new_boot_id()
    with running_consumer(mosquitto.port, db):
        sweeper = SqliteStore(db)
        will = E.state("dev-1", boot, False, "will").encode()
        pub = Publisher(mosquitto.port, "dev-1", "dev-1-pw", will=will)
        pub.send_env(E.state("dev-1", boot, True, "birth", interval=INTERVAL))
        wait_until(lambda: _status(sweeper, "dev-1") == "online", 20, "online after birth")
        # silence: stale after 1.5 intervals, offline after 3
        wait_until(lambda: _status(sweeper, "dev-1") == "stale", 20, "stale")
        wait_until(lambda: _status(sweeper, "dev-1") == "offline", 20, "offline by silence")
        # the report also sets a long interval, so silence cannot race the will below
        pub.send_env(health("dev-1", boot, 1, time.time(), interval=30))
        wait_until(lambda: _status(sweeper, "dev-1") == "online", 20, "online after a report")
        pub.kill()  # socket dropped: the broker publishes the last will
        wait_until(lambda: _status(sweeper, "dev-1") == "offline", 20, "offline by will")
        # a late report of the same boot does not revive it; a new birth does
        pub2 = Publisher(mosquitto.port, "dev-1", "dev-1-pw")
        pub2.send_env(health("dev-1", boot, 2, time.time(), interval=INTERVAL))
        wait_until(lambda: sweeper.ingest_stats("dev-1").accepted == 3, 20, "late report stored")
        assert _status(sweeper, "dev-1") == "offline"
        pub2.send_env(E.state("dev-1", boot, True, "birth", interval=30))
        wait_until(lambda: _status(sweeper, "dev-1") == "online", 20, "online after new birth")
        pub2.close()
        steps = [(t.old, t.new, t.reason) for t in sweeper.transitions("dev-1")]
        sweeper.close()
    assert steps == [
        ("unknown", "online", "birth"),
        ("online", "stale", "silent"),
        ("stale", "offline", "silent"),
        ("offline", "online", "report"),
        ("online", "offline", "will"),
        ("offline", "online", "birth"),
    ]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(LivenessConfigError, match="stale_after"):
        LivenessPolicy(stale_after=3, offline_after=2)
    pol = LivenessPolicy()
    assert pol.by_age("online", 14.9, 10) == "online"
    assert pol.by_age("online", 15.1, 10) == "stale"
    assert pol.by_age("stale", 30.1, 10) == "offline"
    assert pol.by_age("offline", 1.0, 10) == "offline"
    assert pol.by_age("online", 31, None) == "offline"  # default interval 10 s
