"""Configuration of the Digital Dune Index and of aging analysis (DESIGN §6 and §7).

Every weight and threshold the DDI and aging use lives here, so a city can state its own view
(home jurisdiction, allies, restricted suppliers' countries, how critical each device is) without
touching code. Nothing assumes a country: without a `home` every known, non-community supplier
counts as "other", and reports say so. Values are validated when the policy is built, so a bad
TOML file fails with one line naming the key, never halfway through a report.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from sbom.errors import SbomError
from sbom.model import DEFAULT_LAYER_WEIGHTS, LAYERS

# Jurisdiction categories a supplier's controlling country falls into.
CAT_HOME: Final = "home"
CAT_ALLIED: Final = "allied"
CAT_OTHER: Final = "other"
CAT_RESTRICTED: Final = "restricted"
CAT_COMMUNITY: Final = "community"
CAT_UNKNOWN: Final = "unknown"
CATEGORIES: Final = (CAT_HOME, CAT_ALLIED, CAT_OTHER, CAT_RESTRICTED, CAT_COMMUNITY, CAT_UNKNOWN)

GRADES: Final = ("A", "B", "C", "D", "E")

DEFAULT_JURISDICTION_RISK: Final = {
    CAT_HOME: 0.0,
    CAT_ALLIED: 0.3,
    CAT_OTHER: 0.6,
    CAT_RESTRICTED: 1.0,
    CAT_COMMUNITY: 0.1,
    CAT_UNKNOWN: 0.5,
}
# S when neither the component nor firmware_db says: a SoC or vendor firmware is single-source
# (re-designing the board or re-writing the image), the rest can be re-integrated.
DEFAULT_SUBSTITUTABILITY: Final = {
    "soc": 0.0,
    "firmware": 0.0,
    "os": 0.5,
    "crypto": 0.5,
    "sensor_radio": 0.5,
    "db_runtime": 0.5,
    "application": 0.5,
}
DEFAULT_CRITICALITY_LEVELS: Final = {"low": 0.5, "normal": 1.0, "high": 2.0, "critical": 4.0}
# Upper bounds (inclusive) of the worst layer exposure for grades A..D; above the last is E.
# 0.05 = community or home code; 0.15 = an allied single source; 0.30 = "other" single source
# or unknown; 0.50 = a restricted single source that is current; above = restricted and aging,
# or "other" past end of life.
DEFAULT_GRADE_BOUNDS: Final = (0.05, 0.15, 0.30, 0.50)
# Expected service life in years per device class (operator guidance, override per city).
DEFAULT_SERVICE_LIFE: Final = {
    "camera": 7.0,
    "nvr": 7.0,
    "gateway": 7.0,
    "server": 5.0,
    "default": 7.0,
}
DEFAULT_SATURATION: Final = {"cpu": 90.0, "mem": 90.0, "disk": 90.0}

_COUNTRY = re.compile(r"^[A-Z]{2}$")


class PolicyError(SbomError):
    """The DDI/aging policy is invalid; the message names the key at fault."""


def _freeze(m: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class DunePolicy:
    """Everything the DDI and aging scores depend on; validated at construction."""

    home: str | None = None  # ISO 3166-1 alpha-2; None = unset (no country favoured)
    allied: frozenset[str] = frozenset()
    restricted: frozenset[str] = frozenset()
    jurisdiction_risk: Mapping[str, float] = field(
        default_factory=lambda: _freeze(DEFAULT_JURISDICTION_RISK)
    )
    layer_weights: Mapping[str, float] = field(
        default_factory=lambda: _freeze(DEFAULT_LAYER_WEIGHTS)
    )
    substitutability: Mapping[str, float] = field(
        default_factory=lambda: _freeze(DEFAULT_SUBSTITUTABILITY)
    )
    criticality_levels: Mapping[str, float] = field(
        default_factory=lambda: _freeze(DEFAULT_CRITICALITY_LEVELS)
    )
    grade_bounds: tuple[float, ...] = DEFAULT_GRADE_BOUNDS
    critical_layers: tuple[str, ...] = ("soc", "firmware", "os", "crypto")
    hhi_high: float = 2500.0
    # Aging (A in the DDI, and the aging report)
    eol_approaching_days: int = 180
    stale_firmware_months: int = 24
    versions_behind_outdated: int = 2
    aging_eol: float = 1.0
    aging_approaching: float = 0.7
    aging_behind: float = 0.3
    service_life_years: Mapping[str, float] = field(
        default_factory=lambda: _freeze(DEFAULT_SERVICE_LIFE)
    )
    service_life_warn_years: float = 1.0  # "approaching" when less than this remains
    saturation_pct: Mapping[str, float] = field(default_factory=lambda: _freeze(DEFAULT_SATURATION))
    saturation_window_s: float = 3600.0
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        home = self.home
        if home is not None and not _COUNTRY.match(home):
            raise PolicyError(f"policy home: {home!r} is not an ISO 3166-1 alpha-2 code like 'DE'")
        for name, codes in (("allied", self.allied), ("restricted", self.restricted)):
            for code in codes:
                if not isinstance(code, str) or not _COUNTRY.match(code):
                    raise PolicyError(f"policy {name}: {code!r} is not an ISO 3166-1 alpha-2 code")
            if home is None and codes:
                raise PolicyError(
                    f"policy {name}: given without home",
                    tip="allied and restricted lists are relative to a home jurisdiction; set home",
                )
            if home is not None and home in codes:
                raise PolicyError(f"policy {name}: contains the home jurisdiction {home}")
        both = self.allied & self.restricted
        if both:
            raise PolicyError(f"policy: {sorted(both)} both allied and restricted")
        _check_map("jurisdiction_risk", self.jurisdiction_risk, set(CATEGORIES), 0.0, 1.0, True)
        _check_map("layer_weights", self.layer_weights, set(LAYERS), 0.0, 1.0, True)
        total = sum(self.layer_weights.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise PolicyError(f"policy layer_weights: sum to {total:g}, must sum to 1")
        _check_map("substitutability", self.substitutability, set(LAYERS), 0.0, 1.0, True)
        _check_map("criticality_levels", self.criticality_levels, None, 0.0, 1e6, False)
        bounds = self.grade_bounds
        if (
            len(bounds) != 4
            or any(not 0 <= b <= 1 for b in bounds)
            or list(bounds) != sorted(bounds)
        ):
            raise PolicyError(
                f"policy grade_bounds: {bounds!r} must be 4 ascending values in [0, 1]"
            )
        for layer in self.critical_layers:
            if layer not in LAYERS:
                raise PolicyError(f"policy critical_layers: unknown layer {layer!r}")
        if self.hhi_high <= 0 or self.hhi_high > 10000:
            raise PolicyError(f"policy hhi_high: {self.hhi_high!r} must be in (0, 10000]")
        for name in ("eol_approaching_days", "stale_firmware_months", "versions_behind_outdated"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError(f"policy {name}: {value!r} must be a positive integer")
        for name in ("aging_eol", "aging_approaching", "aging_behind"):
            value = getattr(self, name)
            if not _is_num(value) or not 0 <= value <= 1:
                raise PolicyError(f"policy {name}: {value!r} must be a number in [0, 1]")
        _check_map("service_life_years", self.service_life_years, None, 0.1, 100.0, False)
        if "default" not in self.service_life_years:
            raise PolicyError("policy service_life_years: needs a 'default' entry")
        if not _is_num(self.service_life_warn_years) or self.service_life_warn_years < 0:
            raise PolicyError("policy service_life_warn_years: must be a number >= 0")
        _check_map("saturation_pct", self.saturation_pct, {"cpu", "mem", "disk"}, 1.0, 100.0, False)
        if not _is_num(self.saturation_window_s) or self.saturation_window_s <= 0:
            raise PolicyError("policy saturation_window_s: must be a number > 0")

    @property
    def home_label(self) -> str:
        return self.home or "unset"

    def category(self, country: str | None, community: bool) -> str:
        """Jurisdiction category of a supplier's controlling country."""
        if community:
            return CAT_COMMUNITY
        if not country:
            return CAT_UNKNOWN
        if self.home is None:
            return CAT_OTHER
        if country == self.home:
            return CAT_HOME
        if country in self.restricted:
            return CAT_RESTRICTED
        if country in self.allied:
            return CAT_ALLIED
        return CAT_OTHER

    def criticality_weight(self, value: float | str | None) -> float:
        """Weight of a device in fleet means: a number as-is, or a named level."""
        if value is None:
            return 1.0
        if isinstance(value, str):
            try:
                return self.criticality_levels[value.strip().lower()]
            except KeyError:
                raise PolicyError(
                    f"criticality {value!r}: not one of {sorted(self.criticality_levels)}"
                ) from None
        if not _is_num(value) or value < 0:
            raise PolicyError(f"criticality {value!r}: must be a number >= 0")
        return float(value)

    def grade(self, exposure: float) -> str:
        bounds = self.grade_bounds
        for i in range(4):
            if exposure <= bounds[i] + 1e-12:
                return GRADES[i]
        return GRADES[4]

    def service_life(self, device_class: str | None) -> float:
        if device_class and device_class in self.service_life_years:
            return self.service_life_years[device_class]
        return self.service_life_years["default"]


