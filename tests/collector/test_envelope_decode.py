"""The envelope's fast decoder (orjson when installed) must read every payload as json does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import envelope
from agent.envelope import EnvelopeError, parse
from tests.support.values import same_json

pytest.importorskip("orjson")


def _outcome(fn: Any, payload: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def _check(payload: bytes) -> None:
    want, got = _outcome(json.loads, payload), _outcome(envelope.loads, payload)
    assert want[0] == got[0], payload
    if want[0] == "ok":
        assert same_json(want[1], got[1]), payload


TRICKY = [
    b'{"a":-9999999999999999999}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":18446744073709551615}',
    b'{"a":NaN,"b":Infinity}',
    b"1e400",
    b'"\\ud800"',
    b"\xef\xbb\xbf{}",
    '{"a":"é"}'.encode("utf-16"),
    b'{"a":1,"a":2}',
    b'"a\x01b"',
    b"[1,2,]",
    b"\xff\xfe",
    b"-0",
    b"-0.0",
    b"[" * 5000 + b"]" * 5000,
    b"[" * 199 + b"]" * 199,
    b'{"a":' * 150 + b"1" + b"}" * 150,
]


@pytest.mark.parametrize("payload", TRICKY, ids=range(len(TRICKY)))
def test_tricky_payloads_read_as_json_reads_them(payload: bytes) -> None:
    _check(payload)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_document_decodes_thesame_json(value: Any) -> None:
    _check(json.dumps(value).encode())
    _check(json.dumps(value, ensure_ascii=False).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_fail_thesame_json(payload: bytes) -> None:
    _check(payload)


def test_long_integer_seq_keeps_its_reason() -> None:
    doc = (
        b'{"v":1,"device":"cam-1","boot":"b","seq":99999999999999999999,"ts":1.0,'
        b'"kind":"health","body":{"interval":30}}'
    )
    with pytest.raises(EnvelopeError) as err:
        parse(doc)
    assert err.value.reason == "bad_field"
    assert "out of range" in err.value.detail
