"""Configuration: TOML + environment + flags, one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load
from agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_file_env_and_flags_layer_in_that_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[agent]\ndevice_id = "gw-1"\ninterval = 30\n[broker]\nurl = "mqtt://127.0.0.1:1884"\n'
        '[device]\nvendor = "Teltonika"\n[probes]\nmounts = ["/"]\n',
    )
    env = {"DUNEWATCH_AGENT_AGENT_INTERVAL": "15", "DUNEWATCH_AGENT_BROKER_PROTOCOL": "3.1.1"}
    cfg = load(path, env=env, flags={("agent", "interval"): 5.0})
    assert cfg.agent.device_id == "gw-1"
    assert cfg.agent.interval == 5.0
    assert cfg.broker.protocol == "3.1.1"
    assert (cfg.broker.host, cfg.broker.port, cfg.broker.tls) == ("127.0.0.1", 1884, False)
    assert cfg.device.vendor == "Teltonika"
    assert cfg.probes.mounts == ("/",)
    assert cfg.username == "gw-1"


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[agent]\ndevice_id = "gw-1"\ninterval = "often"\ncolour = "red"\n[brokr]\nurl = "x"\n',
    )
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert any("[agent] interval: expected number, got str 'often'" in ln for ln in lines)
    assert any("unknown key 'colour' in [agent]" in ln for ln in lines)
    assert any("unknown section [brokr]" in ln for ln in lines)
    assert all(ln.startswith(str(path)) for ln in lines)


def test_value_checks_name_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[agent]\ndevice_id = "gw/1"\n[broker]\nurl = "http://x"\nprotocol = "4"\n'
        '[outbox]\nmax_bytes = 10\n[probes]\nenabled = ["cpu", "gpu"]\n',
    )
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    text = str(err.value)
    for needle in (
        "[agent] device_id",
        "[broker] url",
        "[broker] protocol",
        "[outbox] max_bytes",
        "gpu",
    ):
        assert needle in text


def test_unreadable_certificate_file_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[agent]\ndevice_id = "gw-1"\n[broker]\nurl = "mqtts://hub.example:8883"\n'
        f'ca_file = "{tmp_path / "missing-ca.pem"}"\n',
    )
    with pytest.raises(ConfigError, match=r"\[broker\] ca_file: .*missing-ca.pem does not exist"):
        load(path, env={})


def test_environment_values_with_wrong_type_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="DUNEWATCH_AGENT_BROKER_KEEPALIVE: expected integer"):
        load(
            None,
            env={"DUNEWATCH_AGENT_BROKER_KEEPALIVE": "soon"},
            flags={("agent", "device_id"): "d"},
        )


def test_device_id_is_required_for_run() -> None:
    with pytest.raises(ConfigError, match="device_id is required"):
        load(None, env={})


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[agent\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path, env={})


def test_password_is_read_from_its_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    cfg = load(
        None, env={}, flags={("agent", "device_id"): "d", ("broker", "password_file"): str(pw)}
    )
    assert cfg.password() == "s3cret"
