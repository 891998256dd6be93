"""Periodic evaluation for long-running processes (collector serve, `dunewatch up`).

Keeps the sinks started between passes (an MQTT sink stays connected), runs `evaluate` every
`every` seconds in one background thread, and never dies of a failed pass: it logs, counts and
tries again next time.
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
    ) -> None:
        if every <= 0:
            raise AlertsError(f"alert evaluation interval must be positive, got {every}")
        if not 0 < duty <= 1:
            raise AlertsError(f"alert duty must be within (0, 1], got {duty}")
        self.db = Path(db)
        self.config = config or AlertsConfig()
        self.sinks = tuple(sinks)
        self.every = float(every)
        self.duty = float(duty)
        self.kb = kb
        self.policy = policy
        self.passes = 0
        self.failures = 0
        self.last_result: EvaluationResult | None = None
        self.last_error: str | None = None
        self.last_seconds = 0.0  # how long the last pass took
        self.cpu_seconds = 0.0  # CPU time of every pass so far (this thread's)
        self._overrun = False
        self._windows = WindowCache()  # saturation windows, re-read once the rollups change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> EvaluationResult:
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
        )
        self.passes += 1
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

    def _run(self) -> None:
        while not self._stop.is_set():
            started, cpu = time.monotonic(), time.thread_time()
            try:
                self.run_once()
            except PassCancelled as exc:  # stop() was called during the pass
                log.info("%s", exc)
                return
            except Exception as exc:  # a daemon: log, count, keep going
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("alert evaluation failed: %s", self.last_error)
            finally:
                self.cpu_seconds += time.thread_time() - cpu
            self.last_seconds = time.monotonic() - started
            self._note_overrun()
            self._stop.wait(self.rest())

    def rest(self) -> float:
        """Seconds to wait after the last pass: the rest of `every`, but at least what keeps
        passes to `duty` of the time, so a fleet that makes passes long (100,000 devices with
        inventories: about a minute each) does not keep a core busy with them."""
        spent = self.last_seconds
        return max(0.0, self.every - spent, spent / self.duty - spent)

    def _note_overrun(self) -> None:
        """Say once, not every pass, when passes no longer fit `every` (a large fleet): they
        then start `rest()` apart, or back to back with duty = 1."""
        over = self.last_seconds + self.rest() > self.every + 1e-9
        if over and not self._overrun:
            log.warning(
                "alerts: a pass took %.1fs: the next starts %.1fs after it, not every = %gs "
                "(passes are kept to duty = %g of the time)",
                self.last_seconds,
                self.rest(),
                self.every,
                self.duty,
            )
        elif self._overrun and not over:
            log.info(
                "alerts: passes fit in every = %gs again (%.1fs)", self.every, self.last_seconds
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
