"""Report charts: matplotlib figures rendered to SVG text for inlining into the HTML report.

Why matplotlib → inline SVG (see docs/reports.md): it is a well-kept library, needs no JavaScript
and no network (the report opens offline from a file), draws text as paths (looks the same
whatever fonts the reader has), and gives the same bytes for the same input. Figures are built
with the object API (`Figure`), never pyplot, so no global backend or state is touched.
Each SVG's ids are prefixed with the chart name, so several charts can share one page.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sbom.aging import AgingSummary
from sbom.dune import COMMUNITY, UNKNOWN, FleetDune
from sbom.policy import GRADES

LAYER_LABELS: Mapping[str, str] = {
    "soc": "SoC / chip",
    "firmware": "Firmware",
    "os": "OS / kernel",
    "crypto": "Crypto",
    "sensor_radio": "Sensors / radios",
    "db_runtime": "DB / runtime",
    "application": "Applications",
}
GRADE_COLOURS: Mapping[str, str] = {
    "A": "#1a9850",
    "B": "#91cf60",
    "C": "#fee08b",
    "D": "#fc8d59",
    "E": "#d73027",
}
_PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#8cd17d",
)  # fmt: skip
_FIXED = {UNKNOWN: "#9e9e9e", COMMUNITY: "#2ca25f", "others": "#d9d9d9"}
_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "dunewatch-report",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _ctx() -> Any:
    import matplotlib

    return matplotlib.rc_context(_RC)  # type: ignore[arg-type]


def _svg(fig: Any, name: str, titles: Mapping[str, str] | None = None) -> str:
    with _ctx():
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # RDF metadata (creator URLs, licence namespaces) says nothing to a reader: drop it
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    if titles:
        svg = re.sub(
            r'<g id="(bar-[^"]+)">',
            lambda m: m[0] + f"<title>{html.escape(titles.get(m[1], ''))}</title>",
            svg,
        )
    return _scope_ids(svg, name)


def _scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and reference to it) so charts inlined together never clash."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg

    def sub(m: re.Match[str]) -> str:
        value = m[2]
        return f"{m[1]}{prefix}-{value}{m[3]}" if value in ids else m[0]

    svg = re.sub(r'(\bid=")([^"]+)(")', sub, svg)
    svg = re.sub(r'(href="#)([^"]+)(")', sub, svg)
    return re.sub(r"(url\(#)([^)]+)(\))", sub, svg)


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    with _ctx():
        fig = Figure(figsize=(width, height), dpi=100)
        ax = fig.subplots()
    return fig, ax


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60] or "_"


def layer_chart(fleet: FleetDune) -> str:
    """Each layer's contribution to the fleet DDI (100 · weight · mean exposure)."""
    with _ctx():
        fig, ax = _figure(7.0, 3.2)
        layers = list(reversed(fleet.layers))
        labels = [LAYER_LABELS.get(x.layer, x.layer) for x in layers]
        points = [100.0 * x.weight * x.exposure for x in layers]
        bars = ax.barh(labels, points, color="#4e79a7")
        titles = {}
        for bar, x, p in zip(bars.patches, layers, points, strict=True):
            gid = f"bar-{x.layer}"
            bar.set_gid(gid)
            titles[gid] = (
                f"{LAYER_LABELS.get(x.layer, x.layer)}: {p:.2f} DDI points "
                f"(weight {x.weight:g} x mean exposure {x.exposure:.3f}, {x.devices} devices)"
            )
            ax.annotate(f"{p:.1f}", (p, bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        ax.set_xlabel("DDI points (fleet DDI = sum)")
        ax.set_title(f"Fleet DDI {fleet.ddi:.1f} by layer", loc="left")
        ax.set_xlim(0, max([*points, 1.0]) * 1.15)
    return _svg(fig, "layers", titles)


def share_chart(fleet: FleetDune, dimension: str, top: int = 8) -> str:
    """100 % stacked bars per layer: shares by jurisdiction or by vendor (criticality-weighted)."""

    def conc(layer: Any) -> Any:
        return layer.by_jurisdiction if dimension == "jurisdiction" else layer.by_vendor

    totals: dict[str, float] = {}
    for layer in fleet.layers:
        for s in conc(layer).shares:
            totals[s.key] = totals.get(s.key, 0.0) + s.share
    keys = [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))][:top]
    colours: dict[str, str] = {}
    i = 0
    for k in keys:
        if k in _FIXED:
            colours[k] = _FIXED[k]
        else:
            colours[k] = _PALETTE[i % len(_PALETTE)]
            i += 1
    colours["others"] = _FIXED["others"]
    with _ctx():
        fig, ax = _figure(7.0, 3.4)
        layers = list(reversed(fleet.layers))
        labels = [LAYER_LABELS.get(x.layer, x.layer) for x in layers]
        left = [0.0] * len(layers)
        titles: dict[str, str] = {}
        used: list[str] = []
        for key in [*keys, "others"]:
            widths = []
            for layer in layers:
                shares = conc(layer).shares
                if key == "others":
                    widths.append(sum(s.share for s in shares if s.key not in keys) * 100)
                else:
                    widths.append(sum(s.share for s in shares if s.key == key) * 100)
            if not any(w > 0 for w in widths):
                continue
            used.append(key)
            bars = ax.barh(labels, widths, left=left, color=colours[key], label=key,
                           edgecolor="white", linewidth=0.5)  # fmt: skip
            for bar, layer, w in zip(bars.patches, layers, widths, strict=True):
                if w <= 0:
                    continue
                gid = f"bar-{dimension}-{layer.layer}-{_slug(key)}"
                bar.set_gid(gid)
                titles[gid] = f"{LAYER_LABELS.get(layer.layer, layer.layer)}: {key} {w:.1f} %"
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of devices with the layer, weighted by criticality (%)")
        ax.set_title(f"Shares by {dimension}", loc="left")
        if used:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    return _svg(fig, f"share-{dimension}", titles)


