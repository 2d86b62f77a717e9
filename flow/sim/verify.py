"""Bit-exact verification: PyTorch (when the model is at hand) == numpy reference == C
simulation of the HLS top (when requested) == RTL simulation, compared with array_equal on
integers, mismatch counts reported."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from flow.core.builddir import atomic_write_json
from flow.core.errors import UserError
from flow.core.intype import from_meta
from flow.ir.graph import DataflowGraph


CHECKED = ("numpy", "csim", "rtlsim", "pytorch_vs_numpy")


def digest(data: bytes | str) -> str:
    """sha256 (hex) of bytes, or of a text's UTF-8 bytes."""
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def file_digest(path: Path) -> str:
    return digest(Path(path).read_bytes())


def source_digests(folder: Path) -> dict[str, str]:
    """sha256 of every source (.sv) and memory file (.mem) directly in `folder`: what the
    simulator compiles and reads, and what the board projects copy."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name: file_digest(p) for p in sorted(folder.iterdir()) if p.suffix in (".sv", ".mem") and p.is_file()}


def sources_mismatch(expected: dict, folder: Path) -> str | None:
    """The first difference between `expected` (name -> sha256) and the sources in `folder`,
    as a sentence naming the file; None when they are the same files."""
    actual = source_digests(folder)
    for name in sorted(expected):
        if name not in actual:
            return f"{Path(folder) / name} is missing from the sources verification simulated"
        if actual[name] != expected[name]:
            return f"{Path(folder) / name} differs from the file verification simulated"
    extra = sorted(set(actual) - set(expected))
    if extra:
        return f"{Path(folder) / extra[0]} was not part of the sources verification simulated"
    return None


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def record_problem(rec, need_sources: bool = False) -> str | None:
    """Why a verification record does not show a pass (None when it does). The `passed`
    field is not trusted: pass or fail is counted from the mismatches of every engine."""
    if not isinstance(rec, dict):
        return "it is not a JSON object"
    if not _count(rec.get("images")) or rec["images"] < 1 or not isinstance(rec.get("design_hash"), str):
        return "it lacks the image count or the design hash"
    for key in CHECKED:
        if key in rec:
            entry = rec[key]
            if not isinstance(entry, dict) or not _count(entry.get("mismatches")):
                return f"its {key} entry has no mismatch count"
            if entry["mismatches"] or entry.get("logits_mismatches", 0):
                n = entry["mismatches"] or entry.get("logits_mismatches")
                return f"{key} has {n} mismatches" if _count(n) else f"its {key} entry has a bad mismatch count"
    if need_sources:
        if "rtlsim" not in rec:
            return "it has no RTL simulation"
        src = rec.get("sources")
        if not isinstance(src, dict) or not src or not all(
                isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in src.items()):
            return "it lacks the digests of the sources it simulated"
    return None


def load_record(build_dir: Path) -> tuple[dict | None, str | None]:
    """(BUILD/verification.json, None) or (None, why it cannot be used)."""
    path = Path(build_dir) / "verification.json"
    if not path.is_file():
        return None, "it has no verification record (verification.json)"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None, "its verification record (verification.json) is not readable JSON"
    return rec, None


def record_mismatch(rec, graph, build_dir: Path) -> str | None:
    """Why a verification record does not vouch for `graph` and BUILD/rtl/ (None when it
    does): its counts, its design hash, and the digest of every simulated source file."""
    from flow.sim.simulate import design_hash

    why = record_problem(rec, need_sources=True)
    if why is not None:
        return f"its verification record does not pass: {why}"
    current = design_hash(graph)
    if rec["design_hash"] != current:
        return f"its verification record is for design {rec['design_hash']}, not the current design {current}"
    return sources_mismatch(rec["sources"], Path(build_dir) / "rtl")


# the most images one verification runs: a bound on the memory of random or loaded images
MAX_IMAGES = 100_000


def verification_images(graph: DataflowGraph, n: int, test_data: str | None = None):
    """(inputs, labels or None, source description) for verification: the test data, the
    mnist subset for (1, 28, 28) pixel inputs, else random values of the input type."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_IMAGES:
        raise UserError(f"the number of verification images must be an integer from 1 to {MAX_IMAGES}, got {n!r}")
    shape = tuple(graph.meta("input")["shape"][1:])
    intype = from_meta(graph.meta("input"))
    if test_data is not None:
        from flow.train.data import load_dataset

        images, labels = load_dataset(test_data, split="test")
        if tuple(images.shape[1:]) != shape:
            raise UserError(f"test data {test_data} has images shaped {images.shape[1:]}, the model takes {shape}")
        why = intype.check(images[:n], f"test data {test_data}")
        if why is not None:
            raise UserError(why)
        return images[:n], labels[:n], str(test_data)
    if shape == (1, 28, 28) and intype.lo == 0 and intype.hi == 255:
        from flow.train.data import load_dataset

        from flow.train.data import class_interleaved

        images, labels = load_dataset("mnist-subset")  # stored sorted by class
        return (images[class_interleaved(labels)[:n]], None,
                "mnist-subset, every class in turn (training images; no accuracy claimed)")
    kind = "uint8" if intype.name == "uint8 pixels" else intype.name
    return intype.random(n, shape, seed=0), None, f"random {kind} (seed 0)"


def torch_logits(model, images: np.ndarray, input_scale: float | None = None) -> np.ndarray:
    import torch

    x = torch.from_numpy(images).float()
    x = x * np.float32(input_scale) if input_scale is not None else x / 255.0
    with torch.no_grad():
        return model.eval()(x).numpy()


def verify(graph: DataflowGraph, build_dir: Path, n: int, torch_model=None, test_data=None,
           log=print, stall_seed: int | None = None, engines=("numpy", "rtlsim")) -> tuple[dict, dict]:
    """Run every engine on `n` images; return (verification record, extra report fields)."""
    from flow.sim.execute import execute_numpy, logits_to_float
    from flow.sim.simulate import design_hash, run_rtlsim

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
        from flow.sim.csim import run_csim

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
        record["sources"] = source_digests(Path(build_dir) / "rtl")  # what was compiled and read
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
    log(f"verification: {n} images, " + ", ".join(f"{k} mismatches {record[k]['mismatches']}"
                                                   for k in checked if k in record))
    record["passed"] = record_problem(record) is None
    atomic_write_json(Path(build_dir) / "verification.json", record)
    return record, extra
