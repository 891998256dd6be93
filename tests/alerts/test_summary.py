"""The demo summary's top-alerts table: worst first, then most recent, with counts per rule."""

from __future__ import annotations

from collector.alerts.model import Alert
from collector.stack_report import _alerts_table, top_alerts


def alert(i: int, rule: str, severity: str, last_seen: float, device: str = "cam-1") -> Alert:
    return Alert(
        id=i,
        dedupe_key=f"{rule}|{device}|",
        rule_id=rule,
        device_id=device,
        severity=severity,
        status="open",
        summary=f"{device}: {rule}",
        evidence={},
        first_seen=last_seen,
        last_seen=last_seen,
    )


def test_top_alerts_by_severity_then_recency() -> None:
    alerts = [
        alert(1, "dune.grade", "high", 100.0),
        alert(2, "device.offline", "medium", 300.0),
        alert(3, "vuln.eol_exploited", "emergency", 50.0),
        alert(4, "dune.grade", "high", 200.0),
        alert(5, "health.cpu", "low", 400.0),
    ]
    assert [a.id for a in top_alerts(alerts)] == [3, 4, 1, 2, 5]
    assert [a.id for a in top_alerts(alerts, limit=2)] == [3, 4]


def test_alerts_table_counts_every_rule_but_lists_ten() -> None:
    alerts = [alert(i, "dune.grade", "high", float(i), f"sim-{i}") for i in range(30)]
    alerts += [alert(100 + i, "device.offline", "medium", 1000.0 + i, f"sim-{i}") for i in range(3)]
    alerts.append(alert(200, "vuln.eol_exploited", "emergency", 1.0, "gw-1"))
    lines = _alerts_table(alerts).splitlines()
    assert lines[0] == "Top alerts (34 open)"
    assert lines[1] == "  by rule: dune.grade 30, device.offline 3, vuln.eol_exploited 1"
    rows = lines[4:]
    assert len(rows) == 10
    assert rows[0].split()[:3] == ["emergency", "vuln.eol_exploited", "gw-1"]
    # then the high ones, most recent first
    assert rows[1].split()[2] == "sim-29" and rows[9].split()[2] == "sim-21"


def test_alerts_table_empty() -> None:
    assert _alerts_table([]) == "Top alerts (0 open)\n  (none)"
