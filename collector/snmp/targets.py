"""SNMP targets: one agentless device each, validated at construction, secrets never shown.

Targets come from a TOML file (`[[target]]` tables, see docs/snmp.md) or from CLI flags. The file
that `dunewatch snmp add` writes is created with mode 0600 because it holds communities and keys.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from agent.envelope import DEVICE_ID_RE
from collector.snmp.interface import TargetError

VERSIONS: Final = ("1", "2c", "3")
AUTH_PROTOCOLS: Final = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS: Final = ("DES", "3DES", "AES", "AES192", "AES256")
MASK: Final = "****"
DEFAULT_PORT: Final = 161
DEFAULT_INTERVAL: Final = 60.0

_FIELDS: Final = (
    "device_id",
    "host",
    "port",
    "version",
    "community",
    "user",
    "auth_proto",
    "auth_key",
    "priv_proto",
    "priv_key",
    "context",
    "tags",
    "interval",
    "timeout",
    "retries",
)
_SECRETS: Final = ("community", "auth_key", "priv_key")


@dataclass(frozen=True)
class Target:
    """One device to poll. Secret fields are left out of repr() so they never reach a log."""

    host: str
    port: int = DEFAULT_PORT
    version: str = "3"
    community: str | None = field(default=None, repr=False)
    user: str | None = None
    auth_proto: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_proto: str | None = None
    priv_key: str | None = field(default=None, repr=False)
    context: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    interval: float = DEFAULT_INTERVAL
    timeout: float = 1.0
    retries: int = 1
    device_id: str = ""

    def __post_init__(self) -> None:
        where = f"target {self.host!r}"
        if not isinstance(self.host, str) or not re.fullmatch(r"[A-Za-z0-9._:-]{1,253}", self.host):
            raise TargetError(f"{where}: host must be an IP address or host name")
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise TargetError(f"{where}: port {self.port!r} is not in 1..65535")
        if self.version not in VERSIONS:
            raise TargetError(
                f"{where}: version {self.version!r} is not one of {', '.join(VERSIONS)}"
            )
        if self.version in ("1", "2c"):
            if not self.community:
                raise TargetError(f"{where}: SNMP v{self.version} needs a community")
            if self.user or self.auth_key or self.priv_key:
                raise TargetError(f"{where}: v3 user/keys given for an SNMP v{self.version} target")
        else:
            self._check_v3(where)
        if not isinstance(self.interval, (int, float)) or not self.interval > 0:
            raise TargetError(f"{where}: interval must be a positive number of seconds")
        if not isinstance(self.timeout, (int, float)) or not self.timeout > 0:
            raise TargetError(f"{where}: timeout must be a positive number of seconds")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise TargetError(f"{where}: retries must be an integer >= 0")
        for key, val in self.tags:
            if not isinstance(key, str) or not isinstance(val, str) or not key:
                raise TargetError(f"{where}: tags must be non-empty names with string values")
        if not self.device_id:
            object.__setattr__(self, "device_id", default_device_id(self.host, self.port))
        if not DEVICE_ID_RE.match(self.device_id):
            raise TargetError(
                f"{where}: device id {self.device_id!r} must match {DEVICE_ID_RE.pattern}"
            )

    def _check_v3(self, where: str) -> None:
        if not self.user:
            raise TargetError(f"{where}: SNMPv3 needs a user")
        if self.community:
            raise TargetError(f"{where}: a community was given for an SNMPv3 target")
        if self.auth_proto is not None and self.auth_proto not in AUTH_PROTOCOLS:
            raise TargetError(
                f"{where}: auth protocol {self.auth_proto!r} is not one of "
                f"{', '.join(AUTH_PROTOCOLS)}"
            )
        if self.priv_proto is not None and self.priv_proto not in PRIV_PROTOCOLS:
            raise TargetError(
                f"{where}: privacy protocol {self.priv_proto!r} is not one of "
                f"{', '.join(PRIV_PROTOCOLS)}"
            )
        if (self.auth_proto is None) != (self.auth_key is None):
            raise TargetError(f"{where}: give both an auth protocol and an auth key, or neither")
        if (self.priv_proto is None) != (self.priv_key is None):
            raise TargetError(
                f"{where}: give both a privacy protocol and a privacy key, or neither"
            )
        if self.priv_proto is not None and self.auth_proto is None:
            raise TargetError(f"{where}: SNMPv3 privacy needs authentication too")
        for name in ("auth_key", "priv_key"):
            key = getattr(self, name)
            if key is not None and len(key) < 8:
                raise TargetError(f"{where}: {name} must be at least 8 characters (RFC 3414)")

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def security_level(self) -> str:
        """authPriv, authNoPriv, noAuthNoPriv for v3; 'community' for v1/v2c."""
        if self.version != "3":
            return "community"
        if self.priv_proto:
            return "authPriv"
        return "authNoPriv" if self.auth_proto else "noAuthNoPriv"

    def warning(self) -> str | None:
        """Why this target's security is weaker than recommended, or None for v3 authPriv."""
        if self.version in ("1", "2c"):
            return (
                f"{self.device_id}: SNMP v{self.version} sends the community in clear text and "
                "has no integrity; SNMPv3 authPriv (SHA/AES) is recommended"
            )
        if self.security_level != "authPriv":
            return f"{self.device_id}: SNMPv3 {self.security_level}; authPriv is recommended"
        return None

    def masked(self) -> dict[str, Any]:
        """A printable description: every secret replaced by a fixed mask."""
        out: dict[str, Any] = {}
        for name in _FIELDS:
            val = getattr(self, name)
            if name in _SECRETS:
                val = MASK if val else None
            elif name == "tags":
                val = dict(val)
            out[name] = val
        return out

    def to_record(self) -> dict[str, Any]:
        """Every field (secrets included) for the targets file; never print this."""
        rec: dict[str, Any] = {}
        for name in _FIELDS:
            val = getattr(self, name)
            if name == "tags":
                val = dict(val)
            if val is None or val == "" or val == {}:
                continue
            rec[name] = val
        return rec


