"""SNMP v1/v2c requests on one asyncio datagram endpoint with the lean BER codec (ber.py).

Every request gets a fresh request-id; an answer is accepted only if its request-id is pending
and it comes from the address the request went to, with the same version and community, as a
Response PDU. Anything else (malformed, unknown request-id, wrong source, wrong community) is
dropped, counted in `errors` by reason and logged at debug level: a hostile or broken datagram
never ends a poll early and never raises. Retries resend the same message after `timeout`,
like pysnmp does; a late answer to an earlier try still completes the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from collector.snmp import ber
from collector.snmp.interface import (
    GET_BULK,
    GET_NEXT,
    OUTCOME_ERROR,
    OUTCOME_TIMEOUT,
    PollFailed,
    Reply,
)
from collector.snmp.targets import Target

log = logging.getLogger("dunewatch.snmp")

_PDU: Final = {GET_BULK: ber.GET_BULK, GET_NEXT: ber.GET_NEXT}
_RCVBUF: Final = 4 * 1024 * 1024


@dataclass
class _Pending:
    future: asyncio.Future[ber.Message]
    addr: tuple[Any, ...]
    version: int
    community: bytes
    data: bytes
    timeout: float
    tries_left: int
    endpoint: asyncio.DatagramTransport
    timer: asyncio.TimerHandle | None = field(default=None)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, engine: LeanEngine) -> None:
        self.engine = engine

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.engine._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.engine._count("socket error", None, str(exc))


class LeanEngine:
    """One UDP endpoint per address family, shared by every v1/v2c request of a Poller."""

    name = "lean"

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()  # dropped datagrams by reason
        self._endpoints: dict[int, asyncio.DatagramTransport] = {}
        self._lock = asyncio.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 2**31 - 1)
        self._addrs: dict[tuple[str, int], tuple[int, tuple[Any, ...]]] = {}

    async def prepare(self, targets: Sequence[Target]) -> None:
        """Resolve every host once (names only; addresses are parsed without I/O)."""
        for target in targets:
            await self._resolve(target)

    def close(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            if not pending.future.done():
                pending.future.cancel()
        self._pending.clear()
        for transport in self._endpoints.values():
            transport.close()
        self._endpoints.clear()

    def _count(self, reason: str, addr: tuple[Any, ...] | None, detail: str) -> None:
        self.errors[reason] += 1
        log.debug("snmp: dropped datagram from %s: %s: %s", addr, reason, detail)

    def _received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            msg = ber.decode_message(data)
        except ber.BerError as exc:
            self._count("malformed", addr, str(exc))
            return
        pending = self._pending.get(msg.request_id)
        if pending is None or pending.future.done():
            self._count("unknown request-id", addr, str(msg.request_id))
            return
        if addr[:2] != pending.addr[:2]:
            self._count("wrong source", addr, f"expected {pending.addr[:2]}")
            return
        if msg.pdu != ber.RESPONSE:
            self._count("not a response", addr, f"PDU tag 0x{msg.pdu:02x}")
            return
        if msg.version != pending.version or msg.community != pending.community:
            self._count("wrong version or community", addr, f"request-id {msg.request_id}")
            return
        if pending.timer is not None:
            pending.timer.cancel()
        pending.future.set_result(msg)

    def _request_id(self) -> int:
        rid = self._next_id
        self._next_id = rid % (2**31 - 2) + 1
        return rid

    async def _resolve(self, target: Target) -> tuple[int, tuple[Any, ...]]:
        key = (target.host, target.port)
        got = self._addrs.get(key)
        if got is None:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(
                    target.host, target.port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
                )
            except OSError as exc:
                raise PollFailed(OUTCOME_ERROR, f"cannot resolve {target.host!r}: {exc}") from None
            family, _type, _proto, _name, sockaddr = infos[0]
            got = (int(family), tuple(sockaddr))
            self._addrs[key] = got
        return got

    async def _endpoint(self, family: int) -> asyncio.DatagramTransport:
        transport = self._endpoints.get(family)
        if transport is not None:
            return transport
        async with self._lock:
            transport = self._endpoints.get(family)
            if transport is None:
                loop = asyncio.get_running_loop()
                local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Endpoint(self), local_addr=local, family=family
                )
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    # The kernel may cap it; the default size still works.
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                self._endpoints[family] = transport
        return transport

    def _timer(self, rid: int) -> None:
        pending = self._pending.get(rid)
        if pending is None or pending.future.done():
            return
        if pending.tries_left > 0:
            pending.tries_left -= 1
            pending.endpoint.sendto(pending.data, pending.addr)
            loop = pending.future.get_loop()
            pending.timer = loop.call_later(pending.timeout, self._timer, rid)
            return
        pending.future.set_exception(
            PollFailed(OUTCOME_TIMEOUT, "no answer (device unreachable, or wrong community)")
        )

    async def request(
        self,
        target: Target,
        kind: str,
        oids: Sequence[ber.Oid],
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> Reply:
        if target.version not in ("1", "2c") or target.community is None:
            raise PollFailed(OUTCOME_ERROR, "the lean engine speaks SNMP v1/v2c only")
        family, addr = await self._resolve(target)
        endpoint = await self._endpoint(family)
        version = ber.VERSION_1 if target.version == "1" else ber.VERSION_2C
        community = target.community.encode()
        rid = self._request_id()
        pdu = _PDU.get(kind, ber.GET)
        if pdu == ber.GET_BULK:
            data = ber.encode_request(
                version, community, pdu, rid, oids, non_repeaters, max_repetitions
            )
        else:
            data = ber.encode_request(version, community, pdu, rid, oids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ber.Message] = loop.create_future()
        pending = _Pending(
            future, addr, version, community, data, target.timeout, target.retries, endpoint
        )
        self._pending[rid] = pending
        try:
            endpoint.sendto(data, addr)
            pending.timer = loop.call_later(target.timeout, self._timer, rid)
            try:
                msg = await future
            except PollFailed as exc:
                tries = target.retries + 1
                raise PollFailed(exc.outcome, f"{exc.detail} after {tries} tries") from None
        finally:
            if pending.timer is not None:
                pending.timer.cancel()
            self._pending.pop(rid, None)
        return Reply(msg.error_status, msg.error_index, msg.varbinds)
