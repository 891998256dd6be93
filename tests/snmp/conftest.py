"""Real SNMP peers on loopback: snmpsim (camera, NVR, gateway) and Debian's snmpd; a delay proxy."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.snmp.simulator import SNMPREC_DEVICES, Snmpd, Snmpsim, packaged_snmprec
from tests.support.services import require_tool


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    """One snmpsim process serving the simulated camera, nvr and gateway (community = name)."""
    require_tool("snmpsim-command-responder", "snmpsim (pip)")
    sim = Snmpsim(
        tmp_path_factory.mktemp("snmpsim"), {n: packaged_snmprec(n) for n in SNMPREC_DEVICES}
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    """Debian's snmpd with community edgeRO and v3 user monitor (SHA/AES authPriv)."""
    exe = require_tool("snmpd", "snmpd")
    agent = Snmpd(tmp_path / "snmpd", executable=exe)
    agent.start()
    yield agent
    agent.stop()


class DelayProxy:
    """UDP relay on loopback that holds every request `delay` seconds: a slow device."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.delay = delay
        self.upstream = ("127.0.0.1", upstream_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port: int = self.front.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._main = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._main.start()

    def _relay(self, data: bytes, client: tuple[str, int]) -> None:
        if self._stop.wait(self.delay):
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:
            back.settimeout(5)
            back.sendto(data, self.upstream)
            try:
                answer = back.recv(65535)
            except OSError:
                return
            if not self._stop.is_set():
                self.front.sendto(answer, client)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.front], [], [], 0.1)
            if not ready:
                continue
            try:
                data, client = self.front.recvfrom(65535)
            except OSError:
                return
            t = threading.Thread(target=self._relay, args=(data, client), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._main.join(timeout=5)
        for t in self._threads:
            t.join(timeout=6)
        self.front.close()


@pytest.fixture
def slow_proxy(snmpsim: Snmpsim) -> Iterator[DelayProxy]:
    """The simulated devices again, behind a relay that delays each request by 2 s."""
    assert snmpsim.port is not None
    proxy = DelayProxy(snmpsim.port, delay=2.0)
    proxy.start()
    yield proxy
    proxy.stop()


def dead_port() -> int:
    """A loopback UDP port with nothing behind it (bound by nobody after this returns)."""
    from collector.snmp.simulator import free_udp_port

    return free_udp_port()


def elapsed(start: float) -> float:
    return time.monotonic() - start
