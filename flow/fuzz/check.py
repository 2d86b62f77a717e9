"""One fuzzed network through the normal build and every engine: the spec's Brevitas model is
exported to QONNX, built with flow.pipeline.build (import .. hls, the build directory's own
checks and invariants included), and its integer outputs from the numpy reference, the
Verilator simulation and (on request) the C simulation are compared with np.array_equal.

A network fails when the outputs differ, or when the flow refuses or crashes on it (every
pattern the generator draws is one the flow supports)."""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flow.core.errors import UserError
from flow.fuzz.model import build_flag, build_model, export, inputs, torch_logits
from flow.fuzz.spec import Spec
from flow.ir.graph import DataflowGraph
from flow.pipeline.build import BuildConfig, build, saved_steps
from flow.sim.execute import execute

# a hook on the reference's outputs (spec, outputs) -> outputs, for tests of the checker itself
ReferenceHook = Callable[[Spec, np.ndarray], np.ndarray]
TIE_RTOL = 1e-5


@dataclass
class Result:
    spec: Spec
    status: str = "ok"            # ok | mismatch | error
    detail: str = ""
    engines: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)   # engine -> integer outputs
    inputs: np.ndarray | None = None
    onnx: Path | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status != "ok"


def input_seed(spec: Spec) -> int:
    return spec.weight_seed + 7


def check_network(spec: Spec, work: Path, images: int, csim: bool = False,
                  reference_hook: ReferenceHook | None = None, x: np.ndarray | None = None) -> Result:
    """Export, build and run `spec` in `work`; the Result says whether every engine agreed."""
    t0 = time.monotonic()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    res = Result(spec, inputs=inputs(spec, images, input_seed(spec)) if x is None else x)
    stage = "export"
    try:
        model = build_model(spec)
        res.onnx = export(spec, model, work / "model.onnx")
        stage = "build"
        graph = compile_network(spec, res.onnx, work / "build")
        stage = "run"
        _run_engines(res, graph, work / "build", csim, reference_hook)
        if res.status == "ok":
            _check_torch(res, graph, torch_logits(spec, model, res.inputs))
    except UserError as exc:
        res.status, res.detail = "error", f"{stage}: the flow refused the network: {exc}"
    except Exception as exc:  # a crash anywhere is a finding, kept with its traceback
        res.status = "error"
        res.detail = f"{stage}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=12)}"
    res.seconds = time.monotonic() - t0
    return res


def compile_network(spec: Spec, onnx: Path, out: Path) -> DataflowGraph:
    """bnnflow build of the exported file up to the hls step; the graph of its last saved step."""
    cfg = BuildConfig(model=str(onnx), out=Path(out), input_type=build_flag(spec), target_cycles=spec.target_cycles,
                      verify_images=1, to_step="hls", progress=False, force=True)
    build(cfg)
    steps = saved_steps(Path(out))
    return DataflowGraph.load(steps[max(steps)])


def _run_engines(res: Result, graph: DataflowGraph, build_dir: Path, csim: bool,
                 reference_hook: ReferenceHook | None) -> None:
    logits = res.spec.output == "logits"
    ref = np.asarray(execute(graph, res.inputs, "numpy", logits=logits))
    if reference_hook is not None:
        ref = np.asarray(reference_hook(res.spec, ref.copy()))
    res.outputs["numpy"] = ref
    res.engines = ["numpy", "rtlsim"] + (["csim"] if csim else [])
    for engine in res.engines[1:]:
        res.outputs[engine] = np.asarray(execute(graph, res.inputs, engine, logits=logits, build_dir=build_dir))
    bad = []
    for engine in res.engines[1:]:
        got = res.outputs[engine]
        if not (got.dtype.kind in "iu" and ref.dtype.kind in "iu" and np.array_equal(got, ref)):
            rows = _differing_rows(ref, got)
            bad.append(f"{engine} differs from numpy on {rows} of {len(ref)} inputs")
    if bad:
        res.status, res.detail = "mismatch", "; ".join(bad)


def _check_torch(res: Result, graph: DataflowGraph, logits: np.ndarray) -> None:
    """The numpy reference's top-1 against PyTorch's on the inputs whose float logits have one
    clear maximum (a tie, or two logits within TIE_RTOL of each other, may go either way)."""
    top1 = np.asarray(execute(graph, res.inputs, "numpy"))
    res.outputs["torch"] = logits
    res.engines.append("torch")
    srt = np.sort(logits, axis=1)
    clear = srt[:, -1] - srt[:, -2] > TIE_RTOL * np.maximum(1.0, np.abs(srt[:, -1]))
    bad = clear & (top1 != logits.argmax(axis=1))
    if bad.any():
        res.status = "mismatch"
        res.detail = f"numpy top-1 differs from PyTorch on {int(bad.sum())} of {int(clear.sum())} untied inputs"


def _differing_rows(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"all (shapes {a.shape} and {b.shape})"
    return str(int((a.reshape(len(a), -1) != b.reshape(len(b), -1)).any(axis=1).sum()))
