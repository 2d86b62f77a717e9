"""The battery through the command line as a user runs it: export to QONNX, `bnnflow build`
(with its own verification: numpy reference == RTL simulation), then `bnnflow run` with the
numpy and rtlsim engines on the same integer inputs, each compared with PyTorch: with exact
accumulation (the semantics bnnflow implements; counts that must be 0) and, reported beside it,
with PyTorch's own float32 accumulation (Battery.torch_outputs).

Outputs compared: top-1 class indices (`run`'s default), where rows whose PyTorch float logits tie
exactly at the maximum are counted separately (any tied index is accepted there; bnnflow, like
torch.argmax, documents the lowest); for a model ending in a bipolar quantizer, its code
(1 for +1, 0 for -1) per input."""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from _battery import BATTERY, export
from _cli import bnnflow

# name: {variant: (--target-cycles, inputs compared with PyTorch, of those through the RTL)}
PLAN = {
    "tfc_2w2a": {"small": (512, 16, 16), "full": (512, 200, 200)},
    "cybsec_mlp": {"small": (128, 8, 8), "full": (128, 200, 200)},
    "resnet18_4w4a": {"small": (16384, 4, 4), "full": (1_000_000, 50, 50)},
    "mobilenet_v1_4b": {"small": (16384, 4, 4), "full": (1_000_000, 50, 3)},  # frames 2-3 measure the interval
    "kws_conv1d": {"small": (2048, 8, 8), "full": (4096, 100, 100)},
    "mlp8_bias": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "cnn_asym": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "branch_add": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "branch_concat": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "mlp_per_channel": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "hardtanh_mlp": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "cnn_pool_variants": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "grouped_dw": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "conv1d_dilated": {"small": (2048, 8, 8), "full": (4096, 100, 100)},
    "inception_mix": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "binary_cnn_float_scales": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "layer_input_quant": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "batch4_export": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "avgpool_mid": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "mobilenet_v2_block": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "nhwc_flatten": {"small": (4096, 8, 8), "full": (4096, 100, 100)},
    "cnn_torchscript": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "fixed_point_cnn": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "signed_input_mlp": {"small": (1024, 8, 8), "full": (1024, 200, 200)},
    "resnet_conv_shortcut": {"small": (4096, 8, 8), "full": (16384, 100, 100)},
    "dw_separable_conv1d": {"small": (2048, 8, 8), "full": (4096, 100, 100)},
    "binary_weight_mlp": {"small": (1024, 8, 8), "full": (2048, 100, 100)},
    "relu6_hardtanh_mlp": {"small": (2048, 8, 8), "full": (2048, 100, 100)},
    "vgg_per_channel_relu": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "fully_conv_head": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
    "binary_cnn_padded": {"small": (8192, 8, 8), "full": (16384, 100, 100)},
}
ENGINES = ("numpy", "rtlsim")


@dataclass
class Outcome:
    name: str
    variant: str
    node_types: dict
    returncode: int = -1
    refusal: str | None = None
    report: dict = field(default_factory=dict)
    expected: np.ndarray | None = None
    ties: np.ndarray | None = None       # (N,) rows with an exact tie in PyTorch's logits
    allowed: np.ndarray | None = None    # (N, classes) indices PyTorch's maximum takes; None for codes
    outputs: dict = field(default_factory=dict)  # engine -> outputs on the first inputs
    plain: tuple | None = None           # (expected, ties, allowed) of PyTorch's own float32 accumulation

    @property
    def built(self) -> bool:
        return self.returncode == 0

    def mismatches(self, engine: str, plain: bool = False) -> int:
        """Inputs where `engine` disagrees with PyTorch (tie rows: with every tied index); with
        `plain`, with PyTorch's float32 accumulation rather than the exact one."""
        expected, _ties, allowed = self.plain if plain else (self.expected, self.ties, self.allowed)
        y = np.asarray(self.outputs[engine])
        n = len(y)
        if y.shape != (n,):
            return n
        if allowed is None:
            return int(np.sum(y != expected[:n]))
        inside = (y >= 0) & (y < allowed.shape[1])
        ok = inside.copy()
        ok[inside] = allowed[np.arange(n)[inside], y[inside]]
        return int(np.sum(~ok))

    def tie_rows_not_lowest(self, engine: str) -> int:
        y = self.outputs[engine]
        return int(np.sum(self.ties[: len(y)] & (y != self.expected[: len(y)])))


