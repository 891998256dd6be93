"""Agent configuration: one TOML file, DUNEWATCH_AGENT_* environment overrides, then CLI flags.

Everything is validated at load time and every problem is reported on its own line, naming the
key and where its value came from, so an operator fixes a bad file in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.envelope import DEVICE_ID_RE, check_root
from agent.errors import ConfigError

ENV_PREFIX = "DUNEWATCH_AGENT_"
PROBE_NAMES = ("cpu", "mem", "disk", "net", "sensors", "uptime", "procs", "agent")
_URL_RE = re.compile(r"^(mqtts?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?/?$")
_DEFAULT_PORT = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class AgentSection:
    """Identity and schedule."""

    device_id: str = ""
    interval: float = 10.0
    root: str = "dunewatch"
    inventory_check: float = 3600.0  # seconds between inventory hash checks
    host_root: str = "/"  # where /proc, /etc and package databases are read from
    log_level: str = "info"


@dataclass(frozen=True)
class BrokerSection:
    """Where and how to connect; TLS verification is always on when mqtts:// is used."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str = ""  # default: the device id (the broker ACL keys on it)
    password_file: str = ""
    protocol: str = "5"  # "5" or "3.1.1"
    ca_file: str = ""  # default: the system trust store
    cert_file: str = ""
    key_file: str = ""
    client_id: str = ""  # default: the device id
    keepalive: int = 30
    window: int = 100  # QoS 1 messages in flight at once (paho's ids are 16-bit)
    backoff_min: float = 1.0
    backoff_max: float = 60.0

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    @property
    def host(self) -> str:
        m = _URL_RE.match(self.url)
        assert m is not None  # validated at load
        return m.group(2).strip("[]")

    @property
    def port(self) -> int:
        m = _URL_RE.match(self.url)
        assert m is not None
        return int(m.group(3)) if m.group(3) else _DEFAULT_PORT[m.group(1)]


@dataclass(frozen=True)
class OutboxSection:
    """Persistent buffer bounds: the oldest health reports go first when either bound is hit."""

    path: str = "dunewatch-outbox.db"
    max_bytes: int = 4 * 1024 * 1024
    max_age: float = 7 * 24 * 3600.0


@dataclass(frozen=True)
class DeviceSection:
    """What the operator declares about the device; merged into the inventory as 'declared'."""

    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware_vendor: str = ""
    firmware_version: str = ""
    firmware_release_date: str = ""


@dataclass(frozen=True)
class ProbesSection:
    """Which health sections to collect, and on which mounts and interfaces."""

    enabled: tuple[str, ...] = PROBE_NAMES
    mounts: tuple[str, ...] = ()  # default: every physical filesystem
    interfaces: tuple[str, ...] = ()  # default: every non-loopback interface


