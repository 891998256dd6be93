"""The health fast path (msgspec, when installed) must accept, read and reject as the standard
path does: same envelope, or the same error reason and detail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import envelope
from agent.envelope import Envelope, EnvelopeError, parse
from tests.support.values import same_json

pytest.importorskip("msgspec")

TOPIC = "dunewatch/v1/cam-1/health"
REPORT = {
    "v": 1,
    "device": "cam-1",
    "boot": "b0",
    "seq": 7,
    "ts": 1763900000.25,
    "kind": "health",
    "body": {
        "interval": 30,
        "cpu": {"pct": 12, "load1": 0.12, "n": 2},
        "mem": {"pct": 41.5, "total": 2063597568},
        "disk": {"/": {"pct": 51.2, "free": 15384510464}},
        "net": {"eth0": {"rx": 918273645, "up": True, "errs": [0, 1]}},
        "temp": {"cpu_thermal": 48.0, "gpu": None},
        "agent": {"version": "0.1.0", "outbox": 0},
    },
}


@pytest.fixture
def standard_path() -> Iterator[None]:
    """Parse without the fast path (as where msgspec is missing)."""
    saved = envelope._health_decoder
    envelope._health_decoder = False
    try:
        yield
    finally:
        envelope._health_decoder = saved


def _outcome(payload: bytes, topic: str | None) -> tuple[str, Any]:
    try:
        env = parse(payload, topic)
    except EnvelopeError as exc:
        return "rejected", (exc.reason, exc.detail)
    except Exception as exc:  # what the collector counts as reason "other"
        return "raised", type(exc).__name__
    return "ok", env


def _check(payload: bytes, topic: str | None = TOPIC) -> None:
    fast = _outcome(payload, topic)
    saved = envelope._health_decoder
    envelope._health_decoder = False
    try:
        standard = _outcome(payload, topic)
    finally:
        envelope._health_decoder = saved
    assert fast[0] == standard[0], (payload, fast, standard)
    if fast[0] == "ok":
        a, b = fast[1], standard[1]
        assert isinstance(a, Envelope) and isinstance(b, Envelope)
        assert a.key == b.key and a.kind == b.kind and a.v == b.v, payload
        assert same_json(a.ts, b.ts), payload
        assert same_json(dict(a.body), dict(b.body)), payload
    else:
        assert fast[1] == standard[1], payload


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def test_a_usual_report_takes_the_fast_path() -> None:
    payload = _encode(REPORT)
    env = envelope._fast_health(payload)
    assert env is not None and env.seq == 7 and env.body == REPORT["body"]
    _check(payload)


@pytest.mark.parametrize(
    "payload",
    [
        # nesting: a container at depth 4 (empty is valid, non-empty is not) is not for msgspec
        _encode({**REPORT, "body": {"interval": 30, "a": {"b": {"c": {"d": {}}}}}}),
        _encode({**REPORT, "body": {"interval": 30, "a": {"b": {"c": {"d": {"e": 1}}}}}}),
        _encode({**REPORT, "body": {"interval": 30, "a": [[[[]]]]}}),
        # other kinds and versions
        _encode({**REPORT, "kind": "state", "seq": 0, "body": {"state": "online"}}),
        _encode({**REPORT, "v": 2}),
        _encode({**REPORT, "v": 1.0}),
        _encode({**REPORT, "v": True}),
    ],
)
def test_what_the_fast_types_leave_out_goes_the_standard_way(payload: bytes) -> None:
    assert envelope._fast_health(payload) is None
    _check(payload)


TRICKY = [
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}}',
    # duplicate keys: the last counts, also when the first had the wrong type or value
    b'{"v":1,"device":"cam-1","boot":"b","seq":"x","seq":2,"ts":1,"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":2,"seq":true,"ts":1,"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30,"interval":-1}}',
    # numbers at the edges
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1e400,"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":' + b"9" * 400 + b',"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":99999999999999999999,"ts":1,"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":-0.0,"kind":"health",'
    b'"body":{"interval":30,"x":NaN}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30,"x":123456789012345678901234567890,"y":-1e-320,"z":1E5}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":0.1000000000000000000000001}}',
    # strings
    b'{"v":1,"device":"cam-1","boot":"b\\u0001","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30,"s":"\\ud800"}}',
    b'\xef\xbb\xbf{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30}}',
    '{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}}'.encode(
        "utf-16"
    ),
    # fields
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30},'
    b'"extra":1}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam/1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam-2","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"","seq":1,"ts":1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":0,"ts":1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":-1,"kind":"health","body":{"interval":30}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health",'
    b'"body":{"interval":30,"cpu":5}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":true}}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":[]}',
    b'{"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}} x',
    b' {"v":1,"device":"cam-1","boot":"b","seq":1,"ts":1,"kind":"health","body":{"interval":30}}\n',
]


@pytest.mark.parametrize("payload", TRICKY, ids=range(len(TRICKY)))
def test_tricky_reports_end_as_the_standard_path_ends_them(payload: bytes) -> None:
    _check(payload)
    _check(payload, None)


leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
odd = st.sampled_from([None, True, False, "x", 1.5, -3, 0, 2**63, [], {}])


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.text(max_size=6), values, max_size=5))
    if draw(st.booleans()):
        body["interval"] = draw(st.one_of(st.integers(-2, 60), st.floats(-1, 60), odd))
    doc: dict[str, Any] = dict(REPORT, body=body)
    for name in draw(st.sets(st.sampled_from(list(REPORT)), max_size=2)):
        if draw(st.booleans()):
            del doc[name]
        else:
            doc[name] = draw(odd | st.integers() | st.floats() | st.text(max_size=4))
    return doc


@settings(max_examples=400, deadline=None)
@given(reports())
def test_generated_reports_end_as_the_standard_path_ends_them(doc: dict[str, Any]) -> None:
    payload = json.dumps(doc).encode()  # allow_nan: NaN and Infinity tokens are generated too
    _check(payload)
    _check(payload, "dunewatch/v1/cam-1/state")


def test_without_msgspec_the_standard_path_runs(standard_path: None) -> None:
    env = parse(_encode(REPORT), TOPIC)
    assert env.body == REPORT["body"] and env.seq == 7
