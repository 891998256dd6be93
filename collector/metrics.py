"""Ingest counters shared by worker processes, and the Prometheus text-format `/metrics` endpoint.

Counters live in one shared-memory array with a separate slice per ingest worker, so workers
never contend on a lock; a scrape sums the slices.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from ctypes import c_double
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import RawArray
from typing import Any, Final

from collector.errors import CollectorError

log = logging.getLogger("dunewatch.metrics")

COUNTERS: Final = (
    "received",
    "accepted",
    "duplicate",
    "rejected",
    "gap",
    "dropped",
    "batches",
    "batch_seconds_sum",
    "store_errors",
    "connects",
    "connected",
)
REJECT_REASONS: Final = (
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
    "other",
)
BATCH_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_FIELDS: Final = (
    list(COUNTERS)
    + [f"reject:{r}" for r in REJECT_REASONS]
    + [f"bucket:{b}" for b in BATCH_BUCKETS]
)
_INDEX: Final = {name: i for i, name in enumerate(_FIELDS)}


class MetricsError(CollectorError):
    """The metrics endpoint could not listen where it was told to."""


class Counters:
    """Per-worker counter slices in shared memory (picklable into spawned worker processes)."""

    def __init__(self, slots: int = 1, array: Any = None) -> None:
        self.slots = slots
        self.array: Any = array if array is not None else RawArray(c_double, slots * len(_FIELDS))

    def __getstate__(self) -> dict[str, Any]:
        return {"slots": self.slots, "array": self.array}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.slots, self.array = state["slots"], state["array"]

    def add(self, slot: int, name: str, n: float = 1) -> None:
        self.array[slot * len(_FIELDS) + _INDEX[name]] += n

    def set(self, slot: int, name: str, value: float) -> None:
        self.array[slot * len(_FIELDS) + _INDEX[name]] = value

    def reject(self, slot: int, reason: str) -> None:
        key = f"reject:{reason}" if reason in REJECT_REASONS else "reject:other"
        self.add(slot, key)
        self.add(slot, "rejected")

    def observe_batch(self, slot: int, seconds: float) -> None:
        self.add(slot, "batches")
        self.add(slot, "batch_seconds_sum", seconds)
        for b in BATCH_BUCKETS:
            if seconds <= b:
                self.add(slot, f"bucket:{b}")

    def total(self, name: str) -> float:
        i, width = _INDEX[name], len(_FIELDS)
        return float(sum(self.array[s * width + i] for s in range(self.slots)))

    def snapshot(self) -> dict[str, float]:
        return {name: self.total(name) for name in _FIELDS}


def render(counters: Counters, status_counts: Mapping[str, int], extra: Mapping[str, float]) -> str:
    """Prometheus text exposition format 0.0.4."""
    snap = counters.snapshot()
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, rows: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, val in rows:
            out.append(f"{name}{labels} {val:g}")

    metric(
        "dunewatch_ingest_messages_total",
        "counter",
        "Messages handled by ingest, by result.",
        [
            ('{result="accepted"}', snap["accepted"]),
            ('{result="duplicate"}', snap["duplicate"]),
            ('{result="rejected"}', snap["rejected"]),
        ],
    )
    metric(
        "dunewatch_ingest_received_total",
        "counter",
        "Messages received from the broker.",
        [("", snap["received"])],
    )
    metric(
        "dunewatch_ingest_rejects_total",
        "counter",
        "Rejected messages by reason code (docs/protocol.md).",
        [(f'{{reason="{r}"}}', snap[f"reject:{r}"]) for r in REJECT_REASONS],
    )
    metric(
        "dunewatch_ingest_gaps_total",
        "counter",
        "Sequence numbers found missing by ingest (telemetry loss); late arrivals that fill "
        "a hole do not decrease it.",
        [("", snap["gap"])],
    )
    metric(
        "dunewatch_ingest_agent_dropped_total",
        "counter",
        "Health reports the agents reported dropping from full outboxes.",
        [("", snap["dropped"])],
    )
    metric(
        "dunewatch_store_errors_total",
        "counter",
        "Batches that failed to commit (locked database, full disk); they are retried.",
        [("", snap["store_errors"])],
    )
    metric(
        "dunewatch_broker_connects_total",
        "counter",
        "Successful broker connections by ingest workers.",
        [("", snap["connects"])],
    )
    metric(
        "dunewatch_broker_connected",
        "gauge",
        "Ingest workers currently connected to the broker.",
        [("", snap["connected"])],
    )
    rows = [(f'_bucket{{le="{b}"}}', snap[f"bucket:{b}"]) for b in BATCH_BUCKETS]
    rows += [
        ('_bucket{le="+Inf"}', snap["batches"]),
        ("_sum", snap["batch_seconds_sum"]),
        ("_count", snap["batches"]),
    ]
    out.append("# HELP dunewatch_batch_seconds Time to commit one ingest batch.")
    out.append("# TYPE dunewatch_batch_seconds histogram")
    for suffix, val in rows:
        out.append(f"dunewatch_batch_seconds{suffix} {val:g}")
    metric(
        "dunewatch_devices",
        "gauge",
        "Devices by liveness status.",
        [(f'{{status="{s}"}}', float(n)) for s, n in sorted(status_counts.items())],
    )
    for name, val in sorted(extra.items()):
        kind = "counter" if name.endswith("_total") else "gauge"
        metric(name, kind, name.replace("_", " ") + ".", [("", val)])
    return "\n".join(out) + "\n"


class MetricsServer:
    """`GET /metrics` on a loopback address by default, served from a daemon thread."""

    def __init__(self, listen: str, body: Callable[[], str]) -> None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise MetricsError(f"metrics listen address {listen!r} must be HOST:PORT")
        self.host, self.port = host.strip("[]"), int(port)
        self._body = body
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        body = self._body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                try:
                    data = body().encode()
                except Exception as exc:  # a scrape must never kill the collector
                    log.warning("metrics: %s", exc)
                    self.send_error(500, "metrics failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise MetricsError(
                f"metrics: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
