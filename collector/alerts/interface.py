"""The rules axis: a Rule reads a fleet snapshot and states which alert conditions hold now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from collector.errors import CollectorError

if TYPE_CHECKING:
    from collector.alerts.config import AlertsConfig
    from collector.alerts.model import Finding, FleetSnapshot


class AlertsError(CollectorError):
    """Base error of the alerts axis (bad configuration, unknown alert id, bad silence...)."""


class PassCancelled(AlertsError):
    """An evaluation pass stopped before it changed anything (the process is shutting down)."""


class Rule(Protocol):
    """One alert class (or a small family of them sharing inputs).

    `rule_ids` lists every stable id the rule can emit: the engine only auto-resolves alerts of a
    rule that ran without error, so a crashing rule never closes what it could not check.
    """

    @property
    def rule_ids(self) -> tuple[str, ...]: ...

    def evaluate(self, snapshot: FleetSnapshot, config: AlertsConfig) -> Iterable[Finding]: ...
