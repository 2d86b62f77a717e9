"""What a build folder keeps of its simulators: the binaries alone (each at most 20 MB), no
object files, precompiled headers or Verilator output folders, after a build and runs of both
compiled simulators; and the compiles and runs leave nothing in the temporary folder."""
from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest

from flow.cli import main

pytestmark = pytest.mark.sim

MAX_BINARY_BYTES = 20 * 1024 * 1024
COMPILER_OUTPUT = (".o", ".a", ".d", ".gch", ".pch", ".mk", ".dat")


def test_build_keeps_only_simulator_binaries(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"  # this test's own temporary folder: the compiles' scratch goes there
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "b"
    assert main(["build", "tfc-w1a1", "--out", str(out), "--quiet", "--verify-images", "20"]) == 0
    x = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    for engine in ("rtlsim", "csim"):
        assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", engine,
                     "--output", str(tmp_path / "y.npy")]) == 0
    assert json.loads((out / "report.json").read_text())["verification"]["rtlsim"]["mismatches"] == 0

    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(COMPILER_OUTPUT)], "compiler output left in the build"
    assert not [p for p in out.rglob("*") if p.is_dir() and p.name in ("obj", "obj_dir", "sim_build")]
    binaries = [p for p in (out / "sim").rglob("*") if p.is_file()]
    assert {p.name for p in binaries} == {"harness", "csim"}, sorted(map(str, binaries))
    for p in binaries:
        assert p.stat().st_size <= MAX_BINARY_BYTES, (p, p.stat().st_size)
    left = [p.name for p in scratch.iterdir() if p.name.startswith(("bnnflow-", "rtlsim-", "csim-"))]
    assert not left, f"a compile or run left its scratch folder: {left}"  # (torch keeps its own caches there)
