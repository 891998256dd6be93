"""Poll devices into reports, remember per-device state, and run polls on a jittered schedule.

`PollService.poll` is the one path every caller uses (poll-once, the scheduler, the benchmark):
poll, fingerprint, GET vendor OIDs when a rule names them, build bodies, detect reboots.
`Scheduler` starts each device's poll as its own task when it is due, so one slow or dead
device never holds up the rest; a device still being polled when due again is skipped and
counted (`overruns`), never queued twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from collector.snmp.build import (
    DeviceState,
    PollReport,
    build_health,
    build_inventory,
    detect_reboot,
    identity,
)
from collector.snmp.interface import OUTCOME_OK, PollSink
from collector.snmp.oidmap import GROUP_HEALTH, GROUP_IDENTITY, GROUP_INVENTORY
from collector.snmp.poller import Poller
from collector.snmp.targets import Target
from firmware_db.fingerprint import FingerprintRule, fingerprint

log = logging.getLogger("dunewatch.snmp")

DEFAULT_INVENTORY_INTERVAL = 6 * 3600.0


class PollService:
    """Turns polls into PollReports; holds one DeviceState per device id."""

    def __init__(
        self,
        poller: Poller,
        inventory_interval: float = DEFAULT_INVENTORY_INTERVAL,
        rules: Sequence[FingerprintRule] | None = None,
    ) -> None:
        if inventory_interval <= 0:
            raise ValueError("inventory_interval must be positive")
        self.poller = poller
        self.inventory_interval = inventory_interval
        self.rules = rules
        self.states: dict[str, DeviceState] = {}

    def inventory_due(self, target: Target, now: float) -> bool:
        st = self.states.get(target.device_id)
        return (
            st is None
            or st.inventory_ts is None
            or now - st.inventory_ts >= self.inventory_interval
        )

    async def poll(self, target: Target, inventory: bool | None = None) -> PollReport:
        now = time.time()
        want_inv = self.inventory_due(target, now) if inventory is None else inventory
        groups = (GROUP_IDENTITY, GROUP_HEALTH) + ((GROUP_INVENTORY,) if want_inv else ())
        raw = await self.poller.poll(target, groups)
        state = self.states.setdefault(target.device_id, DeviceState())
        if raw.outcome != OUTCOME_OK:
            return PollReport(
                raw.device_id,
                raw.address,
                raw.ts,
                raw.outcome,
                raw.detail,
                raw.duration,
                raw.requests,
            )
        fp = fingerprint(raw.scalars.get("sysObjectID"), raw.scalars.get("sysDescr"), self.rules)
        requests = raw.requests
        if want_inv and fp.pending_oids:
            try:
                values = await self.poller.get(target, fp.pending_oids)
                fp = fp.with_oid_values(values)
            except Exception as exc:  # vendor OIDs are a bonus: the poll itself succeeded
                log.debug("%s: vendor OIDs %s: %s", target.device_id, fp.pending_oids, exc)
            requests += 1
        uptime = raw.scalars.get("sysUpTime")
        rebooted = detect_reboot(
            state.ts, state.uptime, raw.ts, uptime if isinstance(uptime, int) else None
        )
        health = build_health(raw, self.poller.oidmap, target.interval, state)
        inv = build_inventory(raw, self.poller.oidmap, fp) if want_inv else None
        state.ts = raw.ts
        state.uptime = uptime if isinstance(uptime, int) else None
        if inv is not None:
            state.inventory_ts = raw.ts
            state.inventory_hash = str(inv["hash"])
        if rebooted:
            state.reboots += 1
            # A reboot often means new firmware: refresh the inventory on the next poll.
            if inv is None:
                state.inventory_ts = None
            log.info(
                "%s (%s): reboot detected (sysUpTime went backwards)",
                target.device_id,
                target.address,
            )
        ident = identity(raw, fp)
        if inv is not None:
            hw = inv.get("hardware", {})
            ident["vendor"] = hw.get("vendor")
            ident["model"] = hw.get("model")
            ident["firmware"] = (inv.get("firmware") or {}).get("version")
        return PollReport(
            device_id=raw.device_id,
            address=raw.address,
            ts=raw.ts,
            outcome=raw.outcome,
            detail="rebooted" if rebooted else "",
            duration=raw.duration,
            requests=requests,
            rebooted=rebooted,
            identity=ident,
            health=health,
            inventory=inv,
        )


def store_report(sink: PollSink, target: Target, report: PollReport, ensure: bool = True) -> None:
    """Write one report to the collector store (device first, then the poll outcome)."""
    if ensure:
        sink.ensure_device(
            target.device_id, source="snmp", tags=dict(target.tags), interval=target.interval
        )
    detail = report.detail
    sink.record_poll(
        target.device_id,
        report.ts,
        report.outcome,
        health=report.health,
        inventory=report.inventory,
        detail=detail,
    )


class Scheduler:
    """Polls every target at its interval with jitter, storing each report through `sink`."""

    def __init__(
        self,
        service: PollService,
        targets: Sequence[Target],
        sink: PollSink | None,
        jitter: float = 0.1,
        first_spread: float | None = None,
        on_report: Callable[[Target, PollReport], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        ids = [t.device_id for t in targets]
        if len(set(ids)) != len(ids):
            raise ValueError("two targets share a device id")
        self.service = service
        self.targets = list(targets)
        self.sink = sink
        self.jitter = jitter
        self.first_spread = first_spread
        self.on_report = on_report
        self.rng = rng or random.Random()
        self.stats: Counter[str] = Counter()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ensured: set[str] = set()  # devices created/updated in the store this run

    def _next(self, interval: float) -> float:
        return interval * (1 + self.rng.uniform(-self.jitter, self.jitter))

    async def run(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        due: dict[str, float] = {}
        for t in self.targets:
            spread = min(t.interval, 5.0) if self.first_spread is None else self.first_spread
            due[t.device_id] = now + self.rng.uniform(0, spread)
            warning = t.warning()
            if warning:
                log.warning("%s", warning)
        by_id = {t.device_id: t for t in self.targets}
        await self.service.poller.prepare(self.targets)
        try:
            while not stop.is_set():
                now = time.monotonic()
                for dev, when in due.items():
                    if when > now:
                        continue
                    tgt = by_id[dev]
                    due[dev] = when + self._next(tgt.interval)
                    if due[dev] <= now:  # fell far behind (e.g. suspended): restart from now
                        due[dev] = now + self._next(tgt.interval)
                    if dev in self._running:
                        self.stats["overruns"] += 1
                        continue
                    self._running[dev] = asyncio.create_task(self._one(tgt))
                wake = min(due.values(), default=now + 1.0) - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(wake, 1.0)))
        finally:
            for task in list(self._running.values()):
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _one(self, target: Target) -> None:
        try:
            report = await self.service.poll(target)
            self.stats["polls"] += 1
            self.stats[f"outcome_{report.outcome}"] += 1
            if report.rebooted:
                self.stats["reboots"] += 1
            if self.sink is not None:
                try:
                    first = target.device_id not in self._ensured
                    store_report(self.sink, target, report, ensure=first)
                    self._ensured.add(target.device_id)
                except Exception as exc:  # a store hiccup must not stop polling
                    self.stats["store_errors"] += 1
                    log.error("%s: storing the poll failed: %s", target.device_id, exc)
            if self.on_report is not None:
                self.on_report(target, report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats["poll_errors"] += 1
            log.error("%s: poll failed unexpectedly: %s", target.device_id, exc)
        finally:
            self._running.pop(target.device_id, None)


def stats_snapshot(stats: Counter[str]) -> dict[str, Any]:
    return dict(sorted(stats.items()))
