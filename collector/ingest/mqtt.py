"""MQTT ingest: subscribe to the contract's topics, validate, batch into the store, then ack.

Durability: a persistent session (MQTT 5 clean_start=False with a session expiry, or 3.1.1
clean_session=False), QoS 1 and paho's manual acknowledgement. A message is PUBACKed only
after the batch holding it is committed, so a collector that dies loses nothing the broker
handed over: the broker re-sends the unacknowledged messages and the store's dedupe key
(device, boot, seq) drops the ones already stored.

Scale: one paho client parses about 13,500 messages/s on this kind of machine, so with
`workers > 1` each worker is a separate process with its own client on an MQTT shared
subscription (`$share/<group>/...`) and its own store connection; SQLite serialises their
short batch transactions.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import threading
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.envelope import (
    DEVICE_ID_RE,
    KIND_HEALTH,
    Envelope,
    EnvelopeError,
    parse,
    subscription,
)
from collector.config import BrokerSettings, IngestSettings
from collector.ingest.interface import IngestError, StoreOpener
from collector.metrics import Counters
from collector.store.interface import HEALTH_BODY_KEYS, Reject, Store, StoreError

log = logging.getLogger("dunewatch.ingest")

DEFAULT_SHARE_GROUP = "dunewatch"
# The stream paused: the broker is probably waiting for our acks (its in-flight window is full).
# A short pause ends the batch once it holds IDLE_MIN_ROWS messages; any pause of STALL_SECONDS
# ends it whatever its size (brokers with tiny windows); otherwise batch_rows or batch_ms do.
IDLE_FLUSH_SECONDS = 0.01
IDLE_MIN_ROWS = 64
STALL_SECONDS = 0.05
# A reader waits once this many batches' worth of messages wait for their commit (the other
# worker holds the commit lock, or the store keeps failing): memory stays bounded (about 4 KB
# per parsed message) and the broker keeps the rest. Draining a backlog, batches grow to
# 20,000-25,000 messages while the workers take turns, and that is what makes the drain fast
# (a cap of 4 batches halved the rate), so the cap sits well above it.
MAX_PENDING_BATCHES = 25
COMMIT_LOCK_WAIT = 5.0  # past this, go ahead anyway: SQLite's own locking still holds
# Young-generation threshold of the cyclic GC in collector processes (CPython's default is 700).
GC_YOUNG_THRESHOLD = 20_000
_Item = Envelope | Reject


def slim_health(env: Envelope) -> Envelope:
    """A validated health report as its batch needs it: the store keeps the raw payload and
    reads only HEALTH_BODY_KEYS of the body. Draining a backlog, a batch holds tens of thousands
    of reports; without their parsed bodies it drains 10-15 % faster (BENCHMARKS.md)."""
    body = env.body
    kept = {k: body[k] for k in HEALTH_BODY_KEYS if k in body}
    return Envelope(env.device_id, env.boot_id, env.seq, env.ts, env.kind, kept, env.v)


class Consumer:
    """One MQTT client feeding one store: paho's network thread plus a batch-commit thread."""

    def __init__(
        self,
        broker: BrokerSettings,
        ingest: IngestSettings,
        store: Store,
        counters: Counters,
        slot: int = 0,
        client_id: str | None = None,
        share_group: str | None = None,
    ) -> None:
        self.broker = broker
        self.ingest = ingest
        self.store = store
        self.counters = counters
        self.slot = slot
        self.client_id = client_id or broker.client_id
        group = share_group if share_group is not None else broker.share_group
        self.topic = subscription(broker.root, "+", group)
        self._v5 = broker.protocol == "5"
        self._cond = threading.Condition()
        self._pending: list[tuple[int, int, int, _Item, bytes]] = []
        self._gen = 0
        self._last_arrival = 0.0
        self._batch_started = time.monotonic()
        self._stopping = False
        self._stop_wait = threading.Event()
        self._client: mqtt.Client | None = None
        self._flusher: threading.Thread | None = None
        self._warned: set[str] = set()
        self.last_error = ""
        # set by MqttSource for worker processes sharing one database (multiprocessing.Lock)
        self.commit_lock: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"ingest-flush-{self.slot}", daemon=True
        )
        self._flusher.start()
        self._start_network()

    def _start_network(self) -> None:
        proto = MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if self._v5 else False,
            protocol=proto,
            manual_ack=True,
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(
                ca_certs=self.broker.ca_file,
                certfile=self.broker.cert_file,
                keyfile=self.broker.key_file,
            )
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = None
        kwargs: dict[str, Any] = {}
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.broker.session_expiry
            props.ReceiveMaximum = self.ingest.max_inflight
            kwargs["clean_start"] = False
        self._client = client
        try:
            client.connect_async(
                self.broker.host,
                self.broker.port,
                keepalive=self.broker.keepalive,
                properties=props,
                **kwargs,
            )
        except (OSError, ValueError) as exc:
            raise IngestError(f"mqtt ingest: cannot connect to {self.broker.url}: {exc}") from None
        client.loop_start()

    def stop(self) -> None:
        """Commit and acknowledge what has arrived, then disconnect (the session stays)."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._stop_wait.set()
        if self._flusher is not None:
            self._flusher.join(timeout=60)
        self._stop_network()

    def _stop_network(self) -> None:
        client = self._client
        if client is not None:
            client.disconnect()
            client.loop_stop()

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused connection: {reason}"
            log.error("mqtt ingest %s: %s", self.client_id, self.last_error)
            return
        self._connected()
        if self._v5:
            # retainHandling=1: retained messages only when the subscription is new
            client.subscribe(self.topic, options=SubscribeOptions(qos=1, retainHandling=1))
        else:
            client.subscribe(self.topic, qos=1)
        log.info(
            "mqtt ingest %s: connected to %s, subscribed to %s",
            self.client_id,
            self.broker.url,
            self.topic,
        )

    def _connected(self) -> None:
        """A new connection: acks owed on the old one are void (the broker re-sends those)."""
        with self._cond:
            self._gen += 1
        self.counters.add(self.slot, "connects")
        self.counters.set(self.slot, "connected", 1)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.counters.set(self.slot, "connected", 0)
        if not self._stopping:
            log.warning("mqtt ingest %s: disconnected (%s); reconnecting", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)[:200]
        payload = msg.payload if isinstance(msg.payload, bytes) else bytes(msg.payload)
        self.deliver(topic, payload, msg.mid, msg.qos)

    def deliver(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """Validate one message and queue it for the next batch (called by the reader)."""
        self.deliver_many([(topic, payload, mid, qos)])

    def deliver_many(self, messages: list[tuple[str, bytes, int, int]]) -> None:
        """Validate messages (topic, payload, packet id, QoS) and queue them in arrival order;
        a reader that has several at once takes the batch lock once for all of them."""
        root, limit = self.broker.root, self.ingest.max_payload
        items: list[tuple[int, int, _Item, bytes]] = []
        for topic, payload, mid, qos in messages:
            item: _Item
            try:
                item = parse(payload, topic, root, limit)
                if item.kind == KIND_HEALTH:
                    item = slim_health(item)
            except EnvelopeError as exc:
                item = self._reject(time.time(), topic, exc.reason, exc.detail, len(payload))
            except Exception as exc:  # the parser must never take the collector down
                detail = f"{type(exc).__name__}: {exc}"
                item = self._reject(time.time(), topic, "other", detail, len(payload))
            items.append((mid, qos, item, payload))
        with self._cond:
            arrival = time.monotonic()
            if not self._pending:  # the first message of a batch: its age and fill rate start
                self._batch_started = arrival
            gen = self._gen
            self._pending.extend([(gen, *it) for it in items])
            self._last_arrival = arrival
            if len(self._pending) >= self.ingest.batch_rows:
                self._cond.notify()
            cap = MAX_PENDING_BATCHES * self.ingest.batch_rows
            if len(self._pending) >= cap:
                self._cond.wait_for(lambda: len(self._pending) < cap or self._stopping)
        self.counters.add(self.slot, "received", len(items))

    def deliver_reject(
        self, topic: str, reason: str, detail: str, size: int, mid: int, qos: int
    ) -> None:
        """Queue a reject decided by the reader itself (a packet too large to hold)."""
        item = self._reject(time.time(), topic, reason, detail, size)
        with self._cond:
            self._pending.append((self._gen, mid, qos, item, b""))
            self._last_arrival = time.monotonic()
        self.counters.add(self.slot, "received")

    def _reject(self, now: float, topic: str, reason: str, detail: str, size: int) -> Reject:
        # count the reject against the device named by the topic level, when it is a valid id
        prefix = f"{self.broker.root}/v1/"
        dev: str | None = None
        if topic.startswith(prefix):
            level = topic[len(prefix) :].split("/", 1)[0]
            if DEVICE_ID_RE.match(level):
                dev = level
        return Reject(now, topic, reason, detail, dev, size)

    # -- batching (flush thread) --------------------------------------------------------------

    def _flush_loop(self) -> None:
        """Commit when the batch is full, when `batch_ms` passed, or when the stream pauses.

        The pause rule matters for throughput: the broker stops sending once its in-flight
        window of unacknowledged messages is full, and we acknowledge only after a commit, so
        waiting for a full batch would stall whenever the window is smaller than the batch. Short
        pauses in a live stream do not end tiny batches, which keeps the cost per message low.
        """
        idle = min(IDLE_FLUSH_SECONDS, self.ingest.batch_ms / 1000.0) + self.read_pause
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: len(self._pending) >= self.ingest.batch_rows or self._stopping,
                    timeout=idle,
                )
                batch = self._take_batch()
                if batch is None:
                    if self._stopping and not self._pending:
                        return
                    continue
            self._flush(batch)

    read_pause = 0.0  # seconds the reader may wait between reads (the lean reader's rule)

    def _due(self, now: float) -> bool:
        """Whether the pending batch should be committed now (call with the lock held).

        A reader that pauses between reads makes every stream look quiet for that long, so
        the pause rules count from the end of its pause."""
        pending = len(self._pending)
        if not pending:
            return False
        idle = min(IDLE_FLUSH_SECONDS, self.ingest.batch_ms / 1000.0) + self.read_pause
        quiet = now - self._last_arrival
        return (
            self._stopping
            or pending >= self.ingest.batch_rows
            or now - self._batch_started >= self.ingest.batch_ms / 1000.0
            or (quiet >= idle and pending >= IDLE_MIN_ROWS)
            or quiet >= STALL_SECONDS + self.read_pause
        )

    def _take_batch(
        self, force: bool = False, now: float | None = None
    ) -> list[tuple[int, int, int, _Item, bytes]] | None:
        """The pending batch when it is due (call with the lock held), else None."""
        if now is None:
            now = time.monotonic()
        if not self._pending:
            self._batch_started = now
            return None
        if not (force or self._due(now)):
            return None
        batch, self._pending = self._pending, []
        self._batch_started = now
        self._cond.notify_all()  # a reader may wait for room
        return batch

    def _flush(self, batch: list[tuple[int, int, int, _Item, bytes]]) -> None:
        envs: list[Envelope] = []
        raws: list[bytes] = []
        rejects: list[Reject] = []
        for _, _, _, it, payload in batch:
            if isinstance(it, Envelope):
                envs.append(it)
                raws.append(payload)
            else:
                rejects.append(it)
        delay = 0.2
        attempts = 0
        while True:
            t0 = time.monotonic()
            # worker processes take turns at the database through a shared lock: a worker that
            # waits on it wakes the moment the other commits, where SQLite's busy handler
            # would sleep in steps of up to 100 ms
            lock = self.commit_lock
            held = lock.acquire(timeout=COMMIT_LOCK_WAIT) if lock is not None else False
            failed: Exception | None = None
            try:
                result = self.store.apply(envs, time.time(), raws)
                self.store.record_rejects(rejects)
            except Exception as exc:  # StoreError, or a bug: either way keep the batch, retry
                failed = exc
            finally:
                if held:
                    lock.release()
            if failed is None:
                break
            attempts += 1
            self.counters.add(self.slot, "store_errors")
            self.last_error = str(failed)
            if isinstance(failed, StoreError):
                log.error("ingest: batch of %d not stored, will retry: %s", len(batch), failed)
            else:
                log.error("ingest: batch of %d not stored, will retry", len(batch), exc_info=failed)
            if self._stopping and attempts >= 3:
                # unacknowledged: the broker keeps them for our session
                log.error("ingest: giving up on %d messages at shutdown", len(batch))
                return
            self._pause(delay)
            delay = min(delay * 2, 10.0)
        self.counters.observe_batch(self.slot, time.monotonic() - t0)
        c, s = self.counters, self.slot
        c.add(s, "accepted", result.accepted)
        c.add(s, "duplicate", result.duplicates)
        if result.gaps > 0:  # a counter: holes found; late arrivals that fill them do not count
            c.add(s, "gap", result.gaps)
        c.add(s, "dropped", result.dropped)
        for r in rejects:
            c.reject(s, r.reason)
        if result.unenrolled:
            shown = ", ".join(result.unenrolled[:5])
            more = len(result.unenrolled) - 5
            log.warning(
                "new device(s) reporting without enrollment (flagged): %s%s",
                shown,
                f" and {more} more" if more > 0 else "",
            )
        self._ack(batch)

    def _pause(self, seconds: float) -> None:
        """Wait before retrying a batch the store refused (returns early when stopping)."""
        self._stop_wait.wait(seconds)

    def _ack(self, batch: list[tuple[int, int, int, _Item, bytes]]) -> None:
        gen = self._gen
        # a message from an earlier connection is re-sent by the broker; the store dedupes
        # it, and acking its old packet id here could hit an unrelated message
        mids = [mid for g, mid, qos, _, _ in batch if qos > 0 and g == gen]
        if mids:
            self._send_acks(mids)

    def _send_acks(self, mids: list[int]) -> None:
        client = self._client
        if client is not None:
            for mid in mids:
                client.ack(mid, 1)


def make_consumer(
    broker: BrokerSettings,
    ingest: IngestSettings,
    store: Store,
    counters: Counters,
    slot: int = 0,
    client_id: str | None = None,
    share_group: str | None = None,
) -> Consumer:
    """The consumer for `ingest.reader`: paho-mqtt, or the lean standard-library reader."""
    if ingest.reader == "lean":
        from collector.ingest.lean import LeanConsumer

        lean: Consumer = LeanConsumer(broker, ingest, store, counters, slot, client_id, share_group)
        return lean
    return Consumer(broker, ingest, store, counters, slot, client_id, share_group)


class MqttSource:
    """The MQTT ingest source: one consumer in-process, or `workers` processes."""

    name = "mqtt"

    def __init__(
        self,
        broker: BrokerSettings,
        ingest: IngestSettings,
        opener: StoreOpener | None = None,
        counters: Counters | None = None,
    ) -> None:
        if ingest.workers > 1 and opener is None:
            raise IngestError("mqtt ingest: worker processes need the store path to open")
        self.broker = broker
        self.ingest = ingest
        self.opener = opener
        self.counters = counters or Counters(ingest.workers)
        self._consumer: Consumer | None = None
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._stop_event: MpEvent | None = None
        self._commit_lock: Any = None

    def start(self, store: Store) -> None:
        if self.ingest.workers == 1:
            self._consumer = make_consumer(
                self.broker,
                self.ingest,
                store,
                self.counters,
                0,
                share_group=self.broker.share_group,
            )
            self._consumer.start()
            return
        ctx = multiprocessing.get_context("spawn")
        self._stop_event = ctx.Event()
        # kept on self: the children unpickle it after start() returns
        self._commit_lock = commit_lock = ctx.Lock()
        group = self.broker.share_group or DEFAULT_SHARE_GROUP
        for i in range(self.ingest.workers):
            proc = ctx.Process(
                target=worker_main,
                args=(
                    self.broker,
                    self.ingest,
                    self.opener,
                    self.counters,
                    i,
                    group,
                    self._stop_event,
                    logging.getLogger().level,
                    commit_lock,
                ),
                name=f"dunewatch-ingest-{i}",
                daemon=False,
            )
            proc.start()
            self._procs.append(proc)

    def alive(self) -> bool:
        if self._consumer is not None:
            return True
        return all(p.is_alive() for p in self._procs)

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
            self._consumer = None
        if self._stop_event is not None:
            self._stop_event.set()
        for p in self._procs:
            p.join(timeout=60)
            if p.is_alive():
                log.error("ingest worker %s did not stop; terminating", p.name)
                p.terminate()
                p.join(timeout=5)
        self._procs = []


def settle_gc() -> None:
    """Keep the cyclic GC from re-scanning what a long-running collector process holds.

    A live stream allocates a few dozen containers per message, so with CPython's defaults the
    GC ran every ~20 messages and kept traversing start-up objects and the pending batch: 12-15 %
    of an ingest worker's CPU (perf). Start-up objects are frozen out of collection, and young
    collections run every GC_YOUNG_THRESHOLD allocations; the hot path creates no reference
    cycles, so memory does not grow from it.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, second, third)


def worker_main(
    broker: BrokerSettings,
    ingest: IngestSettings,
    opener: StoreOpener,
    counters: Counters,
    slot: int,
    group: str,
    stop_event: MpEvent,
    log_level: int,
    commit_lock: Any = None,
) -> None:
    """Entry point of one ingest worker process; the parent stops it through `stop_event`."""
    from collector.logs import setup_logging

    setup_logging(verbose=log_level <= logging.DEBUG)
    # the parent coordinates shutdown: Ctrl-C or SIGTERM to the process group must not make a
    # worker exit before it has committed and acknowledged its batch
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = opener.open()
    consumer = make_consumer(
        broker,
        ingest,
        store,
        counters,
        slot,
        client_id=f"{broker.client_id}-{slot}",
        share_group=group,
    )
    consumer.commit_lock = commit_lock
    settle_gc()
    consumer.start()
    stop_event.wait()
    consumer.stop()
    store.close()
