"""The zero-setup stack behind `dunewatch up` and `dunewatch demo`.

One object starts, in order: a broker (URL given, else mosquitto supervised on loopback, else the
embedded broker), the collector service, a local agent watching this machine, a background SBOM
scan of this machine's root filesystem and, for the demo, the simulated fleet (agents over MQTT
plus agentless devices answered by snmpsim). Each part that this build lacks is reported as
"not available in this build" and the rest carries on; nothing is faked in its place.

Credentials are generated once and kept in `<data-dir>/credentials.json` (mode 0600), so a second
run reuses the data directory, the database and the enrolled identities.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.envelope import DEFAULT_ROOT
from collector.broker.mosquitto import BrokerError, free_port
from collector.broker.passwords import new_password
from collector.broker.select import Endpoint, ManagedBroker, choose
from collector.errors import CollectorError

log = logging.getLogger("dunewatch.up")

Progress = Callable[[str], None]

COLLECTOR_USER = "collector"
CREDENTIALS_FILE = "credentials.json"
DB_FILE = "dunewatch.db"
REPORT_FILE = "report.html"
SBOM_FILE = "this-machine.cdx.json"
NOT_AVAILABLE = "not available in this build"


class StackError(CollectorError):
    """The zero-setup stack could not start (data dir unusable, broker failed...)."""


@dataclass(frozen=True)
class StackConfig:
    """Settings of one `up`/`demo` run, validated here; nothing is started until `start()`."""

    data_dir: Path = Path("dunewatch-data")
    broker_url: str | None = None
    duration: float | None = None
    devices: int = 0  # simulated devices (demo); 0 for `up`
    sim_interval: float = 5.0
    agent_interval: float = 10.0
    root: str = DEFAULT_ROOT
    scan_root: Path | None = Path("/")  # None: no SBOM scan of this machine
    metrics_port: int | None = None  # None: a free loopback port
    seed: int = 8
    report_every: float = 900.0  # seconds between report refreshes of a long run
    search_sbin: bool | None = None

    def __post_init__(self) -> None:
        if self.duration is not None and self.duration <= 0:
            raise StackError(f"--duration must be > 0 seconds, got {self.duration}")
        if self.devices < 0:
            raise StackError(f"--devices must be >= 0, got {self.devices}")
        if self.devices > 20000:
            raise StackError(f"--devices {self.devices} is more than this demo runs (max 20000)")
        if self.report_every <= 0:
            raise StackError(f"--report-every must be > 0 seconds, got {self.report_every}")
        if self.sim_interval <= 0 or self.agent_interval <= 0:
            raise StackError("report intervals must be > 0 seconds")

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def report_path(self) -> Path:
        return self.data_dir / REPORT_FILE

    @property
    def sbom_path(self) -> Path:
        return self.data_dir / SBOM_FILE


@dataclass
class Credentials:
    """Generated MQTT passwords, kept across runs in the data directory (mode 0600)."""

    path: Path
    users: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StackError(
                f"{path}: unreadable credentials ({exc})",
                tip="move the file away to generate new credentials",
            ) from None
        users = doc.get("users") if isinstance(doc, dict) else None
        if not isinstance(users, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in users.items()
        ):
            raise StackError(f"{path}: expected {{'users': {{name: password}}}}")
        return cls(path, dict(users))

    def ensure(self, names: list[str]) -> dict[str, str]:
        added = {n: new_password() for n in names if n not in self.users}
        self.users.update(added)
        if added or not self.path.exists():
            self.save()
        return added

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"users": self.users}, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def local_device_id() -> str:
    """`local-<hostname>`, squeezed into the contract's device-id alphabet."""
    host = re.sub(r"[^A-Za-z0-9._:-]", "-", socket.gethostname() or "host").strip("-.")
    return f"local-{host or 'host'}"[:128]


@dataclass
class PartStatus:
    name: str
    state: str  # "running", "done", "failed", NOT_AVAILABLE
    detail: str = ""


