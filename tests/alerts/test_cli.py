"""`dunewatch alerts ...` end to end on a real database, webhook on a local HTTP server."""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from agent import envelope as E
from collector.cli import build_parser, main
from collector.store import open_store
from tests.alerts.test_sinks import Hook

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def _offline_device(db: Path, device_id: str = "cam-7", tags: dict[str, str] | None = None) -> None:
    st = open_store(db)
    st.ensure_device(device_id, tags=tags or {"district": "north"})
    st.apply(
        [
            E.Envelope(
                device_id, "c" * 32, 0, time.time(), "state", {"state": "offline", "reason": "will"}
            )
        ],
        time.time(),
    )
    st.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_list_show_ack_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "dunewatch.db"
    _offline_device(db)
    hook = Hook()
    try:
        sinks = tmp_path / "sinks.toml"
        sinks.write_text(f'[[sink]]\ntype = "webhook"\nname = "oncall"\nurl = "{hook.url}"\n')
        code, out, _ = run(capsys, "alerts", "evaluate", "--db", str(db), "--sinks", str(sinks))
        assert code == 0
        assert "1 opened" in out and "cam-7 is offline" in out
        assert "sink oncall: 1 delivered, 0 failed, 0 pending" in out
        assert [m["alert"]["device_id"] for m in hook.received] == ["cam-7"]
    finally:
        hook.close()

    code, out, _ = run(capsys, "alerts", "--db", str(db), "--open", "--json")
    (alert,) = json.loads(out)
    assert (alert["rule_id"], alert["status"], alert["severity"]) == (
        "device.offline",
        "open",
        "high",
    )
    code, out, _ = run(capsys, "alerts", "--db", str(db))
    assert re.search(r"^1\s+high\s+open\s+device.offline\s+cam-7", out, re.M)

    code, out, _ = run(capsys, "alerts", "ack", str(alert["id"]), "--by", "alice", "--db", str(db))
    assert code == 0 and "acknowledged" in out
    # --db before the subcommand works too
    code, out, _ = run(capsys, "alerts", "--db", str(db), "show", str(alert["id"]), "--json")
    doc = json.loads(out)
    assert doc["acked_by"] == "alice"
    assert [h["event"] for h in doc["history"]] == ["opened", "acknowledged"]
    code, out, _ = run(capsys, "alerts", "show", str(alert["id"]), "--db", str(db))
    assert "history:" in out and "acknowledged" in out

    code, out, _ = run(capsys, "alerts", "resolve", str(alert["id"]), "--db", str(db))
    assert code == 0 and "resolved" in out
    code, out, _ = run(capsys, "alerts", "--db", str(db), "--open")
    assert out.strip() == "no alerts open"
    code, _, err = run(capsys, "alerts", "ack", "999", "--db", str(db))
    assert code == 2 and "error: no alert with id 999" in err and "tip:" in err


def test_silence_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "dunewatch.db"
    _offline_device(db)
    code, out, _ = run(
        capsys,
        "alerts",
        "silence",
        "--tag",
        "district=north",
        "--for",
        "2h",
        "--reason",
        "power work",
        "--db",
        str(db),
    )
    assert code == 0 and out.startswith("silence 1: tag district=north until")
    code, out, _ = run(capsys, "alerts", "evaluate", "--db", str(db), "--json")
    result = json.loads(out)
    assert result["silenced"] == 1 and len(result["opened"]) == 1
    code, out, _ = run(capsys, "alerts", "silences", "--db", str(db), "--json")
    (s,) = json.loads(out)
    assert (s["tag_key"], s["tag_value"], s["reason"]) == ("district", "north", "power work")
    code, out, _ = run(capsys, "alerts", "--db", str(db))
    assert "open (silenced)" in out
    code, out, _ = run(capsys, "alerts", "unsilence", "1", "--db", str(db))
    assert code == 0
    code, out, _ = run(capsys, "alerts", "silences", "--db", str(db))
    assert out.strip() == "no active silences"
    for bad, msg in (
        (["--tag", "district"], "--tag: expected K=V"),
        (["--device", "x", "--for", "soon"], "--for: expected a duration"),
    ):
        argv = ["alerts", "silence", *bad, "--db", str(db)]
        if "--for" not in bad:
            argv += ["--for", "1h"]
        code, _, err = run(capsys, *argv)
        assert code == 2 and msg in err


def test_missing_database_and_bad_sinks_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "alerts", "--db", str(tmp_path / "nope.db"))
    assert code == 2 and "no collector database at" in err
    db = tmp_path / "dunewatch.db"
    _offline_device(db)
    bad = tmp_path / "sinks.toml"
    bad.write_text('[[sink]]\ntype = "webhook"\n')
    code, _, err = run(capsys, "alerts", "evaluate", "--db", str(db), "--sinks", str(bad))
    assert code == 2 and "sink #1: 'url' must be a non-empty string" in err


def _alerts_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    alerts = top.choices["alerts"]
    out = {"alerts": alerts}
    sub = next(a for a in alerts._actions if isinstance(a, argparse._SubParsersAction))
    out.update({f"alerts {k}": v for k, v in sub.choices.items()})
    return out


def test_every_alerts_command_has_an_example_and_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    parsers: dict[str, Any] = _alerts_parsers()
    assert set(parsers) >= {
        "alerts",
        "alerts ack",
        "alerts resolve",
        "alerts silence",
        "alerts evaluate",
    }
    for name, p in parsers.items():
        assert p.epilog and p.epilog.startswith("example: dunewatch "), name
        assert f"dunewatch {name}" in text, f"{name} missing from docs/alerts.md"


