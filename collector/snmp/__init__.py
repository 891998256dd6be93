"""Agentless devices over SNMP: targets, poller, fingerprinting, builders, scheduler, discovery.

Entry points: `targets.Target` / `load_targets`, `poller.Poller`, `service.PollService` (poll one
device into a `PollReport` with health and inventory bodies), `service.Scheduler`,
`source.SnmpSource` (the collector's ingest source), `discover.discover`, and
`simulator.Snmpsim` / `simulator.Snmpd` for simulated agents on loopback. See docs/snmp.md.
"""
