"""The numpy integer reference against qonnx's execute_onnx on the same QONNX graph:
images/s side by side, and agreement of top-1 (CNV-w1a1 and TFC-w1a1, BNN-PYNQ
topologies from brevitas_examples with random weights and BatchNorm statistics).

Both the wall clock and the CPU time of the process (all its threads) are reported, and the
load average before and after: on shared cores the wall clock depends on the other jobs, the
CPU time much less. --ops adds the CPU time of every step of CNV-w1a1 (chunks run one after
another on one thread); --numpy-only leaves torch's int8 GEMM out (the reference without torch).

    python benchmarks/bench_reference.py [--images 1000] [--qonnx-images 20] [--ops] [--numpy-only]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--qonnx-images", type=int, default=20)
    ap.add_argument("--ops", action="store_true", help="CPU ms/image of every step of CNV-w1a1")
    ap.add_argument("--numpy-only", action="store_true", help="without torch's int8 GEMM")
    args = ap.parse_args()
    if args.numpy_only:
        from flow.core import int8_gemm
        int8_gemm._state["torch"] = None  # as if torch were not installed
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    from _models import randomize_norms
    from flow.sim.execute import execute_numpy
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline

    tmp = Path(tempfile.mkdtemp(prefix="bnnflow-ref-"))
    print(f"{'model':<10}{'engine':<22}{'images':>8}{'seconds':>10}{'images/s':>11}{'speed-up':>10}"
          f"{'CPU ms/image':>14}{'CPU speed-up':>14}{'top-1 mismatches':>18}")
    for name, shape in (("tfc_1w1a", (1, 28, 28)), ("cnv_1w1a", (3, 32, 32))):
        torch.manual_seed(0)
        model, _ = model_with_cfg(name, pretrained=False)
        randomize_norms(model, 1)
        path = tmp / f"{name}.onnx"
        export_qonnx(model, torch.rand(1, *shape), str(path))
        mw = load_qonnx(path)
        graph = streamline(mw)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.images, *shape), dtype=np.uint8)
        (t_np, c_np), ref = timed(execute_numpy, graph, images)
        nq = min(args.qonnx_images, args.images)
        (t_q, c_q), q = timed(qonnx_top1, mw, images[:nq])
        r_np, r_q = args.images / t_np, nq / t_q
        cpu_np, cpu_q = c_np / args.images, c_q / nq
        print(f"{name:<10}{'numpy reference':<22}{args.images:>8}{t_np:>10.2f}{r_np:>11.1f}{r_np / r_q:>9.0f}x"
              f"{cpu_np * 1e3:>14.2f}{cpu_q / cpu_np:>13.0f}x{'(ref)':>18}")
        print(f"{name:<10}{'qonnx execute_onnx':<22}{nq:>8}{t_q:>10.2f}{r_q:>11.1f}{'1x':>10}"
              f"{cpu_q * 1e3:>14.2f}{'1x':>14}{int(np.sum(q != ref[:nq])):>18}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.ops:
        op_times(graph, images)


def op_times(graph, images: np.ndarray, reps: int = 3) -> None:
    """CPU ms per image of every step of the reference (an op, or a sliding window and the
    MVU after it run as one convolution): its chunks one after another on one thread, the
    median of `reps` passes over the images."""
    from threadpoolctl import threadpool_limits

    from flow.core.int8_gemm import torch_threads
    from flow.ir import reference

    ops = reference.design_ops(graph)
    steps = reference.plan(ops)
    chunk = reference.CHUNK_ELEMS * reference.graph_input_elems(graph) // max(
        max(o.in_stream().elems, o.out_stream().elems) for o in ops)
    parts = reference.image_chunks(graph, images, chunk)
    times: dict[str, list] = {"input codes (to_wire)": [], **{name: [] for *_, name in steps}}
    with threadpool_limits(1, user_api="blas"), torch_threads(1):
        for _ in range(reps):
            spent = dict.fromkeys(times, 0.0)
            for part in parts:
                c0 = time.process_time()
                env = {"global_in": reference.to_wire(graph, part)}
                spent["input codes (to_wire)"] += time.process_time() - c0
                for ins, outs, run, name in steps:
                    c0 = time.process_time()
                    y = run(*(env[t] for t in ins))
                    spent[name] += time.process_time() - c0
                    env.update(zip(outs, y if isinstance(y, tuple) else (y,)))
            for k, v in spent.items():
                times[k].append(v)
    print(f"\nCPU ms/image per step, chunks of {len(parts[0])} images, one thread:")
    for name, v in times.items():
        print(f"  {name:<28}{float(np.median(v)) / len(images) * 1e3:8.4f}")
    print(f"  {'total':<28}{sum(float(np.median(v)) for v in times.values()) / len(images) * 1e3:8.4f}")


def qonnx_top1(mw, images: np.ndarray) -> np.ndarray:
    """Top-1 of qonnx's execute_onnx, one image at a time (pixels / 255 as the model's input)."""
    from qonnx.core.onnx_exec import execute_onnx

    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    return np.array([np.argmax(execute_onnx(mw, {iname: im[None].astype(np.float32) / np.float32(255)})[oname])
                     for im in images])


def timed(fn, *args):
    """((wall s, CPU s of the process, all threads), fn(*args))."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return (time.perf_counter() - t0, time.process_time() - c0), out

if __name__ == "__main__":
    main()
