"""`dune` and `report` have --help with an example and are documented in docs/."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("cmd", "doc"), [("dune", "dune.md"), ("report", "reports.md")])
def test_help_has_an_example_and_docs_entry(
    cmd: str, doc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"example: dunewatch {cmd} " in out
    text = (DOCS / doc).read_text(encoding="utf-8")
    assert f"dunewatch {cmd} [--db PATH]" in text
    for flag in ("--by", "--policy", "--kb", "--today"):
        assert flag in out and flag in text


def test_policy_example_in_the_docs_loads(tmp_path: Path) -> None:
    from sbom.policy import load_policy

    text = (DOCS / "dune.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "city.toml"
    f.write_text(example, encoding="utf-8")
    p = load_policy(f)
    assert p.home == "DE" and p.allied == frozenset({"FR", "NL"})
    assert p.restricted == frozenset({"XX"}) and p.service_life("server") == 5
