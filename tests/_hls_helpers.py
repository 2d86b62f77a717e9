"""Helpers of the HLS/C-simulation tests: dataflow graphs without the RTL steps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from flow.ir.graph import DataflowGraph


def lower(src, out: Path, target_cycles: int) -> DataflowGraph:
    """Run the build steps up to the stream-typed graph (no RTL, no verification) and save
    it as OUT/dataflow.onnx for the Python API (`bnnflow run` wants a finished build)."""
    from flow.pipeline.build import STEPS, BuildConfig, StepContext, run_in_memory

    cfg = BuildConfig(model=str(src), out=Path(out), target_cycles=target_cycles, progress=False)
    cfg.out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in STEPS]
    st = run_in_memory(StepContext(cfg), STEPS[: names.index("insert_dwc") + 1])
    st.graph.save(cfg.out / "dataflow.onnx")
    return st.graph


def brevitas_model(name: str, seed: int):
    from _models import randomize_norms
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    return randomize_norms(model, seed + 1)


def zoo_random(name: str, seed: int):
    """A zoo family with random weights (no training), for exactness tests."""
    from _models import randomize_norms
    from flow.train.zoo import build_model

    return randomize_norms(build_model(name, seed=seed), seed + 1)


def torch_top1(model, images: np.ndarray, scale: float | None = None) -> np.ndarray:
    x = torch.from_numpy(images).float()
    x = x * np.float32(scale) if scale is not None else x / 255.0
    with torch.no_grad():
        return model.eval()(x).numpy().argmax(axis=1)


def our_warnings(log: str, src_dir: Path) -> list[str]:
    """Compiler warnings whose location is one of our files (vendor headers excepted)."""
    src = str(Path(src_dir).resolve())
    return [ln for ln in log.splitlines() if "warning:" in ln and ln.startswith(src)]
