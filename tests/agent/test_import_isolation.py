"""The agent must run on a gateway holding only psutil and paho-mqtt."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = (
    "collector",
    "sbom",
    "firmware_db",
    "sqlite_utils",
    "pysnmp",
    "cyclonedx",
    "jinja2",
    "matplotlib",
    "amqtt",
    "packaging",
)


def test_importing_agent_pulls_no_server_code() -> None:
    code = (
        "import json, sys, pkgutil, importlib, agent\n"
        "for m in pkgutil.walk_packages(agent.__path__, 'agent.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in SERVER_SIDE]
    assert bad == []


# Left out of the long-running `run` process on purpose: each costs resident memory for as
# long as the agent lives (see the footprint section of docs/agent.md).
NOT_IN_RUN = ("queue", "tomllib", "agent.inventory", "agent.once", "argparse")


def test_run_path_leaves_out_what_only_children_or_other_commands_need() -> None:
    code = (
        "import json, sys\n"
        "import agent.cli, agent.config, agent.loop, agent.publish.mqtt, agent.probes\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if any(m == n or m.startswith(n + ".") for n in NOT_IN_RUN)]
    assert bad == []
