"""Find SNMP agents in an address range and propose targets, at a bounded probe rate.

Only loopback (127.0.0.0/8) is probed unless the caller explicitly allows other ranges: scanning
a network you do not run is not something a monitoring tool should do by accident.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from collector.snmp.interface import OUTCOME_OK, TargetError
from collector.snmp.oidmap import GROUP_IDENTITY
from collector.snmp.poller import Poller
from collector.snmp.targets import Target, default_device_id
from firmware_db.fingerprint import fingerprint

LOOPBACK: Final = ipaddress.IPv4Network("127.0.0.0/8")
MAX_HOSTS: Final = 65536


@dataclass(frozen=True)
class Found:
    target: Target
    sys_name: str | None
    sys_descr: str | None
    sys_object_id: str | None
    vendor: str | None
    model: str | None
    device_class: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.target.device_id,
            "address": self.target.address,
            "sysName": self.sys_name,
            "sysDescr": self.sys_descr,
            "sysObjectID": self.sys_object_id,
            "vendor": self.vendor,
            "model": self.model,
            "device_class": self.device_class,
            "target": self.target.masked(),
        }


def hosts_of(cidr: str, allow_non_loopback: bool = False) -> list[str]:
    """Addresses to probe; refuses anything outside 127.0.0.0/8 unless explicitly allowed."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise TargetError(f"{cidr!r} is not an address range like 127.0.0.0/24: {exc}") from None
    if not allow_non_loopback and not (
        isinstance(net, ipaddress.IPv4Network) and net.subnet_of(LOOPBACK)
    ):
        raise TargetError(
            f"refusing to probe {net}: outside loopback 127.0.0.0/8",
            tip="only scan networks you operate; add --allow-non-loopback to confirm",
        )
    if net.num_addresses > MAX_HOSTS:
        raise TargetError(f"{net} has {net.num_addresses} addresses; the limit is {MAX_HOSTS}")
    hosts = [str(h) for h in (net.hosts() if net.num_addresses > 2 else net)]
    return hosts


async def discover(
    cidr: str,
    template: Target,
    rate: float = 50.0,
    allow_non_loopback: bool = False,
    poller: Poller | None = None,
    on_found: Callable[[Found], None] | None = None,
) -> list[Found]:
    """Probe every address with the template's credentials and port, starting at most `rate`
    probes per second; answers (identity only) become proposed targets."""
    if rate <= 0:
        raise TargetError("--rate must be positive (probes per second)")
    hosts = hosts_of(cidr, allow_non_loopback)
    own = poller is None
    poller = poller or Poller()
    await poller.open()
    found: list[Found] = []
    try:

        async def probe(host: str) -> None:
            tgt = replace(template, host=host, device_id=default_device_id(host, template.port))
            raw = await poller.poll(tgt, (GROUP_IDENTITY,))
            if raw.outcome != OUTCOME_OK or raw.scalars.get("sysObjectID") is None:
                return
            s = raw.scalars
            fp = fingerprint(s.get("sysObjectID"), s.get("sysDescr"))
            item = Found(
                tgt,
                s.get("sysName"),
                s.get("sysDescr"),
                s.get("sysObjectID"),
                fp.vendor,
                fp.model,
                fp.device_class,
            )
            found.append(item)
            if on_found is not None:
                on_found(item)

        tasks = []
        start = time.monotonic()
        for i, host in enumerate(hosts):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(probe(host)))
        await asyncio.gather(*tasks)
    finally:
        if own:
            poller.close()
    return sorted(found, key=lambda f: ipaddress.ip_address(f.target.host))
