"""report.html: a self-contained page for people next to report.json."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import escape

import pytest

from _models import brevitas_tfc, export
from flow.cli import main
from flow.pipeline.report_html import bottlenecks, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def tfc_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    path = export(brevitas_tfc(seed=7), d / "tfc.onnx")
    out = d / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "256",
                 "--verify-images", "10"]) == 0
    return out, json.loads((out / "report.json").read_text())


@pytest.mark.sim
def test_report_html_has_every_layer_and_a_chart(tfc_build):
    out, report = tfc_build
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    layers = report["layers"]
    rows = re.findall(r"<tr(?: class=\"bottleneck\")?><td>\d+</td>", page)
    assert len(rows) == len(layers)
    assert page.count("<svg") == 1 and page.count("<rect") == len(layers)
    for layer in layers:
        assert escape(layer["name"]) in page
    assert report["design_hash"] in page and "complete" in page
    # nothing fetched, nothing run
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


@pytest.mark.sim
def test_report_html_marks_the_bottleneck(tfc_build):
    out, report = tfc_build
    page = (out / "report.html").read_text(encoding="utf-8")
    hot = [report["layers"][i] for i in sorted(bottlenecks(report["layers"]))]
    assert hot and all(l["cycles"] == report["estimated_cycles_per_frame"] for l in hot)
    rows = re.findall(r"<tr class=\"bottleneck\">.*?</tr>", page)
    bars = re.findall(r"<rect [^>]*class=\"bottleneck\"><title>([^<]*)</title>", page)
    assert len(rows) == len(bars) == len(hot)
    for layer, row, bar in zip(hot, rows, bars):
        assert escape(layer["name"]) in row and "bottleneck" in row
        assert bar.startswith(escape(layer["name"]) + ":")
    assert page.count('class="bottleneck"') == 2 * len(hot)  # rows and bars only


@pytest.mark.sim
def test_report_html_is_deterministic_and_from_report_json(tfc_build):
    out, report = tfc_build
    assert render_html(report) == (out / "report.html").read_text(encoding="utf-8")
    assert render_html(report) == render_html(json.loads(json.dumps(report)))


def test_graph_strings_are_escaped():
    layer = {"name": "<img src=x onerror=alert(1)>", "op": "Binary&MVU", "shape": [4, 8], "pe": 1, "simd": 1,
             "cycles": 32, "resources": {"LUT": 5, "FF": 6, "BRAM": 0, "DSP": 0}}
    report = {"model": "<b>m</b>.onnx", "status": "complete", "design_hash": "\"x\"", "layers": [layer],
              "estimated_cycles_per_frame": 32, "measured_cycles_per_frame": None,
              "verification": {"rtlsim": {"images": 3, "mismatches": 0, "reference": "<numpy>"}},
              "resources": {"tool": "t", "LUT": 5, "FF": 6, "BRAM": 0, "DSP": 0}}
    page = render_html(report)
    for raw in ("<img", "<b>", "<numpy>", "Binary&MVU"):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;m&lt;/b&gt;.onnx" in page


def test_bottlenecks_are_the_slowest_layers():
    layers = [{"cycles": c} for c in (10, 40, 40, 5)]
    assert bottlenecks(layers) == {1, 2} and bottlenecks([]) == set()


@pytest.mark.slow
@pytest.mark.sim
def test_report_html_renders_in_headless_chromium(tfc_build, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the page was not rendered")
    out, _report = tfc_build
    png = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1200,900", f"--screenshot={png}", (out / "report.html").resolve().as_uri()]
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 1000, "chromium wrote no screenshot"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = _png_pixels(data)
    assert len(set(pixels)) > 4, "the screenshot is blank"


def _png_pixels(data: bytes) -> list:
    """Distinct scanline bytes of a PNG (enough to tell a blank page from a drawn one)."""
    import zlib

    pos, idat = 8, b""
    width = None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width = int.from_bytes(body[:4], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    step = 1 + 4 * width if len(raw) % (1 + 4 * width) == 0 else 1 + 3 * width
    return [raw[i + 1:i + step] for i in range(0, len(raw), step)]
