"""Collector configuration: one TOML file or command-line flags, validated at construction.

```toml
[broker]
url = "mqtt://127.0.0.1:1883"      # mqtts://host:8883 for TLS
username = "collector"
password_file = "collector.pw"     # first line is the password
ca_file = ""                       # TLS: CA bundle (default: system store)
cert_file = ""                     # TLS: client certificate and key, if the broker wants them
key_file = ""
protocol = "5"                     # "5" or "3.1.1"
client_id = "dunewatch-collector"
share_group = ""                   # "$share/<group>/..." so several collectors split the load
root = "dunewatch"

[store]
path = "dunewatch-data/dunewatch.db"
retention_days = 7
rollup_bucket_seconds = 300        # fine rollup width (min/avg/max per bucket)
rollup_retention_days = 30
coarse_rollup_bucket_seconds = 3600  # coarse rollups for the long history (a multiple of the fine)
coarse_rollup_retention_days = 400
cache_mb = 64                      # SQLite page cache per connection (ingest worker, serve loop)

[ingest]
workers = 1                        # > 1: worker processes on a shared subscription
reader = "paho"                    # or "lean" (MQTT 3.1.1, standard library, ~3x faster)
batch_rows = 2000
batch_ms = 250
max_payload = 524288
read_pause_ms = 20                 # lean reader: pause after a small read (0: read at once)

[liveness]
stale_after = 1.5
offline_after = 3.0
default_interval = 10
sweep_seconds = 5

[metrics]
listen = "127.0.0.1:9108"          # "" turns the endpoint off

[alerts]                           # evaluate alert rules in the serve loop, deliver to sinks
enabled = true
every = 60                         # seconds between evaluation passes
duty = 0.25                        # caps full_duty (0.01..1)
full_duty = 0.02                   # full passes at most this share; between: offline only
config = "alerts.toml"             # thresholds (docs/alerts.md); "" = defaults
sinks = "sinks.toml"               # [[sink]] tables: log, webhook, mqtt; "" = none
policy = ""                        # Digital Dune Index policy TOML; "" = defaults

[[sources]]                        # extra ingest sources from collector.ingest.SOURCE_TYPES
type = "snmp"
```
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.envelope import DEFAULT_MAX_PAYLOAD, DEFAULT_ROOT, EnvelopeError, check_root
from collector.errors import CollectorError
from collector.liveness import LivenessPolicy

# MQTT client implementations for ingest (collector/ingest/): paho-mqtt, or the lean
# standard-library MQTT 3.1.1 reader that does only what a QoS 1 subscriber needs.
READERS = ("paho", "lean")


class ConfigError(CollectorError):
    """A collector setting that cannot work; the message names the key and the file."""


def default_db_path() -> Path:
    """`$DUNEWATCH_DATA/dunewatch.db`, else `./dunewatch-data/dunewatch.db`."""
    base = os.environ.get("DUNEWATCH_DATA")
    return Path(base) / "dunewatch.db" if base else Path("dunewatch-data") / "dunewatch.db"


@dataclass(frozen=True)
class BrokerSettings:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    protocol: str = "5"
    client_id: str = "dunewatch-collector"
    share_group: str | None = None
    root: str = DEFAULT_ROOT
    keepalive: int = 30
    session_expiry: int = 7 * 86400

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f"broker url {self.url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT"
            )
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"broker url {self.url!r} has a bad port") from None
        if self.protocol not in ("5", "3.1.1"):
            raise ConfigError(f"broker protocol {self.protocol!r} must be '5' or '3.1.1'")
        try:
            check_root(self.root)
        except EnvelopeError as exc:
            raise ConfigError(f"broker root: {exc.detail}") from None
        if self.share_group is not None and (
            not self.share_group or any(c in self.share_group for c in "/+#")
        ):
            raise ConfigError(f"share_group {self.share_group!r} must be one plain topic level")
        if not self.client_id:
            raise ConfigError("broker client_id must not be empty (the session is kept by it)")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


@dataclass(frozen=True)
class IngestSettings:
    workers: int = 1
    batch_rows: int = 2000
    batch_ms: int = 250
    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_inflight: int = 1000
    reader: str = "paho"
    # lean reader: after a read that brought a little, wait this long before the next, so a
    # live stream is read (and handed over, and woken for) tens of messages at a time; at most
    # half of batch_ms, so a batch still closes on time
    read_pause_ms: int = 20

    @property
    def read_pause(self) -> float:
        """The pause in seconds, as the reader applies it."""
        return min(self.read_pause_ms, self.batch_ms // 2) / 1000.0

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise ConfigError(f"ingest reader {self.reader!r} must be one of {', '.join(READERS)}")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"ingest workers {self.workers} must be 1..64")
        if self.batch_rows < 1 or self.batch_ms < 1:
            raise ConfigError("ingest batch_rows and batch_ms must be positive")
        if not 0 <= self.read_pause_ms <= 1000:
            raise ConfigError(f"ingest read_pause_ms {self.read_pause_ms} must be 0..1000")
        if self.max_payload < 256:
            raise ConfigError(f"ingest max_payload {self.max_payload} is too small")


@dataclass(frozen=True)
class StoreSettings:
    path: Path = field(default_factory=default_db_path)
    retention_days: float = 7.0
    rollup_retention_days: float = 30.0
    rollup_bucket_seconds: int = 300
    # None: hourly, or the fine width when that is coarser
    coarse_rollup_bucket_seconds: int | None = None
    coarse_rollup_retention_days: float = 400.0
    cache_mb: int = 64

    def __post_init__(self) -> None:
        c = self.cache_mb
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= 65536:
            raise ConfigError(f"store cache_mb {c!r} must be a whole number of MiB, 1..65536")
        periods = (
            ("retention_days", self.retention_days),
            ("rollup_retention_days", self.rollup_retention_days),
            ("coarse_rollup_retention_days", self.coarse_rollup_retention_days),
        )
        for name, days in periods:
            if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:
                raise ConfigError(f"store {name} {days!r} must be a positive number of days")
        fine = _rollup_width("rollup_bucket_seconds", self.rollup_bucket_seconds)
        coarse = self.coarse_rollup_bucket_seconds
        if coarse is None:
            coarse = max(3600, fine)
            object.__setattr__(self, "coarse_rollup_bucket_seconds", coarse)
        _rollup_width("coarse_rollup_bucket_seconds", coarse)
        if coarse % fine:
            raise ConfigError(
                f"store coarse_rollup_bucket_seconds {coarse} must be "
                f"a multiple of rollup_bucket_seconds {fine}"
            )


def _rollup_width(name: str, b: object) -> int:
    if isinstance(b, bool) or not isinstance(b, int) or not 60 <= b <= 86400 or 86400 % b:
        raise ConfigError(
            f"store {name} {b!r} must be whole seconds from 60 to 86400 "
            "that divide a day (300, 900, 3600, ...)"
        )
    return b


@dataclass(frozen=True)
class AlertSettings:
    """Alert evaluation inside `collector serve`; the files are read when the collector is built."""

    enabled: bool = True
    every: float = 60.0
    duty: float = 0.25  # caps full_duty (it bounded every pass before liveness passes)
    full_duty: float = 0.02  # full passes at most this share; the others check liveness only
    config_file: Path | None = None
    sinks_file: Path | None = None
    policy_file: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"alerts enabled {self.enabled!r} must be true or false")
        if isinstance(self.every, bool) or not isinstance(self.every, int | float):
            raise ConfigError(f"alerts every {self.every!r} must be a number of seconds")
        if not 1.0 <= self.every <= 86400.0:
            raise ConfigError(f"alerts every {self.every:g}s must be between 1 and 86400 seconds")
        for name, share, low in (("duty", self.duty, 0.01), ("full_duty", self.full_duty, 0.001)):
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise ConfigError(f"alerts {name} {share!r} must be a number")
            if not low <= share <= 1.0:
                raise ConfigError(f"alerts {name} {share:g} must be between {low:g} and 1")
        for name, path in (
            ("config", self.config_file),
            ("sinks", self.sinks_file),
            ("policy", self.policy_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f"alerts {name} file {path} does not exist")


@dataclass(frozen=True)
class CollectorConfig:
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    sweep_seconds: float = 5.0
    metrics_listen: str | None = "127.0.0.1:9108"
    sources: tuple[Mapping[str, Any], ...] = ()
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def __post_init__(self) -> None:
        if self.ingest.reader == "lean" and self.broker.protocol != "3.1.1":
            raise ConfigError(
                "ingest reader 'lean' speaks MQTT 3.1.1 only: set broker protocol = \"3.1.1\""
            )
        if self.sweep_seconds <= 0:
            raise ConfigError("liveness sweep_seconds must be positive")
        if self.metrics_listen:
            host, _, port = self.metrics_listen.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"metrics listen {self.metrics_listen!r} must be HOST:PORT")


def read_password_file(path: str | Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"password file {path}: {exc.strerror or exc}") from None
    line = text.splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise ConfigError(f"password file {path} is empty")
    return line


_SECTIONS = {
    "broker": {
        "url",
        "username",
        "password_file",
        "ca_file",
        "cert_file",
        "key_file",
        "protocol",
        "client_id",
        "share_group",
        "root",
        "keepalive",
        "session_expiry",
    },
    "store": {
        "path",
        "retention_days",
        "rollup_retention_days",
        "rollup_bucket_seconds",
        "coarse_rollup_bucket_seconds",
        "coarse_rollup_retention_days",
        "cache_mb",
    },
    "ingest": {
        "workers",
        "batch_rows",
        "batch_ms",
        "max_payload",
        "max_inflight",
        "reader",
        "read_pause_ms",
    },
    "liveness": {
        "stale_after",
        "offline_after",
        "default_interval",
        "offline_polls",
        "sweep_seconds",
    },
    "metrics": {"listen"},
    "alerts": {"enabled", "every", "duty", "full_duty", "config", "sinks", "policy"},
}


def load_config(path: str | Path) -> CollectorConfig:
    """Read and validate a TOML config; relative paths in it are relative to the file."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {p}: not valid TOML ({exc})") from None
    return config_from_dict(doc, base=p.parent, where=str(p))


