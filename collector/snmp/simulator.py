"""Simulated SNMP agents on loopback: snmpsim (many devices) and Debian's snmpd (one real agent).

Used by the tests, the benchmark and `dunewatch demo`. Everything here is labelled simulated:
the data files describe invented devices. Processes bind 127.0.0.1 only.

snmpsim serves one device per data file: the community (v1/v2c) or the SNMPv3 context name is the
file's path under the data directory without `.snmprec`. Every port of one process serves every
file, so distinct devices per port need one process per port (see LIBRARY-NOTES).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Final

from collector.snmp.interface import SimulatorError
from collector.snmp.targets import Target

SNMPREC_DEVICES: Final = ("camera", "nvr", "gateway")
V3_USER: Final = "monitor"
V3_AUTH_KEY: Final = "authpass123"
V3_PRIV_KEY: Final = "privpass123"
SNMPSIM_OPEN_FILES: Final = 31  # snmpsim's own cap on data files kept open (DataFile)
RESPONDER_FULL: Final = "full"  # snmpsim-command-responder: pysnmp's engine, v1/v2c/v3
RESPONDER_LITE: Final = "lite"  # snmpsim-command-responder-lite: v1/v2c only, no engine
RESPONDERS: Final = (RESPONDER_FULL, RESPONDER_LITE)

# Starts snmpsim's responder with two fixes (see Snmpsim.tuned). First, a different cap on open
# data files: snmpsim closes and reopens a device's data file and index whenever more than its
# cap are in use, which with hundreds of devices per process happens on nearly every request.
# Second, `--max-var-binds` made effective again: snmpsim sets `maxVarBinds` on pysnmp's GETBULK
# responder, which pysnmp 7 renamed `max_varbinds`, so every GETBULK answer stays capped at 64
# repeated varbinds whatever the option says (more round trips per device than asked for).
_LAUNCHER: Final = (
    "import sys\n"
    "from snmpsim import datafile\n"
    "from pysnmp.entity.rfc3413 import cmdrsp\n"
    "datafile.DataFile.max_queue_entries = int(sys.argv.pop(1))\n"
    "if not hasattr(cmdrsp.BulkCommandResponder, 'maxVarBinds'):\n"
    "    cmdrsp.BulkCommandResponder.maxVarBinds = property(\n"
    "        lambda self: self.max_varbinds,\n"
    "        lambda self, value: setattr(self, 'max_varbinds', int(value)))\n"
    "from snmpsim.commands.responder import main\n"
    "sys.argv[0] = 'snmpsim-command-responder'\n"
    "sys.exit(main())\n"
)

# Starts snmpsim's lightweight v1/v2c responder (snmpsim/commands/responder_lite.py), which
# answers from the same data files without pysnmp's SNMP engine (no message processing or
# security subsystems). As shipped in snmpsim 1.2.2 it does not start against pysnmp 7: it still
# calls names pysnmp 7 and snmpsim itself renamed (registerRecvCbFun, api.protoModules,
# setErrorStatus; readVars/readNextVars/writeVars on snmpsim's own data file controllers). The
# launcher adds those names as aliases of the current ones and changes nothing else; the data
# file controllers are called exactly as the full responder calls them, minus the request
# context that only variation modules read (our data files use none).
_LITE_LAUNCHER: Final = (
    "import sys\n"
    "from pysnmp.carrier.base import AbstractTransportDispatcher as D\n"
    "from pysnmp.proto import api\n"
    "from snmpsim import controller, datafile\n"
    "datafile.DataFile.max_queue_entries = int(sys.argv.pop(1))\n"
    "api.protoModules = api.PROTOCOL_MODULES\n"
    "for old, new in (('registerRecvCbFun', 'register_recv_callback'),\n"
    "                 ('registerTransport', 'register_transport'),\n"
    "                 ('jobStarted', 'job_started'), ('runDispatcher', 'run_dispatcher'),\n"
    "                 ('closeDispatcher', 'close_dispatcher')):\n"
    "    setattr(D, old, lambda self, *a, _new=new: getattr(self, _new)(*a))\n"
    "for mod in api.PROTOCOL_MODULES.values():\n"
    "    pdu = type(mod.apiPDU)\n"
    "    pdu.setErrorStatus = lambda self, *a: self.set_error_status(*a)\n"
    "    pdu.setErrorIndex = lambda self, *a: self.set_error_index(*a)\n"
    "def _data(next_flag, set_flag):\n"
    "    def call(self, var_binds):\n"
    "        return self._data_file.process_var_binds(\n"
    "            var_binds, nextFlag=next_flag, setFlag=set_flag)\n"
    "    return call\n"
    "M = controller.MibInstrumController\n"
    "M.readVars, M.readNextVars, M.writeVars = (\n"
    "    _data(False, False), _data(True, False), _data(False, True))\n"
    "X = controller.DataIndexInstrumController\n"
    "X.readVars, X.readNextVars, X.writeVars = (\n"
    "    X.read_variables, X.read_next_variables, X.write_variables)\n"
    "from snmpsim.commands.responder_lite import main\n"
    "sys.argv[0] = 'snmpsim-command-responder-lite'\n"
    "sys.exit(main())\n"
)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing listens on right now (tiny race with other starters; fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def packaged_snmprec(name: str) -> str:
    """Text of a packaged simulated device (camera, nvr, gateway)."""
    return files("collector.snmp").joinpath(f"data/snmprec/{name}.snmprec").read_text("utf-8")


def _check_loopback(host: str) -> None:
    if not host.startswith("127."):
        raise SimulatorError(f"simulated agents bind loopback only, not {host!r}")


def _wait_ready(target: Target, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Poll sysDescr until the agent answers; fail with its output if it dies first."""
    from collector.snmp.poller import Poller

    deadline = time.monotonic() + timeout
    quick = Target(**{**target.__dict__, "timeout": 0.3, "retries": 0})

    async def probe() -> bool:
        async with Poller() as poller:
            try:
                got = await poller.get(quick, ["1.3.6.1.2.1.1.1.0"])
            except Exception:
                return False
            return bool(got.get("1.3.6.1.2.1.1.1.0"))

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SimulatorError(
                f"{what} exited with code {proc.returncode}: {_log_tail(proc)}".strip()
            )
        if asyncio.run(probe()):
            return
    raise SimulatorError(f"{what} did not answer on {target.address} within {timeout:g} s")


