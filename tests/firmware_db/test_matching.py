"""The SQL range test on plain versions must agree with versions.in_range on every row."""

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
