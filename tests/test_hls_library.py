"""The HLS stream library and the generated top: every op's stream function bit-exact in C
simulation (a residual CNN and a K-hot MLP cover the ops TFC does not use), C++ that compiles
warning-free with -Wall -Wextra (vendor headers excepted), and byte-identical generation."""
from __future__ import annotations

import filecmp

import numpy as np
import pytest

from _hls_helpers import brevitas_model, lower, our_warnings, torch_top1
from _models import export
from flow.sim.csim import CSim, ap_types_dir, run_csim
from flow.sim.execute import execute_numpy
from flow.codegen.hlsgen import library_functions, render, sources
from flow.ops import REGISTRY


def _zoo_graph(tmp_path, name, target):
    from flow.frontend.export import export_qonnx
    from flow.train.zoo import build_model

    model = build_model(name, seed=1).eval()
    return model, lower(export_qonnx(model, tmp_path / f"{name}.onnx"), tmp_path / "out", target)


@pytest.mark.parametrize("name,ops", [
    ("qfx-resnet", {"Duplicate", "StreamFIFO", "AddStreams", "SlidingWindow", "MaxPool", "IntMVU", "BinaryMVU"}),
    ("khot-mlp", {"IntMVU", "FixedScale", "Thresholding"}),
])
def test_zoo_family_csim_exact(tmp_path, name, ops):
    model, graph = _zoo_graph(tmp_path, name, 4096)
    assert ops <= {o.op_type for o in graph.ops()}
    x = np.random.default_rng(3).integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)
    top, _ = run_csim(graph, tmp_path / "out", x)
    logits, _ = run_csim(graph, tmp_path / "out", x, logits=True)
    assert np.array_equal(top, execute_numpy(graph, x))
    assert np.array_equal(logits, execute_numpy(graph, x, logits=True))
    assert np.array_equal(top, torch_top1(model, x, graph.meta("input")["scale"]))


def test_every_op_function_is_in_the_library():
    assert {cls.hls.function for cls in REGISTRY.values()} <= library_functions()


def test_generation_is_byte_identical_and_warning_free(tmp_path):
    """Two builds of the same ONNX give the same bytes; the C++ compiles without a warning in
    our files under -Wall -Wextra (the ap_types headers are included with -isystem)."""
    path = export(brevitas_model("tfc_2w2a", seed=21), tmp_path / "m.onnx")
    dirs = []
    for i in range(2):
        g = lower(path, tmp_path / f"b{i}", 256)
        dirs.append(render(g, tmp_path / f"b{i}" / "hls")["dir"])
    names = sorted(p.name for p in dirs[0].iterdir())
    assert names == sorted(p.name for p in dirs[1].iterdir())
    match, mismatch, errors = filecmp.cmpfiles(dirs[0], dirs[1], names, shallow=False)
    assert not mismatch and not errors and len(match) == len(names)
    info = render(g, dirs[0])
    sim = CSim(dirs[0], info["in"].width, info["out"].width, info["in"].beats, info["out"].beats,
               tmp_path / "sim")
    assert "-Wall" in sim.compile_cmd(tmp_path / "x") and "-Wextra" in sim.compile_cmd(tmp_path / "x")
    assert str(ap_types_dir()) in sim.compile_cmd(tmp_path / "x")
    sim.build()
    assert sim.compile_seconds > 0
    assert our_warnings(sim.compiler_output, dirs[0]) == []
    assert all(f.is_file() for f in sources(dirs[0]))
    # the cache: a second build of the same sources does not compile again
    again = CSim(dirs[1], info["in"].width, info["out"].width, info["in"].beats, info["out"].beats, tmp_path / "sim")
    assert again.build() == sim.binary and again.compile_seconds == 0.0
