"""Registry of alert rules: one explicit tuple, easy to grep. Ids are stable interface."""

from __future__ import annotations

from collector.alerts.interface import Rule
from collector.alerts.rules.dune import ConcentrationRule, DuneGradeRule
from collector.alerts.rules.health import HealthThresholdRule, SaturationRule
from collector.alerts.rules.lifecycle import (
    EolApproachingRule,
    EolReachedRule,
    FirmwareOutdatedRule,
    UnsupportedRule,
)
from collector.alerts.rules.liveness import OFFLINE, OfflineRule, TelemetryLossRule
from collector.alerts.rules.vulnerability import EolExploitedRule, VulnerableComponentRule

RULES: tuple[Rule, ...] = (
    OfflineRule(),
    HealthThresholdRule(),
    SaturationRule(),
    FirmwareOutdatedRule(),
    EolReachedRule(),
    EolApproachingRule(),
    UnsupportedRule(),
    VulnerableComponentRule(),
    EolExploitedRule(),
    DuneGradeRule(),
    ConcentrationRule(),
    TelemetryLossRule(),
)

ALL_RULE_IDS: tuple[str, ...] = tuple(rid for rule in RULES for rid in rule.rule_ids)

# What a liveness pass (between full passes, collector/alerts/service.py) evaluates: rules that
# fire only on offline devices, read by the devices table's status index.
LIVENESS_RULE_IDS: frozenset[str] = frozenset({OFFLINE})
