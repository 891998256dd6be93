"""`collector serve`: ingest sources, liveness sweep, maintenance, alert loop and `/metrics`.

The serve loop owns one store connection for the sweep and maintenance; every ingest source
gets its own connection (SQLite serialises the writers), so no connection is shared between
threads.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from collector.config import CollectorConfig, ConfigError
from collector.ingest import IngestSource, StoreOpener, make_source
from collector.ingest.mqtt import MqttSource, settle_gc
from collector.metrics import Counters, MetricsServer, render
from collector.store.interface import Store, StoreError

if TYPE_CHECKING:
    from collector.alerts.service import AlertService

log = logging.getLogger("dunewatch.collector")

MAINTENANCE_SECONDS = 60.0


class Collector:
    """The collector process: construct with a validated config, then start(), run(), stop()."""

    def __init__(self, config: CollectorConfig, sources: Sequence[IngestSource] = ()) -> None:
        self.config = config
        self.opener = StoreOpener(
            config.store.path,
            {
                "retention_days": config.store.retention_days,
                "rollup_retention_days": config.store.rollup_retention_days,
                "rollup_bucket": config.store.rollup_bucket_seconds,
                "coarse_bucket": config.store.coarse_rollup_bucket_seconds,
                "coarse_retention_days": config.store.coarse_rollup_retention_days,
                "cache_mb": config.store.cache_mb,
                "liveness": config.liveness,
            },
        )
        self.counters = Counters(config.ingest.workers)
        # ingest connections leave WAL checkpoints to this loop (see run())
        self.ingest_opener = StoreOpener(
            config.store.path, {**self.opener.options, "autocheckpoint": False}
        )
        self.mqtt = MqttSource(config.broker, config.ingest, self.ingest_opener, self.counters)
        self.sources: list[IngestSource] = [
            make_source(t, config, self.opener) for t in config.sources if t.get("type") != "mqtt"
        ]
        self.sources += list(sources)
        self.stop_event = threading.Event()
        self.store: Store | None = None
        self._source_stores: list[Store] = []
        self.metrics: MetricsServer | None = None
        self._status_counts: dict[str, int] = {}
        self._sweep_errors = 0
        self._maintenance_cpu = 0.0  # CPU time of rollups and retention (this thread's)
        self._maintenance_seconds = 0.0  # how long the last maintenance took
        self.alerts = build_alert_service(config)

    def start(self) -> None:
        self.store = self.opener.open()
        self._status_counts = self.store.status_counts()
        if self.config.metrics_listen:
            self.metrics = MetricsServer(self.config.metrics_listen, self.metrics_text)
            self.metrics.start()
            log.info("metrics on http://%s:%d/metrics", self.metrics.host, self.metrics.port)
        if self.config.ingest.workers == 1:
            ingest_store = self.ingest_opener.open()
            self._source_stores.append(ingest_store)
            self.mqtt.start(ingest_store)
        else:
            self.mqtt.start(self.store)  # each worker process opens its own connection
        for src in self.sources:
            st = self.opener.open()
            self._source_stores.append(st)
            src.start(st)
            log.info("source %s started", src.name)
        if self.alerts is not None:
            self.alerts.start()
            log.info("alerts evaluated every %gs", self.alerts.every)

    def metrics_text(self) -> str:
        extra = {
            "dunewatch_sweep_errors": float(self._sweep_errors),
            "dunewatch_maintenance_seconds": self._maintenance_seconds,
            "dunewatch_maintenance_cpu_seconds_total": self._maintenance_cpu,
        }
        if self.alerts is not None:
            extra["dunewatch_alert_passes"] = float(self.alerts.passes)
            extra["dunewatch_alert_full_passes"] = float(self.alerts.full_passes)
            extra["dunewatch_alert_full_pass_seconds"] = self.alerts.full_seconds
            extra["dunewatch_alert_failures"] = float(self.alerts.failures)
            extra["dunewatch_alert_pass_seconds"] = self.alerts.last_seconds
            extra["dunewatch_alert_cpu_seconds_total"] = self.alerts.cpu_seconds
        return render(self.counters, self._status_counts, extra)

    def tick(self, now: float) -> None:
        """One liveness sweep; errors are logged and counted, the loop goes on."""
        assert self.store is not None
        try:
            for t in self.store.sweep_liveness(now, self.config.liveness):
                log.info("device %s %s -> %s (%s)", t.device_id, t.old, t.new, t.reason)
            self._status_counts = self.store.status_counts()
        except StoreError as exc:
            self._sweep_errors += 1
            log.error("liveness sweep failed: %s", exc)

    def maintain(self, now: float) -> None:
        assert self.store is not None
        started, cpu = time.monotonic(), time.thread_time()
        try:
            removed = self.store.prune(now)
            if removed:
                log.info("retention: removed %d raw health rows (rollups kept)", removed)
        except StoreError as exc:
            log.error("maintenance failed: %s", exc)
        finally:
            self._maintenance_cpu += time.thread_time() - cpu
            self._maintenance_seconds = time.monotonic() - started

    def run(self) -> None:
        """Sweep, checkpoint and maintain until stop_event is set (SIGTERM/SIGINT or caller)."""
        assert self.store is not None
        step = min(1.0, self.config.sweep_seconds)
        next_sweep = time.monotonic() + self.config.sweep_seconds
        next_maint = time.monotonic() + MAINTENANCE_SECONDS
        while not self.stop_event.wait(step):
            try:
                self.store.checkpoint()
            except StoreError as exc:
                log.warning("checkpoint: %s", exc)
            now = time.monotonic()
            if now >= next_sweep:
                self.tick(time.time())
                next_sweep = now + self.config.sweep_seconds
            if now >= next_maint:
                self.maintain(time.time())
                next_maint = now + MAINTENANCE_SECONDS
            if not self.mqtt.alive():
                log.error("an ingest worker died; stopping so a supervisor can restart us")
                break

    def stop(self) -> None:
        """Flush and acknowledge the current batches, then close everything."""
        if self.alerts is not None:
            self.alerts.stop()  # cancels a running pass before it changes any alert
        for src in reversed(self.sources):
            try:
                src.stop()
            except Exception as exc:  # one bad source must not keep the batch unflushed
                log.error("source %s failed to stop: %s", src.name, exc)
        self.mqtt.stop()
        if self.metrics is not None:
            self.metrics.stop()
        for st in self._source_stores:
            st.close()
        self._source_stores = []
        if self.store is not None:
            self.store.close()
            self.store = None


def build_alert_service(config: CollectorConfig) -> AlertService | None:
    """The alert loop of `[alerts]`, its files read and checked now (None when disabled)."""
    settings = config.alerts
    if not settings.enabled:
        return None
    from collector.alerts.config import load_config
    from collector.alerts.service import AlertService
    from collector.sinks import load_sinks
    from sbom.errors import SbomError

    policy = None
    if settings.policy_file is not None:
        from sbom.policy import load_policy

        try:
            policy = load_policy(settings.policy_file)
        except SbomError as exc:
            raise ConfigError(f"alerts policy: {exc}") from None
    return AlertService(
        config.store.path,
        config=load_config(settings.config_file),
        sinks=load_sinks(settings.sinks_file) if settings.sinks_file is not None else (),
        every=settings.every,
        duty=settings.duty,
        full_duty=settings.full_duty,
        policy=policy,
    )


def serve(config: CollectorConfig) -> int:
    """Run until SIGTERM or SIGINT; the current batch is committed and acked before exit."""
    collector = Collector(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: flushing and stopping", signum)
        collector.stop_event.set()

    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_int = signal.signal(signal.SIGINT, on_signal)
    try:
        collector.start()
        settle_gc()
        collector.run()
    finally:
        collector.stop()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    log.info("collector stopped")
    return 0
