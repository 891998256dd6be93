"""The agent's main loop: schedule probes and inventory, keep the outbox, feed the publisher.

One thread owns the outbox and the schedule; paho's network thread only reports results and wakes
it through a pipe. Signals arrive through the same pipe (signal.set_wakeup_fd), so SIGTERM/SIGINT
(publish `offline`, flush, exit) and SIGHUP (reload the configuration) are handled promptly
without polling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from agent import __version__
from agent import envelope as wire
from agent.config import AgentConfig, load
from agent.errors import AgentError, ConfigError
from agent.outbox import Outbox
from agent.publish.interface import Publisher, PublishError

log = logging.getLogger("dunewatch.agent")

AGENT_VERSION = __version__
# After SIGTERM, how long to keep delivering what the outbox holds before disconnecting.
FLUSH_SECONDS = 5.0
# ACL denials of the same topic are reported as an event at most this often.
DENIAL_EVENT_EVERY = 600.0

InventoryFn = Callable[[AgentConfig], dict[str, Any]]
PublisherFactory = Callable[[AgentConfig, str, Callable[[], None]], Publisher]


def default_inventory(cfg: AgentConfig) -> dict[str, Any]:
    from agent.inventory_job import collect_in_child

    return collect_in_child(Path(cfg.agent.host_root), cfg.device)


def mqtt_publisher(cfg: AgentConfig, boot_id: str, wake: Callable[[], None]) -> Publisher:
    from agent.publish.mqtt import MqttPublisher, MqttSettings

    b = cfg.broker
    settings = MqttSettings.from_url(
        b.url,
        cfg.agent.device_id,
        boot_id=boot_id,
        root=cfg.agent.root,
        username=cfg.username,
        password=cfg.password(),
        client_id=cfg.client_id,
        protocol=b.protocol,
        ca_file=b.ca_file,
        cert_file=b.cert_file,
        key_file=b.key_file,
        keepalive=b.keepalive,
        window=b.window,
        backoff_min=b.backoff_min,
        backoff_max=b.backoff_max,
        birth_extra={"agent_version": AGENT_VERSION, "interval": cfg.agent.interval},
    )
    return MqttPublisher(settings, on_event=wake)


class _Waker:
    """A self-pipe: paho's thread and signal handlers wake the loop's select()."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def wake(self) -> None:
        # a full pipe means the loop is awake anyway
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.w, b"x")

    def wait(self, timeout: float) -> None:
        if timeout > 0:
            with contextlib.suppress(InterruptedError):
                select.select([self.r], [], [], timeout)
        try:
            while os.read(self.r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)


