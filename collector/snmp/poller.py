"""Poll many SNMP agents concurrently on one asyncio loop, through shared request engines.

How one poll works: a single GETBULK carries every wanted scalar as a non-repeater and every
wanted table column as a repeater, so a typical camera answers identity, health and inventory
in one round trip. Columns that are not finished (their next OID is still inside the column)
are continued with further GETBULKs, exactly like `bulk_walk_cmd(..., lexicographicMode=False)`
but for all columns at once.

Requests go through an engine (`ENGINES`): "lean" (engine_lean.py: our own BER codec on one
datagram endpoint) for v1/v2c by default, "pysnmp" (engine_pysnmp.py) for SNMPv3 and on request
for v1/v2c. pyasn1's per-varbind cost made pysnmp ~35 ms of CPU per device (docs/snmp.md).

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

from collector.snmp import ber
from collector.snmp.engine_lean import LeanEngine
from collector.snmp.interface import (
    GET,
    GET_BULK,
    GET_NEXT,
    OUTCOME_ERROR,
    OUTCOME_OK,
    OUTCOME_TIMEOUT,
    PollFailed,
    RequestEngine,
    SnmpError,
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

ENGINE_LEAN: Final = "lean"
ENGINE_PYSNMP: Final = "pysnmp"
ENGINES: Final = (ENGINE_LEAN, ENGINE_PYSNMP)  # registry: name -> module engine_<name>.py


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
    engine: str = ENGINE_LEAN  # for v1/v2c targets; SNMPv3 always goes through pysnmp
    # Repeat polls probe the rows the last poll saw (see Poller._probes). Off by default:
    # fewer varbinds and requests, but snmpsim spent more CPU answering them (docs/snmp.md).
    probe_known_rows: bool = False

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
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")

    def deadline_for(self, target: Target) -> float:
        if self.deadline is not None:
            return self.deadline
        return 3 * target.timeout * (target.retries + 1) + 1.0


def convert(value: ber.Value | None, kind: str) -> Any:
    """A varbind value -> plain Python (str, int, colon-hex str, dotted OID), None if absent."""
    if value is None:
        return None
    tag, payload = value
    if tag in ber.EXCEPTIONS:
        return None
    if tag == ber.OBJECT_IDENTIFIER:
        assert isinstance(payload, tuple)
        return ".".join(map(str, payload))
    if tag in ber.INT_RANGES:
        return payload
    # OCTET STRING, IpAddress, Opaque, and NULL (an empty octet string to pyasn1)
    raw = payload if isinstance(payload, bytes) else b""
    if tag == ber.IP_ADDRESS:
        return ".".join(str(b) for b in raw)
    if kind == "hex":
        return ":".join(f"{b:02x}" for b in raw)
    if kind == "int":
        return None
    return raw.decode("utf-8", errors="replace").replace("\x00", "").strip()


def _under(oid: tuple[int, ...], prefix: tuple[int, ...]) -> bool:
    return len(oid) > len(prefix) and oid[: len(prefix)] == prefix


class Poller:
    """Polls through a lean v1/v2c engine and a pysnmp engine built only when needed (SNMPv3,
    or `engine="pysnmp"`); open() inside the event loop that will use it."""

    def __init__(self, oidmap: OidMap | None = None, config: PollerConfig | None = None) -> None:
        self.oidmap = oidmap or load_oidmap()
        self.config = config or PollerConfig()
        self._global: asyncio.Semaphore | None = None
        self._per_target: dict[str, asyncio.Semaphore] = {}
        self._engines: dict[str, RequestEngine] = {}
        # device id -> column -> row indexes the last complete poll saw (see _probes)
        self._shapes: dict[str, dict[Column, tuple[tuple[int, ...], ...]]] = {}

    async def open(self) -> None:
        if self._global is None:
            self._global = asyncio.Semaphore(self.config.max_concurrent_targets)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
        self._per_target.clear()
        self._global = None

    async def __aenter__(self) -> Poller:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def dropped(self) -> dict[str, int]:
        """Datagrams the lean engine dropped (malformed, wrong request-id/source/community)."""
        lean = self._engines.get(ENGINE_LEAN)
        return dict(lean.errors) if isinstance(lean, LeanEngine) else {}

    def engine_name(self, target: Target) -> str:
        return ENGINE_PYSNMP if target.version == "3" else self.config.engine

    def _engine(self, target: Target) -> RequestEngine:
        name = self.engine_name(target)
        engine = self._engines.get(name)
        if engine is None:
            if name == ENGINE_LEAN:
                engine = LeanEngine()
            else:
                # Imported here: pysnmp's import and engine setup are paid only when used.
                from collector.snmp.engine_pysnmp import PysnmpEngine

                engine = PysnmpEngine()
            self._engines[name] = engine
        return engine

    async def prepare(self, targets: Iterable[Target]) -> None:
        """Set up every target before polling starts (pysnmp: register them all at once)."""
        await self.open()
        by_engine: dict[str, list[Target]] = {}
        for target in targets:
            by_engine.setdefault(self.engine_name(target), []).append(target)
        for group in by_engine.values():
            await self._engine(group[0]).prepare(group)

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
            except PollFailed as exc:
                return self._failed(target, ts, start, counter, groups, exc.outcome, exc.detail)
            except (SnmpError, OSError, ValueError) as exc:
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

    # -- requests ---------------------------------------------------------------------------

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
    ) -> list[tuple[tuple[int, ...], ber.Value]]:
        """One GET / GETNEXT / GETBULK with raw numeric varbinds; raises PollFailed."""
        engine = self._engine(target)
        sem = self._semaphore(target)
        counter.wait_start()
        try:
            await sem.acquire()
        except BaseException:
            counter.wait_cancelled()
            raise
        counter.wait_end()
        try:
            reply = await engine.request(target, kind, oids, non_repeaters, max_repetitions)
        finally:
            sem.release()
            counter.request_end()
        if reply.error_status:
            status = (
                ber.ERROR_STATUS[reply.error_status]
                if reply.error_status < len(ber.ERROR_STATUS)
                else str(reply.error_status)
            )
            where = ""
            if 0 < reply.error_index <= len(oids):
                where = f" at {'.'.join(map(str, oids[reply.error_index - 1]))}"
            raise PollFailed(OUTCOME_ERROR, f"agent returned error status {status}{where}")
        return reply.varbinds

    async def _get(self, target: Target, oids: tuple[str, ...], counter: _Clock) -> dict[str, Any]:
        if not oids:
            return {}
        tuples = [tuple(int(p) for p in o.split(".")) for o in oids]
        vbs = await self._request(target, GET, tuples, counter)
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
        known = self._shapes.get(target.device_id, {})
        seen: dict[Column, list[tuple[int, ...]]] = {c: [] for c in columns}
        step = self.config.max_columns_per_request
        chunks = [columns[i : i + step] for i in range(0, len(columns), step)] or [()]
        jobs = [
            self._walk(
                target, scalars if n == 0 else (), chunk, counter, values, tables, known, seen
            )
            for n, chunk in enumerate(chunks)
        ]
        await asyncio.gather(*jobs)
        if columns and self.config.probe_known_rows:
            shape = self._shapes.setdefault(target.device_id, {})
            shape.update((c, tuple(rows)) for c, rows in seen.items())
        extra = await self._get(target, extra_oids, counter) if extra_oids else {}
        return values, tables, extra

    def _probes(
        self,
        target: Target,
        scalars: tuple[Scalar, ...],
        columns: tuple[Column, ...],
        known: Mapping[Column, tuple[tuple[int, ...], ...]],
    ) -> dict[Column, list[tuple[int, ...]]]:
        """GETNEXT probes for columns whose rows the last poll saw: the column itself and each
        known row, sent as GETBULK non-repeaters, so an unchanged column costs the agent
        exactly rows + 1 varbinds instead of max-repetitions' worth of overshoot."""
        probes: dict[Column, list[tuple[int, ...]]] = {}
        if not self.config.probe_known_rows or target.version == "1" or not known:
            return probes
        budget = self.config.max_varbinds - len(scalars)
        for col in columns:
            rows = known.get(col)
            if rows is None or len(rows) + 1 > budget:
                continue
            budget -= len(rows) + 1
            probes[col] = [col.oid] + [col.oid + r for r in rows]
        return probes

    async def _walk(
        self,
        target: Target,
        scalars: tuple[Scalar, ...],
        columns: tuple[Column, ...],
        counter: _Clock,
        values: dict[str, Any],
        tables: dict[str, dict[str, dict[str, Any]]],
        known: Mapping[Column, tuple[tuple[int, ...], ...]],
        seen: dict[Column, list[tuple[int, ...]]],
    ) -> None:
        """Fetch scalars (GETBULK non-repeaters); walk columns until each leaves its subtree.

        Columns with a known shape (rows seen by the last poll) are probed in the first request
        (see _probes); every answer is followed as a chain from the column's start, exactly like
        a walk, and a column that turns out to have new rows is walked on from the first one.
        """

        def record(col: Column, name: tuple[int, ...], val: ber.Value) -> None:
            row = name[len(col.oid) :]
            index = ".".join(map(str, row))
            tables.setdefault(col.table, {}).setdefault(index, {})[col.name] = convert(
                val, col.type
            )
            seen[col].append(row)

        probes = self._probes(target, scalars, columns, known)
        cursor: dict[Column, tuple[int, ...]] = {c: c.oid for c in columns if c not in probes}
        first = True
        v1 = target.version == "1"
        while first or cursor:
            active = list(cursor)
            before = dict(cursor)
            nonrep = list(scalars) if first else []
            probe_oids = [o for want in probes.values() for o in want] if first else []
            # GETNEXT of a scalar's parent returns the scalar itself when it exists.
            oids = [s.oid[:-1] for s in nonrep] + probe_oids + [cursor[c] for c in active]
            if not oids:
                return
            reps = max(1, self.config.max_varbinds // max(1, len(active)))
            if first:
                reps = min(reps, self.config.first_repetitions)
            if v1:
                vbs = await self._request(target, GET_NEXT, oids, counter)
            else:
                vbs = await self._request(
                    target,
                    GET_BULK,
                    oids,
                    counter,
                    len(nonrep) + len(probe_oids),
                    reps if active else 0,
                )
            for s, (name, val) in zip(nonrep, vbs[: len(nonrep)], strict=False):
                values[s.name] = convert(val, s.type) if name == s.oid else None
            progressed = False
            if probe_oids:
                got = vbs[len(nonrep) : len(nonrep) + len(probe_oids)]
                answers = dict(zip(probe_oids, got, strict=False))
                for col, want in probes.items():
                    probed = set(want)
                    cur = col.oid
                    while True:
                        hit = answers.get(cur)
                        if hit is None:  # truncated answer: walk on from here
                            cursor[col] = cur
                            progressed = True
                            break
                        name, val = hit
                        if val.tag == ber.END_OF_MIB_VIEW or not _under(name, col.oid):
                            break
                        if name <= cur:
                            break
                        record(col, name, val)
                        if name not in probed:  # a row the last poll did not see
                            cursor[col] = name
                            progressed = True
                            break
                        cur = name
            rest = vbs[len(nonrep) + len(probe_oids) :]
            finished: set[Column] = set()
            for i, (name, val) in enumerate(rest):
                if not active:
                    break
                col = active[i % len(active)]
                if col in finished:
                    continue
                if (
                    val.tag == ber.END_OF_MIB_VIEW
                    or not _under(name, col.oid)
                    or name <= cursor[col]
                ):
                    finished.add(col)
                    continue
                record(col, name, val)
                cursor[col] = name
            for col in active:
                if col in finished:
                    cursor.pop(col, None)
                elif cursor[col] != before[col]:
                    progressed = True
            if not progressed:
                # Nothing advanced (empty or truncated answer): stop rather than loop.
                cursor.clear()
            first = False
