"""The byte-key range test on plain versions must agree with versions.in_range on every row."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_db.store import KnowledgeBase, connect, put_vulnerability
from firmware_db.versions import in_range

_v = st.builds(
    lambda a, b, c, s: f"{a}.{b}.{c}{s}",
    st.integers(0, 3),
    st.integers(0, 12),
    st.integers(0, 12),
    st.sampled_from(["", "", "a", "w", "zg"]),
)
_opt = st.one_of(st.none(), _v)


@settings(max_examples=80, deadline=None)
@given(
    ranges=st.lists(st.tuples(_opt, _opt, _opt, _opt, _opt), min_size=1, max_size=6),
    queries=st.lists(st.one_of(_v, st.sampled_from(["2.0.0rc1", "1.2.3-4", "v1.2.3"])), max_size=8),
)
def test_sql_ranges_match_python(
    ranges: list[tuple[str | None, ...]],
    queries: list[str],
) -> None:
    kb = KnowledgeBase(connect(":memory:"), ":memory:")
    conn = kb.connection
    conn.execute("BEGIN")
    expected_rows = []
    for i, (exact, s_in, s_ex, e_in, e_ex) in enumerate(ranges):
        row = {
            "product": "widget",
            "exact": exact,
            "start_incl": s_in,
            "start_excl": s_ex,
            "end_incl": e_in,
            "end_excl": e_ex,
        }
        expected_rows.append((f"CVE-2099-{i:04d}", row))
        put_vulnerability(
            conn,
            vuln_id=f"CVE-2099-{i:04d}",
            aliases=(),
            severity=None,
            cvss=None,
            summary="synthetic",
            published=None,
            modified=None,
            source="test",
            affected=[row],
        )
    conn.execute("COMMIT")
    for q in queries:
        from firmware_db.versions import upstream

        up = upstream(q)
        want = {
            vid
            for vid, r in expected_rows
            if in_range(
                up,
                exact=r["exact"],
                start_incl=r["start_incl"],
                start_excl=r["start_excl"],
                end_incl=r["end_incl"],
                end_excl=r["end_excl"],
            )
        }
        got = {v.id for v in kb.vulnerabilities(name="widget", version=q)}
        assert got == want, q
    kb.close()


def test_bounded_caches_evict_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    import firmware_db.store as store

    kb = KnowledgeBase(connect(":memory:"), ":memory:")
    conn = kb.connection
    conn.execute("BEGIN")
    for i in range(40):
        put_vulnerability(
            conn,
            vuln_id=f"CVE-2099-{i:04d}",
            aliases=(),
            severity=None,
            cvss=None,
            summary="synthetic",
            published=None,
            modified=None,
            source="test",
            affected=[{"product": f"p{i % 4}", "end_excl": "2.0"}],
        )
    conn.execute("COMMIT")
    monkeypatch.setattr(store, "_DETAILS_MAX", 5)
    for _ in range(3):
        for p in range(4):
            assert len(kb.vulnerabilities(name=f"p{p}", version=f"1.{p}")) == 10
    assert len(kb._details) <= 10 and len(kb._objs) <= 10


def _put(conn: object, vid: str, affected: list[dict[str, str | None]], cvss: float) -> None:
    put_vulnerability(
        conn,  # type: ignore[arg-type]
        vuln_id=vid,
        aliases=(),
        severity=None,
        cvss=cvss,
        summary="synthetic",
        published=None,
        modified=None,
        source="test",
        affected=affected,
    )


def _keyed(r: dict[str, str | None]) -> bool:
    return not (r["start_incl"] and r["start_excl"]) and not (r["end_incl"] and r["end_excl"])


_row = st.fixed_dictionaries(
    {
        "product": st.just("widget"),
        "exact": _opt,
        "start_incl": _opt,
        "start_excl": _opt,
        "end_incl": _opt,
        "end_excl": _opt,
        "fixed": _opt,
    }
)


@settings(max_examples=60, deadline=None)
@given(
    vulns=st.lists(
        st.tuples(st.lists(_row, min_size=1, max_size=3), st.sampled_from([0.0, 5.0, 9.8])),
        min_size=1,
        max_size=8,
    ),
    queries=st.lists(_v, min_size=1, max_size=6),
)
def test_in_memory_index_agrees_with_in_range_row_by_row(
    vulns: list[tuple[list[dict[str, str | None]], float]], queries: list[str]
) -> None:
    """Several rows per vulnerability: the first matching row gives the fixed version, and
    results come in severity order, as the SQL scan gave them."""
    kb = KnowledgeBase(connect(":memory:"), ":memory:")
    conn = kb.connection
    conn.execute("BEGIN")
    for i, (rows, cvss) in enumerate(vulns):
        _put(conn, f"CVE-2099-{i:04d}", rows, cvss)
    conn.execute("COMMIT")
    for q in queries:
        want = []
        for i, (rows, cvss) in enumerate(vulns):
            # Rows whose bounds all have plain keys are tested first (as the SQL scan did),
            # then the rest; within each, the lowest row number wins.
            ordered = sorted(rows, key=lambda r: not _keyed(r))
            hit = next(
                (
                    r
                    for r in ordered
                    if in_range(
                        q,
                        exact=r["exact"],
                        start_incl=r["start_incl"],
                        start_excl=r["start_excl"],
                        end_incl=r["end_incl"],
                        end_excl=r["end_excl"],
                    )
                ),
                None,
            )
            if hit is not None:
                want.append((-cvss, f"CVE-2099-{i:04d}", hit["fixed"] or hit["end_excl"]))
        got = [
            (-(v.cvss or 0.0), v.id, v.fixed_version)
            for v in kb.vulnerabilities(name="widget", version=q)
        ]
        assert got == sorted(want), q
    kb.close()


def test_vendor_filter_applies_to_cpe_product_rows_only(kb: KnowledgeBase) -> None:
    """A package name mapped to a CPE product: rows under the CPE product must carry the
    catalogue's vendor; rows under the package name itself are taken as they are."""
    info = kb.component_info("libssl3")
    assert info is not None and info.cpe_product and info.cpe_vendor
    conn = kb.connection
    conn.execute("BEGIN")
    _put(conn, "CVE-2099-0001", [{"product": info.cpe_product, "vendor": info.cpe_vendor}], 5.0)
    _put(conn, "CVE-2099-0002", [{"product": info.cpe_product, "vendor": "someoneelse"}], 5.0)
    _put(conn, "CVE-2099-0003", [{"product": "libssl3", "vendor": "someoneelse"}], 5.0)
    conn.execute("COMMIT")
    kb.invalidate()
    ids = {v.id for v in kb.vulnerabilities(name="libssl3", version="3.0.2")}
    assert {"CVE-2099-0001", "CVE-2099-0003"} <= ids
    assert "CVE-2099-0002" not in ids


def test_product_index_is_bounded_and_dropped_on_write(monkeypatch: pytest.MonkeyPatch) -> None:
    import firmware_db.store as store

    kb = KnowledgeBase(connect(":memory:"), ":memory:")
    conn = kb.connection
    conn.execute("BEGIN")
    for i in range(40):
        _put(conn, f"CVE-2099-{i:04d}", [{"product": f"p{i % 8}", "end_excl": "2.0"}], 5.0)
    conn.execute("COMMIT")
    monkeypatch.setattr(store, "_RANGE_ROWS_MAX", 14)  # two products of 5 rows (+1 each)
    for _ in range(2):
        for p in range(8):
            assert len(kb.vulnerabilities(name=f"p{p}", version="1.0")) == 5
    assert len(kb._ranges) == 2 and kb._ranges_rows <= 14
    assert list(kb._ranges) == ["p6", "p7"]  # least recently used went first
    conn.execute("BEGIN")
    _put(conn, "CVE-2099-9999", [{"product": "p7", "end_excl": "2.0"}], 9.0)
    conn.execute("COMMIT")
    kb.invalidate()
    assert not kb._ranges
    assert [v.id for v in kb.vulnerabilities(name="p7", version="1.0")][0] == "CVE-2099-9999"
    kb.close()
