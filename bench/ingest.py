"""Collector ingest capacity: drain a pre-queued backlog, then a live stream (simulated devices).

Everything runs on loopback against a mosquitto started here. Simulated devices publish realistic
health envelopes (docs/protocol.md) through one load-generator account; the numbers are for
*simulated* traffic on this machine. Side by side in the same run:

- `mosquitto_sub` draining the same backlog to /dev/null: the broker-side ceiling;
- a bare paho client that only parses JSON (the ceiling of one paho process);
- `dunewatch collector serve --workers N` storing the backlog into SQLite (WAL).

Then a live stream at a fixed rate (default 3,300 msg/s: 100,000 devices every 30 s) measures
the collector's CPU and the p99 publish-to-stored latency.

    python3 bench/ingest.py --devices 10000 --per-device 20 --workers 2 --reader lean
    python3 bench/ingest.py --live-only --devices 10000 --live-rate 3300 --workers 1 --reader lean
    # the city's shape: 100,000 known devices, each reporting once in 30 s
    python3 bench/ingest.py --live-only --warm-up --devices 100000 --live-rate 3300 \
        --live-seconds 30 --workers 2 --reader lean
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.broker.mosquitto import free_port, wait_for_port  # noqa: E402
from collector.broker.passwords import password_line  # noqa: E402

ROOT = "dunewatch"
TOPIC_FILTER = f"{ROOT}/v1/+/+"


def body(i: int, seq: int) -> dict[str, Any]:
    return {
        "interval": 30,
        "cpu": {"pct": (i * 7 + seq) % 100, "load1": 0.12, "load5": 0.1, "load15": 0.05, "n": 2},
        "mem": {"pct": 41.5, "total": 2063597568, "avail": 1207959552, "swap_pct": 0.0},
        "disk": {"/": {"pct": 51.2, "total": 31526391808, "free": 15384510464}},
        "net": {"eth0": {"rx": 918273645 + seq, "tx": 123456789, "err": 0, "drop": 0, "up": True}},
        "temp": {"cpu_thermal": 48.0},
        "uptime": 86400 + seq * 30,
        "procs": 87,
        "agent": {"rss": 15.8, "cpu": 0.02, "outbox": 0, "drops": 0, "reconnects": 0},
    }


def boot_id(i: int) -> str:
    """Each simulated device has its own boot id, 32 hex digits like an agent's (uuid4().hex)."""
    return f"{i:08x}{'5eed' * 6}"


