"""Start and supervise a mosquitto on loopback with a generated config, password file and ACL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.broker.passwords import acl_text, password_file_text


class BrokerError(RuntimeError):
    """The broker could not be configured, started or stopped."""


def check_loopback(host: str, what: str) -> None:
    """Brokers we start ourselves listen on loopback only."""
    if not host.startswith("127.") and host != "::1":
        raise BrokerError(f"refusing to bind {what} to non-loopback address {host}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass
class MosquittoBroker:
    """One mosquitto process bound to loopback; users and ACL are written before start()."""

    workdir: Path
    users: Mapping[str, str] = field(default_factory=dict)
    readers: tuple[str, ...] = ("collector",)
    root: str = "dunewatch"
    host: str = "127.0.0.1"
    port: int = 0
    allow_anonymous: bool = False
    persistence: bool = True
    executable: str | None = None
    extra_config: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_loopback(self.host, "mosquitto")
        self.workdir = Path(self.workdir)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        passwd = self.workdir / "passwd"
        passwd.write_text(password_file_text(self.users))
        acl = self.workdir / "acl"
        acl.write_text(acl_text(self.root, self.readers))
        # mosquitto drops to user 'mosquitto' before reading these when started as root
        for path in (passwd, acl):
            path.chmod(0o644)
        lines = [
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"password_file {passwd}",
            f"acl_file {acl}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 1000000",
            "max_inflight_messages 1000",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            lines.append("user root")
        lines += list(self.extra_config)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 15.0) -> None:
        exe = self.executable or shutil.which("mosquitto") or _sbin("mosquitto")
        if exe is None:
            raise BrokerError("mosquitto not found on PATH (install Debian's 'mosquitto' package)")
        conf = self.write_config()
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-500:]
            raise BrokerError(
                f"mosquitto did not listen on {self.host}:{self.port}: {tail.strip()}"
            )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def reload(self) -> None:
        """Re-read password file and ACL (after enrolling a device)."""
        if self._proc is not None and self.running():
            self.write_config()
            self._proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sbin(name: str) -> str | None:
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        path = Path(d) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None
