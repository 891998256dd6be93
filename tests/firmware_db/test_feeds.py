from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from firmware_db.feeds import FEEDS, FeedError, get_feed
from firmware_db.feeds.jsonstream import JsonStream, JsonStreamError
from firmware_db.store import KnowledgeBase


def _counts(kb: KnowledgeBase) -> dict[str, int]:
    tables: dict[str, int] = kb.stats()["tables"]
    return tables


def test_registry_names_unique() -> None:
    names = [f.name for f in FEEDS]
    assert len(names) == len(set(names)) == 8
    with pytest.raises(FeedError, match="unknown feed"):
        get_feed("nope")


def test_nvd_import_and_range_matching(kb: KnowledgeBase, data_dir: Path) -> None:
    r = kb.import_feed("nvd", str(data_dir / "nvd_small.json"))
    assert r.records == 3
    ids = lambda **kw: [v.id for v in kb.vulnerabilities(**kw)]  # noqa: E731
    assert ids(name="openssl", version="1.1.1s") == ["CVE-2023-0286"]
    assert ids(name="openssl", version="1.1.1t") == []  # fixed version excluded
    assert ids(name="openssl", version="3.0.7") == ["CVE-2023-0286"]
    assert ids(name="openssl", version="3.0.8") == []
    assert ids(name="openssl", version="1.0.2z") == ["CVE-2023-0286"]
    assert ids(name="openssl", version="1.0.2zg") == []
    assert ids(name="openssl", version="1.1.0l") == []  # between ranges
    # package names map to the CPE product; distribution versions compare on upstream
    assert ids(name="libssl1.1", version="1.1.1n-0+deb11u3") == ["CVE-2023-0286"]
    assert ids(name="busybox", version="1.35.0") == ["CVE-2022-48174"]
    assert ids(name="busybox", version="1.36.1") == []
    assert ids(cpe="cpe:2.3:a:openssl:openssl:3.0.1:*:*:*:*:*:*:*") == ["CVE-2023-0286"]
    v = kb.vulnerabilities(name="openssl", version="3.0.1")[0]
    assert (v.severity, v.cvss, v.fixed_version, v.kev) == ("HIGH", 7.4, "3.0.8", False)


def test_vendor_build_ranges_and_exact_cpe(kb: KnowledgeBase, data_dir: Path) -> None:
    kb.import_feed("nvd", str(data_dir / "nvd_small.json"))
    hit = kb.vulnerabilities(name="ds-2cd2026g2-iu/sl_firmware", version="V5.5.52 build 190120")
    assert [v.id for v in hit] == ["CVE-2021-36260"]
    assert hit[0].kev and hit[0].kev_date == "2022-01-10"  # NVD's cisaExploitAdd
    assert (
        kb.vulnerabilities(name="ds-2cd2026g2-iu/sl_firmware", version="V5.5.800 build 210628")
        == []
    )
    assert [v.id for v in kb.vulnerabilities(name="ds-2cd2xx6_firmware", version="V5.5.0")] == [
        "CVE-2021-36260"
    ]
    assert kb.vulnerabilities(name="ds-2cd2xx6_firmware", version="5.5.1") == []


def test_kev_flags_regardless_of_import_order(kb: KnowledgeBase, data_dir: Path) -> None:
    kb.import_feed("kev", str(data_dir / "kev_small.json"))
    kb.import_feed("nvd", str(data_dir / "nvd_small.json"))
    (v,) = kb.vulnerabilities(name="busybox", version="1.33.1")
    assert v.kev and v.kev_date == "2024-01-01"
    (o,) = kb.vulnerabilities(name="openssl", version="3.0.0")
    assert not o.kev


def test_epss_scores(kb: KnowledgeBase, data_dir: Path) -> None:
    kb.import_feed("epss", str(data_dir / "epss_small.csv"))  # before the CVEs: order-free
    kb.import_feed("nvd", str(data_dir / "nvd_small.json"))
    (v,) = kb.vulnerabilities(name="openssl", version="3.0.1")
    assert v.epss == 0.00512
    (b,) = kb.vulnerabilities(name="busybox", version="1.30.0")
    assert b.epss is None