def envelope(dev: str, boot: str, seq: int, i: int, ts: float) -> bytes:
    doc = {
        "v": 1,
        "device": dev,
        "boot": boot,
        "seq": seq,
        "ts": ts,
        "kind": "health",
        "body": body(i, seq),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        pw = workdir / "passwd"
        pw.write_text(
            "".join(password_line(u, "pw") + "\n" for u in ("collector", "loadgen", "sub"))
        )
        acl = workdir / "acl"
        acl.write_text(
            f"user collector\ntopic read {ROOT}/v1/#\n\nuser sub\ntopic read {ROOT}/v1/#\n\n"
            f"user loadgen\ntopic write {ROOT}/v1/#\n"
        )
        for p in (pw, acl):
            p.chmod(0o644)
        conf = workdir / "mosquitto.conf"
        lines = [
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {pw}",
            f"acl_file {acl}",
            "persistence false",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 1000",
            "log_dest stderr",
            "log_type error",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port, 10):
            raise SystemExit("mosquitto did not start")
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _paced(
    devices: range, per_device: int, rate: float, seq0: int, window: threading.BoundedSemaphore
) -> Iterator[tuple[int, int, str]]:
    """(seq, device index, device id) of every message to send, each when it is due at `rate`
    (0: at once) and a slot of the in-flight `window` is free."""
    start = time.monotonic()
    n = 0
    for seq in range(seq0 + 1, seq0 + per_device + 1):
        for i in devices:
            if rate:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            window.acquire()
            yield seq, i, f"sim-{i:06d}"
            n += 1


def _publisher(
    port: int, devices: range, per_device: int, rate: float, seq0: int, counter: Any
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    # a paced live stream keeps few messages in flight, so the latency measured is the broker's
    # and the collector's, not a queue inside this load generator
    window = threading.BoundedSemaphore(100 if rate else 2000)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"loadgen-{devices.start}-{seq0}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    c.username_pw_set("loadgen", "pw")
    c.max_inflight_messages_set(1000)
    c.on_publish = lambda *a: window.release()
    c.connect("127.0.0.1", port)
    c.loop_start()
    sent = 0
    infos = []
    for seq, i, dev in _paced(devices, per_device, rate, seq0, window):
        info = c.publish(
            f"{ROOT}/v1/{dev}/health", envelope(dev, boot_id(i), seq, i, time.time()), qos=1
        )
        if info.rc != 0:
            raise SystemExit(f"publish failed rc={info.rc}")
        infos.append(info)
        sent += 1
    for info in infos:
        info.wait_for_publish(120)
    with counter.get_lock():
        counter.value += sent
    c.disconnect()
    c.loop_stop()


def _mqtt_packet(first: int, body: bytes) -> bytes:
    n, head = len(body), bytearray([first])
    while True:
        byte, n = n % 128, n // 128
        head.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(head) + body


def _lean_publisher(
    port: int, devices: range, per_device: int, rate: float, seq0: int, counter: Any
) -> None:
    """The same messages as _publisher over a plain socket (MQTT 3.1.1, QoS 1): a load
    generator that leaves more of the shared cores to the broker and the collector."""
    import socket
    import struct

    def mstr(text: str) -> bytes:
        b = text.encode()
        return struct.pack("!H", len(b)) + b

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connect = mstr("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 600)
    connect += mstr(f"loadgen-{devices.start}-{seq0}") + mstr("loadgen") + mstr("pw")
    sock.sendall(_mqtt_packet(0x10, connect))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"load generator: broker refused connection ({connack!r})")
    window = threading.BoundedSemaphore(100 if rate else 2000)
    acked = 0
    failed: list[str] = []

    def read_acks() -> None:  # PUBACKs are 4 bytes each; nothing else is expected
        nonlocal acked
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError as exc:
                failed.append(str(exc))
                return
            if not data:
                return
            buf += data
            n = len(buf) // 4
            for k in range(n):
                if buf[4 * k] != 0x40:
                    failed.append(f"unexpected packet {buf[4 * k]:#x}")
                    return
                window.release()
            acked += n
            buf = buf[4 * n :]

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    sent = 0
    for seq, i, dev in _paced(devices, per_device, rate, seq0, window):
        mid = sent % 65535 + 1
        var = mstr(f"{ROOT}/v1/{dev}/health") + struct.pack("!H", mid)
        sock.sendall(_mqtt_packet(0x32, var + envelope(dev, boot_id(i), seq, i, time.time())))
        sent += 1
    deadline = time.monotonic() + 120
    while acked < sent and not failed and time.monotonic() < deadline:
        time.sleep(0.01)
    if acked < sent:
        raise SystemExit(f"load generator: {sent - acked} publishes not acknowledged {failed}")
    with counter.get_lock():
        counter.value += sent
    sock.sendall(b"\xe0\x00")
    sock.close()


def publish(
    port: int,
    n_devices: int,
    per_device: int,
    procs: int,
    rate: float = 0.0,
    seq0: int = 0,
    lean: bool = False,
) -> tuple[int, float]:
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    chunk = (n_devices + procs - 1) // procs
    ps = [
        ctx.Process(
            target=_lean_publisher if lean else _publisher,
            args=(
                port,
                range(k * chunk, min(n_devices, (k + 1) * chunk)),
                per_device,
                rate / procs,
                seq0,
                counter,
            ),
        )
        for k in range(procs)
    ]
    t0 = time.monotonic()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return int(counter.value), time.monotonic() - t0


def mosquitto_sub(port: int, count: int | None, client_id: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("mosquitto_sub") or "mosquitto_sub"
    args = [
        exe,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-u",
        "sub",
        "-P",
        "pw",
        "-i",
        client_id,
        "-c",
        "-q",
        "1",
        "-t",
        TOPIC_FILTER,
        "-V",
        "mqttv5",
        "-x",
        "86400",
    ]
    args += ["-E"] if count is None else ["-C", str(count)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _paho_parse_only(port: int, count: int, ready: Any, done: Any, create_only: bool) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    n = 0
    finished = threading.Event()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        nonlocal n
        json.loads(msg.payload)
        n += 1
        if n >= count:
            finished.set()

    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-paho", protocol=MQTTProtocolVersion.MQTTv5
    )
    c.username_pw_set("sub", "pw")
    c.on_message = on_message
    c.on_connect = lambda cl, *a: cl.subscribe(TOPIC_FILTER, qos=1)
    c.on_subscribe = lambda *a: ready.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    t0 = time.monotonic()
    c.loop_start()
    if create_only:
        ready.wait(30)
    else:
        finished.wait(600)
        done.value = time.monotonic() - t0
    c.disconnect()
    c.loop_stop()


def paho_peer(port: int, count: int, create_only: bool) -> float:
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Value("d", 0.0)
    p = ctx.Process(target=_paho_parse_only, args=(port, count, ready, done, create_only))
    p.start()
    p.join()
    return float(done.value)


class Collector:
    def __init__(
        self,
        port: int,
        db: Path,
        workers: int,
        reader: str,
        workdir: Path,
        read_pause_ms: int | None = None,
        alerts_every: float | None = None,
        alerts_full_duty: float | None = None,
    ) -> None:
        self.metrics = free_port()
        pwfile = workdir / "collector.pw"
        pwfile.write_text("pw\n")
        conf = workdir / "collector.toml"
        pause = "" if read_pause_ms is None else f"read_pause_ms = {read_pause_ms}\n"
        alerts = {"every": alerts_every, "full_duty": alerts_full_duty}
        conf.write_text(
            f'[ingest]\nworkers = {workers}\nreader = "{reader}"\n{pause}'
            "[liveness]\nsweep_seconds = 5\n[alerts]\n"
            + "".join(f"{k} = {v:g}\n" for k, v in alerts.items() if v is not None)
        )
        self.cmd = [
            sys.executable,
            "-m",
            "collector.cli",
            "collector",
            "serve",
            "--config",
            str(conf),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--db",
            str(db),
            "--username",
            "collector",
            "--password-file",
            str(pwfile),
            "--metrics",
            f"127.0.0.1:{self.metrics}",
            "--client-id",
            "bench-collector",
            "--share-group",
            "bench",
        ]
        if reader == "lean":
            self.cmd += ["--protocol", "3.1.1"]
        self.workers = workers
        self.proc: psutil.Popen | None = None

    def start(self) -> None:
        self.proc = psutil.Popen(self.cmd, stderr=open(os.devnull, "wb"))  # noqa: SIM115

    def connected(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return False
        return f"dunewatch_broker_connected {self.workers}" in text

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """CPU seconds of the serve process itself and of its ingest worker processes."""
        assert self.proc is not None
        split = [0.0, 0.0]
        for k, p in enumerate([self.proc, *self.proc.children(recursive=True)]):
            try:
                t = p.cpu_times()
                split[min(k, 1)] += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return split[0], split[1]

    def scrape(self) -> dict[str, float]:
        """The serve process's /metrics, unlabelled samples by name."""
        url = f"http://127.0.0.1:{self.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            rows = [line.split() for line in r.read().decode().splitlines()]
        return {r[0]: float(r[1]) for r in rows if len(r) == 2 and not r[0].startswith("#")}

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM health").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def reference_ms() -> float:
    """CPU milliseconds of a fixed Python workload (decode and re-encode 20,000 envelopes): on a
    shared machine the same code costs more CPU when neighbours are busy, and this figure,
    printed at the start and end of a run, says how fast the machine was while measuring."""
    payloads = [envelope(f"sim-{i:06d}", boot_id(i), 1, i, 1.7e9) for i in range(2000)]
    t0 = time.process_time()
    for _ in range(10):
        for p in payloads:
            json.dumps(json.loads(p), separators=(",", ":"))
    return (time.process_time() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=5000, help="simulated devices")
    ap.add_argument("--per-device", type=int, default=20, help="backlog messages per device")
    ap.add_argument("--workers", type=int, default=2, help="collector ingest worker processes")
    ap.add_argument("--reader", default="paho", help="collector MQTT reader (paho or lean)")
    ap.add_argument("--publishers", type=int, default=2, help="load generator processes")
    ap.add_argument("--live-rate", type=float, default=3300.0, help="live stream msg/s")
    ap.add_argument("--live-seconds", type=float, default=20.0)
    ap.add_argument("--live-only", action="store_true", help="skip the backlog part")
    ap.add_argument(
        "--publisher",
        choices=("paho", "lean"),
        default="paho",
        help="live-stream load generator: paho-mqtt clients, or plain sockets (MQTT 3.1.1) "
        "that leave more of the shared cores to the broker and the collector",
    )
    ap.add_argument(
        "--warm-up",
        action="store_true",
        help="with --live-only: every device reports once before the measured stream (a "
        "running fleet's steady state rather than first reports)",
    )
    ap.add_argument(
        "--read-pause-ms",
        type=int,
        default=None,
        help="the collector's ingest read_pause_ms (default: its own default)",
    )
    ap.add_argument(
        "--alerts-every",
        type=float,
        default=None,
        help="seconds between the serve loop's alert passes (default: its own default, 60)",
    )
    ap.add_argument(
        "--alerts-full-duty",
        type=float,
        default=None,
        help="share of the time full alert passes may take, the others checking liveness only "
        "(default: its own default, 0.02)",
    )
    args = ap.parse_args()

    total = args.devices * args.per_device
    ref_start = reference_ms()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = Broker(work)
    db = work / "collector.db"
    coll = Collector(
        broker.port,
        db,
        args.workers,
        args.reader,
        work,
        args.read_pause_ms,
        args.alerts_every,
        args.alerts_full_duty,
    )
    rows: list[tuple[str, float, float, float]] = []
    try:
        warm = 0  # reports each device sent before the live stream
        if args.live_only:
            coll.start()
            wait_for(coll.connected, 60, "collector connected")
            if args.warm_up:
                # every device reports once, unmeasured: the live stream then updates known
                # devices and streams, as a running fleet's does
                n_warm = min(args.devices, int(args.live_rate * args.live_seconds))
                sent, _ = publish(broker.port, n_warm, 1, args.publishers)
                wait_for(lambda: stored(db) >= sent, 300, "warm-up reports stored")
                warm = 1
        else:
            # 1. persistent sessions for every consumer, then disconnect them
            p = mosquitto_sub(broker.port, None, "bench-sub")
            p.wait(30)
            c0 = children_cpu()
            paho_peer(broker.port, 0, create_only=True)
            paho_startup = children_cpu() - c0  # interpreter start and imports
            coll.start()
            wait_for(coll.connected, 60, "collector connected")
            startup_cpu = coll.cpu_seconds()  # imports and process start, not ingest work
            coll.stop()
            # 2. the backlog: queued by the broker once for each session
            sent, secs = publish(broker.port, args.devices, args.per_device, args.publishers)
            assert sent == total, (sent, total)
            print(
                f"backlog: {total} simulated health messages from {args.devices} simulated devices "
                f"queued in {secs:.1f} s ({os.path.getsize(work / 'passwd') and ''}"
                f"{len(envelope('sim-000000', boot_id(0), 1, 0, time.time()))} bytes each)",
                flush=True,
            )
            # 3. mosquitto_sub peer
            b0, c0, t0 = broker.cpu(), children_cpu(), time.monotonic()
            p = mosquitto_sub(broker.port, total, "bench-sub")
            p.wait(600)
            ms = time.monotonic() - t0
            rows.append(
                (
                    "mosquitto_sub -q 1 > /dev/null",
                    total / ms,
                    (children_cpu() - c0) / total,
                    (broker.cpu() - b0) / total,
                )
            )
            # 4. bare paho client, parse only (its wall time excludes process start)
            b0, c0 = broker.cpu(), children_cpu()
            ps = paho_peer(broker.port, total, create_only=False)
            rows.append(
                (
                    "paho client, json.loads only (1 process)",
                    total / ps,
                    (children_cpu() - c0 - paho_startup) / total,
                    (broker.cpu() - b0) / total,
                )
            )
            # 5. the collector (wall time includes its start-up)
            coll.start()
            b0, t0 = broker.cpu(), time.monotonic()
            wait_for(lambda: stored(db) >= total, 900, "collector drained the backlog")
            with_startup = time.monotonic() - t0
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            first, last = conn.execute("SELECT min(received), max(received) FROM health").fetchone()
            after_first = conn.execute(
                "SELECT count(*) FROM health WHERE received > ?", (first,)
            ).fetchone()[0]
            # a batch's rows share their `received` time
            backlog_batches = conn.execute(
                "SELECT count(DISTINCT received) FROM health"
            ).fetchone()[0]
            conn.close()
            # sustained: rows committed after the first batch over the time since it (start-up out)
            sustained = after_first / (last - first) if last > first else total / with_startup
            rows.append(
                (
                    f"dunewatch collector ({args.workers} workers, {args.reader}) -> SQLite",
                    sustained,
                    (coll.cpu_seconds() - startup_cpu) / total,
                    (broker.cpu() - b0) / total,
                )
            )
        # 6. live stream
        live_n = int(args.live_rate * args.live_seconds)
        n_dev = min(args.devices, live_n)
        per = max(1, live_n // n_dev)
        before = stored(db)
        metrics_a = coll.scrape()
        batches_a = metrics_a.get("dunewatch_batch_seconds_count", 0.0)
        split_a, t_a = coll.cpu_split(), time.monotonic()
        sent, secs = publish(
            broker.port,
            n_dev,
            per,
            args.publishers,
            rate=args.live_rate,
            seq0=warm if args.live_only else args.per_device,
            lean=args.publisher == "lean",
        )
        t_b = time.monotonic()
        wait_for(lambda: stored(db) >= before + sent, 120, "live stream stored")
        # the CPU it took to store the whole stream (a collector that lags behind would
        # otherwise look cheap), over the time the stream took to arrive
        split_b = coll.cpu_split()
        metrics_b = coll.scrape()
        live_batches = metrics_b.get("dunewatch_batch_seconds_count", 0.0) - batches_a
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        lat = [
            r[0] for r in conn.execute("SELECT received - ts FROM health WHERE id > ?", (before,))
        ]
        conn.close()
        lat.sort()
        p99 = lat[int(0.99 * (len(lat) - 1))]
        live = (
            f"live: {sent} msgs at {sent / secs:,.0f}/s for {secs:.0f} s "
            f"({n_dev} simulated devices{', each known from an earlier report' if warm else ''}, "
            f"{args.publishers} {args.publisher} publishers)"
        )
        serve_cpu = 100 * (split_b[0] - split_a[0]) / (t_b - t_a)
        workers_cpu = 100 * (split_b[1] - split_a[1]) / (t_b - t_a)
        coll_cpu = serve_cpu + workers_cpu

        # the serve process's share by job, from its own CPU counters
        def grew(name: str) -> float:
            return metrics_b.get(name, 0.0) - metrics_a.get(name, 0.0)

        jobs = {
            name: 100 * grew(f"dunewatch_{key}_cpu_seconds_total") / (t_b - t_a)
            for name, key in (("alert passes", "alert"), ("rollups and retention", "maintenance"))
        }
        passes = grew("dunewatch_alert_passes")
        full_passes = grew("dunewatch_alert_full_passes")
        coll.stop()
    finally:
        if coll.proc is not None and coll.proc.poll() is None:
            coll.proc.kill()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print()
    ceiling = rows[0][1] if rows else 1.0
    if rows:
        print(
            f"{'consumer (same backlog)':46} {'msgs/s':>8} {'ratio':>6} {'consumer CPU':>13} "
            f"{'broker CPU':>11}   per message"
        )
    for name, rate, cpu_msg, broker_msg in rows:
        print(
            f"{name:46} {rate:>8,.0f} {rate / ceiling:>6.2f} {cpu_msg * 1e6:>10.0f} us "
            f"{broker_msg * 1e6:>8.0f} us"
        )
    if rows:
        coll_msg, broker_msg = rows[-1][2], rows[-1][3]
        print(
            f"collector wall time including its own start-up: {with_startup:.1f} s; "
            f"{backlog_batches:.0f} batches, {total / max(backlog_batches, 1):.0f} msgs per batch"
        )
        print(
            "CPU-bound capacity of collector + broker at these CPU costs per message: "
            f"{(os.cpu_count() or 1) / (coll_msg + broker_msg):,.0f} msgs/s"
        )
        print()
    print(live)
    print(
        f"  collector CPU {coll_cpu:.1f} % of one core; publish-to-stored latency "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    print(
        f"  of which serve process {serve_cpu:.1f} %, ingest workers {workers_cpu:.1f} %; "
        f"{live_batches:.0f} batches, {sent / max(live_batches, 1):.0f} msgs per batch"
    )
    print(
        "  serve process: "
        + ", ".join(f"{name} {pct:.1f} %" for name, pct in jobs.items())
        + f" ({passes:.0f} alert passes, {full_passes:.0f} full), the rest (sweeps, checkpoints, "
        f"metrics) {serve_cpu - sum(jobs.values()):.1f} %"
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        " (shared with other work while measuring); reference workload "
        f"{ref_start:.0f} ms CPU at the start, {reference_ms():.0f} ms at the end (lower: faster)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
