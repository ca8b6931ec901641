"""The simulation report: one self-contained, offline HTML page for a planner.

    >>> from scenarios.report import html_report
    >>> page = html_report(result, district=district)   # str: inline CSS, inline SVG

The page holds the run settings, headline KPI cards (mean and 95% CI over replications),
charts drawn here as inline SVG (no plotting library), a choropleth map of events per grid
when a district is given, and KPI tables. It loads nothing from the network: no scripts,
fonts, tiles or images. The same result always gives the same page.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from scenarios.results import Estimate, estimate

if TYPE_CHECKING:
    from scenarios.model import EventRecord, RunResult
    from scenarios.simulate import SimulationResult
    from scenarios.staffing import StaffingPlan
    from twin.district import District

DASH = "—"
SHARES = frozenset({"responded_within_60s", "on_scene_within_180s", "reinforced_within_300s",
                    "within_targets", "closed_share"})
LABELS = {
    "events": "Events per replication",
    "responded_within_60s": "Responded within 60 s",
    "on_scene_within_180s": "On scene within 180 s",
    "reinforced_within_300s": "Reinforced within 300 s",
    "within_targets": "Closed within targets",
    "utilisation": "Utilisation per role",
    "wait_mean_s": "Mean wait",
}
GROUP_KPIS = ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s",
              "within_targets", "wait_mean_s")
SERIES_COLOURS = ("#2b6cb0", "#dd6b20", "#2f855a")
CHORO = ("#fee6ce", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603")
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1a202c;background:#f7fafc}
main{max-width:1160px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;border-bottom:1px solid #cbd5e0;padding-bottom:4px;margin-top:1.6em}
.meta,.note,footer{color:#4a5568;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px 12px}
.card .k{font-size:.85em;color:#4a5568}.card .v{font-size:1.6em;font-weight:600;margin:2px 0}
.card .ci,.card code{font-size:.8em;color:#718096}.card ul{margin:4px 0 0;padding-left:16px;font-size:.9em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:12px}
figure{background:#fff;border:1px solid #e2e8f0;border-radius:6px;margin:0;padding:8px}
figcaption{font-size:.85em;color:#4a5568;margin-top:4px}
svg{max-width:100%;height:auto;font-family:inherit}
table{border-collapse:collapse;background:#fff;font-size:.9em}
th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:right}th{background:#edf2f7}
td:first-child,th:first-child{text-align:left}
.legend span{display:inline-block;width:14px;height:14px;vertical-align:middle;margin:0 4px 0 10px;border:1px solid #a0aec0}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _kind(name: str) -> str:
    if name in SHARES or name == "utilisation":
        return "pct"
    if name.endswith("_s"):
        return "s"
    return "km" if name.endswith("_km") else "n"


def _fmt(v: Any, kind: str = "n") -> str:
    """A number for display: ``—`` for None/nan; ``pct`` shares as %, ``s`` seconds."""
    if not _finite(v):
        return DASH
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "s":
        return f"{v:,.0f} s"
    if kind == "km":
        return f"{v:,.1f} km"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def _as_est(v: Any) -> Estimate:
    if isinstance(v, Estimate):
        return v
    return Estimate(float(v), math.nan, math.nan, 1) if _finite(v) else Estimate(math.nan, math.nan, math.nan, 0)


def _ci(e: Estimate, kind: str) -> tuple[float, float] | None:
    """The 95% CI clipped to the possible range (shares 0-1, others ≥ 0), or None."""
    if not (_finite(e.lo) and _finite(e.hi)):
        return None
    hi_cap = 1.0 if kind == "pct" else math.inf
    return max(0.0, e.lo), min(hi_cap, e.hi)


def _est_text(v: Any, kind: str) -> tuple[str, str]:
    e = _as_est(v)
    ci = _ci(e, kind)
    return _fmt(e.mean, kind), (f"95% CI {_fmt(ci[0], kind)} – {_fmt(ci[1], kind)}" if ci else "")


def _rows(run: RunResult, warmup_days: float) -> list[EventRecord]:
    """The records the KPIs count (warm-up left out)."""
    return [r for r in run.records if r.reported_s >= warmup_days * 86_400.0]


# --- SVG charts ----------------------------------------------------------------------------

W, H, ML, MR, MT, MB = 560, 290, 62, 14, 34, 58


def _ticks(vmax: float, n: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``vmax``."""
    vmax = vmax if _finite(vmax) and vmax > 0 else 1.0
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    return [i * step for i in range(math.ceil(vmax / step - 1e-9) + 1)]


