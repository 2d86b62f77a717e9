"""Bit-exact verification: PyTorch (when the model is at hand) == numpy reference == C
simulation of the HLS top (when requested) == RTL simulation, compared with array_equal on
integers, mismatch counts reported."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flow.errors import UserError
from flow.graph import DataflowGraph


# the most images one verification runs: a bound on the memory of random or loaded images
MAX_IMAGES = 100_000


def verification_images(graph: DataflowGraph, n: int, test_data: str | None = None):
    """(uint8 images, labels or None, source description) for verification."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_IMAGES:
        raise UserError(f"the number of verification images must be an integer from 1 to {MAX_IMAGES}, got {n!r}")
    shape = tuple(graph.meta("input")["shape"][1:])
    if test_data is not None:
        from flow.data import load_dataset

        images, labels = load_dataset(test_data, split="test")
        if tuple(images.shape[1:]) != shape:
            raise UserError(f"test data {test_data} has images shaped {images.shape[1:]}, the model takes {shape}")
        return images[:n], labels[:n], str(test_data)
    if shape == (1, 28, 28):
        from flow.data import load_dataset

        from flow.data import class_interleaved

        images, labels = load_dataset("mnist-subset")  # stored sorted by class
        return (images[class_interleaved(labels)[:n]], None,
                "mnist-subset, every class in turn (training images; no accuracy claimed)")
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), None, "random uint8 (seed 0)"


def torch_logits(model, images: np.ndarray, input_scale: float | None = None) -> np.ndarray:
    import torch

    x = torch.from_numpy(images).float()
    x = x * np.float32(input_scale) if input_scale is not None else x / 255.0
    with torch.no_grad():
        return model.eval()(x).numpy()


def verify(graph: DataflowGraph, build_dir: Path, n: int, torch_model=None, test_data=None,
           log=print, stall_seed: int | None = None, engines=("numpy", "rtlsim")) -> tuple[dict, dict]:
    """Run every engine on `n` images; return (verification record, extra report fields)."""
    from flow.execute import execute_numpy, logits_to_float
    from flow.simulate import design_hash, run_rtlsim

    images, labels, source = verification_images(graph, n, test_data)
    n = len(images)
    ref_np = execute_numpy(graph, images)
    ref_logits = execute_numpy(graph, images, logits=True)
    record: dict = {"images": n, "source": source}
    extra: dict = {}
    if torch_model is not None:
        tl = torch_logits(torch_model, images, graph.meta("input")["scale"])
        t_top = tl.argmax(axis=1)
        record["pytorch_vs_numpy"] = {"images": n, "mismatches": int(np.sum(t_top != ref_np))}
        out = graph.meta("output")
        affine = out["scale"] * ref_logits + out["bias"]
        record["pytorch_logits_vs_affine"] = {
            "images": n, "max_abs_error": float(np.max(np.abs(affine - tl))),
            "exact_table_mismatches": int(np.sum(np.any(logits_to_float(graph, ref_logits) != tl, axis=1))),
            "note": "PyTorch float32 logits vs scale*logits+bias of the integer logits"}
    record["numpy"] = {"images": n, "mismatches": 0, "reference": "itself"}
    if labels is not None:
        extra["accuracy"] = {"images": n, "source": source, "numpy": float(np.mean(ref_np == labels))}
    if "csim" in engines:
        from flow.csim import run_csim

        log(f"csim: {n} images through the C simulation of the HLS top")
        c_top, _stats = run_csim(graph, build_dir, images)
        c_logits, _stats = run_csim(graph, build_dir, images, logits=True)
        record["csim"] = {"images": n, "mismatches": int(np.sum(c_top != ref_np)), "reference": "numpy",
                          "logits_mismatches": int(np.sum(np.any(c_logits != ref_logits, axis=1)))}
        if torch_model is not None:
            record["csim"]["mismatches_vs_pytorch"] = int(np.sum(c_top != t_top))
        if labels is not None:
            extra["accuracy"]["csim"] = float(np.mean(c_top == labels))
    if "rtlsim" in engines:
        log(f"rtlsim: {n} images through the Verilator model")
        rtl_top, stats = run_rtlsim(graph, build_dir, images, stall_seed=stall_seed)
        record["rtlsim"] = {"images": n, "mismatches": int(np.sum(rtl_top != ref_np)), "reference": "numpy"}
        if torch_model is not None:
            record["rtlsim"]["mismatches_vs_pytorch"] = int(np.sum(rtl_top != t_top))
        extra["measured_cycles_per_frame"] = stats.get("cycles_per_frame")
        extra["first_frame_latency_cycles"] = stats.get("latency_cycles")
        extra["rtlsim_stats"] = {k: v for k, v in stats.items() if k != "frame_done"}
        if labels is not None:
            extra["accuracy"]["rtlsim"] = float(np.mean(rtl_top == labels))
    record["design_hash"] = design_hash(graph)
    checked = ("csim", "rtlsim", "pytorch_vs_numpy")
    bad = sum(record[k]["mismatches"] for k in checked if k in record)
    bad += record.get("csim", {}).get("logits_mismatches", 0)
    log(f"verification: {n} images, " + ", ".join(f"{k} mismatches {record[k]['mismatches']}"
                                                   for k in checked if k in record))
    record["passed"] = bad == 0
    (Path(build_dir) / "verification.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record, extra