class Stack:
    """Starts and stops every part of the zero-setup job; see the module docstring."""

    def __init__(self, config: StackConfig, progress: Progress | None = None) -> None:
        self.config = config
        self.progress: Progress = progress or (lambda msg: print(msg, file=sys.stderr))
        self.parts: dict[str, PartStatus] = {}
        self.broker: ManagedBroker | None = None
        self.credentials: Credentials | None = None
        self.fleet: Any = None
        self.metrics_url: str | None = None
        self._collector: Any = None
        self._agent: Any = None
        self._runner: Any = None
        self._snmpsim: Any = None
        self._alerts: Any = None
        self._scan: Any = None
        self._stop = threading.Event()
        self._started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def _mark(self, name: str, state: str, detail: str = "") -> None:
        self.parts[name] = PartStatus(name, state, detail)
        line = f"{name}: {state}" + (f" ({detail})" if detail else "")
        self.progress(line)

    def start(self) -> None:
        cfg = self.config
        self._started_at = time.monotonic()
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StackError(f"data dir {cfg.data_dir}: {exc.strerror or exc}") from None
        self.credentials = Credentials.load(cfg.data_dir / CREDENTIALS_FILE)
        names = [COLLECTOR_USER, local_device_id()]
        if cfg.devices:
            from collector.sim.fleet import build_fleet

            self.fleet = build_fleet(cfg.devices, seed=cfg.seed)
            names += [d.device_id for d in self.fleet.agents]
        self.credentials.ensure(names)
        self._start_broker()
        self._register_local()
        if self.fleet is not None:
            self._register_fleet()
            self._start_snmpsim()
        self._start_collector()
        self._start_local_agent()
        self._start_scan()
        if self.fleet is not None:
            self._start_fleet()
        self._started_at = time.monotonic()  # --duration counts from here: everything is up

    def _start_broker(self) -> None:
        assert self.credentials is not None
        cfg = self.config
        try:
            self.broker = choose(
                cfg.data_dir,
                self.credentials.users,
                url=cfg.broker_url,
                root=cfg.root,
                search_sbin=cfg.search_sbin,
            )
            self.broker.start()
        except BrokerError as exc:
            raise StackError(f"broker: {exc}", tip="give --broker mqtt://HOST:PORT") from None
        ep = self.broker.endpoint
        self._mark("broker", "running", f"{ep.kind} at {ep.url}, MQTT {ep.protocol}")
        if ep.kind == "url":
            dev = local_device_id()
            self.progress(
                f"broker {ep.url} is not managed here: the local agent logs in as {dev!r} with "
                f"the password in {self.credentials.path}; enroll it in that broker "
                f"(user {dev}, write {cfg.root}/v1/{dev}/#)"
            )

    def _client_credentials(self, user: str) -> tuple[str | None, str | None]:
        """Who a client logs in as. On a broker given by URL the collector uses the URL's user;
        devices always log in as themselves with the password kept in credentials.json."""
        assert self.broker is not None and self.credentials is not None
        ep = self.broker.endpoint
        if ep.kind == "url" and user == COLLECTOR_USER:
            return ep.username, ep.password
        return user, self.credentials.users[user]

    @property
    def endpoint(self) -> Endpoint:
        assert self.broker is not None
        return self.broker.endpoint

    # -- collector ---------------------------------------------------------------------------

    def _start_collector(self) -> None:
        from collector import stack_parts

        user, password = self._client_credentials(COLLECTOR_USER)
        port = self.config.metrics_port or free_port()
        sources = []
        if self._snmpsim is not None:
            sources = stack_parts.snmp_sources(self._snmpsim.targets_path)
            if not sources:
                self._mark("agentless polling", NOT_AVAILABLE, "no SNMP ingest source")
        try:
            self._collector = stack_parts.start_collector(
                endpoint=self.endpoint,
                username=user,
                password=password,
                db_path=self.config.db_path,
                root=self.config.root,
                metrics_listen=f"127.0.0.1:{port}",
                sources=sources,
            )
        except stack_parts.PartMissing as exc:
            self._mark("collector", NOT_AVAILABLE, str(exc))
            return
        self.metrics_url = getattr(self._collector, "metrics_url", None) or (
            f"http://127.0.0.1:{port}/metrics"
        )
        self._mark("collector", "running", f"database {self.config.db_path}")
        try:
            self._alerts = stack_parts.start_alert_service(self.config.db_path)
        except stack_parts.PartMissing as exc:
            self._mark("alert evaluation", NOT_AVAILABLE, str(exc))

    # -- local agent -------------------------------------------------------------------------

    def _start_local_agent(self) -> None:
        from collector import stack_parts

        dev = local_device_id()
        user, password = self._client_credentials(dev)
        try:
            self._agent = stack_parts.start_local_agent(
                endpoint=self.endpoint,
                device_id=dev,
                username=user,
                password=password,
                workdir=self.config.data_dir / "local-agent",
                root=self.config.root,
                interval=self.config.agent_interval,
            )
        except stack_parts.PartMissing as exc:
            self._mark("local agent", NOT_AVAILABLE, str(exc))
            return
        self._mark("local agent", "running", f"device {dev} watching this machine")

    # -- SBOM scan ---------------------------------------------------------------------------

    def _start_scan(self) -> None:
        from collector import stack_parts

        cfg = self.config
        if cfg.scan_root is None:
            self._mark("sbom scan", "skipped", "--no-scan")
            return
        try:
            self._scan = stack_parts.start_scan(
                cfg.scan_root.resolve(),
                cfg.sbom_path.resolve(),
                local_device_id(),
                cfg.data_dir / "sbom-scan.log",
            )
        except stack_parts.PartMissing as exc:
            self._mark("sbom scan", NOT_AVAILABLE, str(exc))
            return
        self._mark("sbom scan", "running", f"scanning {cfg.scan_root} in the background")

    def scan_outcome(self) -> PartStatus | None:
        """The scan's state now: running, done (with its summary line) or failed."""
        if self._scan is None:
            return self.parts.get("sbom scan")
        code, last = self._scan.result()
        if code is None:
            return PartStatus("sbom scan", "running", last)
        state = "done" if code == 0 else "failed"
        status = PartStatus("sbom scan", state, last)
        if self.parts.get("sbom scan") != status:
            self._mark("sbom scan", state, last)
        return status

    # -- simulated fleet ---------------------------------------------------------------------

    def _register_local(self) -> None:
        """The local agent is enrolled by this job: say so in the store before it speaks."""
        from collector import stack_parts

        stack_parts.register_local(self.config.db_path, local_device_id())

    def _register_fleet(self) -> None:
        """Tag every simulated device in the store before it speaks: district, class, simulated."""
        from collector import stack_parts

        try:
            n = stack_parts.register_devices(self.config.db_path, self.fleet.devices)
        except stack_parts.PartMissing as exc:
            self._mark("fleet registry", NOT_AVAILABLE, str(exc))
            return
        log.debug("registered %d simulated devices", n)

    def _start_fleet(self) -> None:
        from collector.sim.runner import FleetRunner

        assert self.credentials is not None
        agents = self.fleet.agents
        if self.endpoint.kind == "url":
            self._mark(
                "simulated fleet",
                "skipped",
                "the fleet needs a broker this job manages (its devices' passwords are generated)",
            )
            return
        self._runner = FleetRunner(
            self.endpoint,
            agents,
            self.credentials.users,
            root=self.config.root,
            interval=self.config.sim_interval,
            progress=self.progress,
        )
        self._runner.start(duration=self.config.duration)
        counts = self.fleet.counts()
        self._mark(
            "simulated fleet",
            "running",
            f"SIMULATED: {len(agents)} agents ({counts['camera']} cameras, {counts['nvr']} NVRs, "
            f"{counts['gateway']} gateways in all), {len(self.fleet.agentless)} agentless",
        )

    def _start_snmpsim(self) -> None:
        from collector import stack_parts

        agentless = self.fleet.agentless
        if not agentless:
            return
        try:
            self._snmpsim = stack_parts.start_snmpsim(
                self.config.data_dir / "snmpsim", agentless, self.config.db_path
            )
        except stack_parts.PartMissing as exc:
            self._mark("agentless devices", NOT_AVAILABLE, str(exc))
            return
        self._mark(
            "agentless devices", "running", f"SIMULATED: {len(agentless)} answered by snmpsim"
        )

    # -- running and stopping ----------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, tick: float = 5.0, on_tick: Callable[[float], None] | None = None) -> None:
        """Block until the duration is over or `request_stop()` (SIGINT/SIGTERM)."""
        end = None if self.config.duration is None else self._started_at + self.config.duration
        while not self._stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            timeout = tick if end is None else min(tick, end - now)
            if self._stop.wait(max(0.0, timeout)):
                break
            if on_tick is not None:
                on_tick(time.monotonic() - self._started_at)

    def stop_alert_loop(self) -> None:
        """Before the final evaluation: one writer of the alert tables at a time."""
        if self._alerts is not None:
            self._alerts.stop()
            self._alerts = None

    def elapsed(self) -> float:
        return time.monotonic() - self._started_at

    def scan_pending(self) -> bool:
        return self._scan is not None and self._scan.running()

    def stop(self) -> None:
        """Stop everything, newest first; each part's failure is logged and the rest still stops."""
        steps: list[tuple[str, Callable[[], None]]] = []
        if self._runner is not None:
            steps.append(("simulated fleet", self._runner.stop))
        if self._snmpsim is not None:
            steps.append(("snmpsim", self._snmpsim.stop))
        if self._agent is not None:
            steps.append(("local agent", self._agent.stop))
        if self._scan is not None:
            steps.append(("sbom scan", self._scan.stop))
        if self._alerts is not None:
            steps.append(("alert evaluation", self._alerts.stop))
        if self._collector is not None:
            steps.append(("collector", self._collector.stop))
        if self.broker is not None:
            steps.append(("broker", self.broker.stop))
        for name, fn in steps:
            try:
                fn()
            except Exception as exc:  # keep stopping the others
                log.warning("stopping %s: %s", name, exc)
        self._runner = self._snmpsim = self._agent = self._collector = self._alerts = None
        self._scan = None
        self.broker = None

    def fleet_stats(self) -> Mapping[str, Any]:
        if self._runner is None:
            return {}
        s = self._runner.stats
        return {
            "connected": s.connected,
            "failed": s.failed,
            "health_sent": s.health_sent,
            "went_offline": s.went_offline,
        }