def _is_num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_map(
    name: str,
    mapping: Mapping[str, float],
    keys: set[str] | None,
    lo: float,
    hi: float,
    complete: bool,
) -> None:
    if not isinstance(mapping, Mapping):
        raise PolicyError(f"policy {name}: must be a table")
    if keys is not None:
        extra = set(mapping) - keys
        if extra:
            raise PolicyError(f"policy {name}: unknown keys {sorted(extra)}; known: {sorted(keys)}")
        if complete and set(mapping) != keys:
            raise PolicyError(f"policy {name}: missing keys {sorted(keys - set(mapping))}")
    for key, value in mapping.items():
        if not _is_num(value) or not lo <= value <= hi:
            raise PolicyError(
                f"policy {name}.{key}: {value!r} must be a number in [{lo:g}, {hi:g}]"
            )


_TABLES: Final = (
    "jurisdiction_risk",
    "layer_weights",
    "substitutability",
    "criticality_levels",
    "service_life_years",
    "saturation_pct",
)
_PARTIAL_TABLES: Final = {
    "jurisdiction_risk": DEFAULT_JURISDICTION_RISK,
    "substitutability": DEFAULT_SUBSTITUTABILITY,
    "service_life_years": DEFAULT_SERVICE_LIFE,
    "saturation_pct": DEFAULT_SATURATION,
}


