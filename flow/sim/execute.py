"""One entry point to execute a dataflow graph: `execute(graph, images, engine=...)`.

Engines: "numpy" (the exact integer reference, flow.ir.reference), "csim" (the generated HLS
C++ compiled with g++) and "rtlsim" (the compiled Verilator model of the generated RTL). All
take integer inputs (N, *input shape) of the graph's input type (flow.core.intype; uint8
pixels by default) and return top-1 indices (N,) int64, or integer logits (N, classes) int64
with `logits=True`. A model that ends in a quantizer gives its codes
(N, elements), a single-output model its decision (N,).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.ir.reference import (check_images, count_mismatches, execute_numpy, frame_outputs, image_chunks,
                               logits_to_float, to_wire)
from flow.sim.csim import run_csim
from flow.sim.simulate import run_rtlsim

ENGINES = ("numpy", "csim", "rtlsim")

# the reference's names, part of this module's API
__all__ = ["ENGINES", "execute", "execute_numpy", "check_images", "to_wire", "logits_to_float", "frame_outputs",
           "count_mismatches", "image_chunks"]


def execute(graph: DataflowGraph, images: np.ndarray, engine: str = "numpy", logits: bool = False,
            build_dir: Path | None = None, **kw) -> np.ndarray:
    if engine == "numpy":
        return execute_numpy(graph, images, logits)
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; supported: {', '.join(ENGINES)}")
    if build_dir is None:
        raise ValueError(f"the {engine} engine needs the build directory")
    run = run_rtlsim if engine == "rtlsim" else run_csim
    out, _stats = run(graph, build_dir, images, logits=logits, **kw)
    return out
