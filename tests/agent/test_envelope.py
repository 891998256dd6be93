from __future__ import annotations

import json

import pytest

from agent import envelope as E


def good(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": 1,
        "device": "cam-0001",
        "boot": "b1",
        "seq": 7,
        "ts": 1795414686.5,
        "kind": "health",
        "body": {"interval": 10, "cpu": {"pct": 3.5}},
    }
    doc.update(over)
    return doc


def test_round_trip() -> None:
    env = E.make("cam-0001", "b1", 7, "health", {"interval": 10, "cpu": {"pct": 3.5}}, ts=1.5)
    back = E.parse(env.encode(), "dunewatch/v1/cam-0001/health")
    assert back == env
    assert back.key == ("cam-0001", "b1", 7)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (good(v=2), "bad_version"),
        (good(v="1"), "bad_type"),
        (good(seq="7"), "bad_type"),
        (good(seq=True), "bad_type"),
        (good(seq=0), "bad_field"),
        (good(kind="reboot"), "bad_kind"),
        (good(device="a/b"), "bad_device_id"),
        (good(body=[]), "bad_type"),
        (good(body={"cpu": {}}), "bad_body"),
        (good(extra=1), "bad_field"),
        (good(kind="state", seq=3, body={"state": "online"}), "bad_field"),
        (good(kind="state", seq=0, body={"state": "maybe"}), "bad_body"),
        (
            good(
                kind="inventory",
                body={"packages": [{"name": "a", "version": 1, "manager": "dpkg"}]},
            ),
            "bad_body",
        ),
        (good(kind="event", body={"type": "outbox_drop", "count": -1}), "bad_body"),
    ],
)
def test_rejects_with_reason(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(E.EnvelopeError) as info:
        topic = f"dunewatch/v1/cam-0001/{doc['kind']}" if doc["kind"] in E.KINDS else None
        E.parse(json.dumps(doc).encode(), topic)
    assert info.value.reason == reason


def test_topic_device_must_match_payload() -> None:
    with pytest.raises(E.EnvelopeError) as info:
        E.parse(json.dumps(good()).encode(), "dunewatch/v1/cam-0002/health")
    assert info.value.reason == "device_mismatch"


def test_oversized_and_not_json() -> None:
    with pytest.raises(E.EnvelopeError) as info:
        E.parse(b"x" * 100, max_bytes=10)
    assert info.value.reason == "oversized"
    with pytest.raises(E.EnvelopeError) as info:
        E.parse(b"\xff{not json")
    assert info.value.reason == "not_json"


def test_bad_topics() -> None:
    for name in ("other/v1/cam/health", "dunewatch/v1/cam/health/x", "dunewatch/v1/cam/nope"):
        with pytest.raises(E.EnvelopeError):
            E.split_topic("dunewatch", name)
    assert E.split_topic("city/a", "city/a/v1/gw-7/inventory") == ("gw-7", "inventory")


def test_subscription_filters() -> None:
    assert E.subscription("dunewatch") == "dunewatch/v1/+/+"
    assert E.subscription("dunewatch", "health", "ingest") == "$share/ingest/dunewatch/v1/+/health"


def test_state_messages_have_seq_zero() -> None:
    env = E.state("gw-1", "b", online=False, reason="will")
    assert env.seq == 0 and env.body["state"] == "offline"
