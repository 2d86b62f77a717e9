"""Bit-exact verification: PyTorch (when the model is at hand) == numpy reference == C
simulation of the HLS top (when requested) == RTL simulation, compared with array_equal on
integers, mismatch counts reported."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flow.core.builddir import atomic_write_json
from flow.core.errors import UserError
from flow.core.intype import from_meta
from flow.ir.graph import DataflowGraph
from flow.ir.reference import count_mismatches, execute_numpy, logits_to_float
from flow.sim.csim import run_csim
from flow.sim.simulate import design_hash, run_rtlsim
from flow.train.data import class_interleaved, load_dataset


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
        images, labels = load_dataset(test_data, split="test")
        if tuple(images.shape[1:]) != shape:
            raise UserError(f"test data {test_data} has images shaped {images.shape[1:]}, the model takes {shape}")
        why = intype.check(images[:n], f"test data {test_data}")
        if why is not None:
            raise UserError(why)
        return images[:n], labels[:n], str(test_data)
    if shape == (1, 28, 28) and intype.lo == 0 and intype.hi == 255:
        images, labels = load_dataset("mnist-subset")  # stored sorted by class
        return (images[class_interleaved(labels)[:n]], None,
                "mnist-subset, every class in turn (training images; no accuracy claimed)")
    kind = "uint8" if intype.name == "uint8 pixels" else intype.name
    return intype.random(n, shape, seed=0), None, f"random {kind} (seed 0)"


def torch_logits(model, images: np.ndarray, input_scale: float | None = None) -> np.ndarray:
    import torch  # deferred: verification without a PyTorch model must not load torch

    x = torch.from_numpy(images).float()
    x = x * np.float32(input_scale) if input_scale is not None else x / 255.0
    with torch.no_grad():
        return model.eval()(x).numpy()


def torch_reference(graph: DataflowGraph, tl: np.ndarray) -> np.ndarray:
    """What the compiled design must give for PyTorch's float output `tl` (N, outputs): the
    argmax (ties -> lowest index) of class scores, the codes of a final quantizer, the
    decision (output >= 0) of a single-output model."""
    out = graph.meta("output")
    kind = out.get("kind", "class")
    tl = np.asarray(tl).reshape(len(tl), -1)
    if kind == "decision":
        return (tl[:, 0] >= 0).astype(np.int64)
    if kind == "codes":
        u = np.rint((tl.astype(np.float64) / out["code_scale"] - out["code_o"]) / out["code_a"]).astype(np.int64)
        return u[:, 0] if u.shape[1] == 1 else u
    return tl.argmax(axis=1)


def _affine_check(graph: DataflowGraph, ref_logits: np.ndarray, tl: np.ndarray) -> dict:
    """PyTorch's float output against the integer logits' (or codes') affine map and exact table."""
    out = graph.meta("output")
    if out.get("kind") == "decision":
        return {"images": len(tl), "note": "a decision output has no float values to compare"}
    tl = np.asarray(tl).reshape(len(tl), -1)
    affine = out["scale"] * ref_logits + out["bias"]
    rec = {"images": len(tl), "max_abs_error": float(np.max(np.abs(affine - tl))),
           "note": "PyTorch float32 logits vs scale*logits+bias of the integer logits"}
    if out.get("exact_table", True):
        rec["exact_table_mismatches"] = int(np.sum(np.any(logits_to_float(graph, ref_logits) != tl, axis=1)))
    return rec


@dataclass(frozen=True)
class Verification:
    """What one verification run found: the record (verification.json) and the figures it
    measured on the way (the build's report.json carries them)."""

    record: dict
    accuracy: dict | None = None                    # labelled images: top-1 accuracy per engine
    measured_cycles_per_frame: float | None = None  # from the RTL simulation
    first_frame_latency_cycles: int | None = None
    rtlsim_stats: dict | None = None


def _pytorch_entries(graph: DataflowGraph, torch_model, images, ref_np, ref_logits) -> tuple[dict, np.ndarray]:
    """The PyTorch-vs-numpy entries of the record, and what the design must give by PyTorch
    (top-1, codes or decision: torch_reference)."""
    tl = torch_logits(torch_model, images, graph.meta("input")["scale"])
    t_top = torch_reference(graph, tl)
    return {"pytorch_vs_numpy": {"images": len(images), "mismatches": count_mismatches(t_top, ref_np)},
            "pytorch_logits_vs_affine": _affine_check(graph, ref_logits, tl)}, t_top


def _csim_entry(graph, build_dir, images, ref_np, ref_logits, t_top, csim=run_csim) -> tuple[dict, np.ndarray]:
    c_top, _stats = csim(graph, build_dir, images)
    c_logits, _stats = csim(graph, build_dir, images, logits=True)
    entry = {"images": len(images), "mismatches": count_mismatches(c_top, ref_np), "reference": "numpy",
             "logits_mismatches": count_mismatches(c_logits, ref_logits)}
    if t_top is not None:
        entry["mismatches_vs_pytorch"] = count_mismatches(c_top, t_top)
    return entry, c_top


def _rtlsim_entry(graph, build_dir, images, ref_np, t_top, stall_seed,
                  rtlsim=run_rtlsim) -> tuple[dict, np.ndarray, dict]:
    rtl_top, stats = rtlsim(graph, build_dir, images, stall_seed=stall_seed)
    entry = {"images": len(images), "mismatches": count_mismatches(rtl_top, ref_np), "reference": "numpy"}
    if t_top is not None:
        entry["mismatches_vs_pytorch"] = count_mismatches(rtl_top, t_top)
    return entry, rtl_top, stats


def verify(graph: DataflowGraph, build_dir: Path, n: int, torch_model=None, test_data=None,
           log=print, stall_seed: int | None = None, engines=("numpy", "rtlsim"), sims=None) -> Verification:
    """Run every engine on `n` images; write BUILD/verification.json and return what was found.
    `sims` may replace the simulators ({"rtlsim": f, "csim": g}, each with the signature of
    run_rtlsim / run_csim and the same outputs): flow.pipeline.shard runs them over workers."""
    sims = {"rtlsim": run_rtlsim, "csim": run_csim, **(sims or {})}
    images, labels, source = verification_images(graph, n, test_data)
    n = len(images)
    ref_np = execute_numpy(graph, images)
    ref_logits = execute_numpy(graph, images, logits=True)
    record: dict = {"images": n, "source": source}
    t_top = None
    if torch_model is not None:
        entries, t_top = _pytorch_entries(graph, torch_model, images, ref_np, ref_logits)
        record.update(entries)
    record["numpy"] = {"images": n, "mismatches": 0, "reference": "itself"}
    accuracy = {"images": n, "source": source, "numpy": float(np.mean(ref_np == labels))} if labels is not None else None
    stats: dict = {}
    if "csim" in engines:
        log(f"csim: {n} images through the C simulation of the HLS top")
        record["csim"], c_top = _csim_entry(graph, build_dir, images, ref_np, ref_logits, t_top, sims["csim"])
        if accuracy is not None:
            accuracy["csim"] = float(np.mean(c_top == labels))
    if "rtlsim" in engines:
        log(f"rtlsim: {n} images through the Verilator model")
        record["rtlsim"], rtl_top, stats = _rtlsim_entry(graph, build_dir, images, ref_np, t_top, stall_seed,
                                                         sims["rtlsim"])
        record["sources"] = source_digests(Path(build_dir) / "rtl")  # what was compiled and read
        if accuracy is not None:
            accuracy["rtlsim"] = float(np.mean(rtl_top == labels))
    record["design_hash"] = design_hash(graph)
    log(f"verification: {n} images, " + ", ".join(f"{k} mismatches {record[k]['mismatches']}"
                                                   for k in ("csim", "rtlsim", "pytorch_vs_numpy") if k in record))
    record["passed"] = record_problem(record) is None
    atomic_write_json(Path(build_dir) / "verification.json", record)
    return Verification(record, accuracy, stats.get("cycles_per_frame"), stats.get("latency_cycles"),
                        {k: v for k, v in stats.items() if k != "frame_done"} if stats else None)
