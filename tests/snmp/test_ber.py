"""The lean BER codec: round trips, agreement with pyasn1/pysnmp, and hostile input rejected."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pysnmp.proto import api

from collector.snmp import ber
from collector.snmp.engine_pysnmp import from_pysnmp
from collector.snmp.poller import convert

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

arcs = st.integers(min_value=0, max_value=2**32 - 1)
oids = st.builds(
    lambda first, second, rest: (first, second, *rest),
    st.integers(0, 1),
    st.integers(0, 39),
    st.lists(arcs, max_size=20),
) | st.builds(lambda second, rest: (2, second, *rest), st.integers(0, 1000), st.lists(arcs))
values = st.one_of(
    st.builds(ber.Value, st.just(ber.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.builds(ber.Value, st.sampled_from([ber.COUNTER32, ber.GAUGE32, ber.TIME_TICKS]), arcs),
    st.builds(ber.Value, st.just(ber.COUNTER64), st.integers(0, 2**64 - 1)),
    st.builds(ber.Value, st.sampled_from([ber.OCTET_STRING, ber.OPAQUE]), st.binary(max_size=300)),
    st.builds(ber.Value, st.just(ber.IP_ADDRESS), st.binary(min_size=4, max_size=4)),
    st.builds(ber.Value, st.just(ber.OBJECT_IDENTIFIER), oids),
    st.builds(
        ber.Value,
        st.sampled_from([ber.NULL, *sorted(ber.EXCEPTIONS)]),
        st.none(),
    ),
)
varbinds = st.lists(st.tuples(oids, values), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from([ber.VERSION_1, ber.VERSION_2C]),
    community=st.binary(max_size=40),
    rid=st.integers(-(2**31), 2**31 - 1),
    status=st.integers(0, 18),
    index=st.integers(0, 200),
    vbs=varbinds,
)
def test_round_trip(
    version: int,
    community: bytes,
    rid: int,
    status: int,
    index: int,
    vbs: list[tuple[ber.Oid, ber.Value]],
) -> None:
    data = ber.encode_message(version, community, ber.RESPONSE, rid, vbs, status, index)
    msg = ber.decode_message(data)
    assert msg == ber.Message(version, community, ber.RESPONSE, rid, status, index, vbs)


@settings(max_examples=100, deadline=None)
@given(rid=st.integers(0, 2**31 - 1), vbs=varbinds)
def test_pyasn1_decodes_our_encoding_to_the_same_values(
    rid: int, vbs: list[tuple[ber.Oid, ber.Value]]
) -> None:
    """pysnmp's own decoder reads what we encode, value for value (types included)."""
    data = ber.encode_message(ber.VERSION_2C, b"public", ber.RESPONSE, rid, vbs)
    msg, rest = decoder.decode(data, asn1Spec=V2C.Message())
    assert rest == b""
    pdu = V2C.apiMessage.get_pdu(msg)
    assert int(V2C.apiPDU.get_request_id(pdu)) == rid
    got = [(tuple(n), from_pysnmp(v)) for n, v in V2C.apiPDU.get_varbinds(pdu)]
    assert got == vbs


@settings(max_examples=100, deadline=None)
@given(rid=st.integers(0, 2**31 - 1), vbs=varbinds)
def test_we_decode_pyasn1_encoding_to_the_same_values(
    rid: int, vbs: list[tuple[ber.Oid, ber.Value]]
) -> None:
    """What pysnmp encodes as an agent, the lean decoder reads back identically."""
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, rid)
    V2C.apiPDU.set_varbinds(pdu, [(n, _to_pysnmp(v)) for n, v in vbs])
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "public")
    V2C.apiMessage.set_pdu(msg, pdu)
    decoded = ber.decode_message(encoder.encode(msg))
    assert decoded.request_id == rid and decoded.community == b"public"
    assert decoded.varbinds == vbs


def _to_pysnmp(value: ber.Value) -> object:
    from pysnmp.proto import rfc1902, rfc1905

    tag, payload = value
    kinds: dict[int, object] = {
        ber.INTEGER: rfc1902.Integer32,
        ber.COUNTER32: rfc1902.Counter32,
        ber.GAUGE32: rfc1902.Gauge32,
        ber.TIME_TICKS: rfc1902.TimeTicks,
        ber.COUNTER64: rfc1902.Counter64,
        ber.OCTET_STRING: rfc1902.OctetString,
        ber.OPAQUE: rfc1902.Opaque,
        ber.IP_ADDRESS: rfc1902.IpAddress,
        ber.OBJECT_IDENTIFIER: rfc1902.ObjectIdentifier,
    }
    if tag == ber.NULL:
        return rfc1902.Null("")
    if tag == ber.NO_SUCH_OBJECT:
        return rfc1905.noSuchObject
    if tag == ber.NO_SUCH_INSTANCE:
        return rfc1905.noSuchInstance
    if tag == ber.END_OF_MIB_VIEW:
        return rfc1905.endOfMibView
    cls = kinds[tag]
    return cls(payload)  # type: ignore[operator]


