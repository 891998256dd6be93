"""Targets: validation at construction, masking of secrets, the TOML file round trip."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from collector.snmp.interface import TargetError
from collector.snmp.targets import (
    MASK,
    Target,
    add_target,
    load_targets,
    parse_host_port,
    remove_target,
)

V3 = {
    "user": "monitor",
    "auth_proto": "SHA",
    "auth_key": "s3cret-auth-key",
    "priv_proto": "AES",
    "priv_key": "s3cret-priv-key",
}


def test_v3_authpriv_is_recommended_and_v2c_warns() -> None:
    v3 = Target(host="127.0.0.1", **V3)
    assert v3.security_level == "authPriv"
    assert v3.warning() is None
    v2 = Target(host="127.0.0.1", version="2c", community="public")
    assert "authPriv" in (v2.warning() or "")
    no_priv = Target(host="127.0.0.1", user="u", auth_proto="SHA", auth_key="12345678")
    assert no_priv.security_level == "authNoPriv"
    assert "authPriv is recommended" in (no_priv.warning() or "")


def test_secrets_never_in_repr_or_masked_view() -> None:
    t = Target(host="127.0.0.1", **V3)
    c = Target(host="127.0.0.2", version="2c", community="c0mmunity-secret")
    for text in (repr(t), str(t), repr(t.masked()), repr(c), repr(c.masked())):
        assert "s3cret" not in text
        assert "c0mmunity-secret" not in text
    assert t.masked()["auth_key"] == MASK
    assert c.masked()["community"] == MASK


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "2c"}, "needs a community"),
        ({"version": "4", "community": "x"}, "version '4'"),
        ({"port": 0, "version": "2c", "community": "x"}, "port 0"),
        ({"user": "u", "auth_proto": "SHA"}, "auth protocol and an auth key"),
        ({"user": "u", "auth_proto": "SHA", "auth_key": "short"}, "at least 8"),
        ({"user": "u", "priv_proto": "AES", "priv_key": "12345678"}, "needs authentication"),
        ({"user": "u", "auth_proto": "SHA1", "auth_key": "12345678"}, "auth protocol 'SHA1'"),
        ({"version": "3"}, "needs a user"),
        ({"version": "2c", "community": "x", "interval": 0}, "interval"),
        ({"version": "2c", "community": "x", "device_id": "bad id"}, "device id"),
    ],
)
def test_bad_targets_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TargetError, match=message):
        Target(host="127.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_default_device_id_and_host_port_parsing() -> None:
    assert Target(host="127.0.0.9", version="2c", community="x").device_id == "snmp-127.0.0.9"
    assert Target(host="127.0.0.9", port=1161, version="2c", community="x").device_id == (
        "snmp-127.0.0.9-1161"
    )
    assert parse_host_port("127.0.0.1:1161") == ("127.0.0.1", 1161)
    assert parse_host_port("cam.example") == ("cam.example", 161)
    assert parse_host_port("[::1]:1161") == ("::1", 1161)
    with pytest.raises(TargetError, match="not a number"):
        parse_host_port("127.0.0.1:abc")


def test_targets_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "snmp-targets.toml"
    cam = Target(host="127.0.0.5", device_id="cam-1", tags=(("district", "north"),), **V3)
    gw = Target(host="127.0.0.6", port=1161, version="2c", community='we"ird\\c', interval=30)
    add_target(path, cam)
    add_target(path, gw)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_targets(path) == [cam, gw]
    with pytest.raises(TargetError, match="already exists"):
        add_target(path, cam)
    add_target(path, Target(host="127.0.0.7", device_id="cam-1", **V3), replace_existing=True)
    assert [t.host for t in load_targets(path)] == ["127.0.0.6", "127.0.0.7"]
    assert remove_target(path, "cam-1").host == "127.0.0.7"
    assert load_targets(path) == [gw]
    with pytest.raises(TargetError, match="no target with device id 'nope'"):
        remove_target(path, "nope")


def test_targets_file_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[defaults]\nversion = "2c"\n[[target]]\nhost = "127.0.0.1"\n')
    with pytest.raises(TargetError, match=r"t.toml: target #1: .*needs a community"):
        load_targets(path)
    path.write_text('[[target]]\nhost = "127.0.0.1"\ncolour = "red"\n')
    with pytest.raises(TargetError, match=r"target #1: unknown key\(s\) colour"):
        load_targets(path)
    path.write_text("[[target]\n")
    with pytest.raises(TargetError, match="not valid TOML"):
        load_targets(path)
    path.write_text(
        '[defaults]\nversion = "2c"\ncommunity = "c"\n'
        '[[target]]\nhost = "127.0.0.1"\n[[target]]\nhost = "127.0.0.1"\n'
    )
    with pytest.raises(TargetError, match="duplicate device id"):
        load_targets(path)
    assert load_targets(tmp_path / "missing.toml") == []
