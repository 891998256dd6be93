"""Discovery: loopback-only by default, bounded ranges, rate-limited probing."""

from __future__ import annotations

import asyncio
import time

import pytest

from collector.snmp.discover import discover, hosts_of
from collector.snmp.interface import TargetError
from collector.snmp.simulator import Snmpsim
from collector.snmp.targets import Target


def test_ranges_outside_loopback_need_explicit_consent() -> None:
    assert hosts_of("127.0.0.0/30") == ["127.0.0.1", "127.0.0.2"]
    assert hosts_of("127.0.0.7/32") == ["127.0.0.7"]
    for cidr in ("10.0.0.0/24", "0.0.0.0/0", "::1/128", "128.0.0.0/30"):
        with pytest.raises(TargetError, match="refusing to probe"):
            hosts_of(cidr)
    assert hosts_of("192.0.2.0/30", allow_non_loopback=True) == ["192.0.2.1", "192.0.2.2"]
    with pytest.raises(TargetError, match="not an address range"):
        hosts_of("127.0.0.300/24")
    with pytest.raises(TargetError, match="limit is 65536"):
        hosts_of("127.0.0.0/8")


@pytest.mark.integration
def test_discover_probes_at_the_given_rate(snmpsim: Snmpsim) -> None:
    assert snmpsim.port is not None
    template = Target(
        host="127.0.0.1",
        port=snmpsim.port,
        version="2c",
        community="gateway",
        timeout=0.2,
        retries=0,
    )
    start = time.monotonic()
    found = asyncio.run(discover("127.0.0.0/29", template, rate=10))
    took = time.monotonic() - start
    # 6 hosts at 10 probes/s: the last probe starts 0.5 s after the first.
    assert took >= 0.5
    assert [f.target.host for f in found] == ["127.0.0.1"]
    assert (found[0].vendor, found[0].model, found[0].sys_name) == (
        "Teltonika",
        "RUTX11",
        "sim-gw-001",
    )
    with pytest.raises(TargetError, match="rate"):
        asyncio.run(discover("127.0.0.0/30", template, rate=0))
