"""Errors of the inventory readers: one broken database is reported, never fatal to the rest."""

from __future__ import annotations

from agent.errors import AgentError


class InventoryError(AgentError):
    """Base of every error an inventory reader raises on purpose."""


class PackageDbError(InventoryError):
    """A package database that cannot be parsed; names the file (relative to the root) and line."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem
