"""`bnnflow sweep` and sharded `bnnflow verify` on real Dask clusters (flow.pipeline.sweep,
flow.pipeline.shard): a LocalCluster of worker processes, a separately started scheduler and
worker, a worker killed mid-point. The points are a tiny two-layer binary network; the
designs of a module share their compiled Verilator models through one simulator cache, so
each design compiles once."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _cli import ROOT, assert_refused, bnnflow
from _tiny_nets import Layer, TinyNet, save

from flow.core.builddir import is_build_dir, lock_is_held
from flow.core.errors import UserError
from flow.pipeline.build import load_build, read_report
from flow.pipeline.shard import sharded_csim, sharded_rtlsim
from flow.pipeline.sweep import SIM_CACHE, interleaved, run_sweep
from flow.pipeline.sweep_html import pareto_front, sweep_html
from flow.pipeline.sweep_spec import load_spec
from flow.sim.csim import run_csim
from flow.sim.simulate import run_rtlsim
from flow.sim.verify import verify

pytestmark = pytest.mark.sim
distributed = pytest.importorskip("distributed")

# two designs (16 and 32 cycles per frame), each verified on two image counts
SPEC4 = 'model = "tiny.onnx"\ntarget_cycles = [16, 32]\nverify_images = [4, 8]\n'


def _tiny(path: Path) -> Path:
    rng = np.random.default_rng(0)
    sign = lambda mh, mw: np.where(rng.integers(0, 2, (mh, mw)) > 0, 1, -1)  # noqa: E731
    bn = (rng.random(8) + 0.5, rng.standard_normal(8), rng.standard_normal(8), rng.random(8) + 0.5)
    return save(TinyNet(16, 0, [Layer(sign(8, 16), 0, 1.0, 0, bn, 0), Layer(sign(4, 8), 0, 1.0)]), path)


def comparable(rows: list[dict]) -> list[dict]:
    """The rows without what depends on the run (wall time, resumed)."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "resumed")} for r in rows]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep")
    _tiny(d / "tiny.onnx")
    (d / "spec.toml").write_text(SPEC4)
    return d


@pytest.fixture(scope="module")
def sim_cache(work) -> Path:
    return work / "simcache"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            distributed.Client(lc) as client:
        yield client


@pytest.fixture(scope="module")
def local_sweep(work, sim_cache, cluster) -> dict:
    return run_sweep(load_spec(work / "spec.toml"), work / "local", client=cluster, cache=sim_cache, progress=False)


@pytest.fixture(scope="module")
def serial_sweep(work, sim_cache, local_sweep) -> dict:
    """The same points built one by one in this process (the simulators are in the cache by now)."""
    return run_sweep(load_spec(work / "spec.toml"), work / "serial", cache=sim_cache, progress=False)


def test_four_point_sweep_on_a_local_cluster_equals_the_builds_one_by_one(work, sim_cache, local_sweep, serial_sweep):
    rows = local_sweep["rows"]
    assert [r["status"] for r in rows] == ["complete"] * 4, [r["reason"] for r in rows]
    assert comparable(rows) == comparable(serial_sweep["rows"])
    assert json.loads((work / "local" / "sweep.json").read_text()) == local_sweep
    for r in rows:
        d = work / "local" / r["dir"]
        assert is_build_dir(d) and read_report(d)["status"] == "complete"
        assert r["mismatches"] == {"numpy": 0, "rtlsim": 0} and r["verified_images"] == r["params"]["verify_images"]
        assert r["estimated_cycles"] == r["params"]["target_cycles"] and r["fps"] == 100e6 / r["measured_cycles"]
    fast, slow = ([r for r in rows if r["params"]["target_cycles"] == c] for c in (16, 32))
    assert fast[0]["lut"] > slow[0]["lut"] and fast[0]["fps"] > slow[0]["fps"]
    assert set(local_sweep["pareto"]) == {r["name"] for r in rows}  # each design is fast or small
    # two designs, two compiles: every point's simulator is one of the cache's, byte for byte
    compiled = sorted(p.parent.name for p in sim_cache.glob("bnnflow_top-*/harness"))
    assert len(compiled) == 2
    for r in rows:
        (local,) = (work / "local" / r["dir"] / "sim").glob("bnnflow_top-*/harness")
        assert local.read_bytes() == (sim_cache / local.parent.name / "harness").read_bytes()
    page = (work / "local" / "sweep.html").read_text()
    assert "<svg" in page and "<script" not in page and "src=" not in page and "Pareto" in page


