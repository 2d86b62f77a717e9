"""The fuzz loop: networks `first` .. `first + networks - 1` of a seed, each checked by
flow.fuzz.check; a failing one leaves a reproducer in OUT/fail-<i>/ (model.onnx, inputs.npy,
spec.json, each engine's outputs, README.md)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flow.fuzz.check import ReferenceHook, Result, check_network
from flow.fuzz.spec import Spec, random_spec


@dataclass
class FuzzConfig:
    networks: int
    seed: int
    out: Path
    images: int = 4
    per_structure: int = 1      # networks per structure (same design, other weights)
    csim_every: int = 10        # the C simulation on every C-th network (0: never)
    first: int = 0
    reference_hook: ReferenceHook | None = None


@dataclass
class Summary:
    networks: int = 0
    mismatches: int = 0
    failed: list = field(default_factory=list)   # (index, reproducer folder, detail)
    seconds: float = 0.0

    def line(self) -> str:
        return f"fuzz: {self.networks} networks, {self.mismatches} mismatches"


def specs(cfg: FuzzConfig) -> list[Spec]:
    """The specs of the run: network i has structure i // per_structure."""
    return [random_spec(cfg.seed, i, i // cfg.per_structure) for i in range(cfg.first, cfg.first + cfg.networks)]


@contextlib.contextmanager
def sim_cache(out: Path):
    """One compiled-simulator cache for the run (OUT/sim-cache) unless $BNNFLOW_SIM_CACHE is set:
    networks of one structure share their Verilator binary."""
    if os.environ.get("BNNFLOW_SIM_CACHE"):
        yield
        return
    os.environ["BNNFLOW_SIM_CACHE"] = str(Path(out).resolve() / "sim-cache")
    try:
        yield
    finally:
        del os.environ["BNNFLOW_SIM_CACHE"]


def run_fuzz(cfg: FuzzConfig, log: Callable[[str], None] = print) -> Summary:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    todo = specs(cfg)
    with sim_cache(out):
        for k, spec in enumerate(todo):
            csim = cfg.csim_every > 0 and spec.index % cfg.csim_every == 0
            res = run_one(spec, out, cfg.images, csim, cfg.reference_hook)
            summary.networks += 1
            summary.seconds += res.seconds
            where = ""
            if res.failed:
                summary.mismatches += 1
                folder = out / f"fail-{spec.index}"
                summary.failed.append((spec.index, folder, res.detail))
                where = f" -> {folder}: {res.detail.splitlines()[0]}"
            engines = "+".join(res.engines) or "-"
            log(f"[{k + 1}/{len(todo)}] net {spec.index} (structure {spec.structure}) {spec.summary()}: "
                f"{res.status} {engines} {res.seconds:.1f} s{where}")
    return summary


def run_one(spec: Spec, out: Path, images: int, csim: bool, reference_hook: ReferenceHook | None = None,
            x: np.ndarray | None = None) -> Result:
    """Check one network in OUT/work-<i>; keep it as OUT/fail-<i>/ with a reproducer if it fails."""
    work, fail = out / f"work-{spec.index}", out / f"fail-{spec.index}"
    for stale in (work, fail):
        shutil.rmtree(stale, ignore_errors=True)
    res = check_network(spec, work, images, csim, reference_hook, x)
    if res.failed:
        os.replace(work, fail)
        write_reproducer(res, fail)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return res


def write_reproducer(res: Result, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(res.spec.to_json() + "\n")
    if res.inputs is not None:
        np.save(folder / "inputs.npy", res.inputs)
    for engine, y in res.outputs.items():
        np.save(folder / f"outputs-{engine}.npy", y)
    kind = "logits" if res.spec.output == "logits" else "top-1"
    text = [f"# fuzz network {res.spec.index}: {res.status}", "", f"    {res.spec.summary()}", "",
            "What failed:", "", "    " + res.detail.replace("\n", "\n    "), "",
            "Files: model.onnx (the exported QONNX), inputs.npy (the integer inputs), spec.json (the spec), "
            f"outputs-<engine>.npy ({kind} of each engine that ran), build/ (the build directory).", "",
            "Replay:", "", f"    python -m flow.fuzz --spec {folder / 'spec.json'}", "",
            "or build it by hand:", "",
            f"    bnnflow build {folder / 'model.onnx'} --out BUILD"
            + (f" --input-type {res.spec.input_type}" if res.spec.input_type != "uint8" else "")
            + f" --target-cycles {res.spec.target_cycles}",
            f"    bnnflow run BUILD --input {folder / 'inputs.npy'} --engine rtlsim"
            + (" --logits" if res.spec.output == "logits" else ""), ""]
    (folder / "README.md").write_text("\n".join(text))
    (folder / "result.json").write_text(json.dumps({"status": res.status, "detail": res.detail,
                                                    "engines": res.engines}, indent=1) + "\n")
