"""Comparing decoded JSON values strictly, for tests that hold two decoders to one result."""

from __future__ import annotations

import math
from typing import Any


def same_json(a: Any, b: Any) -> bool:
    """Equal, with types kept apart (1 is not 1.0, True is not 1) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
