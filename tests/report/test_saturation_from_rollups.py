"""The report's saturation (sbom.aging) judged on the rollups of a real store, not raw reports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agent.envelope import make
from collector.report.source import samples_from_rollups
from collector.store.sqlite import SqliteStore
from sbom.aging import find_saturation
from sbom.policy import DunePolicy

HOUR = 1_795_392_000.0  # a whole hour
LEVELS = {"cpu.pct": 90.0, "mem.pct": 90.0, "disk.*.pct": 90.0}


def _store(tmp_path: Path, cpu: list[float]) -> SqliteStore:
    s = SqliteStore(tmp_path / "s.db")
    envs = [
        make(
            "d1",
            "b1",
            k + 1,
            "health",
            {"interval": 60, "cpu": {"pct": v}, "mem": {"pct": 40.0}},
            ts=HOUR + 60 * k,
        )
        for k, v in enumerate(cpu)
    ]
    s.apply(envs, HOUR + 60 * len(cpu))
    s.rollup()
    return s


def _found(s: SqliteStore, policy: DunePolicy) -> list[tuple[str, float]]:
    samples = samples_from_rollups(s.saturation_rollups(["d1"], HOUR, LEVELS)["d1"])
    return [(f.metric, f.duration_s) for f in find_saturation(samples, policy)]


def test_a_saturated_stretch_is_found_to_the_five_minute_bucket(tmp_path: Path) -> None:
    s = _store(tmp_path, [20.0] * 30 + [97.0] * 70 + [20.0] * 20)
    # 70 minutes over 90: 14 buckets, from the first one's start to the last one's
    assert _found(s, DunePolicy()) == [("cpu", 13 * 300.0)]
    s.close()


def test_a_calm_hour_between_two_busy_ones_breaks_the_run(tmp_path: Path) -> None:
    # two busy hours, a calm one, two busy ones; a 3-hour window lets a run bridge gaps of up
    # to 90 minutes between samples, so the calm hour must be there as a sample to break it
    s = _store(tmp_path, [97.0] * 120 + [20.0] * 60 + [97.0] * 120)
    policy = dataclasses.replace(DunePolicy(), saturation_window_s=3 * 3600.0)
    assert _found(s, policy) == []
    rows = s.saturation_rollups(["d1"], HOUR, LEVELS)["d1"]
    assert [r.bucket - HOUR for r in rows if r.n == 60 and r.metric == "cpu.pct"] == [7200.0]
    assert _found(s, dataclasses.replace(policy, saturation_window_s=3600.0)) == [
        ("cpu", 23 * 300.0)
    ]
    s.close()
