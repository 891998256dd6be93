"""The collector's ingest source for agentless devices: SNMP polling in its own thread and loop.

`SnmpSource(targets_path=...)` validates its configuration at construction and does I/O only in
start(store): it reads the targets file, opens one SnmpEngine and runs the Scheduler until stop().
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collector.snmp.interface import PollSink, SnmpError
from collector.snmp.poller import ENGINE_LEAN, ENGINES, Poller, PollerConfig
from collector.snmp.service import DEFAULT_INVENTORY_INTERVAL, PollService, Scheduler
from collector.snmp.targets import Target, load_targets

log = logging.getLogger("dunewatch.snmp")


class SnmpSource:
    """IngestSource: start(store) polls every target into the store; stop() ends cleanly."""

    name = "snmp"

    def __init__(
        self,
        targets_path: Path | None = None,
        targets: Sequence[Target] = (),
        inventory_interval: float = DEFAULT_INVENTORY_INTERVAL,
        jitter: float = 0.1,
        poller_config: PollerConfig | None = None,
        opener: Any = None,
    ) -> None:
        if targets_path is None and not targets:
            raise SnmpError("SNMP source needs a targets file or targets")
        if inventory_interval <= 0:
            raise SnmpError("inventory interval must be positive")
        if not 0 <= jitter < 1:
            raise SnmpError("jitter must be in [0, 1)")
        self.targets_path = targets_path
        self.static_targets = tuple(targets)
        self.inventory_interval = inventory_interval
        self.jitter = jitter
        self.poller_config = poller_config or PollerConfig()
        self.opener = opener  # opens our own store connection (one thread per connection)
        self._own_store: Any = None
        self.scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, store: PollSink) -> None:
        targets = list(self.static_targets)
        if self.targets_path is not None:
            targets += load_targets(self.targets_path)
        if not targets:
            log.info("snmp: no targets configured; SNMP polling idle")
        if self.opener is not None:
            self._own_store = store = self.opener.open()
        self._thread = threading.Thread(
            target=self._run, args=(store, targets), name="dunewatch-snmp", daemon=True
        )
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise SnmpError(f"SNMP source failed to start: {self._error}")

    def _run(self, store: PollSink, targets: list[Target]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(store, targets))
        except BaseException as exc:  # reported by start() or logged
            self._error = exc
            log.error("snmp source stopped: %s", exc)
        finally:
            self._ready.set()
            loop.close()

    async def _main(self, store: PollSink, targets: list[Target]) -> None:
        self._stop = asyncio.Event()
        poller = Poller(config=self.poller_config)
        await poller.open()
        try:
            service = PollService(poller, self.inventory_interval)
            self.scheduler = Scheduler(service, targets, store, jitter=self.jitter)
            self._ready.set()
            await self.scheduler.run(self._stop)
        finally:
            poller.close()

    def stats(self) -> dict[str, Any]:
        return dict(self.scheduler.stats) if self.scheduler else {}

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None


def source_factory(table: Mapping[str, Any], config: Any, opener: Any) -> SnmpSource:
    """`[[sources]] type = "snmp"` in the collector config; keys: targets, inventory_interval,
    jitter, engine ("lean" or "pysnmp", for v1/v2c targets). The targets file defaults to
    snmp-targets.toml next to the database. `collector serve` hands start() a store connection
    of the source's own, so no opener is needed."""
    known = {"type", "targets", "inventory_interval", "jitter", "engine"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SnmpError(f"[[sources]] type snmp: unknown key(s) {', '.join(unknown)}")
    db_path = Path(config.store.path)
    targets = Path(table.get("targets") or db_path.parent / "snmp-targets.toml")
    if not targets.is_absolute() and "targets" in table:
        targets = db_path.parent / targets
    engine = table.get("engine", ENGINE_LEAN)
    if engine not in ENGINES:
        raise SnmpError(
            f"[[sources]] type snmp: engine {engine!r} is not one of {', '.join(ENGINES)}"
        )
    return SnmpSource(
        targets_path=targets,
        inventory_interval=float(table.get("inventory_interval", DEFAULT_INVENTORY_INTERVAL)),
        jitter=float(table.get("jitter", 0.1)),
        poller_config=PollerConfig(engine=engine),
    )
