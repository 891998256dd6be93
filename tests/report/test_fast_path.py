"""The batched, memoized report path gives what the plain per-device path gives.

`report_from_db` reads the store in chunks, builds BOMs through the classifier's memo of shared
component tails, and scores and ages through fleet-wide caches. The reference here reads every
device through the per-device store interface, builds each BOM with a fresh classifier and
scores and ages without any cache. The fleet is simulated (collector.sim.fleet, flagged so) plus
hand-written devices that share nothing, one with a health history, one malformed, one with no
inventory yet; the knowledge base is the shipped firmware_db reference data.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from agent.envelope import make
from collector.report.source import StoreSource, report_from_db, samples_from_rollups
from sbom.aging import AgingAssessment, assess_device
from sbom.builders.agent_inventory import AgentInventoryBuilder
from sbom.dune import DeviceDune, fleet_dune, score_device
from sbom.errors import SbomError
from sbom.knowledge import Classifier
from sbom.policy import DunePolicy
from tests.report.storefleet import CAMERA, GATEWAY, saturated_hour

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def kb() -> Any:
    import firmware_db

    return firmware_db.open_default()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collector.sim.fleet import build_fleet
    from collector.store import open_store

    path = tmp_path_factory.mktemp("fast") / "fleet.db"
    now = time.time()
    fleet = build_fleet(240, seed=11)
    store = open_store(path)
    try:
        envs = []
        for dev in fleet.devices:
            store.ensure_device(
                dev.device_id, tags=dict(dev.tags), simulated=True, criticality=dev.criticality
            )
            envs.append(make(dev.device_id, "b1", 1, "inventory", dict(dev.inventory), ts=now))
        # devices sharing nothing with the fleet; one saturated, one malformed, one silent
        for dev_id, body in (("cam-1", CAMERA), ("gw-1", GATEWAY), ("bad-1", {"parts": [1]})):
            store.ensure_device(dev_id, tags={"district": "x"}, simulated=True)
            envs.append(make(dev_id, "b1", 1, "inventory", body, ts=now))
        store.ensure_device("quiet-1", tags={"district": "x"}, simulated=True)
        store.apply(envs, now)
        for env in saturated_hour("gw-1", now):
            store.apply([env], env.ts + 1)  # received as sent
    finally:
        store.close()
    return path


def reference(
    db: Path, kb: Any, policy: DunePolicy
) -> tuple[dict[str, tuple[DeviceDune, AgingAssessment]], list[str]]:
    """Every device through the per-device store calls, a fresh classifier and no caches."""
    from collector.store import open_store

    store = open_store(db)
    out: dict[str, tuple[DeviceDune, AgingAssessment]] = {}
    skipped: list[str] = []
    try:
        for s in store.devices():
            inventory = store.current_inventory(s.device_id)
            if inventory is None:
                skipped.append(s.device_id)
                continue
            try:
                bom = AgentInventoryBuilder(
                    s.device_id,
                    inventory,
                    classifier=Classifier(kb),
                    tags=dict(s.tags),
                    criticality=1.0 if s.criticality is None else float(s.criticality),
                    simulated=s.simulated,
                ).build()
            except SbomError:
                skipped.append(s.device_id)
                continue
            pct = policy.saturation_pct
            levels = {"cpu.pct": pct["cpu"], "mem.pct": pct["mem"], "disk.*.pct": pct["disk"]}
            rollups = store.saturation_rollups([s.device_id], time.time() - 86400.0, levels)
            health = samples_from_rollups(rollups.get(s.device_id, []))
            dune = score_device(bom, policy, TODAY)
            aging = assess_device(bom, kb, health, TODAY, policy=policy, first_seen=s.first_seen)
            out[s.device_id] = (dune, aging)
    finally:
        store.close()
    return out, skipped


def check_same(db: Path, kb: Any, policy: DunePolicy) -> Any:
    data = report_from_db(db, policy=policy, kb=kb, today=TODAY, by_tag="district")
    ref, skipped = reference(db, kb, policy)
    got = {e.device_id: (e.dune, e.aging) for e in data.devices}
    assert got.keys() == ref.keys()
    for dev_id, (dune, aging) in ref.items():
        assert got[dev_id][0] == dune, dev_id
        assert got[dev_id][1] == aging, dev_id
    assert sorted(d for d, _ in data.skipped) == sorted(skipped)
    # the report sums the fleet in its ranking order (most exposed first): same order here
    assert data.fleet == fleet_dune([ref[e.device_id][0] for e in data.devices], policy)
    return data


def test_batched_memoized_report_equals_the_plain_path(db: Path, kb: Any) -> None:
    data = check_same(db, kb, DunePolicy())
    assert data.fleet.devices == 242
    # the fleet does share component tails (else this test would not exercise the memo)
    tails = {id(e.components[-1]) for e in data.devices if e.components}
    assert len(tails) < len([e for e in data.devices if e.components])
    gw = next(e for e in data.devices if e.device_id == "gw-1")
    assert gw.aging.saturation, "the health history reached the analysis"


def test_chunking_and_the_store_interface_give_the_same_inputs(db: Path, kb: Any) -> None:
    from collector.store import open_store

    store = open_store(db)
    try:
        runs = [
            list(StoreSource(store, kb, batched=b, chunk=c))
            for b, c in ((False, 2000), (True, 7), (True, 2000))
        ]
    finally:
        store.close()
    first = runs[0]
    for other in runs[1:]:
        assert [(i.bom, tuple(i.health), i.first_seen) for i in other] == [
            (i.bom, tuple(i.health), i.first_seen) for i in first
        ]


class MovedVendor:
    """The real knowledge base, except that one vendor's controlling country changed."""

    def __init__(self, kb: Any, vendor: str, country: str) -> None:
        self.kb, self.vendor_name, self.country = kb, vendor, country

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kb, name)

    def vendor(self, name: str) -> Any:
        from dataclasses import replace

        org = self.kb.vendor(name)
        if org is not None and name == self.vendor_name:
            return replace(org, hq_country=self.country, parent_country=self.country)
        return org


def test_a_changed_knowledge_base_is_not_answered_from_the_last_run(db: Path, kb: Any) -> None:
    policy = DunePolicy(home="DE", allied=frozenset({"FR"}))
    before = check_same(db, kb, policy)
    moved = MovedVendor(kb, "HiSilicon", "DE")
    after = check_same(db, moved, policy)
    assert after.fleet.ddi < before.fleet.ddi