def node_types(path: Path) -> dict:
    return dict(collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node))


def refusal_sentence(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "(no message)"
    for prefix in ("bnnflow: error: ", "bnnflow build: error: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


def _outputs(path: Path) -> np.ndarray:
    """`run`'s output; one output per input written as (N, 1) is read as (N,)."""
    y = np.load(path)
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def check(name: str, variant: str, workdir: Path, seed: int = 0) -> Outcome:
    """Export, build and run one battery model; never raises on a refusal (it is recorded)."""
    target, n, n_rtl = PLAN[name][variant]
    entry = BATTERY[name](seed=seed, small=variant == "small")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    onnx_path = workdir / f"{name}.onnx"
    export(entry, onnx_path)
    out = Outcome(name, variant, node_types(onnx_path))
    build_dir = workdir / "build"
    res = bnnflow("build", onnx_path, "--out", build_dir, "--quiet", "--target-cycles", target,
                  "--verify-images", n_rtl, *entry.cli)
    out.returncode = res.returncode
    if res.returncode != 0:
        out.refusal = refusal_sentence(res.stderr)
        if entry.cli and out.refusal.startswith("unrecognized arguments"):  # what it says of the model itself
            res = bnnflow("build", onnx_path, "--out", workdir / "build-plain", "--quiet", "--target-cycles", target,
                          "--verify-images", n_rtl)
            out.refusal += f" (without {' '.join(entry.cli)}: " + (
                refusal_sentence(res.stderr) if res.returncode else "it builds") + ")"
        return out
    out.report = json.loads((build_dir / "report.json").read_text())
    x = entry.inputs(n, seed + 100)
    np.save(workdir / "x.npy", x)
    out.expected, out.ties, out.allowed = entry.torch_outputs(x)
    out.plain = entry.torch_outputs(x, exact_accumulation=False)
    for engine, count in (("numpy", n), ("rtlsim", n_rtl)):
        np.save(workdir / f"x_{engine}.npy", x[:count])
        res = bnnflow("run", build_dir, "--input", workdir / f"x_{engine}.npy", "--engine", engine,
                      "--output", workdir / f"y_{engine}.npy")
        if res.returncode != 0:
            out.refusal = f"run --engine {engine}: " + refusal_sentence(res.stderr)
            out.returncode = res.returncode
            return out
        out.outputs[engine] = _outputs(workdir / f"y_{engine}.npy")
    return out


def summary(o: Outcome) -> str:
    """One line: built and verified with mismatch counts, or refused with its sentence."""
    if not o.built:
        return f"refused: {o.refusal}"
    ver = o.report.get("verification", {})
    rtl = ver.get("rtlsim", {})
    parts = [f"build verify rtlsim-vs-numpy {rtl.get('mismatches')}/{rtl.get('images')}"]
    for engine in ENGINES:
        parts.append(f"{engine}-vs-pytorch {o.mismatches(engine)}/{len(o.outputs[engine])}")
    parts.append(f"numpy-vs-pytorch-float32-accumulation {o.mismatches('numpy', plain=True)}/{len(o.outputs['numpy'])}")
    n = len(o.outputs["rtlsim"])
    parts.append(f"numpy-vs-rtlsim {int(np.sum(o.outputs['numpy'][:n] != o.outputs['rtlsim']))}/{n}")
    if o.ties is not None and o.ties.any():
        parts.append(f"tie rows {int(o.ties.sum())}")
    est, meas = o.report.get("estimated_cycles_per_frame"), o.report.get("measured_cycles_per_frame")
    parts.append(f"cycles est {est} meas {meas}")
    return "built: " + ", ".join(parts)
