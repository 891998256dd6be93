"""Poll many SNMP agents concurrently on pysnmp 7's asyncio engine, one engine for all targets.

How one poll works: a single GETBULK carries every wanted scalar as a non-repeater and every
wanted table column as a repeater, so a typical camera answers identity, health and inventory
in one round trip. Columns that are not finished (their next OID is still inside the column)
are continued with further GETBULKs, exactly like `bulk_walk_cmd(..., lexicographicMode=False)`
but for all columns at once. Requests go to pysnmp's command generators with numeric OIDs
directly: the high-level API resolves every varbind through the MIB view (~110 µs each), which
alone would eat the 10 s budget for 1,000 devices.

Limits: a per-target semaphore caps requests in flight to one agent (small agents drop UDP
bursts), a global semaphore caps devices polled at once, and every poll has a deadline so one
slow or dead device never delays the rest (`poll_many` runs them all concurrently).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
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
from pysnmp.proto import errind, rfc1902, rfc1905

from collector.snmp.interface import (
    OUTCOME_AUTH_FAILURE,
    OUTCOME_ERROR,
    OUTCOME_OK,
    OUTCOME_TIMEOUT,
)
from collector.snmp.oidmap import (
    GROUP_HEALTH,
    GROUP_IDENTITY,
    GROUP_INVENTORY,
    Column,
    OidMap,
    Scalar,
    load_oidmap,
)
from collector.snmp.targets import Target

log = logging.getLogger("dunewatch.snmp")

ALL_GROUPS: Final = (GROUP_IDENTITY, GROUP_HEALTH, GROUP_INVENTORY)
HEALTH_GROUPS: Final = (GROUP_IDENTITY, GROUP_HEALTH)

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
_MISSING: Final = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)


class _PollFailed(Exception):
    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class _Clock:
    """Counts one poll's requests and the time it only waited for a free slot at its endpoint.

    The per-poll deadline is about the device being slow, so time spent queued behind other
    polls of the same endpoint (many simulated devices on one port) does not count.
    """

    def __init__(self) -> None:
        self.requests = 0
        self._inflight = 0
        self._waiting = 0
        self._queued = 0.0
        self._idle_since: float | None = None

    def _update(self) -> None:
        now = time.monotonic()
        queued = self._waiting > 0 and self._inflight == 0
        if queued and self._idle_since is None:
            self._idle_since = now
        elif not queued and self._idle_since is not None:
            self._queued += now - self._idle_since
            self._idle_since = None

    def wait_start(self) -> None:
        self._waiting += 1
        self._update()

    def wait_end(self) -> None:
        self._waiting -= 1
        self._inflight += 1
        self.requests += 1
        self._update()

    def wait_cancelled(self) -> None:
        self._waiting -= 1
        self._update()

    def request_end(self) -> None:
        self._inflight -= 1
        self._update()

    def queued(self) -> float:
        extra = time.monotonic() - self._idle_since if self._idle_since is not None else 0.0
        return self._queued + extra


async def _with_deadline(coro: Any, deadline: float, clock: _Clock) -> Any:
    """Await `coro` for at most `deadline` seconds of non-queued time; TimeoutError after."""
    task = asyncio.ensure_future(coro)
    start = time.monotonic()
    try:
        while True:
            remaining = deadline - (time.monotonic() - start - clock.queued())
            if remaining <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass(frozen=True)
class RawPoll:
    """What one poll of one device returned, before it is turned into health/inventory bodies."""

    device_id: str
    address: str
    ts: float
    outcome: str
    detail: str = ""
    duration: float = 0.0
    requests: int = 0
    groups: tuple[str, ...] = ()
    scalars: Mapping[str, Any] = field(default_factory=dict)
    # table name -> row index (dotted suffix) -> column name -> value
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # vendor OIDs fetched by GET

    @property
    def ok(self) -> bool:
        return self.outcome == OUTCOME_OK


@dataclass(frozen=True)
class PollerConfig:
    max_varbinds: int = 240  # per GETBULK response (columns x max-repetitions)
    # First round: few rows per column, since most camera tables are short; columns still
    # open afterwards are continued with the full budget. Agents pay per varbind returned.
    first_repetitions: int = 4
    max_columns_per_request: int = 32  # more columns are split over parallel requests
    per_target_in_flight: int = 2
    max_concurrent_targets: int = 256
    deadline: float | None = None  # per poll; None = 3 x timeout x (retries + 1) + 1 s

    def __post_init__(self) -> None:
        for name in (
            "max_varbinds",
            "first_repetitions",
            "max_columns_per_request",
            "per_target_in_flight",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_concurrent_targets < 1:
            raise ValueError("max_concurrent_targets must be >= 1")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")

    def deadline_for(self, target: Target) -> float:
        if self.deadline is not None:
            return self.deadline
        return 3 * target.timeout * (target.retries + 1) + 1.0


def convert(value: Any, kind: str) -> Any:
    """pysnmp value -> plain Python (str, int, colon-hex str, dotted OID), None if absent."""
    if isinstance(value, _MISSING) or value is None:
        return None
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(p) for p in tuple(value))
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        raw = value.asOctets()
        if kind == "hex" or isinstance(value, rfc1902.IpAddress):
            if isinstance(value, rfc1902.IpAddress):
                return ".".join(str(b) for b in raw)
            return ":".join(f"{b:02x}" for b in raw)
        if kind == "int":
            return None
        return raw.decode("utf-8", errors="replace").replace("\x00", "").strip()
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


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


def _under(oid: tuple[int, ...], prefix: tuple[int, ...]) -> bool:
    return len(oid) > len(prefix) and oid[: len(prefix)] == prefix


class Poller:
    """One SnmpEngine shared by every poll; open() inside the event loop that will use it."""

    def __init__(self, oidmap: OidMap | None = None, config: PollerConfig | None = None) -> None:
        self.oidmap = oidmap or load_oidmap()
        self.config = config or PollerConfig()
        self._engine: SnmpEngine | None = None
        self._global: asyncio.Semaphore | None = None
        self._per_target: dict[str, asyncio.Semaphore] = {}
        self._transports: dict[tuple[str, int, float, int], Any] = {}
        self._v3_engines: dict[tuple[Any, ...], SnmpEngine] = {}

    async def open(self) -> None:
        if self._engine is None:
            self._engine = SnmpEngine()
            self._global = asyncio.Semaphore(self.config.max_concurrent_targets)

    def close(self) -> None:
        for engine in {id(e): e for e in self._v3_engines.values()}.values():
            if engine is not self._engine:
                engine.close_dispatcher()
        self._v3_engines.clear()
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
            self._transports.clear()
            self._per_target.clear()

    async def __aenter__(self) -> Poller:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def prepare(self, targets: Iterable[Target]) -> None:
        """Register every target with the engine before polling starts.

        pysnmp rebuilds its community and target lookup maps after every configuration change,
        walking all entries each time; configuring 1,000 devices one by one as their first
        request goes out costs minutes. Configured up front, the maps are built once.
        """
        await self.open()
        for target in targets:
            engine = self._engine_for(target)
            transport = await self._transport(target)
            LCD.configure(engine, _auth_data(target), transport, target.context)

    async def poll_many(
        self, targets: Sequence[Target], groups: tuple[str, ...] = ALL_GROUPS
    ) -> list[RawPoll]:
        """Poll every target concurrently; results in the order of `targets`."""
        await self.prepare(targets)
        return list(await asyncio.gather(*(self.poll(t, groups) for t in targets)))

    async def poll(
        self,
        target: Target,
        groups: tuple[str, ...] = ALL_GROUPS,
        extra_oids: Iterable[str] = (),
    ) -> RawPoll:
        """Poll one device; never raises for device trouble: the outcome says what happened."""
        await self.open()
        assert self._global is not None
        async with self._global:
            start = time.monotonic()
            ts = time.time()
            counter = _Clock()
            deadline = self.config.deadline_for(target)
            try:
                scalars, tables, extra = await _with_deadline(
                    self._collect(target, groups, tuple(extra_oids), counter), deadline, counter
                )
            except TimeoutError:
                return self._failed(
                    target,
                    ts,
                    start,
                    counter,
                    groups,
                    OUTCOME_TIMEOUT,
                    f"no complete answer within the {deadline:g} s deadline",
                )
            except _PollFailed as exc:
                return self._failed(target, ts, start, counter, groups, exc.outcome, exc.detail)
            except (PySnmpError, OSError, ValueError) as exc:
                return self._failed(
                    target,
                    ts,
                    start,
                    counter,
                    groups,
                    OUTCOME_ERROR,
                    f"{type(exc).__name__}: {exc}",
                )
            return RawPoll(
                device_id=target.device_id,
                address=target.address,
                ts=ts,
                outcome=OUTCOME_OK,
                duration=time.monotonic() - start,
                requests=counter.requests,
                groups=groups,
                scalars=scalars,
                tables=tables,
                extra=extra,
            )

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, Any]:
        """GET a few OIDs (e.g. a vendor's model and firmware OIDs); absent ones are None."""
        await self.open()
        counter = _Clock()
        result: dict[str, Any] = await _with_deadline(
            self._get(target, tuple(oids), counter), self.config.deadline_for(target), counter
        )
        return result

    def _failed(
        self,
        target: Target,
        ts: float,
        start: float,
        counter: _Clock,
        groups: tuple[str, ...],
        outcome: str,
        detail: str,
    ) -> RawPoll:
        log.debug("snmp poll %s (%s): %s: %s", target.device_id, target.address, outcome, detail)
        return RawPoll(
            device_id=target.device_id,
            address=target.address,
            ts=ts,
            outcome=outcome,
            detail=detail,
            duration=time.monotonic() - start,
            requests=counter.requests,
            groups=groups,
        )

    # -- requests ---------------------------------------------------------------------------

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
        assert self._engine is not None
        if target.version != "3":
            return self._engine
        key = (target.user, target.auth_proto, target.auth_key, target.priv_proto, target.priv_key)
        engine = self._v3_engines.get(key)
        if engine is None:
            engine = SnmpEngine() if self._v3_engines else self._engine
            self._v3_engines[key] = engine
        return engine

    def _semaphore(self, target: Target) -> asyncio.Semaphore:
        """Requests in flight are capped per agent endpoint (host, port): simulators and
        proxies serve many devices on one port, and one small agent drops UDP bursts."""
        key = f"{target.host}|{target.port}"
        sem = self._per_target.get(key)
        if sem is None:
            sem = asyncio.Semaphore(self.config.per_target_in_flight)
            self._per_target[key] = sem
        return sem

    async def _request(
        self,
        target: Target,
        kind: str,
        oids: Sequence[tuple[int, ...]],
        counter: _Clock,
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> list[tuple[tuple[int, ...], Any]]:
        """One GET / GETNEXT / GETBULK with raw numeric varbinds; raises _PollFailed."""
        engine = self._engine_for(target)
        transport = await self._transport(target)
        auth = _auth_data(target)
        sem = self._semaphore(target)
        counter.wait_start()
        try:
            await sem.acquire()
        except BaseException:
            counter.wait_cancelled()
            raise
        counter.wait_end()
        try:
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
            if kind == "bulk":
                cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
                    engine, addr_name, None, ctx_name, non_repeaters, max_repetitions, vbs, done
                )
            elif kind == "next":
                cmdgen.NextCommandGeneratorSingleRun().send_varbinds(
                    engine, addr_name, None, ctx_name, vbs, done
                )
            else:
                cmdgen.GetCommandGenerator().send_varbinds(
                    engine, addr_name, None, ctx_name, vbs, done
                )
            err_ind, err_stat, err_idx, var_binds = await future
        finally:
            sem.release()
            counter.request_end()
        if err_ind:
            if isinstance(err_ind, errind.RequestTimedOut):
                why = (
                    "no answer (device unreachable, or wrong community)"
                    if target.version != "3"
                    else "no answer (device unreachable, or SNMPv3 not enabled)"
                )
                raise _PollFailed(OUTCOME_TIMEOUT, f"{why} after {target.retries + 1} tries")
            if isinstance(err_ind, _AUTH_ERRORS):
                raise _PollFailed(
                    OUTCOME_AUTH_FAILURE,
                    f"SNMPv3 authentication failed for user {target.user!r}: {err_ind}",
                )
            raise _PollFailed(OUTCOME_ERROR, f"{type(err_ind).__name__}: {err_ind}")
        if err_stat and int(err_stat):
            status = err_stat.prettyPrint() if hasattr(err_stat, "prettyPrint") else err_stat
            where = ""
            idx = int(err_idx or 0)
            if 0 < idx <= len(oids):
                where = f" at {'.'.join(map(str, oids[idx - 1]))}"
            raise _PollFailed(OUTCOME_ERROR, f"agent returned error status {status}{where}")
        return [(tuple(name), val) for name, val in var_binds]

    async def _get(self, target: Target, oids: tuple[str, ...], counter: _Clock) -> dict[str, Any]:
        if not oids:
            return {}
        tuples = [tuple(int(p) for p in o.split(".")) for o in oids]
        vbs = await self._request(target, "get", tuples, counter)
        return {o: convert(val, "str") for o, (_name, val) in zip(oids, vbs, strict=False)}

    async def _collect(
        self,
        target: Target,
        groups: tuple[str, ...],
        extra_oids: tuple[str, ...],
        counter: _Clock,
    ) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
        scalars = self.oidmap.scalars_for(groups)
        columns = self.oidmap.columns_for(groups)
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        values: dict[str, Any] = {}
        step = self.config.max_columns_per_request
        chunks = [columns[i : i + step] for i in range(0, len(columns), step)] or [()]
        jobs = [
            self._walk(target, scalars if n == 0 else (), chunk, counter, values, tables)
            for n, chunk in enumerate(chunks)
        ]
        await asyncio.gather(*jobs)
        extra = await self._get(target, extra_oids, counter) if extra_oids else {}
        return values, tables, extra

    async def _walk(
        self,
        target: Target,
        scalars: tuple[Scalar, ...],
        columns: tuple[Column, ...],
        counter: _Clock,
        values: dict[str, Any],
        tables: dict[str, dict[str, dict[str, Any]]],
    ) -> None:
        """Fetch scalars (GETBULK non-repeaters); walk columns until each leaves its subtree."""
        cursor: dict[Column, tuple[int, ...]] = {c: c.oid for c in columns}
        first = True
        v1 = target.version == "1"
        while first or cursor:
            active = list(cursor)
            before = dict(cursor)
            nonrep = list(scalars) if first else []
            # GETNEXT of a scalar's parent returns the scalar itself when it exists.
            oids = [s.oid[:-1] for s in nonrep] + [cursor[c] for c in active]
            if not oids:
                return
            reps = max(1, self.config.max_varbinds // max(1, len(active)))
            if first:
                reps = min(reps, self.config.first_repetitions)
            if v1:
                vbs = await self._request(target, "next", oids, counter)
            else:
                vbs = await self._request(
                    target, "bulk", oids, counter, len(nonrep), reps if active else 0
                )
            for s, (name, val) in zip(nonrep, vbs[: len(nonrep)], strict=False):
                values[s.name] = convert(val, s.type) if name == s.oid else None
            rest = vbs[len(nonrep) :]
            finished: set[Column] = set()
            for i, (name, val) in enumerate(rest):
                if not active:
                    break
                col = active[i % len(active)]
                if col in finished:
                    continue
                if (
                    isinstance(val, rfc1905.EndOfMibView)
                    or not _under(name, col.oid)
                    or name <= cursor[col]
                ):
                    finished.add(col)
                    continue
                index = ".".join(str(p) for p in name[len(col.oid) :])
                tables.setdefault(col.table, {}).setdefault(index, {})[col.name] = convert(
                    val, col.type
                )
                cursor[col] = name
            progressed = False
            for col in active:
                if col in finished:
                    cursor.pop(col, None)
                elif cursor[col] != before[col]:
                    progressed = True
            if not progressed:
                # Nothing advanced (empty or truncated answer): stop rather than loop.
                cursor.clear()
            first = False
