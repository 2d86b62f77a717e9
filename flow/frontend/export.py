"""PyTorch (Brevitas) model -> cleaned-up QONNX file, checked against PyTorch before it is written.

The exported graph has batch size input_shape[0] (1 by default) fixed in its Reshape; 1-bit
weights and activations appear as QONNX ``BipolarQuant`` nodes with scale 1, BatchNorm1d as
ONNX ``BatchNormalization`` and TensorNorm as Sub/Div/Mul/Add with scalar constants.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flow.core.errors import UserError

CHECK_IMAGES = 32
RTOL = 1e-4


class ExportCheckError(UserError):
    """The exported QONNX graph does not reproduce the PyTorch model."""


def random_images(n: int, input_shape, seed: int = 0) -> np.ndarray:
    """n deterministic random uint8 images shaped input_shape[1:]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *tuple(input_shape)[1:]), dtype=np.uint8)


def run_qonnx(model_wrapper, images: np.ndarray, batch: int = 1) -> np.ndarray:
    """Execute a QONNX graph with qonnx's executor on uint8 images (fed as images / 255)."""
    from qonnx.core.onnx_exec import execute_onnx

    iname = model_wrapper.graph.input[0].name
    oname = model_wrapper.graph.output[0].name
    x = images.astype(np.float32) / np.float32(255.0)
    outs = [execute_onnx(model_wrapper, {iname: x[i:i + batch]})[oname]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


def compare(model: nn.Module, model_wrapper, images: np.ndarray, batch: int = 1) -> dict:
    """Top-1 mismatches and logit differences between PyTorch (eval) and the QONNX graph."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(images.astype(np.float32) / np.float32(255.0))).numpy()
    got = run_qonnx(model_wrapper, images, batch)
    scale = max(1.0, float(np.abs(ref).max()))
    close = np.isclose(got, ref, rtol=RTOL, atol=RTOL * scale).all(axis=1)
    top1 = got.argmax(1) == ref.argmax(1)
    return {"images": len(images), "top1_mismatches": int((~top1).sum()),
            "logit_mismatches": int((~close).sum()),
            "max_abs_diff": float(np.abs(got - ref).max()), "reference": ref, "qonnx": got}


def export_qonnx(model: nn.Module, out_path, input_shape=(1, 1, 28, 28),
                 check_images: int = CHECK_IMAGES):
    """Export `model` to a cleaned-up QONNX file at `out_path` and return its Path.

    The graph is executed with qonnx on `check_images` deterministic random uint8 images
    (/255) and compared with PyTorch; the file is written only if top-1 agrees on every
    image and the logits agree within a relative 1e-4, else ExportCheckError is raised.
    """
    with _quiet():
        from brevitas.export import export_qonnx as brevitas_export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from flow.train.nn.qfx import check_exportable, exporting

    out_path = Path(out_path)
    input_shape = tuple(int(d) for d in input_shape)
    check_exportable(model)
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.onnx"
            with _quiet(), exporting(model):
                brevitas_export_qonnx(model, torch.zeros(input_shape), export_path=str(raw),
                                      verbose=False)
            mw = cleanup_model(ModelWrapper(str(raw)))
        _strip_torch_metadata(mw.model)
        name = getattr(model, "zoo_name", None)
        if name:
            mw.set_metadata_prop("bnnflow.model", name)
        if check_images:
            images = random_images(check_images, input_shape)
            result = compare(model, mw, images, batch=input_shape[0])
            if result["top1_mismatches"] or result["logit_mismatches"]:
                raise ExportCheckError(
                    f"exported QONNX graph disagrees with PyTorch on {result['top1_mismatches']} of "
                    f"{check_images} images by top-1 and {result['logit_mismatches']} by logits "
                    f"(max abs difference {result['max_abs_diff']:.3g}); nothing was written.")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out_path.with_name(out_path.name + ".tmp")
        mw.save(str(tmp_out))
        os.replace(tmp_out, out_path)
    finally:
        model.train(was_training)
    return out_path


def export_checkpoint(ckpt_or_name, out, check_images: int = CHECK_IMAGES) -> Path:
    """Export a checkpoint file, or a zoo model name (freshly initialised with seed 0)."""
    from flow.train import zoo

    source = str(ckpt_or_name)
    if source.endswith(".pt") or Path(source).is_file():
        model, meta = zoo.load_checkpoint(source)
        name = meta["model"]
    else:
        name = source
        model = zoo.build_model(name, seed=0)
    shape = (1, *zoo.model_entry(name)["input_shape"])
    return export_qonnx(model, out, input_shape=shape, check_images=check_images)


def _strip_torch_metadata(model_proto) -> None:
    """Drop the exporter's bulky pkg.torch.* metadata (graph signature dumps, node stacks)."""
    g = model_proto.graph
    holders = [model_proto, g, *g.input, *g.output, *g.value_info, *g.node, *g.initializer]
    for h in holders:
        if not hasattr(h, "metadata_props"):
            continue
        keep = [(p.key, p.value) for p in h.metadata_props if not p.key.startswith("pkg.torch")]
        if len(keep) != len(h.metadata_props):
            del h.metadata_props[:]
            for k, v in keep:
                h.metadata_props.add(key=k, value=v)


class _quiet:
    """Silence the exporter's chatter (torchvision registration notes, deprecation warnings)."""

    def __enter__(self):
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self._logger.setLevel(self._level)
        return False
