"""Version ordering for the versions real devices report.

One ordering does not fit all: Debian puts an epoch and a revision around the upstream version
(`1:2.36-9+deb12u4`), OpenSSL 1.x appends letters (`1.1.1w` > `1.1.1t`), Alpine appends `-rN`,
vendors write `V5.5.0 build 180104`, and PEP 440 puts `rc1` *before* the release. The dpkg
algorithm (implemented here from the Debian Policy Manual, section 5.6.12, because pulling
python-debian in for one function is not worth a dependency) orders the first four correctly;
`packaging.version` (already a dependency, the PyPA reference implementation) handles PEP 440.
`compare(..., scheme="auto")` picks a scheme from the shape of the two strings.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from firmware_db.errors import FirmwareDbError

SCHEMES: Final = ("auto", "deb", "apk", "openssl", "vendor", "pep440", "semver", "generic")


class VersionError(FirmwareDbError):
    """A version string that the chosen scheme cannot parse."""


_VENDOR_BUILD = re.compile(
    r"^\s*[vV]?(?P<num>\d+(?:\.\d+)*)(?P<rest>[^\s]*)\s*(?:build|Build|BUILD|b)\s*(?P<build>\d+)\s*$"
)
_LEADING_V = re.compile(r"^[vV](?=\d)")
# PEP 440 pre/post/dev markers carry a number (`rc1`, `.post1`, `b2`); OpenSSL letters never do.
_PEP440_PRE = re.compile(r"(?i)\d[._-]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|post)\d+")
_PLAIN = re.compile(r"^[vV]?\d[0-9A-Za-z.]*$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+-[0-9A-Za-z.-]+(?:\+[0-9A-Za-z.-]+)?$")
_APK = re.compile(r"^[0-9][0-9a-z._]*-r\d+$")


def _order(c: str) -> int:
    """dpkg's character weight: '~' sorts before everything, even the end of the string."""
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def split_deb(version: str) -> tuple[int, str, str]:
    """Split a Debian version into (epoch, upstream, revision)."""
    v = version.strip()
    epoch = 0
    if ":" in v:
        head, v = v.split(":", 1)
        if not head.isdigit():
            raise VersionError(f"bad Debian epoch in {version!r}")
        epoch = int(head)
    upstream, revision = (v.rsplit("-", 1) + [""])[:2] if "-" in v else (v, "")
    if not upstream:
        raise VersionError(f"empty upstream version in {version!r}")
    return epoch, upstream, revision


