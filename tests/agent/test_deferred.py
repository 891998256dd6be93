"""Deferred imports: a stand-in becomes the real module on first use; paho keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import deferred


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tiny importer/imported pair on sys.path; every module they create is forgotten after."""
    (tmp_path / "dfr_heavy.py").write_text("LOADS = []\nLOADS.append(1)\nvalue = 42\n")
    (tmp_path / "dfr_pkg").mkdir()
    (tmp_path / "dfr_pkg" / "__init__.py").write_text("")
    (tmp_path / "dfr_pkg" / "sub.py").write_text("def answer():\n    return 7\n")
    (tmp_path / "dfr_user.py").write_text(
        "import dfr_heavy\nimport dfr_pkg.sub\n\n"
        "def use():\n    return dfr_heavy.value\n\n"
        "def use_sub():\n    return dfr_pkg.sub.answer()\n\n"
        "def catch():\n"
        "    try:\n        raise KeyError('x')\n"
        "    except dfr_heavy.Special:\n        return 'special'\n"
        "    except KeyError:\n        return 'key'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    for name in ("dfr_heavy", "dfr_pkg.sub"):
        deferred._STANDINS.pop(name, None)


def test_stand_in_becomes_the_real_module_on_first_use(modules: Path) -> None:
    user: Any = deferred.import_deferring("dfr_user", ("dfr_heavy", "dfr_pkg.sub"))
    assert "dfr_heavy" not in sys.modules and "dfr_pkg.sub" not in sys.modules
    assert isinstance(user.dfr_heavy, deferred.Deferred)
    assert deferred.is_deferred("dfr_heavy")

    assert user.use() == 42  # first attribute read imports the real module
    real = sys.modules["dfr_heavy"]
    assert real.LOADS == [1]  # imported exactly once
    assert user.dfr_heavy.value == real.value and user.dfr_heavy.LOADS is real.LOADS
    assert not deferred.is_deferred("dfr_heavy")

    assert user.use_sub() == 7  # dotted: the package attribute was the stand-in
    assert sys.modules["dfr_pkg"].sub is sys.modules["dfr_pkg.sub"]


def test_other_importers_get_the_real_module(modules: Path) -> None:
    user: Any = deferred.import_deferring("dfr_user", ("dfr_heavy",))
    import dfr_heavy  # type: ignore[import-not-found]

    assert not isinstance(dfr_heavy, deferred.Deferred)
    assert user.use() == 42
    assert dfr_heavy.LOADS == [1]


def test_placeholders_are_served_without_importing(modules: Path) -> None:
    class Special(Exception):
        pass

    user: Any = deferred.import_deferring(
        "dfr_user", ("dfr_heavy",), {"dfr_heavy": {"Special": Special}}
    )
    assert user.catch() == "key"  # the except clause read the placeholder only
    assert "dfr_heavy" not in sys.modules
    deferred.load("dfr_heavy")
    assert sys.modules["dfr_heavy"].LOADS == [1]
    with pytest.raises(AttributeError):
        user.catch()  # now the real module answers, and it has no `Special`


def test_already_imported_module_is_left_alone(modules: Path) -> None:
    import dfr_user  # type: ignore[import-not-found]

    assert deferred.import_deferring("dfr_user", ("dfr_heavy",)) is dfr_user
    assert not isinstance(dfr_user.dfr_heavy, deferred.Deferred)


def _run(code: str, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


HEAVY = ["ssl", "_ssl", "hashlib", "_hashlib", "urllib.request", "http.client", "email"]


@pytest.mark.integration
def test_plain_paho_client_without_ssl_delivers_a_qos1_burst(mosquitto: Any) -> None:
    """Reads that would block go through paho's `except ssl.SSLWantReadError` clauses: with
    `sys.modules["ssl"] = None` this burst kills paho's network thread after a message or two."""
    got = _run(
        """
        import json, sys, threading
        from agent import deferred
        deferred.defer_for_mqtt(tls=False)
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        N = 300
        acked, done = [], threading.Event()
        def on_publish(c, u, mid, rc, p):
            acked.append(mid)
            if len(acked) == N:
                done.set()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="burst")
        c.username_pw_set("dev-1", "dev-1-pw")
        c.on_publish = on_publish
        c.connect("127.0.0.1", int(sys.argv[1]))
        c.loop_start()
        for i in range(N):
            c.publish("dunewatch/v1/dev-1/health", b"x" * 200, qos=1)
        done.wait(30)
        alive = c._thread is not None and c._thread.is_alive()
        c.disconnect()
        c.loop_stop()
        heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
        print(json.dumps({"acked": len(acked), "alive": alive, "heavy": heavy}))
        """,
        str(mosquitto.port),
        json.dumps(HEAVY),
    )
    assert got == {"acked": 300, "alive": True, "heavy": []}


def test_tls_after_a_plain_start_gets_the_real_ssl() -> None:
    got = _run(
        """
        import json, sys
        from agent import deferred
        deferred.defer_for_mqtt(tls=False)
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        before = "ssl" in sys.modules
        deferred.load("ssl")
        import ssl
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls")
        c.tls_set(cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        print(json.dumps({
            "before": before,
            "same": mqtt.ssl.SSLWantReadError is ssl.SSLWantReadError,
            "context": type(c._ssl_context).__name__,
        }))
        """
    )
    assert got == {"before": False, "same": True, "context": "SSLContext"}


def test_mqtts_config_imports_ssl_with_paho() -> None:
    got = _run(
        """
        import json, sys
        from agent import deferred
        deferred.defer_for_mqtt(tls=True)
        import paho.mqtt.client as mqtt, ssl
        print(json.dumps({"real": mqtt.ssl is ssl, "hashlib": "hashlib" in sys.modules}))
        """
    )
    assert got == {"real": True, "hashlib": False}


def test_dataclasses_without_inspect_still_make_agent_values() -> None:
    got = _run(
        """
        import json, sys
        from agent import deferred
        deferred.defer_for_values()
        from agent import config, envelope, outbox
        from agent.publish import interface, mqtt
        from agent import inventory_job
        cfg = config.load(None, env={}, flags={("agent", "device_id"): "gw-1"}, check_files=False)
        env = envelope.make("gw-1", "b", 1, "health", {"interval": 10})
        print(json.dumps({"inspect": "inspect" in sys.modules, "dev": cfg.agent.device_id,
                          "seq": env.seq}))
        """
    )
    assert got == {"inspect": False, "dev": "gw-1", "seq": 1}
