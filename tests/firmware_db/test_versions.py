from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_db.versions import VersionError, compare, detect_scheme, in_range, upstream

ORDERED = [
    # (older, newer, scheme)
    ("2.36-9+deb12u3", "2.36-9+deb12u4", "auto"),
    ("2.36-9", "2.36-9+deb12u1", "deb"),
    ("2.40-1", "1:2.36-9+deb12u4", "auto"),  # an epoch beats any upstream
    ("1.0~rc1-1", "1.0-1", "auto"),  # tilde sorts before the release
    ("3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "auto"),
    ("1.1.1", "1.1.1a", "openssl"),
    ("1.1.1t", "1.1.1w", "auto"),
    ("1.0.2z", "1.0.2zg", "auto"),
    ("1.0.2u", "1.1.0", "auto"),
    ("V5.5.0 build 180104", "V5.5.0 build 190101", "auto"),
    ("V5.4.5 build 200101", "V5.5.0 build 180104", "auto"),
    ("V5.5.52 build 190120", "V5.5.800 build 210628", "auto"),
    ("3.1.4-r3", "3.1.4-r10", "auto"),
    ("3.1.4-r10", "3.1.5-r0", "auto"),
    ("1.0.0-rc.1", "1.0.0", "auto"),
    ("1.0.0-alpha", "1.0.0-alpha.1", "semver"),
    ("1.0.0-alpha.1", "1.0.0-beta", "semver"),
    ("1.0.0-beta.2", "1.0.0-beta.11", "semver"),
    ("2.0.0rc1", "2.0.0", "auto"),
    ("1.0", "1.0.post1", "pep440"),
    ("1.9", "1.10", "auto"),
    ("5.10.0", "5.10.240", "auto"),
    ("6.1", "6.12", "auto"),
]


@pytest.mark.parametrize(("older", "newer", "scheme"), ORDERED)
def test_ordering(older: str, newer: str, scheme: str) -> None:
    assert compare(older, newer, scheme) == -1
    assert compare(newer, older, scheme) == 1


@pytest.mark.parametrize(
    ("a", "b"), [("v2.0", "2.0"), ("1.0", "1.00"), ("1:1.0-1", "1:1.0-1"), ("1.0+b1", "1.0+b1")]
)
def test_equal(a: str, b: str) -> None:
    assert compare(a, b) == 0


def test_detect_scheme() -> None:
    assert detect_scheme("1:2.36-9", "2.36") == "deb"
    assert detect_scheme("3.1.4-r3", "3.1.4-r4") == "apk"
    assert detect_scheme("V5.5.0 build 180104", "V5.5.1 build 1") == "vendor"
    assert detect_scheme("1.0.0-rc.1", "1.0.0") == "semver"
    assert detect_scheme("2.0.0rc1", "2.0.0") == "pep440"
    assert detect_scheme("1.1.1w", "1.1.1t") == "generic"


def test_errors() -> None:
    with pytest.raises(VersionError, match="unknown version scheme"):
        compare("1", "2", "nope")
    with pytest.raises(VersionError, match="empty"):
        compare("", "2")
    with pytest.raises(VersionError, match="epoch"):
        compare("x:1.0", "1.0", "deb")
    with pytest.raises(VersionError, match="PEP 440"):
        compare("not a version", "1.0", "pep440")


def test_upstream() -> None:
    assert upstream("1:2.36-9+deb12u4") == "2.36"
    assert upstream("3.0.11-1~deb12u2") == "3.0.11"
    assert upstream("3.1.4-r3") == "3.1.4"
    assert upstream("1.1.1w") == "1.1.1w"
    assert upstream("v6.1.55") == "6.1.55"


def test_in_range() -> None:
    assert in_range("1.1.1s", start_incl="1.1.1", end_excl="1.1.1t")
    assert not in_range("1.1.1t", start_incl="1.1.1", end_excl="1.1.1t")
    assert in_range("1.1.1t", end_incl="1.1.1t")
    assert not in_range("1.1.0l", start_incl="1.1.1", end_excl="1.1.1t")
    assert not in_range("1.0", start_excl="1.0")
    assert in_range("anything")  # no bounds: every version
    assert in_range("v5.5.0", exact="5.5.0")
    assert not in_range("1.0", exact="1.0.1")


_part = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["a", "b", "w", "zg", "rc1"]))
_version = st.lists(_part, min_size=1, max_size=4).map(".".join)


@given(_version, _version)
def test_antisymmetric(a: str, b: str) -> None:
    assert compare(a, b, "generic") == -compare(b, a, "generic")


@given(_version, _version, _version)
def test_transitive(a: str, b: str, c: str) -> None:
    if compare(a, b, "generic") <= 0 and compare(b, c, "generic") <= 0:
        assert compare(a, c, "generic") <= 0


_plain = st.lists(
    st.one_of(st.integers(0, 400).map(str), st.sampled_from(["a", "b", "w", "z", "zg"])),
    min_size=1,
    max_size=4,
).map(lambda parts: "1." + ".".join(parts))


@given(_plain, _plain)
def test_plain_key_orders_like_compare(a: str, b: str) -> None:
    from firmware_db.versions import plain_key

    ka, kb = plain_key(a), plain_key(b)
    assert ka is not None and kb is not None
    assert (ka > kb) - (ka < kb) == compare(a, b)


def test_plain_key_refuses_other_shapes() -> None:
    from firmware_db.versions import plain_key

    for v in ("1:2.0-1", "2.0.0rc1", "1.0-r3", "V5.5.0 build 180104", "1.0~rc1", "", "abc"):
        assert plain_key(v) is None, v
    assert plain_key("v5.5.0") == plain_key("5.5.0")
