"""Vendor name normalisation: case, punctuation, legal suffixes, aliases, brands.

`Hangzhou Hikvision Digital Technology Co., Ltd.`, `HIKVISION` and `HiLook` must all land on
one organization, so names are folded to a key and every name and alias is indexed by it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

LEGAL_SUFFIXES: Final = frozenset(
    {
        "co",
        "company",
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "gmbh",
        "ag",
        "ab",
        "sa",
        "nv",
        "bv",
        "plc",
        "llc",
        "sia",
        "uab",
        "oy",
        "kk",
        "spa",
        "srl",
        "sro",
        "holding",
        "holdings",
        "se",
        "pte",
        "pty",
    }
)
_DOTTED = re.compile(r"\b(s)\.(a|r\.o|p\.a)\.?|\b(n)\.(v)\.|\b(b)\.(v)\.", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(name: str) -> str:
    """Fold a vendor name to its lookup key: `Axis Communications AB` -> `axis communications`."""
    s = unicodedata.normalize("NFKC", name).casefold().replace("&", " and ")
    s = _DOTTED.sub(lambda m: "".join(g for g in m.groups() if g), s)
    s = _PUNCT.sub(" ", s)
    tokens = _SPACE.sub(" ", s).strip().split(" ")
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    # "Co., Ltd." leaves "co" before "ltd": strip repeatedly, keep at least one token.
    return " ".join(t for t in tokens if t)


def tokens(key: str) -> tuple[str, ...]:
    return tuple(key.split(" ")) if key else ()