def test_a_sweep_is_resumed_without_rebuilding_finished_points(work, sim_cache, serial_sweep, tmp_path):
    out = tmp_path / "moved"
    shutil.copytree(work / "serial", out)  # a sweep folder that moved is still resumed
    again = run_sweep(load_spec(work / "spec.toml"), out, cache=sim_cache, progress=False)
    assert all(r["resumed"] for r in again["rows"])
    assert comparable(again["rows"]) == comparable(serial_sweep["rows"])
    redo = again["rows"][1]
    (out / redo["dir"] / "report.json").unlink()  # an unfinished point: built again
    stamps = {r["name"]: (out / r["dir"] / "report.json").stat().st_mtime_ns for r in again["rows"] if r is not redo}
    third = run_sweep(load_spec(work / "spec.toml"), out, cache=sim_cache, progress=False)
    assert [r["resumed"] for r in third["rows"]] == [True, False, True, True]
    assert comparable(third["rows"]) == comparable(serial_sweep["rows"])
    assert stamps == {n: (out / r["dir"] / "report.json").stat().st_mtime_ns
                      for r in third["rows"] if (n := r["name"]) in stamps}


def test_sweep_on_a_separately_started_scheduler_and_worker(work, sim_cache, serial_sweep, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sched_file, log = tmp_path / "scheduler.json", open(tmp_path / "dask.log", "w")  # noqa: SIM115
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                               "--scheduler-file", str(sched_file)],
                              env=env, stdout=log, stderr=log)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard"], env=env, stdout=log, stderr=log))
        res = bnnflow("sweep", work / "spec.toml", "--out", tmp_path / "out", "--scheduler", address,
                      "--sim-cache", sim_cache, "--quiet")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
    assert res.returncode == 0, (res.stdout, res.stderr, (tmp_path / "dask.log").read_text()[-3000:])
    assert "4 points: 4 complete" in res.stdout
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    assert comparable(rows) == comparable(serial_sweep["rows"])


