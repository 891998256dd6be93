"""SNMP requests through pysnmp 7's asyncio engine: SNMPv3 (USM auth/priv), and v1/v2c on request.

Requests go to pysnmp's command generators with numeric OIDs directly: the high-level API
resolves every varbind through the MIB view (~110 µs each). Answers are turned into the same
plain `ber.Value`s the lean engine returns, so the poller treats both engines alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CBC168_3DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB256_AES,
    USM_PRIV_NONE,
    CommunityData,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902

from collector.snmp import ber
from collector.snmp.interface import (
    GET_BULK,
    GET_NEXT,
    OUTCOME_AUTH_FAILURE,
    OUTCOME_ERROR,
    OUTCOME_TIMEOUT,
    PollFailed,
    Reply,
)
from collector.snmp.targets import Target

_AUTH: Final = {
    None: USM_AUTH_NONE,
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA224": USM_AUTH_HMAC128_SHA224,
    "SHA256": USM_AUTH_HMAC192_SHA256,
    "SHA384": USM_AUTH_HMAC256_SHA384,
    "SHA512": USM_AUTH_HMAC384_SHA512,
}
_PRIV: Final = {
    None: USM_PRIV_NONE,
    "DES": USM_PRIV_CBC56_DES,
    "3DES": USM_PRIV_CBC168_3DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES192": USM_PRIV_CFB192_AES,
    "AES256": USM_PRIV_CFB256_AES,
}
# Error indications that mean "the agent answered, but our SNMPv3 credentials are wrong".
_AUTH_ERRORS: Final = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.NotInTimeWindow,
)


def from_pysnmp(value: Any) -> ber.Value:
    """A pysnmp/pyasn1 varbind value as the plain (tag, payload) the lean codec produces."""
    tag = value.tagSet[-1]
    code = int(tag.tagClass | tag.tagFormat | tag.tagId)
    if code in ber.INT_RANGES:
        return ber.Value(code, int(value))
    if code in ber.OCTET_TAGS:
        return ber.Value(code, bytes(value.asOctets()))
    if code == ber.OBJECT_IDENTIFIER:
        return ber.Value(code, tuple(int(p) for p in value))
    if code == ber.NULL or code in ber.EXCEPTIONS:
        return ber.Value(code, None)
    raise PollFailed(OUTCOME_ERROR, f"unsupported value type {type(value).__name__}")


def _auth_data(target: Target) -> CommunityData | UsmUserData:
    if target.version in ("1", "2c"):
        return CommunityData(target.community, mpModel=0 if target.version == "1" else 1)
    return UsmUserData(
        target.user,
        authKey=target.auth_key,
        privKey=target.priv_key,
        authProtocol=_AUTH[target.auth_proto],
        privProtocol=_PRIV[target.priv_proto],
    )


class PysnmpEngine:
    """One SnmpEngine for v1/v2c and the first v3 key set; one more per further v3 key set."""

    name = "pysnmp"

    def __init__(self) -> None:
        self._engine: SnmpEngine | None = None
        self._transports: dict[tuple[str, int, float, int], Any] = {}
        self._v3_engines: dict[tuple[Any, ...], SnmpEngine] = {}

    def close(self) -> None:
        for engine in {id(e): e for e in self._v3_engines.values()}.values():
            if engine is not self._engine:
                engine.close_dispatcher()
        self._v3_engines.clear()
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._transports.clear()

    async def prepare(self, targets: Sequence[Target]) -> None:
        """Register every target with the engine before polling starts.

        pysnmp rebuilds its community and target lookup maps after every configuration change,
        walking all entries each time; configuring 1,000 devices one by one as their first
        request goes out costs minutes. Configured up front, the maps are built once.
        """
        for target in targets:
            engine = self._engine_for(target)
            transport = await self._transport(target)
            LCD.configure(engine, _auth_data(target), transport, target.context)

    async def _transport(self, target: Target) -> Any:
        key = (target.host, target.port, target.timeout, target.retries)
        tr = self._transports.get(key)
        if tr is None:
            cls = Udp6TransportTarget if ":" in target.host else UdpTransportTarget
            tr = await cls.create(
                (target.host, target.port), timeout=target.timeout, retries=target.retries
            )
            self._transports[key] = tr
        return tr

    def _engine_for(self, target: Target) -> SnmpEngine:
        """The main engine for v1/v2c; one engine per distinct SNMPv3 credential set.

        pysnmp keeps one key set per user name per engine (its USM table is indexed by the
        user name), so devices that share a user name with different keys each need their own
        engine, or they would overwrite each other's keys. Cities usually have few sets.
        """
        if self._engine is None:
            self._engine = SnmpEngine()
        if target.version != "3":
            return self._engine
        key = (target.user, target.auth_proto, target.auth_key, target.priv_proto, target.priv_key)
        engine = self._v3_engines.get(key)
        if engine is None:
            engine = SnmpEngine() if self._v3_engines else self._engine
            self._v3_engines[key] = engine
        return engine

    async def request(
        self,
        target: Target,
        kind: str,
        oids: Sequence[ber.Oid],
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> Reply:
        engine = self._engine_for(target)
        transport = await self._transport(target)
        auth = _auth_data(target)
        addr_name, _params = LCD.configure(engine, auth, transport, target.context)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, Any, Any, Any]] = loop.create_future()

        def done(
            _engine: Any,
            _handle: Any,
            err_ind: Any,
            err_stat: Any,
            err_idx: Any,
            var_binds: Any,
            _ctx: Any,
        ) -> None:
            if not future.done():
                future.set_result((err_ind, err_stat, err_idx, var_binds))

        vbs = [(rfc1902.ObjectName(o), univ.Null("")) for o in oids]
        ctx_name = target.context.encode() if target.context else b""
        if kind == GET_BULK:
            cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
                engine, addr_name, None, ctx_name, non_repeaters, max_repetitions, vbs, done
            )
        elif kind == GET_NEXT:
            cmdgen.NextCommandGeneratorSingleRun().send_varbinds(
                engine, addr_name, None, ctx_name, vbs, done
            )
        else:
            cmdgen.GetCommandGenerator().send_varbinds(engine, addr_name, None, ctx_name, vbs, done)
        err_ind, err_stat, err_idx, var_binds = await future
        if err_ind:
            if isinstance(err_ind, errind.RequestTimedOut):
                why = (
                    "no answer (device unreachable, or wrong community)"
                    if target.version != "3"
                    else "no answer (device unreachable, or SNMPv3 not enabled)"
                )
                raise PollFailed(OUTCOME_TIMEOUT, f"{why} after {target.retries + 1} tries")
            if isinstance(err_ind, _AUTH_ERRORS):
                raise PollFailed(
                    OUTCOME_AUTH_FAILURE,
                    f"SNMPv3 authentication failed for user {target.user!r}: {err_ind}",
                )
            raise PollFailed(OUTCOME_ERROR, f"{type(err_ind).__name__}: {err_ind}")
        return Reply(
            int(err_stat or 0),
            int(err_idx or 0),
            [(tuple(name), from_pysnmp(val)) for name, val in var_binds],
        )