def _tick_label(v: float, pct: bool) -> str:
    if pct:
        return f"{100 * v:.0f}%"
    return f"{v:g}" if abs(v) < 1e4 else f"{v:,.0f}"


def _frame(title: str, ticks: list[float], *, x_label: str, y_label: str, pct: bool = False) -> list[str]:
    """Open an SVG chart: title, y grid lines with labels, axes and axis titles."""
    pw, ph = W - ML - MR, H - MT - MB
    out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{_e(title)}" '
           f'font-size="11">', f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" '
           f'font-weight="600">{_e(title)}</text>']
    for t in ticks:
        y = MT + ph - ph * t / ticks[-1]
        out.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{ML - 5}" y="{y + 4:.1f}" text-anchor="end">{_e(_tick_label(t, pct))}</text>')
    out.append(f'<path d="M{ML} {MT}V{MT + ph}H{ML + pw}" fill="none" stroke="#4a5568"/>')
    out.append(f'<text x="{ML + pw / 2}" y="{H - 6}" text-anchor="middle">{_e(x_label)}</text>')
    out.append(f'<text transform="translate(14 {MT + ph / 2}) rotate(-90)" text-anchor="middle">'
               f'{_e(y_label)}</text>')
    return out


def bar_chart(title: str, cats: Sequence[str], series: Sequence[tuple[str, Sequence[Any]]], *,
              x_label: str, y_label: str, pct: bool = False, label_every: int = 1) -> str:
    """Grouped bars with 95% CI whiskers, as inline SVG.

    Args:
        title: Chart title.
        cats: Category labels along x.
        series: ``(name, values)`` pairs; a value is an :class:`Estimate` or a number.
        x_label: X-axis title (with units).
        y_label: Y-axis title (with units).
        pct: Values are shares 0-1, drawn on a 0-100% axis.
        label_every: Label every n-th category only.
    """
    ests = [[_as_est(v) for v in vals] for _, vals in series]
    kind = "pct" if pct else "n"
    tops = [max(e.mean, (_ci(e, kind) or (0, 0))[1]) for es in ests for e in es if _finite(e.mean)]
    ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0] if pct else _ticks(max(tops, default=1.0))
    out = _frame(title, ticks, x_label=x_label, y_label=y_label, pct=pct)
    pw, ph = W - ML - MR, H - MT - MB
    slot = pw / max(len(cats), 1)
    bw = slot * 0.8 / max(len(series), 1)
    def y_of(v: float) -> float:
        return float(MT + ph - ph * min(max(v, 0.0), ticks[-1]) / ticks[-1])
    for i, cat in enumerate(cats):
        for j, es in enumerate(ests):
            e, x = es[i], ML + slot * i + slot * 0.1 + bw * j
            name = series[j][0]
            mean, ci = _est_text(e, kind)
            if not _finite(e.mean):
                out.append(f'<text x="{x + bw / 2:.1f}" y="{MT + ph - 3}" text-anchor="middle">{DASH}</text>')
                continue
            out.append(f'<rect x="{x:.1f}" y="{y_of(e.mean):.1f}" width="{bw:.1f}" '
                       f'height="{MT + ph - y_of(e.mean):.1f}" fill="{SERIES_COLOURS[j % 3]}">'
                       f'<title>{_e(f"{cat} · {name}: {mean} {ci}".strip())}</title></rect>')
            c = _ci(e, kind)
            if c:
                xm = x + bw / 2
                out.append(f'<path d="M{xm:.1f} {y_of(c[0]):.1f}V{y_of(c[1]):.1f}M{xm - 3:.1f} {y_of(c[0]):.1f}'
                           f'h6M{xm - 3:.1f} {y_of(c[1]):.1f}h6" stroke="#1a202c" fill="none"/>')
        if i % label_every == 0:
            out.append(f'<text x="{ML + slot * (i + 0.5):.1f}" y="{MT + ph + 14}" '
                       f'text-anchor="middle">{_e(cat)}</text>')
    if len(series) > 1:
        for j, (name, _) in enumerate(series):
            x = ML + 8 + j * 170
            out.append(f'<rect x="{x}" y="{H - 34}" width="10" height="10" fill="{SERIES_COLOURS[j % 3]}"/>'
                       f'<text x="{x + 14}" y="{H - 25}">{_e(name)}</text>')
    return "".join(out) + "</svg>"


