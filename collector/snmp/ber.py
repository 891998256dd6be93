"""A small BER codec for SNMP v1/v2c community messages: the lean poller's hot path.

pyasn1 builds a typed object tree for every varbind and checks constraints on each; measured,
that is ~250-300 µs of CPU per varbind in pysnmp, ~35 ms per polled device. SNMP community
messages use a handful of universal and application types, so this module encodes requests and
decodes responses with plain bytes, ints and tuples instead (a few µs per varbind).

Everything that is not a well-formed SNMP v1/v2c message raises `BerError` naming what was wrong
and where (byte offset): truncated data, lengths running past the end, indefinite or oversized
length fields, unknown tags, out-of-range numbers, trailing bytes. Values are checked against the
same ranges as pysnmp's types, so both paths accept and reject the same agents' answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from collector.snmp.interface import SnmpError

# Universal and SNMP application tags (RFC 2578, RFC 3416) as their BER identifier octets.
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42  # also Unsigned32
TIME_TICKS: Final = 0x43
OPAQUE: Final = 0x44
COUNTER64: Final = 0x46
NO_SUCH_OBJECT: Final = 0x80
NO_SUCH_INSTANCE: Final = 0x81
END_OF_MIB_VIEW: Final = 0x82

# PDU tags.
GET: Final = 0xA0
GET_NEXT: Final = 0xA1
RESPONSE: Final = 0xA2
GET_BULK: Final = 0xA5
PDU_TAGS: Final = frozenset({GET, GET_NEXT, RESPONSE, 0xA3, GET_BULK, 0xA6, 0xA7, 0xA8})

VERSION_1: Final = 0
VERSION_2C: Final = 1

EXCEPTIONS: Final = frozenset({NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
OCTET_TAGS: Final = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE})
# Value range per integer tag (pysnmp's Integer32, Counter32, Gauge32, TimeTicks, Counter64).
INT_RANGES: Final = {
    INTEGER: (-(2**31), 2**31 - 1),
    COUNTER32: (0, 2**32 - 1),
    GAUGE32: (0, 2**32 - 1),
    TIME_TICKS: (0, 2**32 - 1),
    COUNTER64: (0, 2**64 - 1),
}
MAX_OCTETS: Final = 65535  # OCTET STRING (SIZE (0..65535)), RFC 2578
MAX_SUBIDS: Final = 128  # RFC 2578: at most 128 sub-identifiers
MAX_SUBID: Final = 2**32 - 1
MAX_BINDINGS: Final = 2147483647

# RFC 3416 error-status names, as pysnmp prints them.
ERROR_STATUS: Final = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)

Oid = tuple[int, ...]


class BerError(SnmpError):
    """A datagram that is not a well-formed SNMP v1/v2c message."""


class Value(NamedTuple):
    """One varbind value: its BER tag and a plain payload.

    int for the integer types, bytes for OCTET STRING / IpAddress / Opaque, a tuple of ints for
    OBJECT IDENTIFIER, None for NULL and the v2c exceptions (noSuchObject, ...).
    """

    tag: int
    value: int | bytes | Oid | None


class Message(NamedTuple):
    """A decoded SNMP v1/v2c message (only the parts the poller uses)."""

    version: int
    community: bytes
    pdu: int
    request_id: int
    error_status: int  # non-repeaters for GETBULK
    error_index: int  # max-repetitions for GETBULK
    varbinds: list[tuple[Oid, Value]]


NULL_VALUE: Final = Value(NULL, None)


# -- encoding ---------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len(len(body)) + body


def _int_body(n: int) -> bytes:
    return n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True)


def encode_oid(oid: Sequence[int]) -> bytes:
    """OBJECT IDENTIFIER content octets (no tag/length)."""
    if len(oid) < 2 or len(oid) > MAX_SUBIDS:
        raise BerError(f"OID {'.'.join(map(str, oid))!r} must have 2..{MAX_SUBIDS} arcs")
    first, second = oid[0], oid[1]
    if not 0 <= first <= 2 or not 0 <= second <= (39 if first < 2 else MAX_SUBID - 80):
        raise BerError(f"OID {'.'.join(map(str, oid))!r} has invalid first arcs")
    if any(not 0 <= arc <= MAX_SUBID for arc in oid[2:]):
        raise BerError(f"OID {'.'.join(map(str, oid))!r} has an arc out of range 0..{MAX_SUBID}")
    out = bytearray()
    for arc in (first * 40 + second, *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = []
        while arc:
            chunk.append((arc & 0x7F) | 0x80)
            arc >>= 7
        chunk[0] &= 0x7F
        out += bytes(reversed(chunk))
    return bytes(out)


_OID_CACHE: dict[Oid, bytes] = {}


def _oid_tlv(oid: Oid) -> bytes:
    enc = _OID_CACHE.get(oid)
    if enc is None:
        enc = _tlv(OBJECT_IDENTIFIER, encode_oid(oid))
        if len(_OID_CACHE) < 100_000:
            _OID_CACHE[oid] = enc
    return enc


def encode_value(value: Value) -> bytes:
    tag, payload = value
    if tag in INT_RANGES:
        lo, hi = INT_RANGES[tag]
        if not isinstance(payload, int) or not lo <= payload <= hi:
            raise BerError(f"value {payload!r} out of range for tag 0x{tag:02x}")
        return _tlv(tag, _int_body(payload))
    if tag in OCTET_TAGS:
        if not isinstance(payload, bytes):
            raise BerError(f"tag 0x{tag:02x} needs bytes, not {type(payload).__name__}")
        return _tlv(tag, payload)
    if tag == OBJECT_IDENTIFIER:
        if not isinstance(payload, tuple):
            raise BerError("an OBJECT IDENTIFIER value needs a tuple of ints")
        return _oid_tlv(payload)
    if tag == NULL or tag in EXCEPTIONS:
        return bytes((tag, 0))
    raise BerError(f"unsupported value tag 0x{tag:02x}")


def encode_message(
    version: int,
    community: bytes,
    pdu: int,
    request_id: int,
    varbinds: Sequence[tuple[Oid, Value]],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    """Any v1/v2c message (requests, and responses for tests and round trips)."""
    vbs = b"".join(_tlv(SEQUENCE, _oid_tlv(oid) + encode_value(val)) for oid, val in varbinds)
    body = (
        _tlv(INTEGER, _int_body(request_id))
        + _tlv(INTEGER, _int_body(error_status))
        + _tlv(INTEGER, _int_body(error_index))
        + _tlv(SEQUENCE, vbs)
    )
    msg = _tlv(INTEGER, _int_body(version)) + _tlv(OCTET_STRING, community) + _tlv(pdu, body)
    return _tlv(SEQUENCE, msg)


_NULL_TLV: Final = b"\x05\x00"


def encode_request(
    version: int,
    community: bytes,
    pdu: int,
    request_id: int,
    oids: Sequence[Oid],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """GET / GETNEXT / GETBULK with NULL values (the fast path of encode_message)."""
    vbs = b"".join(_tlv(SEQUENCE, _oid_tlv(oid) + _NULL_TLV) for oid in oids)
    body = (
        _tlv(INTEGER, _int_body(request_id))
        + _tlv(INTEGER, _int_body(non_repeaters))
        + _tlv(INTEGER, _int_body(max_repetitions))
        + _tlv(SEQUENCE, vbs)
    )
    msg = _tlv(INTEGER, _int_body(version)) + _tlv(OCTET_STRING, community) + _tlv(pdu, body)
    return _tlv(SEQUENCE, msg)


# -- decoding ---------------------------------------------------------------------------------


def _header(data: bytes, pos: int, limit: int, what: str) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at `pos`; checks it fits before `limit`."""
    if pos + 2 > limit:
        raise BerError(f"{what}: truncated at byte {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError(f"{what}: multi-octet tag at byte {pos} (not used by SNMP)")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0:
            raise BerError(f"{what}: indefinite length at byte {pos - 1} (not allowed in SNMP)")
        if k > 4:
            raise BerError(f"{what}: {k}-octet length field at byte {pos - 1} is too long")
        if pos + k > limit:
            raise BerError(f"{what}: truncated length at byte {pos}")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    end = pos + n
    if end > limit:
        raise BerError(
            f"{what}: length {n} at byte {pos} runs past the end of its container "
            f"({limit - pos} left)"
        )
    return tag, pos, end


def _int(data: bytes, pos: int, limit: int, what: str) -> tuple[int, int]:
    tag, start, end = _header(data, pos, limit, what)
    if tag != INTEGER:
        raise BerError(f"{what}: expected INTEGER, got tag 0x{tag:02x} at byte {pos}")
    if start == end:
        raise BerError(f"{what}: empty INTEGER at byte {pos}")
    if end - start > 9:
        raise BerError(f"{what}: INTEGER of {end - start} octets at byte {pos} is too large")
    return int.from_bytes(data[start:end], "big", signed=True), end


def decode_oid(body: bytes, where: str = "OID") -> Oid:
    """OBJECT IDENTIFIER content octets -> tuple of arcs."""
    if not body:
        raise BerError(f"{where}: empty OBJECT IDENTIFIER")
    if body.isascii():  # every arc below 128: one octet each
        first = body[0]
        head = (first // 40, first % 40) if first < 80 else (2, first - 80)
        if len(body) + 1 > MAX_SUBIDS:
            raise BerError(f"{where}: more than {MAX_SUBIDS} arcs")
        return head + tuple(body[1:])
    arcs: list[int] = []
    arc = 0
    fresh = True
    for octet in body:
        if fresh and octet == 0x80:
            raise BerError(f"{where}: non-minimal arc encoding (0x80 octet)")
        arc = (arc << 7) | (octet & 0x7F)
        if octet & 0x80:
            fresh = False
            continue
        arcs.append(arc)
        arc = 0
        fresh = True
    if not fresh:
        raise BerError(f"{where}: truncated arc at the end of the OBJECT IDENTIFIER")
    first = arcs[0]
    if first < 40:
        head = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    out = head + tuple(arcs[1:])
    if len(out) > MAX_SUBIDS:
        raise BerError(f"{where}: more than {MAX_SUBIDS} arcs")
    if any(a > MAX_SUBID for a in out[2:]) or out[1] > MAX_SUBID:
        raise BerError(f"{where}: arc out of range 0..{MAX_SUBID}")
    return out


def _value(data: bytes, tag: int, start: int, end: int, pos: int) -> Value:
    if tag in (OCTET_STRING, OPAQUE):
        if end - start > MAX_OCTETS:
            raise BerError(f"value at byte {pos}: OCTET STRING longer than {MAX_OCTETS}")
        return Value(tag, data[start:end])
    rng = INT_RANGES.get(tag)
    if rng is not None:
        if start == end:
            raise BerError(f"value at byte {pos}: empty integer")
        if end - start > 9:
            raise BerError(f"value at byte {pos}: integer of {end - start} octets")
        n = int.from_bytes(data[start:end], "big", signed=True)
        if not rng[0] <= n <= rng[1]:
            raise BerError(f"value at byte {pos}: {n} out of range for tag 0x{tag:02x}")
        return Value(tag, n)
    if tag == OBJECT_IDENTIFIER:
        return Value(tag, decode_oid(data[start:end], f"value at byte {pos}"))
    if tag == IP_ADDRESS:
        if end - start != 4:
            raise BerError(f"value at byte {pos}: IpAddress of {end - start} octets, not 4")
        return Value(tag, data[start:end])
    if tag == NULL or tag in EXCEPTIONS:
        if start != end:
            raise BerError(f"value at byte {pos}: tag 0x{tag:02x} with content")
        return Value(tag, None)
    raise BerError(f"value at byte {pos}: unsupported tag 0x{tag:02x}")


def decode_message(data: bytes) -> Message:
    """Decode a whole v1/v2c datagram; BerError for anything malformed (never other errors)."""
    size = len(data)
    tag, pos, end = _header(data, 0, size, "message")
    if tag != SEQUENCE:
        raise BerError(f"message: expected SEQUENCE, got tag 0x{tag:02x}")
    if end != size:
        raise BerError(f"message: {size - end} trailing byte(s) after the message")
    version, pos = _int(data, pos, end, "version")
    if version not in (VERSION_1, VERSION_2C):
        raise BerError(f"version: {version} is not SNMP v1 (0) or v2c (1)")
    tag, start, pos = _header(data, pos, end, "community")
    if tag != OCTET_STRING:
        raise BerError(f"community: expected OCTET STRING, got tag 0x{tag:02x}")
    community = data[start:pos]
    pdu, pos, pdu_end = _header(data, pos, end, "PDU")
    if pdu not in PDU_TAGS:
        raise BerError(f"PDU: unknown PDU tag 0x{pdu:02x}")
    if pdu_end != end:
        raise BerError("PDU: does not end where the message ends")
    request_id, pos = _int(data, pos, pdu_end, "request-id")
    if not -(2**31) <= request_id <= 2**31 - 1:
        raise BerError(f"request-id: {request_id} out of range")
    status, pos = _int(data, pos, pdu_end, "error-status")
    index, pos = _int(data, pos, pdu_end, "error-index")
    if not 0 <= status <= MAX_BINDINGS or not 0 <= index <= MAX_BINDINGS:
        raise BerError(f"error-status/index: {status}/{index} out of range")
    tag, pos, list_end = _header(data, pos, pdu_end, "varbind list")
    if tag != SEQUENCE:
        raise BerError(f"varbind list: expected SEQUENCE, got tag 0x{tag:02x}")
    if list_end != pdu_end:
        raise BerError("varbind list: does not end where the PDU ends")
    varbinds: list[tuple[Oid, Value]] = []
    append = varbinds.append
    while pos < list_end:
        vb_at = pos
        tag, pos, vb_end = _header(data, pos, list_end, "varbind")
        if tag != SEQUENCE:
            raise BerError(f"varbind at byte {vb_at}: expected SEQUENCE, got tag 0x{tag:02x}")
        tag, start, pos = _header(data, pos, vb_end, "varbind name")
        if tag != OBJECT_IDENTIFIER:
            raise BerError(f"varbind at byte {vb_at}: name is tag 0x{tag:02x}, not an OID")
        name = decode_oid(data[start:pos], f"varbind name at byte {start}")
        vtag, start, pos = _header(data, pos, vb_end, "varbind value")
        if pos != vb_end:
            raise BerError(f"varbind at byte {vb_at}: extra content after the value")
        append((name, _value(data, vtag, start, pos, start)))
    return Message(version, community, pdu, request_id, status, index, varbinds)