def test_reimport_is_idempotent(kb: KnowledgeBase, data_dir: Path) -> None:
    for feed, name in (
        ("nvd", "nvd_small.json"),
        ("kev", "kev_small.json"),
        ("osv", "osv_debian.json"),
    ):
        kb.import_feed(feed, str(data_dir / name))
    first = _counts(kb)
    for feed, name in (
        ("nvd", "nvd_small.json"),
        ("kev", "kev_small.json"),
        ("osv", "osv_debian.json"),
    ):
        kb.import_feed(feed, str(data_dir / name))
    assert _counts(kb) == first
    assert len(kb.stats()["imports"]) == 6


@pytest.mark.parametrize(
    ("feed", "name", "message"),
    [
        ("nvd", "nvd_malformed.json", r"record 1 \(CVE-2024-0002\): not a CPE 2.3 string"),
        ("nvd", "nvd_truncated.json", r"record 1: malformed JSON"),
        ("kev", "kev_bad_date.json", r"record 1 \(CVE-2021-45046\): Invalid isoformat"),
        ("endoflife", "endoflife_bad.json", r"record 1 \(9.8\): eol is neither a date"),
        ("assets", "assets_bad.csv", r"record 1 \(sim-cam-102\): day is out of range"),
        ("epss", "epss_bad.csv", r"record 1 \(CVE-2021-36260\): epss and percentile"),
    ],
)
def test_malformed_feed_rejected_nothing_kept(
    kb: KnowledgeBase, data_dir: Path, feed: str, name: str, message: str
) -> None:
    kb.import_feed("nvd", str(data_dir / "nvd_small.json"))
    before = _counts(kb)
    with pytest.raises(FeedError, match=message) as info:
        kb.import_feed(feed, str(data_dir / name), product="fixture")
    assert name in str(info.value)
    assert _counts(kb) == before  # the good records before the bad one were rolled back
    assert [i["feed"] for i in kb.stats()["imports"]] == ["nvd"]


def test_missing_file_is_one_clear_error(kb: KnowledgeBase, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="no such file"):
        kb.import_feed("nvd", str(tmp_path / "absent.json"))


def test_gzip_feed(kb: KnowledgeBase, data_dir: Path, tmp_path: Path) -> None:
    gz = tmp_path / "nvdcve-2.0-fixture.json.gz"
    gz.write_bytes(gzip.compress((data_dir / "nvd_small.json").read_bytes()))
    assert kb.import_feed("nvd", str(gz)).records == 3


def test_osv_ranges(kb: KnowledgeBase, data_dir: Path) -> None:
    assert kb.import_feed("osv", str(data_dir / "osv_debian.json")).records == 2
    hit = kb.vulnerabilities(purl="pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u3")
    assert [v.id for v in hit] == ["DSA-5343-1"] and hit[0].aliases == ("CVE-2023-0286",)
    assert kb.vulnerabilities(purl="pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u4") == []
    ids = lambda v: [x.id for x in kb.vulnerabilities(purl=f"pkg:pypi/examplepkg@{v}")]  # noqa: E731
    assert ids("1.1") == ["PYSEC-0000-FIXTURE"]
    assert ids("1.2.0b2") == ["PYSEC-0000-FIXTURE"]
    assert ids("1.2.0rc1") == []
    assert ids("2.1") == ["PYSEC-0000-FIXTURE"]
    assert ids("2.1.1") == []
    assert ids("0.9.1") == ["PYSEC-0000-FIXTURE"]
    assert ids("0.9") == []
    assert kb.vulnerabilities(purl="pkg:pypi/examplepkg@1.1")[0].severity == "HIGH"


def test_osv_single_record_and_zip(kb: KnowledgeBase, data_dir: Path, tmp_path: Path) -> None:
    import zipfile

    records = json.loads((data_dir / "osv_debian.json").read_text())
    single = tmp_path / "DSA-5343-1.json"
    single.write_text(json.dumps(records[0]))
    assert kb.import_feed("osv", str(single)).records == 1
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    assert kb.import_feed("osv", str(z)).records == 2


