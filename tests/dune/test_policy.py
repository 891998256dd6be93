from __future__ import annotations

from pathlib import Path

import pytest

from sbom.policy import DunePolicy, PolicyError, load_policy, policy_from_dict


def test_defaults_have_no_home_country() -> None:
    p = DunePolicy()
    assert p.home is None and p.home_label == "unset"
    assert p.category("DE", False) == "other"
    assert p.category(None, False) == "unknown"
    assert p.category(None, True) == "community"


def test_load_toml(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(
        """
[dune]
home = "fr"
allied = ["DE", "IT"]
restricted = ["XX"]
hhi_high = 1800
grade_bounds = [0.1, 0.2, 0.3, 0.4]

[dune.substitutability]
soc = 0.25

[dune.service_life_years]
camera = 5
""",
        encoding="utf-8",
    )
    p = load_policy(f)
    assert p.home == "FR" and p.allied == frozenset({"DE", "IT"})
    assert p.category("XX", False) == "restricted"
    assert p.substitutability["soc"] == 0.25 and p.substitutability["os"] == 0.5
    assert p.service_life("camera") == 5 and p.service_life("nvr") == 7.0
    assert p.service_life("toaster") == 7.0
    assert p.grade(0.35) == "D" and p.grade(0.41) == "E"
    assert p.source == str(f)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"home": "Germany"}, "home: 'GERMANY' is not an ISO"),
        ({"allied": ["DE"]}, "allied: given without home"),
        ({"home": "DE", "restricted": ["DE"]}, "contains the home jurisdiction DE"),
        ({"home": "DE", "allied": ["FR"], "restricted": ["FR"]}, "both allied and restricted"),
        ({"layer_weights": {"soc": 1.0}}, "layer_weights: missing keys"),
        ({"substitutability": {"soc": 2}}, "substitutability.soc: 2 must be a number in [0, 1]"),
        ({"substitutability": {"gpu": 0.5}}, "unknown keys ['gpu']"),
        ({"grade_bounds": [0.5, 0.1, 0.2, 0.3]}, "grade_bounds"),
        ({"critical_layers": ["gpu"]}, "unknown layer 'gpu'"),
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"eol_approaching_days": 0}, "eol_approaching_days: 0 must be a positive integer"),
        ({"service_life_years": {"camera": -1}}, "service_life_years.camera"),
    ],
)
def test_bad_policy_names_the_key(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy_from_dict(doc, source="t.toml")
    assert needle in str(err.value)
    assert str(err.value).startswith("t.toml: ")


def test_layer_weights_must_sum_to_one() -> None:
    w = dict.fromkeys(DunePolicy().layer_weights, 0.1)
    with pytest.raises(PolicyError, match="sum to 0.7"):
        DunePolicy(layer_weights=w)


def test_bad_toml_file(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("home = \n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(f)
    with pytest.raises(PolicyError, match="missing.toml"):
        load_policy(tmp_path / "missing.toml")


def test_criticality_levels() -> None:
    p = DunePolicy()
    assert p.criticality_weight("Critical") == 4.0
    assert p.criticality_weight(2.5) == 2.5
    assert p.criticality_weight(None) == 1.0
    with pytest.raises(PolicyError, match="criticality 'vital'"):
        p.criticality_weight("vital")
