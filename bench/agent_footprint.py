"""Agent footprint beside peers doing the same job on this machine, in one run.

Runs concurrently, all on loopback, reporting every 10 s to one mosquitto:
  - dunewatch-agent as installed here (`python3 -m agent run ...`)
  - dunewatch-agent as a gateway gets it: the zipapp in a venv holding only psutil and paho-mqtt
  - collectd (Debian collectd-core) with the mqtt plugin (cpu, memory, df, interface, load,
    uptime, processes), QoS 1
  - prometheus-node-exporter (reduced collector set), scraped every 10 s over HTTP
  - a bare psutil + paho loop publishing one JSON message (the floor for a Python agent)
  - with --tls also the bundle over mqtts:// (a TLS listener of the same mosquitto, test CA)
After a warm-up, RSS (VmRSS every 2 s), CPU (sum of /proc/PID/task/*/schedstat run time) and the
messages and bytes each one publishes are measured over the window, and printed side by side.

example: python3 bench/agent_footprint.py --window 180
example: python3 bench/agent_footprint.py --window 180 --tls
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy"))
from build_bundle import build  # noqa: E402

INTERVAL = 10

PSUTIL_PAHO_LOOP = r"""
import json, sys, time
import psutil
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ref", protocol=MQTTProtocolVersion.MQTTv311)
c.connect("127.0.0.1", int(sys.argv[1])); c.loop_start()
psutil.cpu_percent()
nxt = time.monotonic()
while True:
    nxt += 10
    vm = psutil.virtual_memory(); du = psutil.disk_usage("/"); n = psutil.net_io_counters()
    m = {"cpu": psutil.cpu_percent(), "load": psutil.getloadavg(), "mem": vm.percent,
         "avail": vm.available, "disk": du.percent, "rx": n.bytes_recv, "tx": n.bytes_sent,
         "boot": psutil.boot_time()}
    c.publish("ref/edge1/health", json.dumps(m, separators=(",", ":")), qos=1)
    time.sleep(max(0, nxt - time.monotonic()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port}")


def ensure_peers() -> None:
    need = []
    if not Path("/usr/sbin/collectd").exists() or not Path("/usr/lib/collectd/mqtt.so").exists():
        need.append("collectd-core")
    if not shutil.which("prometheus-node-exporter"):
        need.append("prometheus-node-exporter")
    if not any(
        Path(d).glob("libmosquitto.so.1*") for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib")
    ):
        need.append("libmosquitto1")  # collectd-core only Suggests it; mqtt.so won't load without
    if need:
        print(f"installing peers: {' '.join(need)}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need],
            check=True,
            env=env,
        )


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared libraries (libcrypto, libpython) split among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ns(pid: int) -> int:
    """Run time of every thread, in ns (finer than utime/stime's 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # thread just exited
            total += int((task / "schedstat").read_text().split()[0])
    return total


@dataclass
class Peer:
    name: str
    proc: subprocess.Popen[bytes]
    prefix: str  # topic prefix of what it publishes ("" for pull-based)
    rss: list[int] = field(default_factory=list)
    pss: list[int] = field(default_factory=list)
    cpu0: int = 0
    cpu1: int = 0


@dataclass
class Counter:
    msgs: dict[str, int] = field(default_factory=dict)
    payload: dict[str, int] = field(default_factory=dict)
    wire: dict[str, int] = field(default_factory=dict)  # topic + payload + fixed header estimate
    counting: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if not self.counting:
            return
        parts = msg.topic.split("/")
        # dunewatch/v1/<device>/<kind>: one key per device (two agents share the root)
        prefix = f"dunewatch/{parts[2]}" if parts[0] == "dunewatch" and len(parts) > 2 else parts[0]
        with self.lock:
            self.msgs[prefix] = self.msgs.get(prefix, 0) + 1
            self.payload[prefix] = self.payload.get(prefix, 0) + len(msg.payload)
            # PUBLISH: fixed header 2-4 B, topic length 2 B, topic, packet id 2 B
            self.wire[prefix] = self.wire.get(prefix, 0) + 7 + len(msg.topic) + len(msg.payload)


def bare_venv(root: Path) -> Path:
    """A venv without system site-packages holding only psutil and paho-mqtt (copied)."""
    import paho
    import psutil

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    py = root / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for mod in (psutil, paho):
        src = Path(mod.__file__).parent  # type: ignore[arg-type]
        shutil.copytree(src, Path(site) / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    # as pip does at install time: without byte-code every start compiles paho (+5 MB RSS)
    subprocess.run([str(py), "-m", "compileall", "-q", site], check=True)
    return py


def test_pki(work: Path) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1: (ca, cert, key) file names."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, srv_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    out = []
    for subject, key, ca in (("bench CA", ca_key, True), ("127.0.0.1", srv_key, False)):
        b = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("bench CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            b = b.add_extension(san, critical=False)
        path = work / ("ca.pem" if ca else "server.pem")
        path.write_bytes(b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        out.append(str(path))
    key_path = work / "server.key"
    key_path.write_bytes(
        srv_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out[0], out[1], str(key_path)


def collectd_conf(work: Path, port: int) -> Path:
    conf = work / "collectd.conf"
    conf.write_text(
        f"""Hostname "edge1"
FQDNLookup false
BaseDir "{work}/collectd-base"
PIDFile "{work}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval {INTERVAL}
AutoLoadPlugin false
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin interface
LoadPlugin load
LoadPlugin uptime
LoadPlugin processes
LoadPlugin mqtt
<Plugin mqtt>
  <Publish "broker">
    Host "127.0.0.1"
    Port "{port}"
    ClientId "collectd-edge1"
    Prefix "collectd"
    QoS 1
    Retain false
  </Publish>
</Plugin>
"""
    )
    (work / "collectd-base").mkdir(exist_ok=True)
    return conf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--window", type=float, default=180.0, help="measured seconds (default 180)")
    ap.add_argument("--warmup", type=float, default=25.0, help="seconds before measuring")
    ap.add_argument(
        "--tls", action="store_true", help="also run the bundle over mqtts:// (extra row)"
    )
    args = ap.parse_args(argv)
    ensure_peers()
    work = Path(tempfile.mkdtemp(prefix="agent-footprint-"))
    procs: list[subprocess.Popen[bytes]] = []
    peers: list[Peer] = []
    devnull = subprocess.DEVNULL
    try:
        port = free_port()
        tls_port = free_port()
        conf = (
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        if args.tls:
            ca, cert, key = test_pki(work)
            conf += f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        (work / "mosquitto.conf").write_text(conf)
        mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        procs.append(
            subprocess.Popen(
                [mosq, "-c", str(work / "mosquitto.conf")], stdout=devnull, stderr=devnull
            )
        )
        wait_port(port)
        if args.tls:
            wait_port(tls_port)

        counter = Counter()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        sub.on_message = counter.on_message
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        sub.connect("127.0.0.1", port)
        sub.loop_start()

        def spawn(name: str, cmd: list[str], prefix: str, **kw: object) -> None:
            log = (work / f"{name.split()[0]}.log").open("wb")
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=devnull, **kw)  # type: ignore[call-overload]
            procs.append(p)
            peers.append(Peer(name, p, prefix))

        agent_args = ["run", "--broker", f"mqtt://127.0.0.1:{port}", "--interval", str(INTERVAL)]
        spawn(
            "dunewatch-agent (this install)",
            [
                sys.executable,
                "-m",
                "agent",
                *agent_args,
                "--device-id",
                "bench-dev",
                "--outbox",
                str(work / "outbox-dev.db"),
                "--log-level",
                "warning",
            ],
            "dunewatch/bench-dev",
        )
        pyz = build(work / "dunewatch-agent.pyz")
        py = bare_venv(work / "venv")
        spawn(
            "dunewatch-agent (bundle, bare venv)",
            [
                str(py),
                str(pyz),
                *agent_args,
                "--device-id",
                "bench-pyz",
                "--outbox",
                str(work / "outbox-pyz.db"),
                "--log-level",
                "warning",
            ],
            "dunewatch/bench-pyz",
        )
        if args.tls:
            spawn(
                "dunewatch-agent (bundle, bare venv, mqtts://)",
                [
                    str(py),
                    str(pyz),
                    "run",
                    "--broker",
                    f"mqtts://127.0.0.1:{tls_port}",
                    "--interval",
                    str(INTERVAL),
                    "--device-id",
                    "bench-tls",
                    "--outbox",
                    str(work / "outbox-tls.db"),
                    "--log-level",
                    "warning",
                ],
                "dunewatch/bench-tls",
                env=dict(os.environ, DUNEWATCH_AGENT_BROKER_CA_FILE=ca),
            )
        spawn(
            "collectd 5.12 + mqtt",
            ["/usr/sbin/collectd", "-f", "-C", str(collectd_conf(work, port))],
            "collectd",
        )
        ne_port = free_port()
        spawn(
            "node_exporter (reduced)",
            [
                "prometheus-node-exporter",
                f"--web.listen-address=127.0.0.1:{ne_port}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.filesystem",
                "--collector.netdev",
                "--collector.loadavg",
                "--collector.stat",
                "--web.disable-exporter-metrics",
            ],
            "",
        )
        (work / "ref.py").write_text(PSUTIL_PAHO_LOOP)
        spawn("bare psutil+paho loop", [str(py), str(work / "ref.py"), str(port)], "ref")

        scraped: list[int] = []
        stop_scrape = threading.Event()

        def scrape() -> None:
            nxt = time.monotonic()
            while not stop_scrape.is_set():
                if counter.counting:
                    try:
                        with urllib.request.urlopen(
                            f"http://127.0.0.1:{ne_port}/metrics", timeout=5
                        ) as r:
                            scraped.append(len(r.read()))
                    except OSError:
                        pass
                nxt += INTERVAL
                stop_scrape.wait(max(0.0, nxt - time.monotonic()))

        print(
            f"warming up {args.warmup:.0f} s, then measuring {args.window:.0f} s ...",
            file=sys.stderr,
        )
        time.sleep(args.warmup)
        for p in peers:
            if p.proc.poll() is not None:
                raise SystemExit(f"{p.name} exited early; see {work}")
            p.cpu0 = cpu_ns(p.proc.pid)
        counter.counting = True
        t0 = time.monotonic()
        threading.Thread(target=scrape, daemon=True).start()
        while time.monotonic() - t0 < args.window:
            for p in peers:
                p.rss.append(rss_kb(p.proc.pid))
                p.pss.append(pss_kb(p.proc.pid))
            time.sleep(2.0)
        counter.counting = False
        elapsed = time.monotonic() - t0
        for p in peers:
            p.cpu1 = cpu_ns(p.proc.pid)
        stop_scrape.set()
        sub.disconnect()
        sub.loop_stop()

        intervals = elapsed / INTERVAL
        print(
            f"\nAgent footprint, {elapsed:.0f} s window at a {INTERVAL} s interval "
            f"({os.cpu_count()} cores, shared machine)\n"
        )
        print(
            "| agent | RSS median / max MB | PSS median MB | CPU % of one core | msgs / interval"
            " | payload B / interval | wire B / interval |"
        )
        print("|---|---|---|---|---|---|---|")
        for p in peers:
            med = statistics.median(p.rss) / 1024
            mx = max(p.rss) / 1024
            pss = statistics.median(p.pss) / 1024
            cpu = 100.0 * (p.cpu1 - p.cpu0) / 1e9 / elapsed
            if p.prefix:
                m = counter.msgs.get(p.prefix, 0)
                b = counter.payload.get(p.prefix, 0)
                w = counter.wire.get(p.prefix, 0)
                traffic = f"{m / intervals:.1f} | {b / intervals:.0f} | {w / intervals:.0f}"
            else:
                body = statistics.median(scraped) if scraped else 0
                traffic = f"1 scrape (pull) | {body:.0f} (HTTP body) | -"
            print(f"| {p.name} | {med:.1f} / {mx:.1f} | {pss:.1f} | {cpu:.3f} | {traffic} |")
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
