"""sweep.html: a sweep for people, and the Pareto fronts of sweep.json.

One self-contained page (inline CSS and SVG, no scripts, nothing fetched): frames/s against
LUTs for every complete point with its Pareto front (no other point is as fast for as few
LUTs), the same for accuracy where the points were verified on labelled images, and a table
of every point with its status and the reason of a failure. Rendered from the sweep.json
dict alone; every string from the spec or a report is escaped.
"""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

from flow.core.builddir import atomic_write_text
from flow.pipeline.report_html import _CSS, _num

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 360, 72, 16, 16, 44


def _plotted(rows: list[dict], metric: str) -> list[dict]:
    """Complete points with a LUT figure and a value of `metric`."""
    return [r for r in rows if r.get("status") == "complete" and isinstance(r.get("lut"), int | float)
            and isinstance(r.get(metric), int | float)]


def pareto_front(rows: list[dict], metric: str) -> list[dict]:
    """The complete points no other complete point dominates (as many or fewer LUTs and as
    high or higher `metric`, one of them strictly), by LUTs then `metric`, highest first."""
    pts = _plotted(rows, metric)
    front = [r for r in pts if not any(s["lut"] <= r["lut"] and s[metric] >= r[metric]
                                       and (s["lut"] < r["lut"] or s[metric] > r[metric]) for s in pts)]
    return sorted(front, key=lambda r: (r["lut"], -r[metric], r["name"]))


def _axis(values: list[float], lo_px: float, hi_px: float):
    """A map from data to pixels: logarithmic when the values span more than 20x, else linear."""
    lo, hi = min(values), max(values)
    log = lo > 0 and hi / lo > 20
    f = math.log10 if log else float
    a, b = f(lo), f(hi)
    if a == b:
        a, b = a - 1, b + 1
    return (lambda v: lo_px + (f(v) - a) / (b - a) * (hi_px - lo_px)), log


def _ticks(values: list[float], log: bool) -> list[float]:
    lo, hi = min(values), max(values)
    if log:
        return [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                if lo <= 10.0 ** k <= hi] or [lo, hi]
    return sorted({lo, (lo + hi) / 2, hi})


def _label(v: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def _frame(xs, ys, fx, fy, xlog, ylog, xname: str, yname: str) -> list[str]:
    out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" '
           'fill="none" stroke="#c9ced4"/>']
    for t in _ticks(xs, xlog):
        out.append(f'<text x="{fx(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{_label(t)}</text>')
    for t in _ticks(ys, ylog):
        out.append(f'<text x="{PAD_L - 6}" y="{fy(t) + 4:.1f}" text-anchor="end">{_label(t)}</text>')
    out.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 6}" text-anchor="middle">{escape(xname)}'
               f'{" (log)" if xlog else ""}</text>')
    out.append(f'<text x="14" y="{(PAD_T + H - PAD_B) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {(PAD_T + H - PAD_B) / 2})">{escape(yname)}{" (log)" if ylog else ""}</text>')
    return out


def scatter_svg(rows: list[dict], metric: str, yname: str) -> str:
    """The points (LUT, metric) with the Pareto front as a line; '' without a point to plot."""
    pts = _plotted(rows, metric)
    if not pts:
        return ""
    xs, ys = [r["lut"] for r in pts], [r[metric] for r in pts]
    fx, xlog = _axis(xs, PAD_L + 10, W - PAD_R - 10)
    fy, ylog = _axis(ys, H - PAD_B - 10, PAD_T + 10)
    front = pareto_front(rows, metric)
    on = {r["name"] for r in front}
    out = _frame(xs, ys, fx, fy, xlog, ylog, "LUT", yname)
    if len(front) > 1:
        line = " ".join(f"{fx(r['lut']):.1f},{fy(r[metric]):.1f}" for r in front)
        out.append(f'<polyline points="{line}" fill="none" stroke="#d9480f" stroke-width="2"/>')
    for r in sorted(pts, key=lambda r: r["name"]):
        colour = "#d9480f" if r["name"] in on else "#4c6ef5"
        tip = escape(f"{r['name']}: {_num(r['lut'])} LUT, {yname} {_num(r[metric], 4)}")
        out.append(f'<circle cx="{fx(r["lut"]):.1f}" cy="{fy(r[metric]):.1f}" r="5" fill="{colour}">'
                   f'<title>{tip}</title></circle>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'role="img" aria-label="{escape(yname)} against LUT">' + "".join(out) + "</svg>")


def _params(p: dict) -> str:
    return ", ".join(f"{k}={Path(v).name if k in ('model', 'folding', 'test_data') else v}" for k, v in sorted(p.items()))


def _table(rows: list[dict], front: set[str]) -> str:
    head = ("<tr><th class=l>point</th><th class=l>parameters</th><th class=l>status</th><th>cycles/frame "
            "(est / measured)</th><th>frames/s</th><th>LUT</th><th>FF</th><th>BRAM</th><th>DSP</th><th>Fmax MHz</th>"
            "<th>mismatches</th><th>accuracy</th><th>wall s</th><th class=l>reason</th></tr>")
    body = []
    for r in rows:
        res = r.get("resources") or {}
        mism = r.get("mismatches")
        cells = [f"<td class=l><code>{escape(r['name'])}</code>{' &#9733;' if r['name'] in front else ''}</td>",
                 f"<td class=l>{escape(_params(r.get('params') or {}))}</td>",
                 f"<td class=l>{escape(str(r.get('status')))}{' (resumed)' if r.get('resumed') else ''}</td>",
                 f"<td>{_num(r.get('estimated_cycles'))} / {_num(r.get('measured_cycles'))}</td>",
                 f"<td>{_num(r.get('fps'))}</td>",
                 *(f"<td>{_num(res.get(k))}</td>" for k in ("LUT", "FF", "BRAM", "DSP")),
                 f"<td>{_num(r.get('fmax_mhz'))}</td>",
                 f"<td>{escape(', '.join(f'{k} {v}' for k, v in mism.items())) if mism else 'n/a'}</td>",
                 f"<td>{_num(r.get('accuracy'), 4)}</td>", f"<td>{_num(r.get('wall_s'))}</td>",
                 f"<td class=l>{escape(str(r.get('reason') or ''))}</td>"]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def sweep_html(summary: dict) -> str:
    rows = summary.get("rows", [])
    counts = ", ".join(f"{n} {k}" for k, n in summary.get("counts", {}).items())
    parts = [f"<h1>bnnflow sweep</h1><p>{summary.get('points', len(rows))} points: {escape(counts)}. "
             f"Spec <code>{escape(str(summary.get('spec')))}</code>.</p>",
             "<h2>Frames/s against LUT</h2><p>Complete points; the Pareto front (orange, &#9733; in the table): no "
             "other point runs as many frames/s on as few LUTs. Frames/s are measured in the RTL simulation at the "
             "build clock (estimated where not measured).</p>",
             scatter_svg(rows, "fps", "frames/s") or "<p>No complete point to plot.</p>"]
    acc = scatter_svg(rows, "accuracy", "accuracy")
    if acc:
        parts += ["<h2>Accuracy against LUT</h2><p>Top-1 accuracy of the RTL simulation on the labelled "
                  "verification images.</p>", acc]
    parts += ["<h2>Points</h2>", _table(rows, {r["name"] for r in pareto_front(rows, "fps")})]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bnnflow sweep</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(parts) + "</body></html>\n")


def write_sweep_html(summary: dict, path: Path) -> None:
    atomic_write_text(Path(path), sweep_html(summary))
