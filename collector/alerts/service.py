"""Periodic evaluation for long-running processes (collector serve, `dunewatch up`).

Keeps the sinks started between passes (an MQTT sink stays connected), runs `evaluate` every
`every` seconds in one background thread, and never dies of a failed pass: it logs, counts and
tries again next time.

A full pass reads every device (seconds at 100,000 devices, a minute with inventories), so full
passes are kept to `full_duty` of the time; the passes in between are liveness passes (offline
devices only, milliseconds), so an offline device is still reported within `every`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.alerts.builder import WindowCache
from collector.alerts.config import AlertsConfig
from collector.alerts.engine import EvaluationResult, evaluate
from collector.alerts.interface import AlertsError, PassCancelled
from collector.sinks.interface import Sink

log = logging.getLogger("dunewatch.alerts")


class AlertService:
    def __init__(
        self,
        db: str | Path,
        *,
        config: AlertsConfig | None = None,
        sinks: Sequence[Sink] = (),
        every: float = 60.0,
        kb: Any = None,
        policy: Any = None,
        duty: float = 0.25,
        full_duty: float = 0.02,
    ) -> None:
        if every <= 0:
            raise AlertsError(f"alert evaluation interval must be positive, got {every}")
        if not 0 < duty <= 1:
            raise AlertsError(f"alert duty must be within (0, 1], got {duty}")
        if not 0 < full_duty <= 1:
            raise AlertsError(f"alert full_duty must be within (0, 1], got {full_duty}")
        self.db = Path(db)
        self.config = config or AlertsConfig()
        self.sinks = tuple(sinks)
        self.every = float(every)
        self.duty = float(duty)
        self.full_duty = float(full_duty)
        self.kb = kb
        self.policy = policy
        self.passes = 0
        self.full_passes = 0
        self.failures = 0
        self.last_result: EvaluationResult | None = None
        self.last_error: str | None = None
        self.last_seconds = 0.0  # how long the last pass took
        self.cpu_seconds = 0.0  # CPU time of every pass so far (this thread's)
        self.full_seconds = 0.0  # how long the last full pass took
        self._full_started: float | None = None  # monotonic start of the last full pass
        self._overrun = False
        self._windows = WindowCache()  # saturation windows, re-read once the rollups change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None, full: bool = True) -> EvaluationResult:
        result = evaluate(
            self.db,
            self.kb,
            self.config,
            now,
            sinks=self.sinks,
            policy=self.policy,
            cancel=self._stop.is_set,
            windows=self._windows,
            roll_up=False,  # the serve loop beside it folds each bucket (Collector.maintain)
            full=full,
        )
        self.passes += 1
        self.full_passes += full
        self.last_result = result
        for err in (*result.snapshot_errors, *(e.message for e in result.rule_errors)):
            log.warning("alerts: %s", err)
        if result.opened or result.resolved:
            log.info(
                "alerts: %d opened, %d resolved, %d active",
                len(result.opened),
                len(result.resolved),
                result.active,
            )
        return result

    def full_gap(self) -> float:
        """Seconds from the start of the last full pass to the next: `every`, or that pass's
        length over the smaller of `full_duty` and `duty` (a 5 s pass at 0.02: 250 s), so full
        passes over a large fleet do not keep a core busy."""
        return max(self.every, self.full_seconds / min(self.full_duty, self.duty))

    def full_due(self, now: float) -> bool:
        """Whether the pass starting at `now` (monotonic) is a full one: the first is, then one
        once full_gap() has passed since the last full pass began. Passes start about `every`
        apart, so a tenth of it is allowed for their jitter."""
        if self._full_started is None:
            return True
        return now - self._full_started >= self.full_gap() - 0.1 * self.every

    def _passed(self, started: float, seconds: float, full: bool) -> None:
        self.last_seconds = seconds
        if full:
            self._full_started, self.full_seconds = started, seconds
            self._note_overrun()

    def _run(self) -> None:
        while not self._stop.is_set():
            started, cpu = time.monotonic(), time.thread_time()
            full = self.full_due(started)
            try:
                self.run_once(full=full)
            except PassCancelled as exc:  # stop() was called during the pass
                log.info("%s", exc)
                return
            except Exception as exc:  # a daemon: log, count, keep going
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("alert evaluation failed: %s", self.last_error)
            finally:
                self.cpu_seconds += time.thread_time() - cpu
            self._passed(started, time.monotonic() - started, full)
            self._stop.wait(self.rest())

    def rest(self) -> float:
        """Seconds to wait after the last pass: the rest of `every` (none when it took longer).
        Long full passes are spaced by full_due(); the passes between them are liveness passes,
        so offline devices are still checked every `every`."""
        return max(0.0, self.every - self.last_seconds)

    def _note_overrun(self) -> None:
        """Say once, not every full pass, when full passes no longer fit `every` (a large
        fleet): liveness passes then fill in."""
        over = self.full_gap() > self.every + 1e-9
        if over and not self._overrun:
            log.warning(
                "alerts: a full pass took %.1fs: full passes start %.0fs apart, not every = %gs "
                "(kept to %g of the time); liveness passes in between",
                self.full_seconds,
                self.full_gap(),
                self.every,
                min(self.full_duty, self.duty),
            )
        elif self._overrun and not over:
            log.info(
                "alerts: full passes fit in every = %gs again (%.1fs)",
                self.every,
                self.full_seconds,
            )
        self._overrun = over

    def start(self) -> None:
        for sink in self.sinks:
            sink.start()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for sink in self.sinks:
            try:
                sink.stop()
            except Exception as exc:  # stopping must reach every sink
                log.warning("alert sink %s did not stop cleanly: %s", sink.name, exc)