_LOGS: dict[int, Path] = {}


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a simulator with its output in a log file (a full pipe would stall it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    _LOGS[proc.pid] = log
    return proc


def _log_tail(proc: subprocess.Popen[bytes]) -> str:
    log = _LOGS.get(proc.pid)
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-2000:].strip()


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass(frozen=True)
class SimulatedDevice:
    name: str  # community / v3 context name
    port: int
    host: str = "127.0.0.1"

    def _default_id(self) -> str:
        return f"sim-{self.name.replace('/', '-')}-{self.port}"

    def v2c_target(self, **overrides: object) -> Target:
        """A v2c target for this device; keyword arguments override any Target field."""
        params: dict[str, object] = {
            "version": "2c",
            "community": self.name,
            "device_id": self._default_id(),
        }
        params.update(overrides)
        return Target(host=self.host, port=self.port, **params)  # type: ignore[arg-type]

    def v3_target(self, **overrides: object) -> Target:
        """A v3 authPriv (SHA/AES) target; the device is selected by the context name."""
        params: dict[str, object] = {
            "user": V3_USER,
            "auth_proto": "SHA",
            "auth_key": V3_AUTH_KEY,
            "priv_proto": "AES",
            "priv_key": V3_PRIV_KEY,
            "context": self.name,
            "device_id": self._default_id(),
        }
        params.update(overrides)
        return Target(host=self.host, port=self.port, version="3", **params)  # type: ignore[arg-type]


