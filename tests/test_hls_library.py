"""The HLS stream library and the generated top: every op has its stream function in the library,
C++ that compiles warning-free with -Wall -Wextra (vendor headers excepted), and byte-identical
generation. (Every op's function bit-exact in C simulation: tests/test_csim.py, whose zoo families,
a residual CNN and a K-hot MLP among them, cover the ops TFC does not use.)"""
from __future__ import annotations

import filecmp

from _hls_helpers import brevitas_model, lower, our_warnings
from _models import export
from flow.sim.csim import CSim, ap_types_dir
from flow.codegen.hlsgen import library_functions, render, sources
from flow.ops import REGISTRY


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
