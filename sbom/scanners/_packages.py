"""Shared glue for the package scanners: the agent's readers are the one parser of each database."""

from __future__ import annotations

from collections.abc import Callable

from agent.inventory.errors import PackageDbError
from agent.inventory.packages import Package
from sbom.model import EVIDENCE_PACKAGE_DB
from sbom.scanners.interface import (
    KIND_APPLICATION,
    KIND_LIBRARY,
    Finding,
    ScanContext,
    ScanResult,
)

Reader = Callable[..., list[Package]]


def package_kind(name: str, manager: str) -> str:
    if manager == "pypi" or name.startswith(("lib", "python3-", "py3-")):
        return KIND_LIBRARY
    return KIND_APPLICATION


def scan_packages(
    ctx: ScanContext, scanner: str, reader: Reader, default_namespace: str | None
) -> ScanResult:
    try:
        packages = reader(ctx.root, with_files=True)
    except PackageDbError as exc:
        return ScanResult(errors=(f"{scanner}: {exc}",))
    namespace = (ctx.distro_id or default_namespace) if default_namespace else None
    findings = tuple(
        Finding(
            name=p.name,
            version=p.version,
            kind=package_kind(p.name, p.manager),
            evidence=EVIDENCE_PACKAGE_DB,
            evidence_path=p.db,
            scanner=scanner,
            manager=p.manager,
            arch=p.arch,
            source_package=p.source,
            namespace=namespace,
            distro=ctx.distro if default_namespace else None,
        )
        for p in packages
    )
    owned = frozenset(f for p in packages for f in p.files)
    return ScanResult(findings=findings, owned=owned)