def _cmp_deb(a: str, b: str) -> int:
    ea, ua, ra = split_deb(a)
    eb, ub, rb = split_deb(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _cmp_generic(a: str, b: str) -> int:
    return _verrevcmp(_LEADING_V.sub("", a.strip()), _LEADING_V.sub("", b.strip()))


def _vendor_key(v: str) -> tuple[str, int] | None:
    m = _VENDOR_BUILD.match(v)
    if not m:
        return None
    return m.group("num") + m.group("rest"), int(m.group("build"))


def _cmp_vendor(a: str, b: str) -> int:
    ka, kb = _vendor_key(a), _vendor_key(b)
    if ka is None or kb is None:
        return _cmp_generic(a, b)
    c = _verrevcmp(ka[0], kb[0])
    if c:
        return c
    return (ka[1] > kb[1]) - (ka[1] < kb[1])


def _cmp_pep440(a: str, b: str) -> int:
    from packaging.version import InvalidVersion, Version

    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion as exc:
        raise VersionError(f"not a PEP 440 version: {exc}") from exc
    return (va > vb) - (va < vb)


def _cmp_semver(a: str, b: str) -> int:
    """SemVer 2.0: a pre-release sorts before its release; build metadata is ignored."""

    def key(v: str) -> tuple[str, str | None]:
        core = _LEADING_V.sub("", v.strip()).split("+", 1)[0]
        if "-" in core:
            main, pre = core.split("-", 1)
            return main, pre
        return core, None

    (ma, pa), (mb, pb) = key(a), key(b)
    c = _verrevcmp(ma, mb)
    if c:
        return c
    if pa == pb:
        return 0
    if pa is None:
        return 1
    if pb is None:
        return -1
    for xa, xb in zip(pa.split("."), pb.split("."), strict=False):
        if xa == xb:
            continue
        if xa.isdigit() and xb.isdigit():
            return -1 if int(xa) < int(xb) else 1
        if xa.isdigit() != xb.isdigit():
            return -1 if xa.isdigit() else 1
        return -1 if xa < xb else 1
    la, lb = len(pa.split(".")), len(pb.split("."))
    return (la > lb) - (la < lb)


@lru_cache(maxsize=65536)
def plain_key(version: str) -> bytes | None:
    """A byte string that sorts like `compare` does for "plain" versions, else None.

    Plain means digits, letters and dots only, with no PEP 440 marker (`1.1.1w`, `5.10.240`,
    `v5.5.0`): for those `compare(..., "auto")` is the dpkg order, and range tests become
    byte comparisons. Each dpkg part becomes 2-byte character weights ending in 0x0002 ('~' is
    0x0001) and a length-prefixed big-endian number; a final empty part stands for the end of
    the string, which is how dpkg pads the shorter version.
    """
    v = version.strip()
    if not _PLAIN.match(v) or _PEP440_PRE.search(v):
        return None
    s = _LEADING_V.sub("", v)
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        j = i
        while j < n and not s[j].isdigit():
            out += (_order(s[j]) + 2).to_bytes(2, "big")
            j += 1
        out += b"\x00\x02"
        i = j
        while j < n and s[j].isdigit():
            j += 1
        num = int(s[i:j]) if j > i else 0
        nb = num.to_bytes((num.bit_length() + 7) // 8, "big")
        out.append(len(nb))
        out += nb
        i = j
    out += b"\x00\x02\x00"
    return bytes(out)


def detect_scheme(a: str, b: str) -> str:
    """Guess the scheme from both strings (both must fit it)."""
    pair = (a.strip(), b.strip())
    if any(_VENDOR_BUILD.match(v) for v in pair):
        return "vendor"
    if any(":" in v or "+deb" in v or "ubuntu" in v or "~" in v for v in pair):
        return "deb"
    if any(_APK.match(v) for v in pair):
        return "apk"
    if any(_SEMVER.match(_LEADING_V.sub("", v)) for v in pair):
        return "semver"
    if any(_PEP440_PRE.search(v) for v in pair) and all(_is_pep440(v) for v in pair):
        return "pep440"
    return "generic"


def _is_pep440(v: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(v)
    except InvalidVersion:
        return False
    return True


def _cmp_apk(a: str, b: str) -> int:
    # Alpine: <version>-r<N>; the release number compares numerically after the version.
    def split(v: str) -> tuple[str, int]:
        if "-r" in v:
            head, _, rel = v.rpartition("-r")
            if rel.isdigit():
                return head, int(rel)
        return v, 0

    (va, ra), (vb, rb) = split(a.strip()), split(b.strip())
    return _verrevcmp(va, vb) or (ra > rb) - (ra < rb)


_COMPARERS = {
    "deb": _cmp_deb,
    "apk": _cmp_apk,
    "openssl": _cmp_generic,  # dpkg's letter weights already put 1.1.1 < 1.1.1a < 1.1.1w
    "vendor": _cmp_vendor,
    "pep440": _cmp_pep440,
    "semver": _cmp_semver,
    "generic": _cmp_generic,
}


@lru_cache(maxsize=65536)
def compare(a: str, b: str, scheme: str = "auto") -> int:
    """Return -1, 0 or 1 as version `a` is older than, equal to or newer than `b`."""
    if scheme not in SCHEMES:
        raise VersionError(f"unknown version scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if not a.strip() or not b.strip():
        raise VersionError("empty version string")
    if scheme == "auto":
        scheme = detect_scheme(a, b)
    return _COMPARERS[scheme](a, b)


@lru_cache(maxsize=65536)
def upstream(version: str) -> str:
    """The upstream part of a packaged version: drop a Debian epoch/revision or Alpine -rN."""
    v = _LEADING_V.sub("", version.strip())
    if ":" in v and v.split(":", 1)[0].isdigit():
        v = v.split(":", 1)[1]
    if _APK.match(v):
        return v.rpartition("-r")[0]
    if "-" in v and ("deb" in v or "ubuntu" in v or re.search(r"-\d[\w.~+]*$", v)):
        v = v.rsplit("-", 1)[0]
    return v


def in_range(
    version: str,
    *,
    exact: str | None = None,
    start_incl: str | None = None,
    start_excl: str | None = None,
    end_incl: str | None = None,
    end_excl: str | None = None,
    scheme: str = "auto",
) -> bool:
    """True when `version` meets every given bound; no bounds at all means 'every version'."""
    try:
        if exact is not None and compare(version, exact, scheme) != 0:
            return False
        if start_incl is not None and compare(version, start_incl, scheme) < 0:
            return False
        if start_excl is not None and compare(version, start_excl, scheme) <= 0:
            return False
        if end_incl is not None and compare(version, end_incl, scheme) > 0:
            return False
        return not (end_excl is not None and compare(version, end_excl, scheme) >= 0)
    except VersionError:
        return False
