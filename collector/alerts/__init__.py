"""Alerts: rules over a fleet snapshot, deduplicated alerts with a lifecycle, silences, history.

Public API: `collector.alerts.engine.evaluate(...)` runs one pass; `AlertStore(db)` reads and
changes alerts (`open_alerts()`, `ack()`, `resolve()`, `silence()`).
"""
