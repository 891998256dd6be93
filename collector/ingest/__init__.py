"""Ingest sources and their explicit registry.

`SOURCE_TYPES` maps the `type` of a `[[sources]]` table in the collector config to a factory
`(table, config, opener) -> IngestSource`. The MQTT source is always started by `collector serve`;
other sources (SNMP polling of agentless devices) are added here, one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from collector.ingest.interface import IngestError, IngestSource, StoreOpener

if TYPE_CHECKING:
    from collector.config import CollectorConfig

SourceFactory = Callable[[Mapping[str, Any], "CollectorConfig", StoreOpener], IngestSource]


def _mqtt(table: Mapping[str, Any], config: CollectorConfig, opener: StoreOpener) -> IngestSource:
    from collector.ingest.mqtt import MqttSource

    return MqttSource(config.broker, config.ingest, opener)


def _snmp(table: Mapping[str, Any], config: CollectorConfig, opener: StoreOpener) -> IngestSource:
    from collector.snmp.source import source_factory

    return source_factory(table, config, opener)


# The registry: add one (type, factory) pair per source.
SOURCE_TYPES: tuple[tuple[str, SourceFactory], ...] = (("mqtt", _mqtt), ("snmp", _snmp))


def make_source(
    table: Mapping[str, Any], config: CollectorConfig, opener: StoreOpener
) -> IngestSource:
    kind = table.get("type")
    for name, factory in SOURCE_TYPES:
        if name == kind:
            return factory(table, config, opener)
    known = ", ".join(n for n, _ in SOURCE_TYPES)
    raise IngestError(f"[[sources]] type {kind!r} is unknown; known types: {known}")


__all__ = ["SOURCE_TYPES", "IngestError", "IngestSource", "StoreOpener", "make_source"]
