"""Alert sinks: the explicit registry of sink types and loading them from a TOML file.

[[sink]]
type = "webhook"
url = "http://127.0.0.1:8080/alerts"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from collector.sinks.interface import Sink, SinkError
from collector.sinks.log import LogSink
from collector.sinks.mqtt import MqttSink
from collector.sinks.webhook import WebhookSink


class SinkType(Protocol):
    type_name: str

    def from_config(self, cfg: Mapping[str, Any], where: str) -> Sink: ...


SINK_TYPES: tuple[Any, ...] = (LogSink, WebhookSink, MqttSink)

__all__ = ["SINK_TYPES", "LogSink", "MqttSink", "Sink", "SinkError", "WebhookSink", "load_sinks"]


def sinks_from_mapping(data: Mapping[str, Any], where: str) -> tuple[Sink, ...]:
    entries = data.get("sink", [])
    if not isinstance(entries, list):
        raise SinkError(f"{where}: 'sink' must be an array of tables ([[sink]])")
    unknown = sorted(set(data) - {"sink"})
    if unknown:
        raise SinkError(f"{where}: unknown top-level key(s) {', '.join(unknown)}; use [[sink]]")
    by_type = {t.type_name: t for t in SINK_TYPES}
    out: list[Sink] = []
    for i, cfg in enumerate(entries, 1):
        here = f"{where}: sink #{i}"
        if not isinstance(cfg, Mapping):
            raise SinkError(f"{here}: expected a table")
        kind = cfg.get("type")
        if kind not in by_type:
            raise SinkError(f"{here}: type {kind!r} not one of {', '.join(by_type)}")
        out.append(by_type[kind].from_config(cfg, here))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SinkError(f"{where}: sink names must be unique, repeated: {', '.join(dupes)}")
    return tuple(out)


def load_sinks(path: str | Path) -> tuple[Sink, ...]:
    """Sinks from a TOML file of [[sink]] tables; validated, not started."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SinkError(f"cannot read sinks file {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SinkError(f"{p}: not valid TOML: {exc}") from None
    return sinks_from_mapping(data, str(p))
