"""report.html: the build report for people.

One self-contained page (inline CSS and SVG, no scripts, nothing fetched): a header with
the model, design hash, status, verification per engine and the cycle figures; a
per-layer table; a bar chart of cycles per layer with the bottleneck highlighted; the
resource totals. Rendered from the report.json dict alone, so the same report always
gives the same bytes. Every string that comes from the graph or the config is escaped.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from flow.boards.step import summary

RESOURCES = ("LUT", "FF", "BRAM", "DSP")

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.status{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:600}
.ok{background:#d8f5dd;color:#155724}.bad{background:#fbdcdc;color:#7a1010}
table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid #e3e6ea;text-align:right}
th{background:#f4f6f8}td.l,th.l{text-align:left}
tr.bottleneck td{background:#fff2d6;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}dt{color:#57606a}dd{margin:0}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
svg text{font:12px system-ui,sans-serif}
"""


def _num(v, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def bottlenecks(layers: list[dict]) -> set[int]:
    """Indices of the slowest layers (every one that ties), empty without layers."""
    top = max((l["cycles"] for l in layers), default=None)
    return {i for i, l in enumerate(layers) if l["cycles"] == top}


def _engines(verification: dict | None) -> list[tuple[str, dict]]:
    if not verification:
        return []
    return sorted((k, v) for k, v in verification.items() if isinstance(v, dict) and "mismatches" in v)


def _board(r: dict) -> str:
    bb = r.get("board_build")
    if not bb:
        return escape(str(r.get("board") or "none (simulation only)"))
    gate = bb.get("gate") or {}
    note = "; gate overridden with --unverified" if gate.get("unverified_override") and not gate.get("passed") else ""
    return escape(summary(bb) + note)


def _header(r: dict) -> str:
    ok = r.get("status") == "complete"
    fps = (r.get("estimated_fps_at_clock") or {})
    meas = r.get("measured_cycles_per_frame")
    clock = fps.get("clock_mhz")
    meas_fps = clock * 1e6 / meas if (clock and meas) else None
    rows = [
        ("model", f"<code>{escape(str(r.get('model')))}</code>"),
        ("board", _board(r)),
        ("design hash", f"<code>{escape(str(r.get('design_hash')))}</code>"),
        ("estimated cycles / frame", _num(r.get("estimated_cycles_per_frame"))),
        ("measured cycles / frame", _num(meas)
         + (f" ({_num(r.get('cycles_error_pct'), 2)} % from the estimate)" if r.get("cycles_error_pct") is not None else "")),
        ("first-frame latency", f"{_num(r.get('first_frame_latency_cycles'))} cycles"),
        (f"frames / s at {_num(clock)} MHz", f"{_num(fps.get('fps'))} estimated, {_num(meas_fps)} measured"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    status = escape(str(r.get("status")))
    kind = "ok" if ok else "bad"
    return (f"<h1>bnnflow build report</h1><p><span class=\"status {kind}\">{status}</span></p>"
            f"<dl>{dl}</dl>")


def _verification(r: dict) -> str:
    engines = _engines(r.get("verification"))
    if not engines:
        return "<h2>Verification</h2><p>No verification was run.</p>"
    body = "".join(
        f"<tr><td class=\"l\">{escape(name)}</td><td>{_num(v.get('images'))}</td><td>{_num(v.get('mismatches'))}</td>"
        f"<td class=\"l\">{escape(str(v.get('reference', '')))}</td></tr>" for name, v in engines)
    acc = r.get("accuracy")
    acc_line = ""
    if acc:
        parts = ", ".join(f"{escape(k)} {acc[k]:.4f}" for k in sorted(acc) if isinstance(acc[k], float))
        acc_line = f"<p>Accuracy on {_num(acc.get('images'))} labelled images ({escape(str(acc.get('source')))}): {parts}</p>"
    return ("<h2>Verification</h2><table><tr><th class=\"l\">check</th><th>images</th><th>mismatches</th>"
            f"<th class=\"l\">against</th></tr>{body}</table>{acc_line}")


def _layer_table(layers: list[dict], hot: set[int]) -> str:
    head = "".join(f"<th>{k}</th>" for k in ("PE", "SIMD", "cycles") + RESOURCES)
    rows = []
    for i, l in enumerate(layers):
        res = l.get("resources", {})
        shape = "&times;".join(str(int(s)) for s in l.get("shape", [])) or "&ndash;"
        mark = " <span title=\"slowest layer\">&#9650; bottleneck</span>" if i in hot else ""
        cells = "".join(f"<td>{_num(res.get(k, 0))}</td>" for k in RESOURCES)
        cls = ' class="bottleneck"' if i in hot else ""
        rows.append(f"<tr{cls}><td>{i}</td>"
                    f"<td class=\"l\">{escape(str(l['op']))}</td><td class=\"l\">{escape(str(l['name']))}{mark}</td>"
                    f"<td>{shape}</td><td>{_num(l.get('pe', 1))}</td><td>{_num(l.get('simd', 1))}</td>"
                    f"<td>{_num(l['cycles'])}</td>{cells}</tr>")
    return ("<h2>Layers</h2><table><tr><th>#</th><th class=\"l\">op</th><th class=\"l\">name</th><th>shape</th>"
            f"{head}</tr>{''.join(rows)}</table>")


def cycles_chart(layers: list[dict], hot: set[int]) -> str:
    """Horizontal bars of cycles per frame, one per layer; the bottlenecks in orange."""
    bar_h, gap, label_w, bar_w = 18, 6, 260, 420
    height = len(layers) * (bar_h + gap) + gap
    top = max([l["cycles"] for l in layers] + [1])
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{label_w + bar_w + 90}\" height=\"{height}\" "
             f"role=\"img\" aria-label=\"cycles per frame of each layer\">"]
    for i, l in enumerate(layers):
        y = gap + i * (bar_h + gap)
        w = max(1, round(bar_w * l["cycles"] / top))
        fill = "#e8590c" if i in hot else "#4c78a8"
        name = escape(str(l["name"]))
        cls = ' class="bottleneck"' if i in hot else ""
        parts.append(f"<text x=\"{label_w - 6}\" y=\"{y + bar_h - 5}\" text-anchor=\"end\">{name}</text>"
                     f"<rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{bar_h}\" fill=\"{fill}\""
                     f"{cls}><title>{name}: {_num(l['cycles'])} cycles</title></rect>"
                     f"<text x=\"{label_w + w + 4}\" y=\"{y + bar_h - 5}\">{_num(l['cycles'])}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _totals(r: dict) -> str:
    res = r.get("resources") or {}
    cells = "".join(f"<td>{_num(res.get(k, 0))}</td>" for k in RESOURCES)
    return (f"<h2>Resources</h2><p>Source: {escape(str(res.get('tool', 'unknown')))}.</p><table><tr>"
            + "".join(f"<th>{k}</th>" for k in RESOURCES) + f"</tr><tr>{cells}</tr></table>")


def render_html(report: dict) -> str:
    """The page for one report.json dict."""
    layers = report.get("layers") or []
    hot = bottlenecks(layers)
    title = escape(f"bnnflow report: {report.get('model')}")
    chart = cycles_chart(layers, hot) if layers else "<p>No layers.</p>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>"
            + _header(report) + _verification(report) + _layer_table(layers, hot)
            + "<h2>Cycles per frame by layer</h2>" + chart + _totals(report) + "</body></html>\n")


def write_html(report: dict, path: Path) -> Path:
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path