@dataclass(frozen=True)
class AgentConfig:
    """The validated configuration: one value per section, and where it was read from."""

    agent: AgentSection = field(default_factory=AgentSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    device: DeviceSection = field(default_factory=DeviceSection)
    probes: ProbesSection = field(default_factory=ProbesSection)
    source: str = "defaults"

    @property
    def username(self) -> str:
        return self.broker.username or self.agent.device_id

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"dunewatch-agent-{self.agent.device_id}"

    def password(self) -> str | None:
        """Read the password file (at connect time, so a rotated password needs no restart)."""
        if not self.broker.password_file:
            return None
        try:
            return Path(self.broker.password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"[broker] password_file: cannot read {self.broker.password_file} ({exc.strerror})"
            ) from None


_SECTIONS: dict[str, type] = {
    "agent": AgentSection,
    "broker": BrokerSection,
    "outbox": OutboxSection,
    "device": DeviceSection,
    "probes": ProbesSection,
}


def _type_name(tp: Any) -> str:
    return {str: "string", int: "integer", float: "number", tuple: "list of strings"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any, from_text: bool) -> Any:
    """Check (file) or convert (environment/flags arrive as text) one value; ValueError if wrong."""
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if tp is int:
        if from_text and isinstance(value, str):
            return int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError
    if tp is float:
        if from_text and isinstance(value, str):
            return float(value.strip())
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError
    if tp is tuple:
        if from_text and isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError
    raise ValueError


_FIELD_TYPES: dict[str, dict[str, Any]] = {
    name: {
        f.name: {"str": str, "int": int, "float": float}.get(str(f.type), tuple)
        for f in fields(cls)
    }
    for name, cls in _SECTIONS.items()
}


def read_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file; a missing or malformed file is a ConfigError naming it."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def env_overrides(env: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """DUNEWATCH_AGENT_<SECTION>_<KEY>=value, e.g. DUNEWATCH_AGENT_BROKER_URL=mqtts://hub:8883."""
    out: dict[tuple[str, str], str] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        out[(section, key)] = value
    return out


def load(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[tuple[str, str], Any] | None = None,
    check_files: bool = True,
) -> AgentConfig:
    """Build and validate the configuration; raise ConfigError with one line per problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    where = str(path) if path is not None else "defaults"

    if path is not None:
        doc = read_file(path)
        for section, table in doc.items():
            if section not in _SECTIONS:
                problems.append(
                    f"{path}: unknown section [{section}]; known: {', '.join(_SECTIONS)}"
                )
                continue
            if not isinstance(table, dict):
                problems.append(f"{path}: [{section}] must be a table")
                continue
            for key, value in table.items():
                _set(values, section, key, value, f"{path}: [{section}] {key}", False, problems)

    for (section, key), value in env_overrides(env).items():
        label = f"environment {ENV_PREFIX}{section.upper()}_{key.upper()}"
        _set(values, section, key, value, label, True, problems)

    for (section, key), value in (flags or {}).items():
        if value is None:
            continue
        label = f"--{key.replace('_', '-')}"
        _set(values, section, key, value, label, isinstance(value, str), problems)

    if problems:
        raise ConfigError("\n".join(problems))
    cfg = AgentConfig(
        agent=AgentSection(**values["agent"]),
        broker=BrokerSection(**values["broker"]),
        outbox=OutboxSection(**values["outbox"]),
        device=DeviceSection(**values["device"]),
        probes=ProbesSection(**values["probes"]),
        source=where,
    )
    problems = validate(cfg, require_device=True)
    if check_files:
        problems += _check_files(cfg)
    if problems:
        prefix = f"{path}: " if path is not None else ""
        raise ConfigError("\n".join(prefix + p for p in problems))
    return cfg


def _set(
    values: dict[str, dict[str, Any]],
    section: str,
    key: str,
    value: Any,
    label: str,
    from_text: bool,
    problems: list[str],
) -> None:
    types = _FIELD_TYPES.get(section)
    if types is None:
        problems.append(f"{label}: unknown section [{section}]; known: {', '.join(_SECTIONS)}")
        return
    if key not in types:
        problems.append(f"{label}: unknown key {key!r} in [{section}]; known: {', '.join(types)}")
        return
    tp = types[key]
    try:
        values[section][key] = _coerce(value, tp, from_text)
    except ValueError:
        problems.append(f"{label}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def validate(cfg: AgentConfig, require_device: bool = True) -> list[str]:
    """Value checks beyond types; returns one line per problem."""
    p: list[str] = []
    a, b, o = cfg.agent, cfg.broker, cfg.outbox
    if not a.device_id:
        if require_device:
            p.append("[agent] device_id is required (or --device-id)")
    elif not DEVICE_ID_RE.match(a.device_id):
        p.append(f"[agent] device_id {a.device_id!r} must match {DEVICE_ID_RE.pattern}")
    if not 0.1 <= a.interval <= 86400:
        p.append(f"[agent] interval must be between 0.1 and 86400 seconds, got {a.interval}")
    try:
        check_root(a.root)
    except ValueError:
        p.append(f"[agent] root {a.root!r} must be plain topic levels without wildcards")
    if a.inventory_check < 1:
        p.append(f"[agent] inventory_check must be at least 1 second, got {a.inventory_check}")
    if a.log_level.lower() not in ("debug", "info", "warning", "error"):
        p.append(f"[agent] log_level must be debug, info, warning or error, got {a.log_level!r}")
    m = _URL_RE.match(b.url)
    if m is None:
        p.append(f"[broker] url {b.url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
    elif m.group(3) and not 0 < int(m.group(3)) < 65536:
        p.append(f"[broker] url {b.url!r}: port out of range")
    if b.protocol not in ("5", "3.1.1"):
        p.append(f'[broker] protocol must be "5" or "3.1.1", got {b.protocol!r}')
    if (b.cert_file or b.key_file) and not (b.cert_file and b.key_file):
        p.append("[broker] cert_file and key_file must be given together")
    if (b.ca_file or b.cert_file) and m is not None and m.group(1) != "mqtts":
        p.append("[broker] ca_file/cert_file are set but the url is not mqtts://")
    if not 5 <= b.keepalive <= 3600:
        p.append(f"[broker] keepalive must be between 5 and 3600 seconds, got {b.keepalive}")
    if not 1 <= b.window <= 60000:
        p.append(f"[broker] window must be between 1 and 60000, got {b.window}")
    if not 0.1 <= b.backoff_min <= b.backoff_max:
        p.append("[broker] need 0.1 <= backoff_min <= backoff_max")
    if o.max_bytes < 16 * 1024:
        p.append(f"[outbox] max_bytes must be at least 16384, got {o.max_bytes}")
    if o.max_age < 60:
        p.append(f"[outbox] max_age must be at least 60 seconds, got {o.max_age}")
    if not o.path:
        p.append("[outbox] path must not be empty")
    bad = [n for n in cfg.probes.enabled if n not in PROBE_NAMES]
    if bad:
        p.append(
            f"[probes] enabled: unknown probe(s) {', '.join(bad)}; known: {', '.join(PROBE_NAMES)}"
        )
    d = cfg.device.firmware_release_date
    if d and not re.match(r"^\d{4}-\d{2}-\d{2}$", d):
        p.append(f"[device] firmware_release_date must be an ISO date YYYY-MM-DD, got {d!r}")
    return p


def _check_files(cfg: AgentConfig) -> list[str]:
    """The files the agent will need later must be readable now, not at 3 a.m. on reconnect."""
    p: list[str] = []
    b = cfg.broker
    for key in ("password_file", "ca_file", "cert_file", "key_file"):
        name = getattr(b, key)
        if not name:
            continue
        path = Path(name)
        if not path.is_file():
            p.append(f"[broker] {key}: {name} does not exist or is not a file")
        elif not os.access(path, os.R_OK):
            p.append(f"[broker] {key}: {name} is not readable by this user")
    parent = Path(cfg.outbox.path).parent
    if not parent.is_dir():
        p.append(f"[outbox] path: directory {parent} does not exist")
    return p


def describe(cfg: AgentConfig, keys: Sequence[str] = ("agent", "broker", "outbox")) -> str:
    """A short human summary for check-config (never the password)."""
    lines = []
    for name in keys:
        section = getattr(cfg, name)
        for f in fields(section):
            lines.append(f"{name}.{f.name} = {getattr(section, f.name)!r}")
    return "\n".join(lines)