class Snmpsim:
    """One snmpsim-command-responder process serving `devices` ({name: snmprec text}) on one port.

    start() writes the data files, starts the process and waits until it answers; stop() ends it.
    """

    def __init__(
        self,
        workdir: Path,
        devices: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int | None = None,
        max_var_binds: int = 256,
        executable: str | None = None,
        python: str | None = None,
        open_files: int | None = None,
        tuned: bool = False,
        responder: str = RESPONDER_FULL,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`python`: run snmpsim with this interpreter (e.g. a PyPy venv that has snmpsim);
        `open_files`: data files snmpsim keeps open at once (its default is 31); `tuned`: start
        it through `_LAUNCHER`, which also makes `max_var_binds` take effect (implied by the
        other two). Without any of them snmpsim runs exactly as installed. `responder="lite"`:
        snmpsim's lightweight v1/v2c responder through `_LITE_LAUNCHER` (no SNMPv3; its
        `max_var_binds` works as is, and `open_files` applies the same way). `env`: extra
        environment for the simulator process (e.g. PyPy's PYPY_GC_NURSERY)."""
        _check_loopback(host)
        if responder not in RESPONDERS:
            raise SimulatorError(
                f"snmpsim responder {responder!r} is not one of {', '.join(RESPONDERS)}"
            )
        if open_files is not None and open_files < 1:
            raise SimulatorError("open_files must be >= 1")
        if not devices:
            raise SimulatorError("snmpsim needs at least one device data file")
        self.workdir = Path(workdir).resolve()
        self.devices = dict(devices)
        self.host = host
        self.port = port
        self.max_var_binds = max_var_binds
        self.executable = executable
        self.python = python
        self.open_files = open_files
        self.responder = responder
        self.env = dict(env or {})
        self.tuned = tuned or python is not None or open_files is not None
        self._proc: subprocess.Popen[bytes] | None = None

    def device(self, name: str) -> SimulatedDevice:
        if name not in self.devices:
            raise SimulatorError(f"no simulated device {name!r}")
        assert self.port is not None
        return SimulatedDevice(name, self.port, self.host)

    def command(self) -> list[str]:
        lite = self.responder == RESPONDER_LITE
        if self.tuned or lite:
            files = self.open_files or max(SNMPSIM_OPEN_FILES, len(self.devices) + 1)
            launcher = _LITE_LAUNCHER if lite else _LAUNCHER
            base = [self.python or sys.executable, "-c", launcher, str(files)]
        else:
            exe = self.executable or shutil.which("snmpsim-command-responder")
            base = [exe] if exe else [sys.executable, "-m", "snmpsim.commands.responder"]
        args = [
            f"--data-dir={self.workdir / 'data'}",
            f"--cache-dir={self.workdir / 'cache'}",
            f"--agent-udpv4-endpoint={self.host}:{self.port}",
            f"--max-var-binds={self.max_var_binds}",
            "--logging-method=null",
        ]
        if not lite:
            args += [
                f"--v3-user={V3_USER}",
                f"--v3-auth-key={V3_AUTH_KEY}",
                "--v3-auth-proto=SHA",
                f"--v3-priv-key={V3_PRIV_KEY}",
                "--v3-priv-proto=AES",
            ]
        if self.python is not None:
            # The packaged variation modules (none used by our data files) need Python 3.10+
            # syntax; another interpreter (PyPy 3.9) gets an empty module directory.
            args.append(f"--variation-modules-dir={self.workdir / 'variation'}")
        if os.geteuid() == 0:
            # snmpsim refuses to run as root unless told which user to keep (LIBRARY-NOTES).
            args += ["--process-user=root", "--process-group=root"]
        return base + args

    def launch(self) -> None:
        """Write the data files and start the process without waiting (see wait_ready)."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cache").mkdir(parents=True, exist_ok=True)
        (self.workdir / "variation").mkdir(parents=True, exist_ok=True)
        for name, text in self.devices.items():
            path = data / f"{name}.snmprec"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if self.port is None:
            self.port = free_udp_port(self.host)
        env = {**os.environ, **self.env} if self.env else None
        self._proc = _spawn(self.command(), self.workdir / "snmpsim.log", env=env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the first device answers (snmpsim indexes every file first)."""
        assert self._proc is not None, "launch() first"
        first = next(iter(self.devices))
        try:
            _wait_ready(self.device(first).v2c_target(), self._proc, "snmpsim", timeout)
        except BaseException:
            self.stop()
            raise

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> Snmpsim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Snmpd:
    """Debian's net-snmp agent on a loopback port with a v2c community and a v3 authPriv user."""

    def __init__(
        self,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        community: str = "edgeRO",
        v3_user: str = V3_USER,
        auth_key: str = V3_AUTH_KEY,
        priv_key: str = V3_PRIV_KEY,
        sys_name: str = "sim-snmpd",
        executable: str | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        _check_loopback(host)
        self.workdir = Path(workdir).resolve()
        self.host = host
        self.port = port
        self.community = community
        self.v3_user = v3_user
        self.auth_key = auth_key
        self.priv_key = priv_key
        self.sys_name = sys_name
        self.executable = executable
        self.extra_config = tuple(extra_config)
        self._proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        return "\n".join(
            [
                f"agentaddress udp:{self.host}:{self.port}",
                f"rocommunity {self.community} {self.host} .1",
                f'createUser {self.v3_user} SHA "{self.auth_key}" AES "{self.priv_key}"',
                f"rouser {self.v3_user} priv .1",
                f"sysName {self.sys_name}",
                "sysLocation simulated lab (loopback)",
                "sysContact ops@example.org",
                *self.extra_config,
                "",
            ]
        )

    def v2c_target(self, **kwargs: object) -> Target:
        assert self.port is not None
        params: dict[str, object] = {"community": self.community}
        params.update(kwargs)
        return Target(host=self.host, port=self.port, version="2c", **params)  # type: ignore[arg-type]

    def v3_target(self, **kwargs: object) -> Target:
        assert self.port is not None
        params: dict[str, object] = {
            "user": self.v3_user,
            "auth_proto": "SHA",
            "auth_key": self.auth_key,
            "priv_proto": "AES",
            "priv_key": self.priv_key,
        }
        params.update(kwargs)
        return Target(host=self.host, port=self.port, version="3", **params)  # type: ignore[arg-type]

    def start(self, timeout: float = 30.0) -> None:
        exe = self.executable or shutil.which("snmpd") or "/usr/sbin/snmpd"
        if self.port is None:
            self.port = free_udp_port(self.host)
        persist = self.workdir / "persist"
        persist.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "snmpd.conf"
        conf.write_text(self.config_text(), encoding="utf-8")
        env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(persist)}
        self._proc = _spawn(
            [exe, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(self.workdir / "snmpd.pid")],
            self.workdir / "snmpd.log",
            env=env,
        )
        try:
            _wait_ready(self.v2c_target(), self._proc, "snmpd", timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def __enter__(self) -> Snmpd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
