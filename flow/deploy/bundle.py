"""The deploy step: BUILD/deploy/ holds everything needed to run the design from Python.

    deploy/
      driver.py        flow/deploy/driver.py, copied verbatim (numpy-only at import)
      io.json          the wire format and shapes the driver needs (io_spec)
      samples.npz      a few inputs and their expected top-1 from the numpy reference
      bnnflow.ipynb    a notebook: verify the samples, predict, measure throughput
      bnnflow.bit/.hwh the bitstream and hardware handoff, when the board step built them
"""
from __future__ import annotations

import io
import json
import shutil
import tomllib
import zipfile
from pathlib import Path

import numpy as np

from flow.core.assets import asset_path
from flow.core.intype import from_meta
from flow.core.wire import axi_bytes, beat_bytes
from flow.deploy import driver
from flow.ir.graph import DataflowGraph
from flow.ir.reference import design_streams, execute_numpy, wire_axes
from flow.sim.simulate import design_hash
from flow.sim.verify import verification_images

DEPLOY_DIR = "deploy"
SAMPLE_IMAGES = 16


def _input_values(graph: DataflowGraph) -> dict:
    """The integer values an input element takes and its wire code (x - lo) / stride."""
    t = from_meta(graph.meta("input"))
    return {"name": t.name.split()[0], "lo": t.lo, "hi": t.hi, "stride": t.stride,
            "meaning": "an input element is an integer lo, lo+stride, ..., hi; the wire carries (x - lo) / stride"}


def _stream(s, signed: bool = False) -> dict:
    return {"lanes": s.lanes, "elem_bits": s.bits, "beats": s.beats, "elems": s.elems, "signed": signed}


def board_uart_baud(board: str | None) -> int | None:
    """`uart_baud` from boards/<board>.toml (top level or one table down), when the board has one."""
    if board is None:
        return None
    try:
        path = asset_path("boards") / f"{board}.toml"
    except FileNotFoundError:  # a package without board files
        return None
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text())
    for table in (data, *[v for v in data.values() if isinstance(v, dict)]):
        if "uart_baud" in table:
            return int(table["uart_baud"])
    return None


def io_spec(graph: DataflowGraph, board: str | None = None, board_build: dict | None = None) -> dict:
    """The driver's view of the design: shapes, beat formats, output meaning, board facts."""
    s_in, s_out = design_streams(graph, logits=False)
    classes = design_streams(graph, logits=True)[1].elems
    out = graph.meta("output")
    shape = list(graph.meta("input")["shape"][1:])
    bb = board_build or {}
    return {
        "design_hash": design_hash(graph),
        "input_shape": shape,
        "input_convention": graph.meta("input")["convention"],
        "wire_order": graph.meta("input").get("wire_order", "NHWC") if len(shape) == 3 else
        graph.meta("input").get("wire_order", "flat"),
        "wire_axes": wire_axes(len(shape)),
        "input_values": _input_values(graph),
        "input_stream": _stream(s_in),
        "output_stream": _stream(s_out),
        "beat_bytes": {"in": beat_bytes(s_in.width), "out": beat_bytes(s_out.width)},
        "axi_bytes": {"in": axi_bytes(s_in.width), "out": axi_bytes(s_out.width)},
        "emits": "top1" if graph.ops()[-1].op_type == "LabelSelect" else "codes",
        "classes": classes,
        "logits": {"scale": out["scale"], "bias": out["bias"],
                   "meaning": "float logits = scale * integer logits + bias"},
        "board": bb.get("board", board),
        "uart_baud": bb.get("uart_baud") or board_uart_baud(bb.get("board", board)),
        "dma_max_bytes": bb.get("dma_max_bytes"),
        "bitstream": Path(bb["bitstream"]).name if bb.get("bitstream") else None,
        # pynq.Overlay reads the hardware handoff next to the bitstream, under the same stem
        "hwh": (Path(bb.get("bitstream") or "bnnflow.bit").stem + ".hwh") if bb.get("hwh") else None,
    }


def sample_set(graph: DataflowGraph, n: int = SAMPLE_IMAGES, pool: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """n images spread evenly over the first `pool` of the verify step's source (a class-sorted
    set gives every class), and their top-1 from the numpy reference."""
    images = verification_images(graph, pool)[0]
    images = images[np.linspace(0, len(images) - 1, min(n, len(images))).astype(np.int64)]
    return images, execute_numpy(graph, images)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez with fixed zip timestamps, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def notebook(spec: dict) -> dict:
    """The deploy notebook: PYNQ when it is importable (on a board), else the simulated board."""
    cells = [
        ("markdown", f"# bnnflow design {spec['design_hash']}\n\n"
                     f"Input: {spec['input_values']['name']} inputs shaped {tuple(spec['input_shape'])}; output: top-1 of "
                     f"{spec['classes']} classes. On a PYNQ board this notebook runs the bitstream "
                     "(`backend=\"pynq\"`); elsewhere it runs the build's Verilator model (`backend=\"sim\"`)."),
        ("code", "import importlib.util\n\nfrom driver import Accelerator\n\n"
                 "backend = \"pynq\" if importlib.util.find_spec(\"pynq\") else \"sim\"\n"
                 "acc = Accelerator(\".\", backend=backend)\nbackend"),
        ("code", "acc.verify()  # the shipped samples against the numpy reference's top-1"),
        ("code", "images, expected = acc.samples()\nprint(\"predicted\", acc.predict(images))\n"
                 "print(\"expected \", expected)"),
        ("code", "print(f\"{acc.throughput_test(n=200):.0f} images/s on the {backend} backend\")"),
    ]
    return {
        "cells": [{"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": text,
                   **({"execution_count": None, "outputs": []} if kind == "code" else {})}
                  for i, (kind, text) in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def write_deploy(graph: DataflowGraph, build_dir: Path, board: str | None = None,
                 board_build: dict | None = None) -> dict:
    """Write BUILD/deploy/ (replacing an older one); return the report's `deploy` record."""
    build_dir = Path(build_dir)
    out = build_dir / DEPLOY_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(driver.__file__, out / "driver.py")
    spec = io_spec(graph, board, board_build)
    copied = []
    for key in ("bitstream", "hwh"):
        rel = (board_build or {}).get(key)
        if rel:
            shutil.copyfile(build_dir / rel, out / spec[key])
            copied.append(spec[key])
    (out / driver.IO_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    images, top1 = sample_set(graph)
    save_npz(out / driver.SAMPLES_FILE, images=images, top1=top1.astype(np.int64))
    (out / "bnnflow.ipynb").write_text(json.dumps(notebook(spec), indent=1, sort_keys=True) + "\n")
    return {"dir": DEPLOY_DIR, "files": sorted(p.name for p in out.iterdir()), "bitstream": spec["bitstream"],
            "hwh": spec["hwh"], "samples": int(len(images)), "backends": list(driver.BACKENDS)}