def _hold(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _wait(cond, what: str, limit: float = 90.0):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_worker_killed_mid_point_is_retried_and_every_point_completes(work, sim_cache, serial_sweep, tmp_path):
    """Each point waits, mid-build (its build directory locked), for its simulator in a
    cache whose compile locks this test holds; one worker is then killed (SIGKILL), the
    simulators are put in the cache and the locks let go."""
    cache, out = tmp_path / SIM_CACHE, tmp_path / "out"
    designs = sorted(exe.parent for exe in sim_cache.glob("bnnflow_top-*/harness"))
    assert len(designs) == len({r["design_hash"] for r in serial_sweep["rows"]})
    fds = [_hold(cache / f"{d.name}.lock") for d in designs]  # flow.core.tools.cached_binary's compile locks
    found: dict = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            distributed.Client(lc) as client:
        sweep = threading.Thread(target=lambda: found.update(
            run_sweep(load_spec(work / "spec.toml"), out, client=client, cache=cache, progress=False)))
        sweep.start()
        try:
            def two_points_mid_build():
                dirs = list((out / "points").iterdir()) if (out / "points").is_dir() else []
                return sum(lock_is_held(d) is not None for d in dirs) == 2
            _wait(two_points_mid_build, "two points to start")
            victim = sorted(w for w, keys in client.processing().items() if keys)[0]
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            _wait(lambda: victim not in client.scheduler_info()["workers"], "the scheduler to lose the worker")
        finally:
            for entry in designs:
                shutil.copytree(entry, cache / entry.name, dirs_exist_ok=True)
            for fd in fds:
                os.close(fd)
            sweep.join(timeout=180)
    assert not sweep.is_alive()
    assert [r["status"] for r in found["rows"]] == ["complete"] * 4, [r["reason"] for r in found["rows"]]
    assert comparable(found["rows"]) == comparable(serial_sweep["rows"])


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(work, sim_cache, local_sweep, tmp_path):
    (tmp_path / "bad.json").write_text("{ not json")
    (tmp_path / "spec.toml").write_text(f'model = "{work / "tiny.onnx"}"\n[[point]]\ntarget_cycles = 16\n'
                                        '[[point]]\nfolding = "bad.json"\n')
    res = bnnflow("sweep", tmp_path / "spec.toml", "--out", tmp_path / "out", "--workers", "0",
                  "--sim-cache", sim_cache, "--quiet")
    assert res.returncode == 1, (res.stdout, res.stderr)
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["complete", "failed"]
    assert "bad.json" in rows[1]["reason"] and "bad.json" in res.stderr and "Traceback" not in res.stderr
    assert "1 complete, 1 failed" in res.stdout


def test_sharded_rtl_simulation_equals_the_single_process_one(work, local_sweep, cluster):
    build_dir = work / "local" / local_sweep["rows"][0]["dir"]
    graph = load_build(build_dir)
    images = np.random.default_rng(1).integers(0, 256, (301, 16), dtype=np.uint8)
    for seed in (None, 7):
        ref, _ = run_rtlsim(graph, build_dir, images, stall_seed=seed)
        got, stats = sharded_rtlsim(cluster, shards=4)(graph, build_dir, images, stall_seed=seed)
        assert np.array_equal(ref, got) and got.dtype == ref.dtype
        assert stats["shards"] == 4 and stats["frames"] == 301


def test_verify_with_workers_gives_the_single_process_record(work, local_sweep):
    build_dir = work / "local" / local_sweep["rows"][1]["dir"]
    one = verify(load_build(build_dir), build_dir, 60, log=lambda m: None).record
    many = bnnflow("verify", build_dir, "--images", "60", "--workers", "2")
    assert many.returncode == 0, many.stderr
    assert "sharded over 2 Dask worker threads" in many.stderr
    assert json.loads(many.stdout)["verification"] == one and one["rtlsim"]["mismatches"] == 0 and one["images"] == 60


@pytest.mark.slow
def test_sharded_c_simulation_equals_the_single_process_one(work, local_sweep, cluster):
    build_dir = work / "local" / local_sweep["rows"][0]["dir"]
    graph = load_build(build_dir)
    images = np.random.default_rng(2).integers(0, 256, (200, 16), dtype=np.uint8)
    for logits in (False, True):
        ref, _ = run_csim(graph, build_dir, images, logits=logits)
        got, stats = sharded_csim(cluster, shards=3)(graph, build_dir, images, logits=logits)
        assert np.array_equal(ref, got) and stats["shards"] == 3


# -- the spec and the report ---------------------------------------------------------------

BAD_SPECS = [
    ("model = [\n", "not valid TOML"),
    ('model = "tiny.onnx"\ncolour = 3\n', "unknown key 'colour'"),
    ('model = "tiny.onnx"\ntarget_cycles = []\n', "empty list"),
    ('model = "tiny.onnx"\ntarget_cycles = 0\n', "target_cycles must be"),
    ('model = "tiny.onnx"\ntarget_fps = true\n', "target_fps must be"),
    ('model = "missing.onnx"\n', "does not exist"),
    ('model = "tiny.onnx"\nfolding = "missing.json"\n', "does not exist"),
    ('model = "tiny.onnx"\nsynth = "virtex2"\n', "synth"),
    ('model = "tiny.onnx"\nboard = "no-such-board"\n', "no-such-board"),
    ('model = "tiny.onnx"\ninput_type = "int3x"\n', "input_type"),
    ('model = "tiny.onnx"\nverify_images = 1000000\n', "verify_images"),
    ('target_cycles = 16\n', "no model"),
    ('model = "tiny.onnx"\ntarget_cycles = 16\ntarget_fps = 100.0\n', "more than one folding goal"),
    ('model = "tiny.onnx"\ntarget_cycles = 16\n[[point]]\ntarget_cycles = 32\n', "also given at the top level"),
    ('model = "tiny.onnx"\n[[point]]\ntarget_cycles = [16, 32]\n', "one value"),
    ('model = "tiny.onnx"\nverify_images = [4, 4]\n', "the same build"),
    ('model = "tiny.onnx"\npoint = 3\n', "[[point]] tables"),
    ('model = "tiny.onnx"\ntarget_cycles = [' + ", ".join(str(i) for i in range(1, 102)) + "]\n"
     'verify_images = [' + ", ".join(str(i) for i in range(1, 102)) + "]\n", "more than 10000"),
]


@pytest.mark.parametrize(("text", "words"), BAD_SPECS)
def test_a_bad_spec_is_refused_before_anything_is_built(work, tmp_path, text, words):
    shutil.copyfile(work / "tiny.onnx", tmp_path / "tiny.onnx")
    (tmp_path / "spec.toml").write_text(text)
    with pytest.raises(UserError, match=None) as exc:
        load_spec(tmp_path / "spec.toml")
    assert words.lower() in str(exc.value).lower() and "\n" not in str(exc.value)


def test_the_command_line_refuses_a_bad_spec_in_one_sentence(work, tmp_path):
    shutil.copyfile(work / "tiny.onnx", tmp_path / "tiny.onnx")
    (tmp_path / "spec.toml").write_text('model = "tiny.onnx"\ntarget_cycles = 16\nfolding = "tiny.onnx"\n')
    assert_refused(bnnflow("sweep", tmp_path / "spec.toml", "--out", tmp_path / "out"), "folding goal")
    assert not (tmp_path / "out").exists()
    assert_refused(bnnflow("sweep", tmp_path / "none.toml", "--out", tmp_path / "out"), "does not exist")
    (tmp_path / "file").write_text("x")
    (tmp_path / "ok.toml").write_text('model = "tiny.onnx"\n')
    assert_refused(bnnflow("sweep", tmp_path / "ok.toml", "--out", tmp_path / "out", "--scheduler", "no port"),
                   "cannot reach the Dask scheduler")
    with pytest.raises(UserError, match="not a directory"):
        run_sweep(load_spec(tmp_path / "ok.toml"), tmp_path / "file", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no sweep"):
        run_sweep(load_spec(tmp_path / "ok.toml"), tmp_path / "full", progress=False)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_load_spec_crosses_the_grid_with_the_point_list(work, tmp_path):
    shutil.copyfile(work / "tiny.onnx", tmp_path / "tiny.onnx")
    (tmp_path / "f.json").write_text("{}")
    (tmp_path / "spec.toml").write_text('model = "tiny.onnx"\nsynth = ["none", "ecp5"]\n'
                                        '[[point]]\ntarget_cycles = 8\n[[point]]\nfolding = "f.json"\n')
    points = load_spec(tmp_path / "spec.toml").points
    model = str((tmp_path / "tiny.onnx").resolve())
    assert [p.params for p in points] == [
        {"model": model, "target_cycles": 8}, {"model": model, "folding": str((tmp_path / "f.json").resolve())},
        {"model": model, "synth": "ecp5", "target_cycles": 8},
        {"model": model, "synth": "ecp5", "folding": str((tmp_path / "f.json").resolve())}]
    assert len({p.name for p in points}) == 4 and all(p.name.startswith("tiny-") for p in points)
    assert [p.name for p in load_spec(tmp_path / "spec.toml").points] == [p.name for p in points]  # stable
    (tmp_path / "f.json").write_text('{"Defaults": {}}')  # a folding file that changed: new points
    renamed = [a.name != b.name for a, b in zip(points, load_spec(tmp_path / "spec.toml").points)]
    assert renamed == [False, True, False, True]


def _row(name, lut, fps, accuracy=None, status="complete"):
    return {"name": name, "lut": lut, "fps": fps, "accuracy": accuracy, "status": status, "params": {"model": name}}


def test_the_pareto_front_keeps_the_points_nothing_beats():
    rows = [_row("a", 100, 10.0, 0.9), _row("b", 200, 30.0, 0.8), _row("c", 150, 5.0, 0.95),
            _row("d", 200, 20.0, 0.7), _row("e", 50, 1.0), _row("f", 10, 99.0, status="failed"), _row("g", 100, 10.0)]
    assert [r["name"] for r in pareto_front(rows, "fps")] == ["e", "a", "g", "b"]
    assert [r["name"] for r in pareto_front(rows, "accuracy")] == ["a", "c"]
    page = sweep_html({"rows": rows + [_row("<x>", None, None, status="failed")], "points": 8, "counts": {}})
    assert page.count("<svg") == 2 and "Accuracy against LUT" in page and "&lt;x&gt;" in page and "<x>" not in page
    assert sweep_html({"rows": [_row("a", 100, 10.0)], "points": 1, "counts": {}}).count("<svg") == 1


@pytest.mark.slow
def test_labelled_images_give_the_accuracy_front_and_the_points_equal_plain_builds(tmp_path):
    """A zoo-sized MLP verified on labelled MNIST images at two foldings on an embedded
    cluster; every row equals the row of the same point built by `build` with its own steps
    (no shared simulator)."""
    from _models import zoo_mlp

    from flow.frontend.export import export_qonnx
    from flow.pipeline.build import build
    from flow.pipeline.shard import dask_client
    from flow.pipeline.sweep import point_config, point_row
    from flow.train.data import class_interleaved, load_dataset, write_idx

    export_qonnx(zoo_mlp(seed=0), tmp_path / "tfc.onnx")
    images, labels = load_dataset("mnist-subset")
    pick = class_interleaved(labels)[:300]
    (tmp_path / "labelled").mkdir()
    write_idx(tmp_path / "labelled" / "t10k-images-idx3-ubyte", images[pick, 0])
    write_idx(tmp_path / "labelled" / "t10k-labels-idx1-ubyte", labels[pick].astype(np.uint8))
    (tmp_path / "spec.toml").write_text('model = "tfc.onnx"\ntest_data = "labelled"\nverify_images = 100\n'
                                        "target_cycles = [256, 1024]\n")
    spec = load_spec(tmp_path / "spec.toml")
    summary = run_sweep(spec, tmp_path / "out", connect=lambda: dask_client(workers=2), progress=False)
    rows = summary["rows"]
    assert [r["status"] for r in rows] == ["complete"] * 2, [r["reason"] for r in rows]
    assert rows[0]["accuracy"] == rows[1]["accuracy"] and 0 <= rows[0]["accuracy"] <= 1  # the folding keeps top-1
    assert summary["pareto_accuracy"] == [min(rows, key=lambda r: r["lut"])["name"]]
    assert "Accuracy against LUT" in (tmp_path / "out" / "sweep.html").read_text()
    for point, row in zip(spec.points, rows):
        rep = build(point_config(point.params, tmp_path / "plain" / point.name))
        assert comparable([point_row(point, rep)]) == comparable([row])


def test_points_that_share_a_design_are_handed_out_apart(work):
    points = load_spec(work / "spec.toml").points  # (16, 4), (16, 8), (32, 4), (32, 8)
    order = [(p.params["target_cycles"], p.params["verify_images"]) for p in interleaved(list(points))]
    assert order == [(16, 4), (32, 4), (16, 8), (32, 8)]