class Agent:
    """Runs until stop() or SIGTERM/SIGINT; all outbox access happens on the calling thread."""

    def __init__(
        self,
        cfg: AgentConfig,
        config_path: Path | None = None,
        flags: Mapping[tuple[str, str], Any] | None = None,
        publisher_factory: PublisherFactory = mqtt_publisher,
        inventory_fn: InventoryFn | None = None,
    ) -> None:
        """inventory_fn returns an inventory body; None (the default) has the inventory child
        build and encode the whole envelope, so the package list never becomes objects here."""
        self.cfg = cfg
        self.config_path = config_path
        self.flags = dict(flags or {})
        self.publisher_factory = publisher_factory
        self.inventory_fn = inventory_fn
        self.boot_id = wire.new_boot_id()
        self.seq = 0
        self.dropped = 0
        self.errors = 0
        self._waker: _Waker | None = None
        self._stop = False
        self._reload = False
        self._inflight: set[int] = set()
        self._last_inventory_hash: str | None = None
        self._denial_reported: dict[str, float] = {}
        self.outbox: Outbox | None = None
        self.publisher: Publisher | None = None
        self._probes: list[Any] = []

    # -- public ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe)."""
        self._stop = True
        if self._waker is not None:
            self._waker.wake()

    def run(self) -> None:
        waker = self._waker = _Waker()
        old_handlers = self._install_signals(waker)
        try:
            self._run(waker)
        finally:
            self._restore_signals(old_handlers)
            waker.close()
            self._waker = None

    # -- loop ------------------------------------------------------------------------------

    def _run(self, waker: _Waker) -> None:
        cfg = self.cfg
        self.outbox = Outbox(Path(cfg.outbox.path), cfg.outbox.max_bytes, cfg.outbox.max_age)
        reset = self.outbox.open()
        try:
            if reset:
                self._event({"type": wire.EVENT_OUTBOX_RESET, "detail": reset})
            self._build_probes()
            self.publisher = self.publisher_factory(cfg, self.boot_id, waker.wake)
            self.publisher.start()
            log.info(
                "agent %s started: device %s, boot %s, every %ss, outbox %s (%d queued)",
                AGENT_VERSION,
                cfg.agent.device_id,
                self.boot_id,
                cfg.agent.interval,
                cfg.outbox.path,
                self.outbox.depth,
            )
            start = time.monotonic()
            next_health = start
            next_inventory = start
            while not self._stop:
                now = time.monotonic()
                if self._reload:
                    self._reload = False
                    start, next_health = self._do_reload(now, start, next_health)
                    next_inventory = now
                if now >= next_health:
                    self._health()
                    # fixed grid from `start`: a slow probe never shifts later reports (no drift)
                    interval = self.cfg.agent.interval
                    k = int((now - start) // interval) + 1
                    next_health = start + k * interval
                if now >= next_inventory:
                    self._inventory()
                    next_inventory = now + self.cfg.agent.inventory_check
                try:
                    self._pump()
                except (AgentError, sqlite3.Error, OSError) as exc:
                    # e.g. disk full under the outbox: log, count, retry at the next wake-up
                    self.errors += 1
                    log.error("delivery step failed (%d so far): %s", self.errors, exc)
                    waker.wait(min(1.0, max(0.0, next_health - time.monotonic())))
                timeout = min(next_health, next_inventory) - time.monotonic()
                waker.wait(max(0.0, timeout))
            self._shutdown()
        finally:
            self.outbox.close()

    def _build_probes(self) -> None:
        from agent.probes import build_probes

        p = self.cfg.probes
        self._probes = build_probes(
            p.enabled,
            root=Path(self.cfg.agent.host_root),
            mounts=p.mounts,
            interfaces=p.interfaces,
            agent_stats=self._agent_stats,
        )

    def _agent_stats(self) -> dict[str, int | float]:
        ob = self.outbox
        pub = self.publisher.stats() if self.publisher is not None else {}
        return {
            "outbox": ob.depth if ob else 0,
            "outbox_bytes": ob.bytes if ob else 0,
            "drops": self.dropped,
            "reconnects": pub.get("reconnects", 0),
            "denied": pub.get("denied", 0),
        }

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _enqueue(self, kind: str, body: Mapping[str, Any]) -> None:
        assert self.outbox is not None
        env = wire.make(self.cfg.agent.device_id, self.boot_id, self._next_seq(), kind, body)
        topic = wire.topic(self.cfg.agent.root, env.device_id, kind)
        before = self.outbox.depth
        self.outbox.put(env, topic, retain=wire.RETAIN[kind])
        lost = before + 1 - self.outbox.depth
        if lost > 0:
            self.dropped += lost

    def _event(self, body: Mapping[str, Any]) -> None:
        self._enqueue(wire.KIND_EVENT, body)

    def _health(self) -> None:
        from agent.probes import run_probes

        body = run_probes(self._probes, self.cfg.agent.interval)
        try:
            self._enqueue(wire.KIND_HEALTH, body)
        except (AgentError, wire.EnvelopeError) as exc:
            self.errors += 1
            log.error("health report not stored: %s", exc)

    def _inventory(self) -> None:
        if self.inventory_fn is None:
            self._inventory_encoded()
            return
        try:
            body = self.inventory_fn(self.cfg)
        except Exception as exc:  # a broken reader must not stop health reporting
            log.error("inventory failed: %s: %s", type(exc).__name__, exc)
            return
        if body.get("hash") == self._last_inventory_hash:
            return
        try:
            self._enqueue(wire.KIND_INVENTORY, body)
        except (AgentError, wire.EnvelopeError) as exc:
            log.error("inventory not stored: %s", exc)
            return
        self._last_inventory_hash = body.get("hash")
        log.info(
            "inventory queued (%d packages, hash %s)",
            len(body.get("packages", [])),
            str(body.get("hash"))[:12],
        )

    def _inventory_encoded(self) -> None:
        from agent.inventory_job import encode_in_child

        assert self.outbox is not None
        cfg = self.cfg
        seq = self.seq + 1  # taken only if the inventory is stored
        try:
            inv = encode_in_child(
                Path(cfg.agent.host_root), cfg.device, cfg.agent.device_id, self.boot_id, seq
            )
        except Exception as exc:  # a broken reader must not stop health reporting
            log.error("inventory failed: %s: %s", type(exc).__name__, exc)
            return
        if inv.hash == self._last_inventory_hash:
            return
        kind = wire.KIND_INVENTORY
        before = self.outbox.depth
        try:
            self.outbox.put_encoded(
                self.boot_id,
                seq,
                inv.ts,
                kind,
                wire.topic(cfg.agent.root, cfg.agent.device_id, kind),
                inv.payload,
                retain=wire.RETAIN[kind],
            )
        except AgentError as exc:
            log.error("inventory not stored: %s", exc)
            return
        self.seq = seq
        lost = before + 1 - self.outbox.depth
        if lost > 0:
            self.dropped += lost
        self._last_inventory_hash = inv.hash
        log.info("inventory queued (%d packages, hash %s)", inv.packages, inv.hash[:12])

    def _pump(self) -> None:
        """Apply broker results, account drops, and send what the window allows."""
        pub, ob = self.publisher, self.outbox
        assert pub is not None and ob is not None
        acked: list[int] = []
        for res in pub.drain():
            if not isinstance(res.token, int):
                continue
            self._inflight.discard(res.token)
            acked.append(res.token)  # denied messages leave the outbox too: retrying cannot help
            if not res.ok:
                self._report_denial(res.topic, res.reason)
        if acked:
            ob.ack(acked)
        if not pub.connected:
            return
        if ob.has_drops():
            for d in ob.take_drops():
                self._event(
                    {
                        "type": wire.EVENT_DROP,
                        "count": d.count,
                        "first_seq": d.first_seq,
                        "last_seq": d.last_seq,
                        "first_ts": d.first_ts,
                        "last_ts": d.last_ts,
                        "boot": d.boot,
                        "reason": d.reason,
                    }
                )
        free = pub.free_slots()
        if free <= 0:
            return
        after = max(self._inflight) if self._inflight else 0
        for row in ob.pending(free, after=after):
            try:
                pub.send(row.topic, row.payload, retain=row.retain, token=row.id)
            except PublishError as exc:
                log.debug("send paused: %s", exc)
                break
            self._inflight.add(row.id)

    def _report_denial(self, topic: str, reason: str) -> None:
        now = time.monotonic()
        last = self._denial_reported.get(topic)
        if last is not None and now - last < DENIAL_EVENT_EVERY:
            return
        self._denial_reported[topic] = now
        if topic.endswith("/" + wire.KIND_EVENT):
            return  # our own error events are refused too: reporting them again would loop
        self._event(
            {
                "type": wire.EVENT_AGENT_ERROR,
                "detail": f"publish denied by broker ({reason}) on {topic}",
            }
        )

    def _shutdown(self) -> None:
        """Deliver what we can within FLUSH_SECONDS, then publish `offline` and disconnect."""
        pub, ob = self.publisher, self.outbox
        assert pub is not None and ob is not None
        deadline = time.monotonic() + FLUSH_SECONDS
        while pub.connected and ob.depth > 0 and time.monotonic() < deadline:
            self._pump()
            if self._waker is not None:
                self._waker.wait(min(0.2, deadline - time.monotonic()))
        self._pump()
        offline = wire.state(self.cfg.agent.device_id, self.boot_id, False, "shutdown")
        pub.stop(offline=offline, timeout=max(1.0, deadline - time.monotonic()))
        log.info("agent stopped; %d message(s) kept in the outbox for the next start", ob.depth)

    # -- reload ----------------------------------------------------------------------------

    def _do_reload(self, now: float, start: float, next_health: float) -> tuple[float, float]:
        if self.config_path is None and not self.flags:
            log.info("SIGHUP: no configuration file to reload")
            return start, next_health
        try:
            new = load(self.config_path, flags=self.flags)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                log.error("reload rejected, keeping the running configuration: %s", line)
            return start, next_health
        old = self.cfg
        if new.outbox != old.outbox or new.agent.device_id != old.agent.device_id:
            log.warning("reload: outbox and device_id changes take effect after a restart")
            new = replace(
                new, outbox=old.outbox, agent=replace(new.agent, device_id=old.agent.device_id)
            )
        self.cfg = new
        self._build_probes()
        self._last_inventory_hash = None if new.device != old.device else self._last_inventory_hash
        if new.broker != old.broker or new.agent.root != old.agent.root:
            log.info("reload: reconnecting with the new broker settings")
            assert self.publisher is not None and self._waker is not None
            self.publisher.stop()
            self._inflight.clear()
            self.publisher = self.publisher_factory(new, self.boot_id, self._waker.wake)
            self.publisher.start()
        log.info("configuration reloaded from %s", self.config_path)
        if new.agent.interval != old.agent.interval:
            return now, now
        return start, next_health

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self, waker: _Waker) -> dict[int, Any]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}  # embedded use (tests): the owner calls stop()

        def on_stop(signum: int, frame: FrameType | None) -> None:
            self._stop = True

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self._reload = True

        old: dict[int, Any] = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, on_stop),
            signal.SIGINT: signal.signal(signal.SIGINT, on_stop),
            signal.SIGHUP: signal.signal(signal.SIGHUP, on_hup),
        }
        old[-1] = signal.set_wakeup_fd(waker.w, warn_on_full_buffer=False)
        return old

    def _restore_signals(self, old: dict[int, Any]) -> None:
        if not old:
            return
        signal.set_wakeup_fd(old.pop(-1))
        for signum, handler in old.items():
            signal.signal(signum, handler)
