"""Alert configuration from TOML: defaults, overrides, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.alerts.config import AlertsConfig, load_config, parse_duration
from collector.alerts.interface import AlertsError


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg == AlertsConfig()
    assert cfg.health["cpu"].warn == 90.0 and cfg.concentration_max_hhi == 2500.0


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300
    assert parse_duration("6h") == 21600 and parse_duration("2w") == 1209600
    assert parse_duration(12) == 12.0
    with pytest.raises(AlertsError, match="expected a duration"):
        parse_duration("soon")


def test_toml_overrides(tmp_path: Path) -> None:
    f = tmp_path / "alerts.toml"
    f.write_text(
        "[alerts]\n"
        'disabled = ["health.temperature"]\n'
        '[alerts.offline]\nafter = "5m"\n'
        "[alerts.health.cpu]\nwarn = 80\n"
        '[alerts.saturation]\nwindow = "2h"\nthreshold = 85\nmetrics = ["cpu"]\n'
        '[alerts.firmware]\nmax_age = "off"\n'
        '[alerts.eol]\napproaching = "90d"\n'
        "[alerts.concentration]\nmax_hhi = 4000\nmax_top1_share = 0.6\n"
        '[alerts.telemetry]\nwindow = "30m"\nmin_ratio = 0.05\n'
    )
    cfg = load_config(f)
    assert cfg.disabled == frozenset({"health.temperature"}) and not cfg.enabled(
        "health.temperature"
    )
    assert (
        cfg.offline_after == 300 and cfg.health["cpu"].warn == 80 and cfg.health["cpu"].crit == 98
    )
    assert cfg.saturation_window == 7200 and cfg.saturation_metrics == ("cpu",)
    assert cfg.firmware_max_age is None and cfg.eol_approaching == 90 * 86400
    assert cfg.concentration_max_top1 == 0.6 and cfg.telemetry_min_ratio == 0.05


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[alerts]\ndisabled = ["health.cpuu"]\n', r"unknown rule id\(s\) health.cpuu"),
        ("[alerts.health.cpu]\nwarn = 99\ncrit = 90\n", "alerts.health.cpu: threshold warn 99"),
        ("[alerts.health.gpu]\nwarn = 1\n", "alerts.health.gpu: expected a table for one of"),
        ('[alerts.saturation]\nwindow = "forever"\n', "alerts.saturation.window: expected a dur"),
        ("[alerts.saturation]\nfraction = 1.5\n", "saturation_fraction: must be within 0..1"),
        ("[alerts.saturation]\nfraction = 0\n", "saturation_fraction: must be above 0"),
        ('[alerts.dune]\ngrade = "F"\n', "dune.grade: 'F' not one of"),
        ('[alerts.dune]\ncritical_layers = ["gpu"]\n', r"critical_layers: unknown \['gpu'\]"),
        ("[alerts.telemetry]\nmin_lost = 0\n", "telemetry_min_lost: must be at least 1"),
        ("[alerts.nope]\nx = 1\n", "alerts.nope: unknown section"),
        ("[alerts.eol]\nsoon = 1\n", "alerts.eol.soon: unknown key"),
        ('[alerts.vulnerability]\nmin_cvss = "high"\n', "min_cvss: expected a number"),
        ("[alerts\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "alerts.toml"
    f.write_text(text)
    with pytest.raises(AlertsError, match=message) as err:
        load_config(f)
    assert "\n" not in str(err.value) and str(f) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AlertsError, match="cannot read alerts config"):
        load_config(tmp_path / "nope.toml")