def config_from_dict(
    doc: Mapping[str, Any], base: Path = Path("."), where: str = "config"
) -> CollectorConfig:
    for key, val in doc.items():
        if key == "sources":
            if not isinstance(val, list) or not all(isinstance(s, dict) for s in val):
                raise ConfigError(f"{where}: [[sources]] must be a list of tables")
            continue
        if key not in _SECTIONS:
            raise ConfigError(f"{where}: unknown section [{key}]")
        if not isinstance(val, dict):
            raise ConfigError(f"{where}: [{key}] must be a table")
        unknown = set(val) - _SECTIONS[key]
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) in [{key}]: {', '.join(sorted(unknown))}")

    def rel(v: str | None) -> str | None:
        if not v:
            return None
        q = Path(v)
        return str(q if q.is_absolute() else base / q)

    try:
        b = dict(doc.get("broker", {}))
        pw_file = b.pop("password_file", None)
        for k in ("ca_file", "cert_file", "key_file"):
            if k in b:
                b[k] = rel(b[k])
        if pw_file:
            b["password"] = read_password_file(rel(pw_file) or pw_file)
        if b.get("share_group") == "":
            b["share_group"] = None
        if "protocol" in b:
            b["protocol"] = str(b["protocol"])
        broker = BrokerSettings(**b)
        s = dict(doc.get("store", {}))
        if "path" in s:
            s["path"] = Path(rel(s["path"]) or s["path"])
        store = StoreSettings(**s)
        ingest = IngestSettings(**doc.get("ingest", {}))
        lv = dict(doc.get("liveness", {}))
        sweep = float(lv.pop("sweep_seconds", 5.0))
        liveness = LivenessPolicy(**lv)
        metrics = doc.get("metrics", {}).get("listen", "127.0.0.1:9108") or None
        sources = tuple(doc.get("sources", ()))
        al = dict(doc.get("alerts", {}))
        alerts = AlertSettings(
            enabled=al.get("enabled", True),
            every=al.get("every", 60.0),
            duty=al.get("duty", 0.25),
            full_duty=al.get("full_duty", 0.02),
            config_file=_opt_path(rel(al.get("config"))),
            sinks_file=_opt_path(rel(al.get("sinks"))),
            policy_file=_opt_path(rel(al.get("policy"))),
        )
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return CollectorConfig(
        broker=broker,
        store=store,
        ingest=ingest,
        liveness=liveness,
        sweep_seconds=sweep,
        metrics_listen=metrics,
        sources=sources,
        alerts=alerts,
    )


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None