def histogram(title: str, values: Sequence[float], *, x_label: str, target: float | None = None,
              bins: int = 12) -> str:
    """Share of values per bin as inline SVG; the last bin holds everything beyond.

    Args:
        title: Chart title.
        values: Values (non-finite ones are ignored).
        x_label: X-axis title (with units).
        target: Draws a dashed line and label at this x value.
        bins: Number of equal bins before the overflow bin.
    """
    v = sorted(x for x in values if _finite(x))
    if not v:
        return "".join(_frame(title, [0, 1], x_label=x_label, y_label="share of events (%)", pct=True)) + (
            f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
    p95 = v[min(len(v) - 1, int(0.95 * len(v)))]
    step = _ticks(max(p95, target or 0.0) * 1.05, bins)[1]
    counts = [0] * (bins + 1)
    for x in v:
        counts[min(int(x // step), bins)] += 1
    shares = [c / len(v) for c in counts]
    ticks = _ticks(max(shares))
    out = _frame(title, ticks, x_label=x_label, y_label="share of events (%)", pct=True)
    pw, ph = W - ML - MR, H - MT - MB
    bw = pw / (bins + 1)
    for i, s in enumerate(shares):
        h = ph * s / ticks[-1]
        lo, hi = i * step, (i + 1) * step
        what = f"≥ {lo:g}" if i == bins else f"{lo:g}–{hi:g}"
        out.append(f'<rect x="{ML + i * bw + 0.5:.1f}" y="{MT + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                   f'fill="{"#a0aec0" if i == bins else "#4c78a8"}"><title>{_e(what)}: {100 * s:.1f}% '
                   f'({counts[i]} events)</title></rect>')
    for i in range(0, bins + 1, 2):
        label = f"≥{i * step:g}" if i == bins else f"{i * step:g}"
        out.append(f'<text x="{ML + i * bw:.1f}" y="{MT + ph + 14}" text-anchor="middle">{_e(label)}</text>')
    if target is not None and target < bins * step:
        xt = ML + bw * target / step
        share = sum(1 for x in v if x <= target) / len(v)
        out.append(f'<line x1="{xt:.1f}" x2="{xt:.1f}" y1="{MT}" y2="{MT + ph}" stroke="#c53030" '
                   f'stroke-width="2" stroke-dasharray="5 3"/><text x="{xt + 4:.1f}" y="{MT + 12}" fill="#c53030">'
                   f'target {target:g} s ({100 * share:.0f}% within)</text>')
    return "".join(out) + "</svg>"


# --- the map ---------------------------------------------------------------------------------


def _path_d(geom: Any, tol: float = 1.0) -> str:
    """SVG path data of a (multi)polygon or (multi)line in metres, y flipped, rounded to 1 m."""
    g = geom.simplify(tol, preserve_topology=True) if tol > 0 else geom
    parts: list[Any] = list(getattr(g, "geoms", [g]))
    out = []
    for p in parts:
        rings = [p.exterior, *p.interiors] if p.geom_type == "Polygon" else [p]
        for ring in rings:
            pts = [f"{round(x)} {round(-y)}" for x, y in ring.coords]
            if len(pts) >= 2:
                out.append("M" + " ".join(pts) + ("Z" if p.geom_type == "Polygon" else ""))
    return "".join(out)


def map_svg(result: SimulationResult, district: District) -> str:
    """Choropleth of mean events per replication per grid, with roads, cameras and boundary.

    Args:
        result: The simulation result.
        district: The simulated district.

    Returns:
        A ``<figure>`` with the SVG map (one ``path.grid`` per grid) and its legend.
    """
    n = max(len(result.runs), 1)
    counts: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    for run in result.runs:
        for r in _rows(run, result.warmup_days):
            counts[r.grid_id] += 1
            outcomes.setdefault(r.grid_id, Counter())[r.outcome] += 1
    top = max((c / n for c in counts.values()), default=0.0)
    breaks = [top * k / len(CHORO) for k in range(1, len(CHORO) + 1)]
    minx, miny, maxx, maxy = district.boundary.bounds
    pad = 0.03 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    vw, vh = maxx - minx, maxy - miny
    px = 1100 / vw  # pixels per metre at full width
    out = [f'<svg viewBox="{minx:.0f} {-maxy:.0f} {vw:.0f} {vh:.0f}" width="1100" height="{vh * px:.0f}" '
           f'role="img" aria-label="Map of events per grid" font-size="{13 / px:.1f}">',
           f'<rect x="{minx:.0f}" y="{-maxy:.0f}" width="{vw:.0f}" height="{vh:.0f}" fill="#f0f4f8"/>']
    for g in district.regions.grids:
        mean = counts.get(g.id, 0) / n
        fill = "#ffffff" if mean == 0 else CHORO[next(k for k, b in enumerate(breaks) if mean <= b + 1e-9)]
        oc = ", ".join(f"{k} {v / n:g}" for k, v in sorted(outcomes.get(g.id, Counter()).items()))
        tip = f"{g.id} {g.name}: {mean:g} events per replication" + (f" ({oc})" if oc else "")
        out.append(f'<path class="grid" data-grid="{_e(g.id)}" d="{_path_d(g.polygon)}" fill="{fill}" '
                   f'fill-rule="evenodd" stroke="#718096" stroke-width="0.6" vector-effect="non-scaling-stroke">'
                   f'<title>{_e(tip)}</title></path>')
    resp = {int(i) for i in district.responsible}
    segs = district.roads.segments
    other = "".join(_path_d(s.line, 2.0) for k, s in enumerate(segs) if k not in resp or not s.patrolled)
    patrolled = "".join(_path_d(s.line, 2.0) for k, s in enumerate(segs) if k in resp and s.patrolled)
    out.append(f'<path class="roads-other" d="{other}" fill="none" stroke="#a0aec0" stroke-width="0.7" '
               f'vector-effect="non-scaling-stroke"/>')
    out.append(f'<path class="roads-patrolled" d="{patrolled}" fill="none" stroke="#2d3748" stroke-width="1.3" '
               f'vector-effect="non-scaling-stroke"/>')
    r = 3.0 / px
    out.append('<g class="cameras" fill="#2b6cb0" fill-opacity="0.8">' + "".join(
        f'<circle cx="{round(c.x)}" cy="{round(-c.y)}" r="{r:.1f}"/>' for c in district.cameras) + "</g>")
    approx = bool(district.notes.get("boundary", {}).get("approximation"))
    label = "Study boundary (APPROXIMATION)" if approx else "Study boundary"
    dash = ' stroke-dasharray="8 4"' if approx else ""
    out.append(f'<path class="boundary" d="{_path_d(district.boundary, 0)}" fill="none" stroke="#c53030" '
               f'stroke-width="2.5" vector-effect="non-scaling-stroke"{dash}/>')
    out.append(f'<text x="{minx + 12 / px:.0f}" y="{-maxy + 20 / px:.0f}" fill="#c53030" font-weight="600">'
               f'{_e(label)}</text>')
    bar = _ticks(vw / 5, 1)[1]  # a round scale-bar length
    x0, y0 = minx + 12 / px, -miny - 14 / px
    out.append(f'<path d="M{x0:.0f} {y0:.0f}h{bar:.0f}" stroke="#1a202c" stroke-width="3" '
               f'vector-effect="non-scaling-stroke"/><text x="{x0:.0f}" y="{y0 - 6 / px:.0f}">'
               f'{_e(f"{bar:g} m")}</text></svg>')
    legend = ['<span style="background:#ffffff"></span>0']
    lo = 0.0
    for colour, b in zip(CHORO, breaks):
        legend.append(f'<span style="background:{colour}"></span>{lo:.3g}–{b:.3g}')
        lo = b
    notes = "".join(out) + (
        '<figcaption class="legend">Events per replication per grid (mean of '
        f'{len(result.runs)}):{"".join(legend)}<br>Dark lines: patrolled roads; grey: other roads; '
        f'blue dots: cameras ({len(district.cameras)}); red{" dashed" if approx else ""} line: '
        f'{_e(label.lower())}.</figcaption>')
    return f"<figure>{notes}</figure>"


def _attribution(district: District) -> str:
    """The data attribution of the district's notes, with ``(c)`` written as ©."""
    texts = []
    for key in ("roads", "boundary"):
        note = district.notes.get(key, {})
        text = note.get("attribution") if isinstance(note, dict) else None
        text = str(text).replace("(c)", "©").replace("(C)", "©") if text else ""
        if text and text not in texts:
            texts.append(text)
    if any("OpenStreetMap" in t for t in texts) and not any("© OpenStreetMap contributors" in t for t in texts):
        texts.append("© OpenStreetMap contributors")
    return "; ".join(texts)


# --- the page --------------------------------------------------------------------------------


def _card(name: str, value: Any) -> str:
    label = LABELS.get(name, name)
    if isinstance(value, dict):
        items = "".join(f"<li>{_e(role)}: <b>{_e(_est_text(v, 'pct')[0])}</b> "
                        f"<span class=ci>{_e(_est_text(v, 'pct')[1])}</span></li>" for role, v in value.items())
        return (f'<div class=card><div class=k>{_e(label)} <code>{_e(name)}</code></div>'
                f'<ul>{items or f"<li>{DASH}</li>"}</ul></div>')
    mean, ci = _est_text(value, _kind(name))
    return (f'<div class=card><div class=k>{_e(label)}</div><div class=v>{_e(mean)}</div>'
            f'<div class=ci>{_e(ci)}</div><code>{_e(name)}</code></div>')


def _table(groups: dict[str, Any], names: dict[str, str], first: str) -> str:
    head = "".join(f"<th>{_e(LABELS.get(k, k))}<br><code>{_e(k)}</code></th>" for k in GROUP_KPIS)
    rows = []
    for g, vals in groups.items():
        vals = vals if isinstance(vals, dict) else {}
        cells = []
        for k in GROUP_KPIS:
            mean, ci = _est_text(vals.get(k), _kind(k))
            cells.append(f"<td>{_e(mean)}<br><small>{_e(ci)}</small></td>")
        rows.append(f"<tr><td>{_e(names.get(g, g))}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>{_e(first)}</th>{head}</tr>{''.join(rows)}</table>"


def _charts(result: SimulationResult, district: District | None) -> list[str]:
    rows = [_rows(run, result.warmup_days) for run in result.runs]
    per_hour = [estimate(sum(1 for r in rs if r.hour == h) for rs in rows) for h in range(24)]
    on_scene = [r.on_scene_s for rs in rows for r in rs]
    waits = [r.wait_s for rs in rows for r in rs if _finite(r.wait_s)]
    zero = sum(1 for w in waits if w == 0) / len(waits) if waits else math.nan
    k = result.kpis
    areas = k.get("by_area", {}) if isinstance(k.get("by_area"), dict) else {}
    shifts = k.get("by_shift", {}) if isinstance(k.get("by_shift"), dict) else {}
    area_names = {a.id: a.name for a in district.regions.areas} if district else {}
    def pick(groups: Mapping[str, Any], key: str) -> list[Any]:
        return [(v.get(key) if isinstance(v, dict) else None) for v in groups.values()]
    figs = [
        (bar_chart("Events by hour of day", [str(h) for h in range(24)], [("events", per_hour)],
                   x_label="hour of day (local time of report)", y_label="events per replication",
                   label_every=2), "Mean events reported per hour over replications; whiskers: 95% CI."),
        (histogram("On-scene time", on_scene, x_label="seconds from report to a handler on scene",
                   target=180), f"Events with a handler on scene ({sum(map(_finite, on_scene))}, all "
                                "replications); grey bar: beyond the axis."),
        (histogram("Wait for a free member (waits > 0 s)", [w for w in waits if w > 0],
                   x_label="seconds waiting before dispatch"),
         f"{_fmt(zero, 'pct')} of events did not wait; the chart shows the rest."),
        (bar_chart("On scene within 180 s, by area", [str(a) for a in areas],
                   [("on_scene_within_180s", pick(areas, "on_scene_within_180s"))],
                   x_label="area", y_label="share of events (%)", pct=True),
         "Areas: " + ", ".join(f"{a} = {area_names.get(a, a)}" for a in areas) if areas else "No areas."),
        (bar_chart("Response KPIs by shift", [str(s) for s in shifts],
                   [(LABELS[key], pick(shifts, key)) for key in
                    ("responded_within_60s", "on_scene_within_180s", "within_targets")],
                   x_label="shift", y_label="share of events (%)", pct=True),
         "Shares per shift (responded_within_60s, on_scene_within_180s, within_targets); whiskers: 95% CI."),
    ]
    return [f"<figure>{svg}<figcaption>{_e(cap)}</figcaption></figure>" for svg, cap in figs]


def html_report(result: SimulationResult, *, district: District | None = None, map_href: str | None = None) -> str:
    """One self-contained, offline HTML page reporting a simulation.

    Args:
        result: What :func:`scenarios.run` returned.
        district: The simulated district; when given, the page has a map of events per grid
            and the data attribution.
        map_href: A link to an interactive map of the same result (``map.html``, written
            beside the report by ``streetbrain simulate --out`` with :mod:`viz`).

    Returns:
        The HTML document (UTF-8 text): inline CSS and SVG only, nothing fetched.
    """
    from twin import __version__

    n = len(result.runs)
    k = result.kpis
    title = district.title if district is not None else result.scenario
    headline = ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s",
                "within_targets", "utilisation")
    cards = "".join(_card(name, k.get(name)) for name in headline)
    outcomes = Counter(r.outcome for run in result.runs for r in _rows(run, result.warmup_days))
    oc = ", ".join(f"{o} {outcomes.get(o, 0) / max(n, 1):g}" for o in ("closed", "abandoned", "merged", "open"))
    cats = k.get("by_category", {}) if isinstance(k.get("by_category"), dict) else {}
    cat_names = ({c: f"{v.name_en} ({v.name_zh})" for c, v in district.catalog.categories.items()}
                 if district is not None else {})
    scalars = [(key, v) for key, v in k.items() if not isinstance(v, dict)]
    all_rows = "".join(f"<tr><td><code>{_e(key)}</code></td><td>{_e(_est_text(v, _kind(key))[0])}</td>"
                       f"<td>{_e(_est_text(v, _kind(key))[1] or DASH)}</td></tr>" for key, v in scalars)
    ci_note = ("Figures are means over replications with 95% confidence intervals (Student t), clipped "
               "to the possible range." if n > 1 else "One replication: no confidence intervals.")
    body = [
        f"<header><h1>Simulation report: {_e(title)}</h1><p class=meta>Scenario <b>{_e(result.scenario)}</b> · "
        f"{_e(f'{result.days:g}')} days per replication"
        + (f" (first {_e(f'{result.warmup_days:g}')} days warm-up, not counted)" if result.warmup_days else "")
        + f" · {n} replication{'s' if n != 1 else ''} · seed {_e(result.seed)}</p>"
        f"<p class=meta>Generated with streetbrain {_e(__version__)} (scenarios.report); an offline page: "
        "nothing is loaded from the network.</p></header>",
        f"<section><h2>Headline KPIs</h2><div class=cards>{cards}</div><p class=note>{_e(ci_note)} "
        f"Outcomes per replication: {_e(oc)}.</p></section>",
        f"<section><h2>Charts</h2><div class=charts>{''.join(_charts(result, district))}</div></section>",
    ]
    attribution = _attribution(district) if district is not None else ""
    if district is not None:
        link = (f'<p><a href="{_e(map_href)}">Interactive map</a> (roads by squad, camera views, the share of '
                f'events within their targets per grid; a deck.gl page that needs no network)</p>' if map_href else "")
        body.append(f"<section><h2>Map</h2>{map_svg(result, district)}{link}"
                    + (f"<p class=note>Map data: {_e(attribution)}</p>" if attribution else "") + "</section>")
    body.append(f"<section><h2>KPIs by category</h2>{_table(cats, cat_names, 'category')}</section>")
    body.append("<section><h2>All KPIs</h2><table><tr><th>KPI</th><th>mean</th><th>95% CI</th></tr>"
                f"{all_rows}</table></section>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(f'streetbrain report: {title}')}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def staffing_report(plan: StaffingPlan, *, salary_per_year: float = 100_000.0, title: str = "",
                    reserve: Mapping[str, int] | None = None, surge_confirmed: Estimate | None = None) -> str:
    """One self-contained, offline HTML page of a staffing plan: the answer (positions,
    people, cost, whether the target binds), the positions per area and shift, the people
    per area and working pattern, and the cost/service curve (chart and table).

    Args:
        plan: What :func:`scenarios.staffing.optimise_staffing` returned.
        salary_per_year: Employer's cost of one member a year (CNY) for the curve.
        title: The district's title (default: none).
        reserve: People per area on call for wartime (:func:`scenarios.staffing.surge_reserve`).
        surge_confirmed: The KPI in wartime with that reserve called in beside the roster.
    """
    from twin import __version__

    curve = plan.curve(salary_per_year)
    people = plan.headcount()
    verdict = ("met" if plan.met and plan.binds else "met — the target does not bind" if plan.met
               else "not met")
    cards = "".join(f"<div class=card><div class=v>{_e(v)}</div><div class=k>{_e(k)}</div></div>" for k, v in (
        ("target", f"{plan.kpi} ≥ {plan.target:.0%}"), ("verdict", verdict), ("positions a day", plan.total),
        ("people", sum(people.values())), ("cost a year (CNY)", f"{sum(people.values()) * salary_per_year:,.0f}"),
        *((("people roster, on fresh replications", f"{plan.confirmed.mean:.1%} [{plan.confirmed.lo:.1%}, "
            f"{plan.confirmed.hi:.1%}]"),) if plan.confirmed is not None else ())))
    codes = list(next(iter(plan.table.values()), {}))
    pos_rows = "".join(f"<tr><td>{_e(a)}</td>" + "".join(f"<td>{_e(n)}</td>" for n in shifts.values())
                       + f"<td>{_e(people.get(a, DASH))}</td></tr>" for a, shifts in plan.table.items())
    body = [
        f"<header><h1>Staffing plan: {_e(plan.role)}{_e(' · ' + title if title else '')}</h1>"
        f"<p class=meta>KPI <code>{_e(plan.kpi)}</code> over the events the role handled, timed on its own stage; "
        f"accepted on the lower 95% bound over fresh replications. Rotation <b>{_e(plan.rotation or DASH)}</b>.</p>"
        f"<p class=meta>Generated with streetbrain {_e(__version__)} (scenarios.report); an offline page.</p></header>",
        f"<section><h2>The answer</h2><div class=cards>{cards}</div>"
        + (f"<p class=note>{_e(plan.reason)}</p>" if plan.reason else "") + "</section>",
        "<section><h2>Positions per area and shift</h2><table><tr><th>area</th>"
        + "".join(f"<th>{_e(c)}</th>" for c in codes) + f"<th>people</th></tr>{pos_rows}</table></section>",
    ]
    if plan.start_choices:
        srows = "".join(f"<tr><td>{_e(c['offset_h'])}</td><td>{_e(c['shifts'])}</td>"
                        + (f"<td>{_e(c['positions'])}</td><td>{_e(c['people'])}</td>" if c["allowed"]
                           else f"<td colspan=2>not allowed: {_e(c['why'])}</td>")
                        + f"<td>{'chosen' if c['chosen'] else ''}</td></tr>" for c in plan.start_choices)
        body.append("<section><h2>Shift start times</h2><p class=note>The ISA's hourly requirement cut into each "
                    "candidate's shifts and rostered; a start is allowed when every rotation still leaves the "
                    "minimum rest between shifts.</p><table><tr><th>hours later</th><th>shifts</th><th>positions</th>"
                    f"<th>people</th><th></th></tr>{srows}</table></section>")
    if plan.met and plan.pattern is not None:
        from scenarios.rostering import candidate_patterns

        rows = []
        for r in plan.roster():
            pats = {p.code: p for p in candidate_patterns(plan.pattern, list(plan.table[r.area]))}
            for code, n in r.units.items():
                p = pats[code]
                week = list(p.week) if p.week else ["team by team"] * 7
                rows.append(f"<tr><td>{_e(r.area)}</td><td>{_e(code)}</td><td>{_e(n)}</td><td>{_e(n * p.people)}</td>"
                            + "".join(f"<td>{_e(d or DASH)}</td>" for d in week) + "</tr>")
        body.append("<section><h2>People per area and working pattern</h2><table><tr><th>area</th><th>pattern</th>"
                    "<th>units</th><th>people</th>" + "".join(f"<th>{d}</th>" for d in
                                                             ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
                    + f"</tr>{''.join(rows)}</table></section>")
    if reserve is not None:
        body.append("<section><h2>Wartime reserve (on call)</h2><p class=note>People per area on call (备勤) on the "
                    f"role's rotation, beyond the peacetime roster: {_e(sum(reserve.values()))} in all"
                    + ("; wartime with them called in: " + _e(f"{surge_confirmed.mean:.1%} [{surge_confirmed.lo:.1%}, "
                                                                f"{surge_confirmed.hi:.1%}]")
                       if surge_confirmed is not None else "") + ".</p><table><tr><th>area</th><th>on call</th></tr>"
                    + "".join(f"<tr><td>{_e(a)}</td><td>{_e(n)}</td></tr>" for a, n in reserve.items())
                    + "</table></section>")
    front = [p for p in curve if p["efficient"]]
    chart = bar_chart("Cost/service: the efficient staffings", [str(p["people"]) for p in front],
                      [(plan.kpi, [Estimate(p["kpi"], p["lo"], p["hi"], 0) for p in front])],
                      x_label="people", y_label=plan.kpi, pct=True) if front else ""
    crows = "".join(f"<tr><td>{_e(p['step'])}</td><td>{_e(p['members'])}</td><td>{_e(p['people'])}</td>"
                    f"<td>{_e(format(p['cost_per_year'], ',.0f'))}</td><td>{_e(_fmt(p['kpi'], 'pct'))}</td>"
                    f"<td>{_e('yes' if p['efficient'] else '')}</td></tr>" for p in curve)
    body.append(f"<section><h2>Cost and service</h2><div class=charts>{chart}</div><table><tr><th>step</th>"
                f"<th>positions</th><th>people</th><th>CNY a year</th><th>{_e(plan.kpi)}</th><th>efficient</th></tr>"
                f"{crows}</table></section>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(f'streetbrain staffing: {plan.role}')}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
