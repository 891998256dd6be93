"""The builder axis: one source of truth about a device (inventory, root filesystem) → DeviceBom.

Builders are configured at construction (validated there) and do their I/O in `build()`.
"""

from __future__ import annotations

from typing import Protocol

from sbom.errors import SbomError
from sbom.model import DeviceBom


class BuilderError(SbomError):
    """The source cannot be turned into a BOM; the message names the input and what is wrong."""


class UnsafeArchiveError(BuilderError):
    """An archive member that would escape the extraction root or is not a plain file/dir/link."""


class Builder(Protocol):
    name: str

    def build(self) -> DeviceBom: ...