def test_alert_service_evaluates_periodically_and_notifies(tmp_path: Path) -> None:
    from collector.alerts.service import AlertService
    from collector.sinks import WebhookSink
    from tests.support.services import wait_until

    db = tmp_path / "dunewatch.db"
    _offline_device(db, "cam-9")
    hook = Hook()
    svc = AlertService(db, sinks=[WebhookSink(url=hook.url, name="oncall")], every=0.05)
    svc.start()
    try:
        wait_until(lambda: hook.received, 30, "webhook notification from the service")
        wait_until(lambda: svc.passes >= 3, 30, "several passes")
    finally:
        svc.stop()
        hook.close()
    assert [m["alert"]["device_id"] for m in hook.received] == ["cam-9"]  # deduped across passes
    assert svc.failures == 0 and svc.last_result is not None and svc.last_result.active == 1


def test_alert_service_says_once_when_full_passes_overrun_every(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from collector.alerts.service import AlertService

    # full_duty 0.02: full passes up to 1.2 s fit in every = 60
    svc = AlertService(tmp_path / "dunewatch.db", every=60)
    caplog.set_level(logging.INFO, logger="dunewatch.alerts")
    for seconds, full in ((71.0, True), (0.1, False), (75.0, True), (1.0, True), (5.0, True)):
        svc._passed(0.0, seconds, full)
    said = [(r.levelname, r.getMessage().split(" apart")[0]) for r in caplog.records]
    assert said == [
        ("WARNING", "alerts: a full pass took 71.0s: full passes start 3550s"),
        ("INFO", "alerts: full passes fit in every = 60s again (1.0s)"),
        ("WARNING", "alerts: a full pass took 5.0s: full passes start 250s"),
    ]


@pytest.mark.parametrize(
    ("every", "duty", "full_duty", "spent", "gap"),
    [
        (60, 0.25, 1.0, 10.0, 60.0),  # fits: every minute
        (60, 0.25, 1.0, 20.0, 80.0),  # 20 s of every 80 s
        (60, 0.25, 1.0, 60.0, 240.0),  # 100,000 devices with inventories: a quarter of the time
        (60, 0.25, 0.02, 60.0, 3000.0),  # ... with the default full_duty: a fiftieth
        (60, 0.25, 0.02, 5.0, 250.0),  # 100,000 devices without inventories
        (60, 1.0, 1.0, 71.0, 71.0),  # duty 1: back to back
        (15, 0.5, 1.0, 3.0, 15.0),
    ],
)
def test_the_alert_service_keeps_full_passes_to_their_duty(
    tmp_path: Path, every: float, duty: float, full_duty: float, spent: float, gap: float
) -> None:
    from collector.alerts.service import AlertService

    svc = AlertService(tmp_path / "dunewatch.db", every=every, duty=duty, full_duty=full_duty)
    svc._passed(0.0, spent, True)
    assert svc.full_gap() == pytest.approx(gap)
    assert svc.rest() == pytest.approx(max(0.0, every - spent))


@pytest.mark.parametrize(
    ("every", "full_duty", "full_seconds", "kinds"),
    [
        (60, 0.02, 0.5, "FFFFFFFFFF"),  # a small fleet: every pass is full
        (60, 0.02, 5.0, "FllllFllll"),  # 100,000 devices: full at most every 250 s
        (60, 0.05, 5.0, "FlFlFlFlFl"),  # ... with full_duty 0.05: at most every 100 s
        (60, 0.02, 60.0, "Flllllllll"),  # with inventories: full every 3000 s, liveness between
        (60, 1.0, 60.0, "FFFFFFFFFF"),
    ],
)
def test_full_alert_passes_keep_to_their_duty_and_liveness_passes_fill_in(
    tmp_path: Path, every: float, full_duty: float, full_seconds: float, kinds: str
) -> None:
    from collector.alerts.service import AlertService

    svc = AlertService(tmp_path / "dunewatch.db", every=every, full_duty=full_duty, duty=1.0)
    t, seen = 1000.0, []
    for _ in range(len(kinds)):
        full = svc.full_due(t)
        seen.append("F" if full else "l")
        spent = full_seconds if full else 0.01
        svc._passed(t, spent, full)
        t += spent + svc.rest() + 0.003 * (len(seen) % 3)  # the loop's own jitter
    assert "".join(seen) == kinds
    # a liveness pass is followed by the rest of `every`, whatever the full passes take
    svc._passed(t, 0.01, False)
    assert svc.rest() == pytest.approx(every - 0.01)


def test_the_alert_duty_is_checked(tmp_path: Path) -> None:
    from collector.alerts.interface import AlertsError
    from collector.alerts.service import AlertService

    with pytest.raises(AlertsError, match="alert duty must be within"):
        AlertService(tmp_path / "dunewatch.db", duty=0)
    with pytest.raises(AlertsError, match="alert full_duty must be within"):
        AlertService(tmp_path / "dunewatch.db", full_duty=1.5)


def test_stopping_the_alert_service_cancels_a_running_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import collector.alerts.service as service
    from collector.alerts.interface import PassCancelled

    started, seen = threading.Event(), threading.Event()

    def long_pass(*args: Any, cancel: Any, **kwargs: Any) -> Any:
        """Stands in for a pass over a very large fleet: it runs until asked to stop."""
        started.set()
        while not cancel():
            time.sleep(0.005)
        seen.set()
        raise PassCancelled("alert pass cancelled after 3000 of 100000 devices")

    monkeypatch.setattr(service, "evaluate", long_pass)
    svc = service.AlertService(tmp_path / "dunewatch.db", every=60)
    svc.start()
    assert started.wait(30), "the pass did not start"
    thread = svc._thread
    svc.stop()
    assert thread is not None and not thread.is_alive() and seen.is_set()
    assert (svc.passes, svc.failures) == (0, 0)  # a cancelled pass is neither
