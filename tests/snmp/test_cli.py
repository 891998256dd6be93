"""`dunewatch snmp ...` end to end: targets file, poll-once (with and without --db), discover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import build_parser, main
from collector.snmp.simulator import V3_AUTH_KEY, V3_PRIV_KEY, Snmpsim


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_remove_never_print_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tf = str(tmp_path / "targets.toml")
    code, out, err = run(
        capsys,
        "snmp",
        "add",
        "127.0.0.5:1161",
        "--device-id",
        "cam-1",
        "--user",
        "monitor",
        "--auth-proto",
        "sha",
        "--auth-key",
        "topsecret-auth",
        "--priv-proto",
        "aes",
        "--priv-key",
        "topsecret-priv",
        "--tag",
        "district=north",
        "--targets",
        tf,
    )
    assert code == 0 and "added cam-1" in out and err == ""  # v3 authPriv: no warning
    code, out, err = run(
        capsys, "snmp", "add", "127.0.0.6", "--community", "topsecret-comm", "--targets", tf
    )
    assert code == 0 and "warning" in err and "authPriv" in err
    code, out, err = run(capsys, "snmp", "list", "--targets", tf)
    assert "cam-1" in out and "snmp-127.0.0.6" in out and "authPriv" in out
    code, js, _ = run(capsys, "snmp", "list", "--targets", tf, "--json")
    listed = json.loads(js)
    assert listed[0]["tags"] == {"district": "north"} and listed[0]["auth_key"] == "****"
    for text in (out, js, err):
        assert "topsecret" not in text
    code, out, err = run(capsys, "snmp", "add", "127.0.0.6", "--community", "c", "--targets", tf)
    assert code == 2 and "already exists" in err and "--replace" in err
    code, out, _ = run(capsys, "snmp", "remove", "cam-1", "--targets", tf)
    assert code == 0 and "removed cam-1" in out
    code, out, err = run(capsys, "snmp", "remove", "cam-1", "--targets", tf)
    assert code == 2 and "no target with device id 'cam-1'" in err


def test_add_rejects_bad_input_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tf = str(tmp_path / "t.toml")
    code, _, err = run(capsys, "snmp", "add", "127.0.0.1", "--targets", tf)
    assert code == 2 and "give --community" in err
    code, _, err = run(
        capsys, "snmp", "add", "127.0.0.1", "--user", "u", "--auth-key", "short", "--targets", tf
    )
    assert code == 2 and "at least 8 characters" in err
    code, _, err = run(
        capsys, "snmp", "add", "127.0.0.1", "--community", "c", "--tag", "x", "--targets", tf
    )
    assert code == 2 and "expected NAME=VALUE" in err
    assert not Path(tf).exists()


def test_targets_default_next_to_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data" / "dunewatch.db"
    code, _, _ = run(capsys, "snmp", "add", "127.0.0.9", "--community", "c", "--db", str(db))
    assert code == 0
    assert (tmp_path / "data" / "snmp-targets.toml").exists()


@pytest.mark.integration
def test_poll_once_prints_identity_and_stores_with_db(
    snmpsim: Snmpsim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    addr = f"127.0.0.1:{snmpsim.port}"
    code, out, err = run(capsys, "snmp", "poll-once", addr, "--community", "camera")
    assert code == 0, err
    assert "Hikvision" in out and "DS-2CD2143G2-I" in out and "image_sensor: Sony IMX335" in out
    assert "warning" in err  # v2c
    db = tmp_path / "c.db"
    code, out, err = run(
        capsys,
        "snmp",
        "poll-once",
        addr,
        "--user",
        "monitor",
        "--auth-key",
        V3_AUTH_KEY,
        "--priv-key",
        V3_PRIV_KEY,
        "--context",
        "gateway",
        "--device-id",
        "gw-7",
        "--tag",
        "site=lab",
        "--json",
        "--db",
        str(db),
    )
    assert code == 0, err
    assert err == ""
    report = json.loads(out)
    assert report["outcome"] == "ok" and report["identity"]["model"] == "RUTX11"
    assert report["inventory"]["source"] == "snmp"
    from collector.store import open_store

    store = open_store(db)
    try:
        detail = store.device("gw-7")
        assert detail is not None
        assert detail.summary.source == "snmp"
        assert detail.summary.tags == {"site": "lab"}
        assert (detail.summary.vendor, detail.summary.model) == ("Teltonika", "RUTX11")
        assert detail.last_poll is not None and detail.last_poll["outcome"] == "ok"
        assert detail.inventory is not None and detail.inventory["source"] == "snmp"
        assert detail.latest_health is not None and "cpu" in detail.latest_health
    finally:
        store.close()
    code, out, err = run(
        capsys,
        "snmp",
        "poll-once",
        addr,
        "--user",
        "monitor",
        "--auth-key",
        "wrong-key-1",
        "--priv-key",
        V3_PRIV_KEY,
        "--context",
        "gateway",
    )
    assert code == 1 and "auth_failure" in out


@pytest.mark.integration
def test_discover_loopback_only(
    snmpsim: Snmpsim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "snmp", "discover", "192.168.1.0/30", "--community", "camera")
    assert code == 2 and "refusing to probe 192.168.1.0/30" in err and "--allow-non-loopback" in err
    tf = tmp_path / "t.toml"
    code, out, err = run(
        capsys,
        "snmp",
        "discover",
        "127.0.0.0/29",
        "--community",
        "nvr",
        "--port",
        str(snmpsim.port),
        "--rate",
        "100",
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--json",
        "--add",
        "--targets",
        str(tf),
    )
    assert code == 0, err
    found = json.loads(out)
    # snmpsim listens on 127.0.0.1 only; the other 5 addresses stay silent.
    assert [f["address"] for f in found] == [f"127.0.0.1:{snmpsim.port}"]
    assert found[0]["vendor"] == "Dahua" and found[0]["target"]["community"] == "****"
    assert 'community = "nvr"' in tf.read_text()


def test_every_snmp_command_has_an_example_and_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions)  # type: ignore[union-attr]
    snmp = sub.choices["snmp"]  # type: ignore[index]
    cmds = next(a for a in snmp._subparsers._group_actions).choices  # type: ignore[union-attr]
    assert set(cmds) == {"add", "list", "remove", "poll-once", "discover"}
    doc = (Path(__file__).parents[2] / "docs" / "snmp.md").read_text()
    for name, p in cmds.items():
        assert "example: dunewatch snmp " + name in (p.epilog or ""), name
        assert f"dunewatch snmp {name}" in doc, name