def default_device_id(host: str, port: int) -> str:
    """snmp-<host>[-<port>] with characters a device id may not hold replaced by '-'."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", host)
    return f"snmp-{base}" if port == DEFAULT_PORT else f"snmp-{base}-{port}"


def parse_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """HOST, HOST:PORT, or [IPv6]:PORT."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", text)
    if m:
        return m.group(1), int(m.group(2) or default_port)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            raise TargetError(f"{text!r}: port {port!r} is not a number")
        return host, int(port)
    if text.count(":") > 1:
        ipaddress.ip_address(text)  # bare IPv6 address without a port
    return text, default_port


def target_from_mapping(data: Mapping[str, Any], where: str, defaults: Mapping[str, Any]) -> Target:
    """Build one target from a TOML table, naming the table in every error."""
    merged = {**defaults, **data}
    unknown = sorted(set(merged) - set(_FIELDS))
    if unknown:
        raise TargetError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if "host" not in merged:
        raise TargetError(f"{where}: missing 'host'")
    kwargs = dict(merged)
    tags = kwargs.pop("tags", {}) or {}
    if not isinstance(tags, dict):
        raise TargetError(f"{where}: 'tags' must be a table of name = \"value\"")
    for key in ("version",):
        if key in kwargs and not isinstance(kwargs[key], str):
            kwargs[key] = str(kwargs[key])
    for key in ("auth_proto", "priv_proto"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = kwargs[key].upper()
    try:
        return Target(tags=tuple(sorted((str(k), v) for k, v in tags.items())), **kwargs)
    except TargetError as exc:
        raise TargetError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise TargetError(f"{where}: {exc}") from None


def load_targets(path: Path) -> list[Target]:
    """Read a targets file; a missing file is an empty list (nothing added yet)."""
    if not path.exists():
        return []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from None
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise TargetError(f"{path}: [defaults] must be a table")
    entries = doc.get("target", [])
    if not isinstance(entries, list):
        raise TargetError(f"{path}: targets must be [[target]] tables")
    extra = sorted(set(doc) - {"defaults", "target"})
    if extra:
        raise TargetError(f"{path}: unknown top-level key(s) {', '.join(extra)}")
    out: list[Target] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{path}: target #{i + 1}"
        if not isinstance(entry, dict):
            raise TargetError(f"{where}: must be a table")
        tgt = target_from_mapping(entry, where, defaults)
        if tgt.device_id in seen:
            raise TargetError(f"{where}: duplicate device id {tgt.device_id!r}")
        seen.add(tgt.device_id)
        out.append(tgt)
    return out


def _toml_value(val: Any) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, (int, float)):
        return repr(val)
    if isinstance(val, str):
        escaped = val.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(val, dict):
        inner = ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in val.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TargetError(f"cannot write {type(val).__name__} to the targets file")


def dump_targets(targets: Iterable[Target]) -> str:
    lines = ["# dunewatch SNMP targets (holds secrets: keep this file mode 0600)", ""]
    for tgt in targets:
        lines.append("[[target]]")
        for key, val in tgt.to_record().items():
            lines.append(f"{key} = {_toml_value(val)}")
        lines.append("")
    return "\n".join(lines)


def save_targets(path: Path, targets: Iterable[Target]) -> None:
    """Write atomically with mode 0600, so a crash never leaves half a file of secrets."""
    text = dump_targets(targets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def add_target(path: Path, target: Target, replace_existing: bool = False) -> None:
    targets = load_targets(path)
    if any(t.device_id == target.device_id for t in targets):
        if not replace_existing:
            raise TargetError(
                f"{path}: device id {target.device_id!r} already exists",
                tip="use --replace to overwrite it, or --device-id to pick another id",
            )
        targets = [t for t in targets if t.device_id != target.device_id]
    targets.append(target)
    save_targets(path, targets)


def remove_target(path: Path, device_id: str) -> Target:
    targets = load_targets(path)
    keep = [t for t in targets if t.device_id != device_id]
    if len(keep) == len(targets):
        raise TargetError(f"{path}: no target with device id {device_id!r}")
    save_targets(path, keep)
    return next(t for t in targets if t.device_id == device_id)


def with_device_id(target: Target, device_id: str) -> Target:
    return replace(target, device_id=device_id)