def test_endoflife_import_overrides_reference(kb: KnowledgeBase, data_dir: Path) -> None:
    from datetime import date

    assert kb.lifecycle("openssl", "3.5.1").status == "unknown"  # not in the shipped snapshot
    assert kb.import_feed("endoflife", str(data_dir / "openssl.json")).records == 3
    r = kb.lifecycle("openssl", "3.5.1", today=date(2026, 1, 1))
    assert (r.status, r.eol, r.latest, r.versions_behind) == ("supported", "2030-04-08", "3.5.4", 3)
    assert r.source is not None and r.source.startswith("endoflife:")
    assert kb.lifecycle("openssl", "3.0.2").latest == "3.0.18"
    kb.load_reference()  # the shipped snapshot must not overwrite the newer import
    assert kb.lifecycle("openssl", "3.0.2").latest == "3.0.18"


def test_catalogue_firmware_assets(kb: KnowledgeBase, data_dir: Path) -> None:
    from datetime import date

    # asked before the import: the cached "unknown" answers must not outlive the write
    assert kb.device_model("Example Vision", "ev-100") is None
    assert kb.firmware_releases("Example Vision", "EV-100") == []
    assert kb.import_feed("catalogue", str(data_dir / "catalogue.csv")).records == 2
    m = kb.device_model("Example Vision", "ev-100")
    assert m is not None and m.end_of_life == "2026-01-01"
    assert m.status(date(2026, 11, 23).isoformat()) == "eol"
    m2 = kb.device_model("EXAMPLE VISION CO., LTD.", "EV-200")
    assert m2 is not None and m2.status("2026-11-23") == "unknown"
    assert kb.import_feed("firmware", str(data_dir / "firmware.csv")).records == 3
    versions = [r.version for r in kb.firmware_releases("Example Vision", "EV-100")]
    assert versions == ["V5.5.0 build 180104", "V5.5.52 build 190120", "V5.5.800 build 210628"]
    latest = kb.latest_firmware("Example Vision Co. Ltd.", "EV-100")
    assert (
        latest is not None
        and latest.version == "V5.5.800 build 210628"
        and latest.openssl == "1.1.1k"
    )
    assert kb.asset("sim-cam-001") is None  # cached absence must not outlive the import
    assert kb.import_feed("assets", str(data_dir / "assets.csv")).records == 2
    a = kb.asset("sim-cam-001")
    assert a is not None and a.criticality == 3.0 and a.install_date == "2019-04-02"
    assert dict(a.tags) == {"district": "north", "site": "depot-7", "owner": "transport"}
    assert [x.device_id for x in kb.assets()] == ["sim-cam-001", "sim-cam-002"]


def test_catalogue_json(kb: KnowledgeBase, tmp_path: Path) -> None:
    doc = {"models": [{"vendor": "Axis", "model": "M3045-V", "source": "fixture"}]}
    p = tmp_path / "catalogue.json"
    p.write_text(json.dumps(doc))
    assert kb.import_feed("catalogue", str(p)).records == 1
    m = kb.device_model("Axis Communications AB", "M3045-V")
    assert m is not None and m.status("2026-11-23") == "unknown"


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_json_stream_matches_json_load(data_dir: Path, chunk: int) -> None:
    text = (data_dir / "nvd_small.json").read_text()
    js = JsonStream(io.StringIO(text), chunk=chunk)
    items = [item for _, item in js.items("vulnerabilities")]
    doc = json.loads(text)
    assert items == doc["vulnerabilities"]
    assert js.header["format"] == "NVD_CVE" and js.header["totalResults"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"vulnerabilities": [1, 2', "end of file"),
        ('{"vulnerabilities": [1 2]}', "expected ','"),
        ('{"other": []}', "no 'vulnerabilities' array"),
        ('{"vulnerabilities": []} x', "trailing data"),
        ("42", "expected a JSON object"),
    ],
)
def test_json_stream_errors(text: str, message: str) -> None:
    with pytest.raises(JsonStreamError, match=message):
        list(JsonStream(io.StringIO(text), chunk=4).items("vulnerabilities"))


def test_numbers_split_across_chunks() -> None:
    text = '{"vulnerabilities": [12345, 67890]}'
    for chunk in range(1, 12):
        got = [v for _, v in JsonStream(io.StringIO(text), chunk=chunk).items("vulnerabilities")]
        assert got == [12345, 67890]


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_csv_lines_streamed_across_chunks(chunk: int, data_dir: Path) -> None:
    text = (data_dir / "assets.csv").read_text()
    js = JsonStream(io.StringIO(text), chunk=chunk)
    assert js.peek() == "d"
    assert "".join(js.lines()) == text
