"""C simulation of the generated HLS top equals the numpy reference and PyTorch's top-1,
integer logits included, through the Python API and the CLI.

Default run: BNN-PYNQ TFC-w1a1 (random BatchNorm) through `bnnflow build/run/verify`, TFC-w2a2
and the zoo's tfc-w1a1 through `flow.sim.execute.execute(engine="csim")` on 100 images each, and
four more zoo families (K-hot, fixed point, residual, multi-bit) on 60 images each.
Slow tier: 500 images for every zoo model and every BNN-PYNQ topology of brevitas_examples."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _hls_helpers import brevitas_model, lower, torch_top1, zoo_random
from _models import export, mnist_images
from flow.cli import main
from flow.sim.execute import execute
from flow.frontend.export import export_qonnx
from flow.train.zoo import list_models, model_entry

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


def _images(shape, n, seed=5):
    if shape == MNIST:
        return mnist_images(n)
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _check_api(tmp_path, model, shape, target, n, zoo=False, top=True):
    """csim == numpy on logits (and on top-1 through LabelSelect's C++ unless `top` is False:
    one C++ compile less), numpy top-1 == PyTorch."""
    if zoo:  # bnnflow's own layers (QFX fixed point, K-hot) export through flow.frontend.export
        onnx = export_qonnx(model, tmp_path / "m.onnx", input_shape=(1, *shape))
    else:
        onnx = export(model, tmp_path / "m.onnx", shape)
    graph = lower(onnx, tmp_path / "out", target)
    x = _images(shape, n)
    logits = execute(graph, x, engine="csim", logits=True, build_dir=tmp_path / "out")
    assert np.array_equal(logits, execute(graph, x, engine="numpy", logits=True))
    want = execute(graph, x, engine="numpy")
    if top:
        assert np.array_equal(execute(graph, x, engine="csim", build_dir=tmp_path / "out"), want)
    assert int(np.sum(want != torch_top1(model, x, graph.meta("input")["scale"]))) == 0
    assert np.array_equal(want, logits.argmax(axis=1))
    return graph


@pytest.fixture(scope="module")
def tfc_build(tmp_path_factory):
    """BNN-PYNQ TFC-w1a1 with random weights and BatchNorm, built by the CLI with --hls-synth."""
    d = tmp_path_factory.mktemp("csim_tfc")
    model = brevitas_model("tfc_1w1a", seed=7)
    path = export(model, d / "tfc.onnx")
    return d, model, path


def test_cli_build_generates_hls_and_hls_synth_says_what_to_install(tfc_build, capsys, monkeypatch):
    d, _model, path = tfc_build
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vitis_hls here
    assert main(["build", str(path), "--out", str(d / "out"), "--quiet", "--target-cycles", "128",
                 "--verify-images", "20", "--hls-synth"]) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if "vitis_hls" in ln]
    assert len(said) == 1 and "install" in said[0] and "Vitis HLS" in said[0]
    hls = d / "out" / "hls"
    for name in ("bnnflow_top.cpp", "bnnflow_top.h", "bnnflow_top_params.h", "run_hls.tcl", "csim_main.cpp",
                 "bnnflow.h", "tb_in.bin", "tb_ref.bin"):
        assert (hls / name).is_file(), name
    tcl = (hls / "run_hls.tcl").read_text()
    for cmd in ("open_project", "set_top bnnflow_top", "add_files", "open_solution", "set_part xczu3eg-sbva484-1-e",
                "create_clock -period 10.000", "csynth_design", "cosim_design", "export_design -format ip_catalog"):
        assert cmd in tcl, cmd
    top = (hls / "bnnflow_top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "mode=axis port=s_axis" in top and "BIND_STORAGE" in top
    assert not list((hls).glob("vitis_hls.log"))  # nothing pretends to be vendor output


def test_cli_run_csim_equals_numpy_and_pytorch(tfc_build, tmp_path):
    d, model, _path = tfc_build
    out = d / "out"
    images = mnist_images(300)[200:300]
    np.save(tmp_path / "x.npy", images)
    got = {}
    for engine in ("numpy", "csim"):
        for logits in (False, True):
            y = tmp_path / f"{engine}{logits}.npy"
            assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", engine,
                         "--output", str(y), *(["--logits"] if logits else [])]) == 0
            got[engine, logits] = np.load(y)
    assert np.array_equal(got["csim", False], got["numpy", False])
    assert np.array_equal(got["csim", True], got["numpy", True])
    assert got["csim", True].shape == (100, 10)
    assert np.array_equal(got["csim", False], torch_top1(model, images))


def test_simulators_give_the_same_outputs_in_small_chunks(tfc_build):
    """Images reach rtlsim and csim in bounded chunks; 7 images a chunk gives what one run gives."""
    from flow.pipeline.build import load_build
    from flow.sim.csim import run_csim
    from flow.sim.simulate import run_rtlsim

    out = tfc_build[0] / "out"
    graph = load_build(out)
    x = mnist_images(50)
    for run in (run_rtlsim, run_csim):
        whole, stats = run(graph, out, x)
        parts, chunked = run(graph, out, x, chunk_bytes=7 * 784)
        assert np.array_equal(whole, parts), run.__name__
        assert "chunks" not in stats and chunked["chunks"] == 8 and chunked["frames"] == 50
    _y, stats = run_rtlsim(graph, out, x, chunk_bytes=7 * 784)
    assert len(stats["frame_done"]) == 50 and stats["frame_done"] == sorted(stats["frame_done"])


def test_cli_verify_with_csim(tfc_build, capsys):
    d, _model, _path = tfc_build
    assert main(["verify", str(d / "out"), "--engines", "numpy,csim", "--images", "60"]) == 0
    record = json.loads(capsys.readouterr().out)["verification"]
    assert record["csim"] == {**record["csim"], "images": 60, "mismatches": 0, "logits_mismatches": 0}


def test_tfc_w2a2_csim(tmp_path):
    _check_api(tmp_path, brevitas_model("tfc_2w2a", seed=3), MNIST, 512, 100)


@pytest.mark.slow  # the same topology as tfc_build (BNN-PYNQ TFC-w1a1) and its csim tests, in the default run
def test_zoo_tfc_w1a1_csim(tmp_path):
    _check_api(tmp_path, zoo_random("tfc-w1a1", seed=2), MNIST, 256, 100)


# Zoo families beyond the binary TFC in the default run: K-hot and fixed-point MLPs and the
# residual QFX network (a branching dataflow graph). The two MLPs add shift-add and multiplier
# MVUs and FixedScale, all on the logits path: their top-1 C++ (LabelSelect, which the others
# cover) runs in the slow tier only. The multi-bit-activation MLP sfc-w1a2 runs in the slow tier
# (test_tfc_w2a2_csim has 2-bit activations in the default run).
TOP_IN_SLOW_TIER = {"khot-mlp", "fx-mlp"}
ZOO_DEFAULT = ("khot-mlp", "fx-mlp", "qfx-resnet")
# The BNN-PYNQ topologies as brevitas_examples defines them (CNV, TFC, SFC, LFC at every
# precision it ships).
BNN_PYNQ = ("tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a",
            "cnv_1w1a", "cnv_1w2a", "cnv_2w2a")


def _target(shape) -> int:
    return 32768 if shape == CIFAR else 512


# the HLS functions each zoo family exercises (every one of them in the C simulation)
ZOO_OPS = {"qfx-resnet": {"Duplicate", "StreamFIFO", "AddStreams", "SlidingWindow", "MaxPool", "IntMVU", "BinaryMVU"},
           "khot-mlp": {"IntMVU", "FixedScale", "Thresholding"}}


@pytest.mark.parametrize("name", ZOO_DEFAULT)
def test_zoo_family_csim(tmp_path, name):
    shape = tuple(model_entry(name)["input_shape"])
    graph = _check_api(tmp_path, zoo_random(name, seed=6), shape, _target(shape), 60, zoo=True,
                       top=name not in TOP_IN_SLOW_TIER)
    assert ZOO_OPS.get(name, set()) <= {o.op_type for o in graph.ops()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(list_models()))
def test_every_zoo_model_csim_500(tmp_path, name):
    shape = tuple(model_entry(name)["input_shape"])
    _check_api(tmp_path, zoo_random(name, seed=4), shape, _target(shape), 500, zoo=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", BNN_PYNQ)
def test_bnn_pynq_topology_csim_500(tmp_path, name):
    shape = CIFAR if name.startswith("cnv") else MNIST
    _check_api(tmp_path, brevitas_model(name, seed=13), shape, _target(shape), 500)
