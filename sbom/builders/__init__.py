"""Builders: each turns one kind of source into a DeviceBom (see interface.py)."""

from __future__ import annotations

from sbom.builders.agent_inventory import AgentInventoryBuilder
from sbom.builders.interface import Builder, BuilderError, UnsafeArchiveError
from sbom.builders.rootfs import ExtractLimits, RootfsBuilder, safe_extract

BUILDERS: tuple[type[Builder], ...] = (AgentInventoryBuilder, RootfsBuilder)

__all__ = [
    "BUILDERS",
    "AgentInventoryBuilder",
    "Builder",
    "BuilderError",
    "ExtractLimits",
    "RootfsBuilder",
    "UnsafeArchiveError",
    "safe_extract",
]
