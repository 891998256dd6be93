"""Root filesystem archives: hostile ones are refused naming the member; good ones scan."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sbom.builders.interface import BuilderError, UnsafeArchiveError
from sbom.builders.rootfs import ExtractLimits, RootfsBuilder, safe_extract
from tests.sbom.conftest import ROOTS


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    data = data or {}
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
                tf.addfile(m, io.BytesIO(payload))
            else:
                tf.addfile(m)
    return path


def _member(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = type_
    m.linkname = linkname
    m.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
    return m


HOSTILE = [
    ("traversal", [_member("etc/../../evil")], "path traversal"),
    ("absolute", [_member("/etc/passwd")], "absolute path"),
    ("symlink-escape", [_member("etc/x", tarfile.SYMTYPE, "../../../../etc/passwd")], "leaves"),
    ("hardlink-escape", [_member("h", tarfile.LNKTYPE, "../outside")], "leaves the root"),
    ("char-device", [_member("dev/null2", tarfile.CHRTYPE)], "device or FIFO"),
    ("block-device", [_member("dev/sda9", tarfile.BLKTYPE)], "device or FIFO"),
    ("fifo", [_member("run/pipe", tarfile.FIFOTYPE)], "device or FIFO"),
]


@pytest.mark.parametrize(("label", "members", "why"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_archive_is_refused_naming_the_member(
    tmp_path: Path, label: str, members: list[tarfile.TarInfo], why: str
) -> None:
    archive = _tar(tmp_path / f"{label}.tar.gz", [_member("etc", tarfile.DIRTYPE), *members])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    msg = str(err.value)
    assert f"{label}.tar.gz: member {members[-1].name!r}" in msg and why in msg
    assert "\n" not in msg
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_write_through_an_escaping_symlink_is_refused(tmp_path: Path) -> None:
    members = [_member("lnk", tarfile.SYMTYPE, ".."), _member("lnk/escaped")]
    archive = _tar(tmp_path / "through.tar", members, {"lnk/escaped": b"x"})
    with pytest.raises(UnsafeArchiveError, match="member 'lnk': symlink"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_too_many_entries(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "many.tar.gz", [_member(f"f{i}") for i in range(50)])
    with pytest.raises(UnsafeArchiveError, match=r"more than 10 entries .*member 'f10'"):
        safe_extract(archive, tmp_path / "out", ExtractLimits(max_entries=10))


def test_total_size_limit(tmp_path: Path) -> None:
    data = {f"f{i}": b"\0" * 4096 for i in range(4)}
    archive = _tar(tmp_path / "big.tar.gz", [_member(n) for n in data], data)
    with pytest.raises(UnsafeArchiveError, match=r"total size exceeds 10000 bytes at member 'f2'"):
        safe_extract(archive, tmp_path / "out", ExtractLimits(max_total_bytes=10_000))


def test_absolute_symlinks_are_rerooted(tmp_path: Path) -> None:
    os_release = b'ID=inside\nVERSION_ID="1.0"\n'
    members = [
        _member("usr/lib/os-release"),
        _member("etc/os-release", tarfile.SYMTYPE, "/usr/lib/os-release"),
    ]
    archive = _tar(tmp_path / "img.tar.gz", members, {"usr/lib/os-release": os_release})
    bom = RootfsBuilder(archive).build()
    os_comp = next(c for c in bom.components if c.kind == "operating-system")
    assert (os_comp.name, os_comp.version) == ("inside", "1.0")


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a tar file at all")
    with pytest.raises(BuilderError, match=r"junk.bin: not a directory or a tar / tar.gz archive"):
        RootfsBuilder(junk).build()


@pytest.mark.parametrize("name", ["debian", "openwrt", "alpine"])
def test_archive_scans_like_the_directory(tmp_path: Path, name: str) -> None:
    archive = tmp_path / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(ROOTS / name, arcname=".")
    from_dir = RootfsBuilder(ROOTS / name).build()
    from_tar = RootfsBuilder(archive).build()
    key = [(c.name, c.version, c.purl) for c in from_dir.components[1:]]
    assert [(c.name, c.version, c.purl) for c in from_tar.components[1:]] == key
    firmware = from_tar.components[0]
    assert firmware.kind == "firmware" and firmware.name == name
    assert firmware.hashes[0][0] == "SHA-256" and len(firmware.hashes[0][1]) == 64


def test_symlink_chain_escape_is_caught_at_extraction(tmp_path: Path) -> None:
    """Each link looks harmless on its own; resolved together they leave the root."""
    members = [
        _member("a", tarfile.DIRTYPE),
        _member("a/b", tarfile.SYMTYPE, ".."),
        _member("a/b/c", tarfile.SYMTYPE, ".."),
    ]
    archive = _tar(tmp_path / "chain.tar", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"chain.tar: member 'a/b/c'"):
        safe_extract(archive, tmp_path / "out")