def policy_from_dict(doc: Mapping[str, Any], source: str = "<dict>") -> DunePolicy:
    """Build a policy from a TOML-shaped mapping; unknown keys are errors, missing keys defaults.

    Tables of jurisdiction risk, substitutability, service life and saturation are merged over
    the defaults (set only what differs); layer_weights and criticality_levels replace them whole
    because their values only make sense together.
    """
    known = {f for f in DunePolicy.__dataclass_fields__ if f != "source"}
    inner = doc.get("dune")
    doc = dict(inner) if isinstance(inner, Mapping) else dict(doc)
    unknown = set(doc) - known
    if unknown:
        raise PolicyError(f"{source}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {"source": source}
    for key, value in doc.items():
        if key == "home":
            if value in ("", "unset"):
                value = None
            elif not isinstance(value, str):
                raise PolicyError(f"{source}: home must be a string like 'DE' or 'unset'")
            else:
                value = value.strip().upper()
            kwargs[key] = value
        elif key in ("allied", "restricted"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"{source}: {key} must be a list of country codes")
            kwargs[key] = frozenset(v.strip().upper() for v in value)
        elif key in _TABLES:
            if not isinstance(value, Mapping):
                raise PolicyError(f"{source}: {key} must be a table")
            base = dict(_PARTIAL_TABLES.get(key, {}))
            base.update(value)
            kwargs[key] = _freeze(base)
        elif key in ("grade_bounds", "critical_layers"):
            if not isinstance(value, list):
                raise PolicyError(f"{source}: {key} must be a list")
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return DunePolicy(**kwargs)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}", tip=exc.tip) from None
    except TypeError as exc:  # wrong shapes that slipped past the checks above
        raise PolicyError(f"{source}: {exc}") from None


def load_policy(path: str | Path) -> DunePolicy:
    """Read a policy TOML file (top level, or a [dune] table)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"policy file {p}: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {p}: not valid TOML: {exc}") from None
    return policy_from_dict(doc, source=str(p))
