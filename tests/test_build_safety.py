"""Build-directory safety: what a build may write and delete (the marker and its manifest,
--force), the lock against a second build, atomic writes, honest resumes, and a gate that
covers the exact files that go into the bitstream."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _cli import ROOT, assert_refused, bnnflow
from _models import export, zoo_mlp
from flow.core.builddir import LOCK, MARKER


def snapshot(folder: Path) -> dict:
    """Every path below `folder` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def good_onnx(tmp_path_factory):
    return export(zoo_mlp(seed=1, hidden=(16,)), tmp_path_factory.mktemp("model") / "mlp.onnx")


@pytest.fixture(scope="module")
def built(tmp_path_factory, good_onnx):
    """One verified build; tests that change it work on a copy (its sim/ cache comes along)."""
    out = tmp_path_factory.mktemp("built") / "b"
    res = bnnflow("build", good_onnx, "--out", out, "--verify-images", 10, "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def copy_of(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(built, dst)
    return dst


def flip_weight(step: Path) -> None:
    """Another design: one weight of the first layer changed in a saved step graph."""
    from flow.ir.graph import DataflowGraph

    g = DataflowGraph.load(step)
    w = g.initializer("BinaryMVU_0_weights").copy()
    w.flat[0] = 1 - w.flat[0] if w.min() >= 0 else -w.flat[0]
    g.set_initializer("BinaryMVU_0_weights", w)
    g.save(step)


# ---------------------------------------------------------------------------------------
# where a build may go


def test_a_build_dir_carries_a_marker_listing_what_it_owns(built):
    marker = json.loads((built / MARKER).read_text())
    assert marker["bnnflow"] and {"rtl", "steps", "report.json", "dataflow.onnx", "sim"} <= set(marker["paths"])
    from flow.core.builddir import LOCK, OWNED

    assert set(marker["paths"]) <= set(OWNED)  # only names a build, run or verify writes
    assert {p.name for p in built.iterdir()} - {MARKER, LOCK} <= set(marker["paths"])  # and all it wrote


@pytest.mark.parametrize("case", ["checkout root", "checkout rtl library", "package", "root", "home", "empty"])
def test_forbidden_out_is_refused_and_nothing_is_touched(case, good_onnx):
    out, cwd = {"checkout root": (".", ROOT), "checkout rtl library": (ROOT / "rtl", None),
                "package": (ROOT / "flow", None), "root": ("/", None), "home": (Path.home(), None),
                "empty": ("", None)}[case]
    lib = snapshot(ROOT / "rtl")
    res = bnnflow("build", good_onnx, "--out", out, "--force", "--quiet", cwd=cwd)
    assert_refused(res, "--out" if case == "empty" else "refusing")
    assert snapshot(ROOT / "rtl") == lib
    assert not (ROOT / MARKER).exists() and not (ROOT / "rtl" / MARKER).exists()


def test_out_that_is_a_file_is_refused(tmp_path, good_onnx):
    (tmp_path / "f").write_text("mine")
    assert_refused(bnnflow("build", good_onnx, "--out", tmp_path / "f", "--quiet"), "is an existing file")
    assert_refused(bnnflow("build", good_onnx, "--out", tmp_path / "f" / "sub", "--quiet"), "is a file")
    assert (tmp_path / "f").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_that_is_not_writable_is_refused(tmp_path, good_onnx):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_refused(bnnflow("build", good_onnx, "--out", ro / "b", "--quiet"), "not writable")
    finally:
        ro.chmod(0o755)


def test_foreign_folder_is_refused_untouched(tmp_path, good_onnx):
    user = tmp_path / "user"
    for rel in ("rtl/mine.sv", "deploy/keep.py", "steps/notes.txt", "report.json", "a.txt"):
        (user / rel).parent.mkdir(parents=True, exist_ok=True)
        (user / rel).write_text(f"the user's {rel}\n")
    before = snapshot(user)
    assert_refused(bnnflow("build", good_onnx, "--out", user, "--quiet"), "not a bnnflow build directory", "--force")
    assert snapshot(user) == before
    # --force never takes over a path the build would write
    assert_refused(bnnflow("build", good_onnx, "--out", user, "--quiet", "--force"), "not written by bnnflow")
    assert snapshot(user) == before


def test_force_writes_alongside_a_foreign_folder(tmp_path, good_onnx):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    (user / "data").mkdir()
    (user / "data" / "x.bin").write_bytes(b"\x00\x01")
    res = bnnflow("build", good_onnx, "--out", user, "--verify-images", 5, "--quiet", "--force")
    assert res.returncode == 0, res.stderr
    assert (user / "notes.txt").read_text() == "mine\n" and (user / "data" / "x.bin").read_bytes() == b"\x00\x01"
    owned = set(json.loads((user / MARKER).read_text())["paths"])
    assert "notes.txt" not in owned and "data" not in owned and "report.json" in owned
    # a rebuild (now a build directory, no --force needed) deletes only what the manifest lists
    res = bnnflow("build", good_onnx, "--out", user, "--verify-images", 5, "--quiet", "--from-step", "deploy")
    assert res.returncode == 0, res.stderr
    assert (user / "notes.txt").read_text() == "mine\n" and (user / "data" / "x.bin").is_file()


# ---------------------------------------------------------------------------------------
# the lock


def test_second_concurrent_build_is_refused_naming_the_lock(built, tmp_path, good_onnx):
    out = copy_of(built, tmp_path)
    (out / "notes.txt").write_text("mine\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "flow.cli", "build", str(good_onnx), "--out", str(out),
                              "--verify-images", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    from flow.core.builddir import lock_is_held

    deadline = time.monotonic() + 60
    while lock_is_held(out) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock_is_held(out) == f"pid {first.pid}"
    second = bnnflow("build", good_onnx, "--out", out, "--verify-images", 5, "--quiet")
    verify = bnnflow("verify", out, "--images", 5)
    stdout, stderr = first.communicate(timeout=300)
    assert_refused(second, "in use", f"pid {first.pid}", LOCK)
    assert_refused(verify, "in use", f"pid {first.pid}")
    assert first.returncode == 0, stdout + stderr
    assert json.loads((out / "report.json").read_text())["status"] == "complete"
    assert (out / "notes.txt").read_text() == "mine\n"
    assert lock_is_held(out) is None  # released with the process; a dead holder never blocks


def test_replacing_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from flow.core.builddir import atomic_write_text, replacing

    target = tmp_path / "report.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


# ---------------------------------------------------------------------------------------
# resume


def test_resume_refuses_a_verification_record_of_another_design(built, tmp_path, good_onnx):
    """A build of design B stopped after its graph steps in a folder that held design A:
    A's verification.json must not be reported as B's."""
    out = copy_of(built, tmp_path)
    flip_weight(out / "steps" / "05_fifo.onnx")
    res = bnnflow("build", good_onnx, "--out", out, "--from-step", "deploy", "--quiet")
    assert_refused(res, "verification record is for design", "--from-step verify")
    assert not (out / "report.json").exists() and not (out / "dataflow.onnx").exists()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert_refused(bnnflow("run", out, "--input", x), "dataflow.onnx", "bnnflow build")


def test_run_refuses_a_dataflow_graph_left_by_another_build(built, tmp_path):
    out = copy_of(built, tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert bnnflow("run", out, "--input", x).returncode == 0
    flip_weight(out / "dataflow.onnx")
    assert_refused(bnnflow("run", out, "--input", x), "left by another build")
    res = bnnflow("verify", out, "--images", 4, "--engines", "numpy")  # verify goes on, and says so
    assert res.returncode == 0 and "warning" in res.stderr and "left by another build" in res.stderr


def test_stray_files_in_steps_are_ignored(built, tmp_path, good_onnx):
    out = copy_of(built, tmp_path)
    for name in ("notes.onnx", "xx_foo.onnx", "07_hls.onnx", "99_report.onnx", "11_deploy.onnx"):
        (out / "steps" / name).write_text("not a graph")
    res = bnnflow("build", good_onnx, "--out", out, "--from-step", "deploy", "--quiet")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "report.json").read_text())["status"] == "complete"
    assert all((out / "steps" / n).read_text() == "not a graph"
               for n in ("notes.onnx", "xx_foo.onnx", "07_hls.onnx", "11_deploy.onnx"))  # not the build's: kept


def test_to_step_stops_after_the_step_and_from_step_finishes_the_build(built, tmp_path, good_onnx):
    """--to-step NAME runs no step after NAME: report.json says where it stopped (not complete,
    so `run` refuses the build), and --from-step continues it to the same complete build."""
    out = copy_of(built, tmp_path)
    res = bnnflow("build", good_onnx, "--out", out, "--from-step", "rtl", "--to-step", "hls", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "stopped after step hls" in res.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["status"] == "stopped" and rep["stopped_after"] == "hls"
    assert rep["verification"] is None and rep["deploy"] is None and rep["layers"]
    assert (out / "hls").is_dir() and not (out / "verification.json").exists() and not (out / "deploy").exists()
    assert not (out / "dataflow.onnx").exists() and not (out / "report.html").exists()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert_refused(bnnflow("run", out, "--input", x), "dataflow.onnx", "bnnflow build")
    res = bnnflow("build", good_onnx, "--out", out, "--from-step", "verify", "--verify-images", 10, "--quiet")
    assert res.returncode == 0, res.stderr
    done, first = (json.loads((d / "report.json").read_text()) for d in (out, built))
    assert done["status"] == "complete" and "stopped_after" not in done
    assert done["design_hash"] == first["design_hash"] and done["layers"] == first["layers"]


def test_to_step_before_the_graph_exists_and_bad_step_names(built, tmp_path, good_onnx):
    out = tmp_path / "b"
    res = bnnflow("build", good_onnx, "--out", out, "--to-step", "import", "--quiet")
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["status"] == "stopped" and rep["stopped_after"] == "import" and "layers" not in rep
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["01_import.onnx"]
    assert_refused(bnnflow("build", good_onnx, "--out", out, "--to-step", "nope", "--quiet"),
                   "unknown step 'nope'", "--to-step", "import, streamline")
    assert_refused(bnnflow("build", good_onnx, "--out", out, "--from-step", "fold", "--to-step", "import", "--quiet"),
                   "--to-step import comes before --from-step fold")


def test_the_step_list_is_data_a_caller_extends(built, tmp_path, good_onnx):
    """A step of the caller's own, inserted after fold, runs in order, gets its invariant
    checked and its graph saved; the later steps keep their names and numbers shift."""
    import dataclasses

    from flow.pipeline.build import STEPS, BuildConfig, Step, build, with_step
    from flow.pipeline.steps import check_hw_graph

    seen = []

    def record_first_pe(ctx, st):
        seen.append(st.graph.ops()[0].attr("PE"))
        return dataclasses.replace(st, graph=st.graph)

    steps = with_step(STEPS, Step("mine", record_first_pe, check_hw_graph, saves_graph=True), after="fold")
    assert [s.name for s in steps][2:5] == ["fold", "mine", "insert_dwc"]
    with pytest.raises(ValueError, match="already in the list"):
        with_step(steps, steps[3], after="rtl")
    out = tmp_path / "b"
    rep = build(BuildConfig(model=str(good_onnx), out=out, progress=False, to_step="insert_dwc"), steps)
    assert rep["status"] == "stopped" and rep["stopped_after"] == "insert_dwc" and len(seen) == 1
    assert sorted(p.name for p in (out / "steps").iterdir()) == [
        "01_import.onnx", "02_streamline.onnx", "03_fold.onnx", "04_mine.onnx", "05_insert_dwc.onnx"]


def test_damaged_step_graph_is_one_sentence(built, tmp_path, good_onnx):
    out = copy_of(built, tmp_path)
    (out / "steps" / "05_fifo.onnx").write_bytes(b"\x08garbage")
    assert_refused(bnnflow("build", good_onnx, "--out", out, "--from-step", "deploy", "--quiet"),
                   "05_fifo.onnx", "not a readable graph")


def test_resume_without_a_marker_is_refused(tmp_path, good_onnx):
    (tmp_path / "steps").mkdir()
    assert_refused(bnnflow("build", good_onnx, "--out", tmp_path, "--from-step", "deploy", "--quiet"),
                   "not a bnnflow build directory")


def _unverified_without_a_record(built, tmp_path, good_onnx, *board) -> dict:
    out = copy_of(built, tmp_path)
    (out / "verification.json").unlink()
    res = bnnflow("build", good_onnx, "--out", out, *board, "--from-step", "board", "--quiet", "--unverified")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "no verification record" in res.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["status"] == "unverified" and rep["verification"] is None and rep["config"]["unverified"]
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert bnnflow("run", out, "--input", x).returncode == 0  # a finished build
    return rep


def test_unverified_from_the_board_step_without_a_record(built, tmp_path, good_onnx):
    """--from-step board --unverified with no verification.json: status unverified, no traceback."""
    _unverified_without_a_record(built, tmp_path, good_onnx)


@pytest.mark.slow
def test_unverified_board_build_without_a_record(built, tmp_path, good_onnx):
    """The same with a board (Vivado project and yosys figures): the override is recorded."""
    rep = _unverified_without_a_record(built, tmp_path, good_onnx, "--board", "ultra96-v2")
    gate = rep["board_build"]["gate"]
    assert gate["unverified_override"] and not gate["passed"] and "no verification record" in gate["reason"]
    assert not rep["board_build"]["sealed"]["sources_checked"]


# ---------------------------------------------------------------------------------------
# the gate covers the bitstream's sources


def _flip_mem(path: Path) -> None:
    text = path.read_text()
    i = next(i for i, c in enumerate(text) if c in "0123456789abcdefABCDEF")
    path.write_text(text[:i] + format(int(text[i], 16) ^ 1, "x") + text[i + 1:])


def test_tampered_weight_file_blocks_the_bitstream(built, tmp_path, good_onnx):
    out = copy_of(built, tmp_path)
    _flip_mem(out / "rtl" / "BinaryMVU_0_weights_file.mem")
    res = bnnflow("build", good_onnx, "--out", out, "--board", "ulx3s-85f", "--from-step", "board", "--quiet")
    assert_refused(res, "no bitstream", "BinaryMVU_0_weights_file.mem", "differs")
    assert not (out / "board").exists() and not (out / "report.json").exists()


def test_gate_checks_the_files_copied_into_the_board_project(built, tmp_path):
    from flow.boards import ecp5
    from flow.boards import vivado
    from flow.boards.catalog import load_board, seal_project, verification_gate
    from flow.pipeline.build import load_build
    from flow.core.errors import UserError

    out = copy_of(built, tmp_path)
    g = load_build(out)
    gate = verification_gate(g, out)
    assert gate["passed"] and set(gate["sources"]) == {p.name for p in (out / "rtl").glob("*.*")
                                                       if p.suffix in (".sv", ".mem")}
    board = load_board("ulx3s-85f")
    proj = ecp5.write_project(g, out, board)

    def seal():
        return seal_project(gate, out, proj / "src", ecp5.shell_files(g, board), ecp5.REWRITE, [proj / "top.lpf"])

    sealed = seal()  # the top as rewritten for yosys is accepted
    assert sealed["sources_checked"] and "top.lpf" in sealed["scripts"]
    _flip_mem(proj / "src" / "BinaryMVU_1_weights_file.mem")
    with pytest.raises(UserError, match="BinaryMVU_1_weights_file.mem differs"):
        seal()
    proj = ecp5.write_project(g, out, board)
    (proj / "src" / "extra.sv").write_text("module extra; endmodule\n")
    with pytest.raises(UserError, match="extra.sv was not part"):
        seal()
    proj = ecp5.write_project(g, out, board)
    (proj / "src" / "bnnflow_uart_tx.sv").write_text("// changed\n")
    with pytest.raises(UserError, match="bnnflow_uart_tx.sv differs"):
        seal()
    rec = vivado.build_bitstream(g, out, load_board("ultra96-v2"), 100.0, gate=gate)
    assert rec["sealed"]["sources_checked"] and set(rec["sealed"]["scripts"]) == {"package_ip.tcl", "build.tcl"}


@pytest.mark.parametrize("edit,why", [
    (lambda r: r["rtlsim"].update(mismatches=3), "rtlsim has 3 mismatches"),  # passed stays true
    (lambda r: r["rtlsim"].update(mismatches="0"), "no mismatch count"),
    (lambda r: r["rtlsim"].update(mismatches=True), "no mismatch count"),
    (lambda r: r.pop("sources"), "digests"),
    (lambda r: r.pop("rtlsim"), "no RTL simulation"),
    (lambda r: r.update(images="10"), "image count"),
    (lambda r: r.update(csim={"images": 10, "mismatches": 0, "logits_mismatches": 2}), "csim has 2"),
])
def test_a_record_with_any_mismatch_never_passes(built, tmp_path, edit, why):
    from flow.boards.catalog import verification_gate
    from flow.pipeline.build import load_build
    from flow.core.errors import UserError

    out = copy_of(built, tmp_path)
    rec = json.loads((out / "verification.json").read_text())
    assert rec["passed"] is True
    edit(rec)
    (out / "verification.json").write_text(json.dumps(rec))
    with pytest.raises(UserError, match=why):
        verification_gate(load_build(out), out)
    assert not verification_gate(load_build(out), out, unverified=True)["passed"]