def test_request_matches_what_pysnmp_reads() -> None:
    data = ber.encode_request(
        ber.VERSION_2C,
        b"camera",
        ber.GET_BULK,
        4242,
        [(1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 300000)],
        1,
        4,
    )
    msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(msg)
    assert pdu.tagSet == V2C.GetBulkRequestPDU.tagSet
    assert str(V2C.apiMessage.get_community(msg)) == "camera"
    assert int(V2C.apiBulkPDU.get_non_repeaters(pdu)) == 1
    assert int(V2C.apiBulkPDU.get_max_repetitions(pdu)) == 4
    names = [tuple(n) for n, _ in V2C.apiPDU.get_varbinds(pdu)]
    assert names == [(1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 300000)]


def test_convert_plain_values_like_the_pysnmp_objects() -> None:
    from pysnmp.proto import rfc1902

    cases = [
        (rfc1902.OctetString(b" cam\x00era "), "str", "camera"),
        (rfc1902.OctetString(b"\x00\x11\xaa"), "hex", "00:11:aa"),
        (rfc1902.OctetString(b"x"), "int", None),
        (rfc1902.IpAddress("10.1.2.3"), "str", "10.1.2.3"),
        (rfc1902.Counter64(2**40), "int", 2**40),
        (rfc1902.ObjectIdentifier("1.3.6.1.4.1.39165"), "oid", "1.3.6.1.4.1.39165"),
        (rfc1902.OctetString(b"\xff\xfe"), "str", "\ufffd\ufffd"),
    ]
    for obj, kind, want in cases:
        assert convert(from_pysnmp(obj), kind) == want


GOOD = ber.encode_message(
    ber.VERSION_2C,
    b"public",
    ber.RESPONSE,
    7,
    [((1, 3, 6, 1, 2, 1, 1, 5, 0), ber.Value(ber.OCTET_STRING, b"cam"))],
)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "truncated"),
        (GOOD[:-1], "runs past the end"),
        (GOOD + b"\x00", "trailing"),
        (b"\x30\x84\xff\xff\xff\xff" + GOOD[2:], "runs past the end"),
        (b"\x30\x85\x00\x00\x00\x00\x10", "too long"),
        (b"\x30\x80" + GOOD[2:] + b"\x00\x00", "indefinite"),
        (b"\x31" + GOOD[1:], "expected SEQUENCE"),
        (GOOD.replace(b"\x02\x01\x01", b"\x02\x01\x03", 1), "not SNMP v1"),
        (GOOD.replace(b"\xa2", b"\xaf", 1), "unknown PDU"),
        (GOOD.replace(b"\x04\x03cam", b"\x47\x03cam"), "unsupported tag"),
        (GOOD.replace(b"\x04\x03cam", b"\x40\x03cam"), "IpAddress of 3"),
        (GOOD.replace(b"\x04\x03cam", b"\x05\x03cam"), "with content"),
        (GOOD.replace(b"\x04\x03cam", b"\x41\x03\xff\xff\xff"), "out of range"),
        (GOOD.replace(b"\x05\x00\x04\x03cam", b"\x05\x81\x04\x03cam"), "truncated arc"),
        (GOOD.replace(b"\x2b\x06\x01", b"\x2b\x80\x01", 1), "non-minimal"),
        (
            GOOD.replace(b"\x06\x08\x2b\x06\x01\x02\x01\x01\x05\x00", b"\x06\x00" + b"\x05" * 8),
            "empty OBJECT IDENTIFIER",
        ),
    ],
)
def test_malformed_datagrams_raise_ber_error(data: bytes, why: str) -> None:
    with pytest.raises(ber.BerError, match=why):
        ber.decode_message(data)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, len(GOOD)), junk=st.binary(max_size=8), pos=st.integers(0, len(GOOD)))
def test_mangled_datagrams_never_raise_anything_but_ber_error(
    cut: int, junk: bytes, pos: int
) -> None:
    for data in (GOOD[:cut], GOOD[:pos] + junk + GOOD[pos:], GOOD[:pos] + junk + GOOD[pos + 2 :]):
        with contextlib.suppress(ber.BerError):
            ber.decode_message(data)


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_ber_error(data: bytes) -> None:
    with contextlib.suppress(ber.BerError):
        ber.decode_message(data)


def test_encode_rejects_bad_oids_and_values() -> None:
    with pytest.raises(ber.BerError, match="2..128 arcs"):
        ber.encode_oid((1,))
    with pytest.raises(ber.BerError, match="first arcs"):
        ber.encode_oid((1, 40))
    with pytest.raises(ber.BerError, match="out of range"):
        ber.encode_oid((1, 3, 2**32))
    with pytest.raises(ber.BerError, match="out of range"):
        ber.encode_value(ber.Value(ber.COUNTER32, -1))
