"""Session-wide fixtures: real mosquitto brokers on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.services import require_tool

BrokerFactory = Callable[..., "object"]


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Start mosquitto brokers with given users {name: password}; all are stopped after the test.

    The user 'collector' (password 'collector-pw') is always present and may read every device.
    """
    from collector.broker.mosquitto import MosquittoBroker

    exe = require_tool("mosquitto", "mosquitto")
    started: list[MosquittoBroker] = []

    def make(users: dict[str, str] | None = None, **kwargs: object) -> MosquittoBroker:
        all_users = {"collector": "collector-pw"}
        all_users.update(users or {})
        workdir = tmp_path / f"mosquitto-{len(started)}"
        broker = MosquittoBroker(workdir=workdir, users=all_users, executable=exe, **kwargs)  # type: ignore[arg-type]
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., object]) -> object:
    """One broker with users collector/collector-pw, dev-1/dev-1-pw and dev-2/dev-2-pw."""
    return mosquitto_factory({"dev-1": "dev-1-pw", "dev-2": "dev-2-pw"})
