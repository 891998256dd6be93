"""Choose the broker for the zero-setup job: a URL given, else mosquitto on PATH, else embedded.

The choice is made once at construction (no I/O); `start()` launches whatever was chosen. A
mosquitto we start is supervised: if the process dies it is restarted on the same port with the
same generated password file and ACL, and the restart is counted and logged.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from collector.broker.embedded import EmbeddedBroker
from collector.broker.mosquitto import BrokerError, MosquittoBroker

log = logging.getLogger("dunewatch.broker")

KIND_URL = "url"
KIND_MOSQUITTO = "mosquitto"
KIND_EMBEDDED = "embedded"
KINDS = (KIND_URL, KIND_MOSQUITTO, KIND_EMBEDDED)

PROTOCOL_V5 = "5"
PROTOCOL_V311 = "3.1.1"

# Debian puts mosquitto in /usr/sbin, which an ordinary user's PATH lacks; we look there too
# unless this variable is "0" (tests use it to hide mosquitto and exercise the embedded path).
SBIN_ENV = "DUNEWATCH_SEARCH_SBIN"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


@dataclass(frozen=True)
class Endpoint:
    """Where clients connect and how; credentials are per client and given separately."""

    kind: str
    host: str
    port: int
    protocol: str = PROTOCOL_V5
    tls: bool = False
    username: str | None = None  # only for a URL that carried credentials
    password: str | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


class ManagedBroker(Protocol):
    """What `up` needs from a broker, whichever kind was chosen."""

    @property
    def endpoint(self) -> Endpoint: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def running(self) -> bool: ...

    def add_users(self, users: Mapping[str, str]) -> None:
        """Enroll more MQTT users (devices); a no-op for a broker we do not manage."""


def parse_url(url: str) -> Endpoint:
    """`mqtt://[user:pass@]host[:port][?protocol=3.1.1]`, or `mqtts://` for TLS."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise BrokerError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerError(f"broker URL {url!r}: no host")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise BrokerError(f"broker URL {url!r}: bad port") from exc
    query = parse_qs(parts.query)
    protocol = query.get("protocol", [PROTOCOL_V5])[0]
    if protocol not in (PROTOCOL_V5, PROTOCOL_V311):
        raise BrokerError(f"broker URL {url!r}: protocol must be 5 or 3.1.1, not {protocol!r}")
    return Endpoint(
        kind=KIND_URL,
        host=parts.hostname,
        port=port,
        protocol=protocol,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def find_mosquitto(path: str | None = None, search_sbin: bool | None = None) -> str | None:
    """mosquitto on PATH, then in the sbin directories (unless DUNEWATCH_SEARCH_SBIN=0)."""
    exe = shutil.which("mosquitto", path=path)
    if exe:
        return exe
    if search_sbin is None:
        search_sbin = os.environ.get(SBIN_ENV, "1") != "0"
    if search_sbin:
        for d in SBIN_DIRS:
            cand = Path(d) / "mosquitto"
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
    return None


@dataclass
class ExternalBroker:
    """A broker someone else runs: we only connect to it."""

    endpoint: Endpoint

    def start(self) -> None:
        log.info("using the broker at %s", self.endpoint.url)

    def stop(self) -> None:
        """Nothing to stop: the broker is not ours."""

    def running(self) -> bool:
        return True

    def add_users(self, users: Mapping[str, str]) -> None:
        if users:
            log.warning(
                "broker %s is not managed here: enroll %s in its password file/ACL yourself",
                self.endpoint.url,
                ", ".join(sorted(users)),
            )


@dataclass
class SupervisedMosquitto:
    """MosquittoBroker plus a watchdog thread that restarts it if the process dies."""

    broker: MosquittoBroker
    check_interval: float = 0.5
    restarts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(KIND_MOSQUITTO, self.broker.host, self.broker.port, PROTOCOL_V5)

    def start(self) -> None:
        self.broker.start()
        log.info("mosquitto supervised on %s (config in %s)", self.broker.url, self.broker.workdir)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="mosquitto-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        backoff = 0.5
        while not self._stop.wait(self.check_interval):
            with self._lock:
                if self._stop.is_set() or self.broker.running():
                    backoff = 0.5
                    continue
                log.warning("mosquitto on %s died; restarting it", self.broker.url)
                try:
                    self.broker.start()
                    self.restarts += 1
                    log.info("mosquitto restarted (%d restarts so far)", self.restarts)
                except BrokerError as exc:
                    log.error("mosquitto restart failed: %s; retrying in %.1fs", exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)

    def running(self) -> bool:
        return self.broker.running()

    def add_users(self, users: Mapping[str, str]) -> None:
        with self._lock:
            merged = dict(self.broker.users)
            merged.update(users)
            self.broker.users = merged
            self.broker.reload()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        with self._lock:
            self.broker.stop()


@dataclass
class EmbeddedManaged:
    """The embedded broker behind the same face as the others."""

    broker: EmbeddedBroker

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(KIND_EMBEDDED, self.broker.host, self.broker.port, PROTOCOL_V311)

    def start(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()

    def running(self) -> bool:
        return self.broker.running()

    def add_users(self, users: Mapping[str, str]) -> None:
        self.broker.add_users(users)


def choose(
    workdir: Path,
    users: Mapping[str, str],
    url: str | None = None,
    root: str = "dunewatch",
    readers: tuple[str, ...] = ("collector",),
    port: int = 0,
    path: str | None = None,
    search_sbin: bool | None = None,
) -> ManagedBroker:
    """Pick the broker: `url` (or the words 'mosquitto'/'embedded' to force one), else by PATH."""
    if url and url not in (KIND_MOSQUITTO, KIND_EMBEDDED):
        return ExternalBroker(parse_url(url))
    exe = None
    if url != KIND_EMBEDDED:
        exe = find_mosquitto(path, search_sbin)
        if exe is None and url == KIND_MOSQUITTO:
            raise BrokerError("--broker mosquitto: mosquitto not found on PATH or in sbin")
    if exe is not None:
        return SupervisedMosquitto(
            MosquittoBroker(
                workdir=workdir / "mosquitto",
                users=dict(users),
                readers=readers,
                root=root,
                port=port,
                executable=exe,
            )
        )
    if url != KIND_EMBEDDED:
        log.info("no mosquitto on PATH: falling back to the embedded broker")
    return EmbeddedManaged(
        EmbeddedBroker(
            workdir=workdir / "embedded-broker",
            users=dict(users),
            readers=readers,
            root=root,
            port=port,
        )
    )


def wait_running(broker: ManagedBroker, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.running():
            return True
        time.sleep(0.05)
    return False