def grade_chart(fleet: FleetDune) -> str:
    counts = dict(fleet.grades)
    with _ctx():
        fig, ax = _figure(4.2, 2.6)
        bars = ax.bar(GRADES, [counts.get(g, 0) for g in GRADES],
                      color=[GRADE_COLOURS[g] for g in GRADES])  # fmt: skip
        titles = {}
        for bar, g in zip(bars.patches, GRADES, strict=True):
            gid = f"bar-grade-{g}"
            bar.set_gid(gid)
            titles[gid] = f"grade {g}: {counts.get(g, 0)} devices"
            top = (bar.get_x() + bar.get_width() / 2, bar.get_height())
            ax.annotate(str(counts.get(g, 0)), top, xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=8)  # fmt: skip
        ax.set_ylabel("devices")
        ax.set_title("Devices by dune grade (worst layer)", loc="left")
    return _svg(fig, "grades", titles)


def timeline_chart(aging: AgingSummary, today: dt.date) -> str:
    """End-of-life dates per month: reached (red) and approaching (orange), with today marked."""
    with _ctx():
        fig, ax = _figure(7.0, 2.8)
        titles: dict[str, str] = {}
        if aging.months:
            months = [dt.date.fromisoformat(m + "-01") for m, _, _ in aging.months]
            reached = [r for _, r, _ in aging.months]
            coming = [c for _, _, c in aging.months]
            b1 = ax.bar(months, reached, width=25, color="#d73027", label="end of life reached")
            b2 = ax.bar(months, coming, width=25, bottom=reached, color="#fc8d59",
                        label="approaching end of life")  # fmt: skip
            for bars, what in ((b1, "reached"), (b2, "approaching")):
                for bar, (m, r, c) in zip(bars.patches, aging.months, strict=True):
                    n = r if what == "reached" else c
                    if n:
                        gid = f"bar-eol-{m}-{what}"
                        bar.set_gid(gid)
                        titles[gid] = f"{m}: {n} end-of-life dates {what}"
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        else:
            ax.text(0.5, 0.5, "no end-of-life dates known", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        ax.axvline(today, color="#333333", linestyle="--", linewidth=1)
        ax.annotate("today", (today, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -10), textcoords="offset points", fontsize=8)  # fmt: skip
        ax.set_ylabel("components")
        ax.set_title("End-of-life timeline (components and device models)", loc="left")
        fig.autofmt_xdate()
    return _svg(fig, "timeline", titles)


def ddi_histogram(ddis: Sequence[float]) -> str:
    with _ctx():
        fig, ax = _figure(4.2, 2.6)
        ax.hist(list(ddis), bins=20, range=(0, 100), color="#4e79a7")
        ax.set_xlabel("device DDI")
        ax.set_ylabel("devices")
        ax.set_title("Distribution of device DDI", loc="left")
    return _svg(fig, "ddi-hist")


def group_chart(groups: Sequence[tuple[str, FleetDune]], tag: str, top: int = 30) -> str:
    """DDI per tag value (the `top` largest groups by device count)."""
    shown = sorted(groups, key=lambda g: (-g[1].devices, g[0]))[:top]
    shown.sort(key=lambda g: g[1].ddi)
    with _ctx():
        fig, ax = _figure(7.0, max(2.0, 0.28 * len(shown) + 0.8))
        bars = ax.barh([k for k, _ in shown], [f.ddi for _, f in shown], color="#76b7b2")
        titles = {}
        for bar, (k, f) in zip(bars.patches, shown, strict=True):
            gid = f"bar-group-{_slug(k)}"
            bar.set_gid(gid)
            titles[gid] = f"{tag}={k}: DDI {f.ddi:.1f}, {f.devices} devices"
        ax.set_xlabel("DDI (criticality-weighted mean)")
        ax.set_title(f"DDI by {tag}", loc="left")
    return _svg(fig, "groups", titles)
