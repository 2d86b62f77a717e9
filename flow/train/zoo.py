"""The model zoo: one family file per topology family under models/, loaded by file path.

A family file defines ``MODELS = {name: entry}``; an entry is a dict with
``build`` (no-argument constructor returning an nn.Module), ``input_shape`` (C, H, W),
``dataset``, ``num_classes``, ``precision`` ({"input", "weights", "activations"} bits),
``defaults`` ({"epochs", "lr", "batch_size", ...}) and ``description``.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn

from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.train.nn import FixedAct, FixedAdd, FixedBatchNorm, FixedConv2d, FixedLinear, TensorNorm

CHECKPOINT_KEYS = ("model", "state_dict", "epoch", "optimizer", "metrics", "seed")

_cache: dict[str, dict] | None = None


def _load_family(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"flow_models_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    models = getattr(module, "MODELS", None)
    if not isinstance(models, dict):
        raise UserError(f"model family file {path} defines no MODELS dict.")
    return models


def _registry() -> dict[str, dict]:
    global _cache
    if _cache is None:
        registry: dict[str, dict] = {}
        for path in sorted(asset_path("models").glob("*.py")):
            if path.name.startswith("_"):
                continue
            for name, entry in _load_family(path).items():
                if name in registry:
                    raise UserError(f"model '{name}' is defined twice (again in {path.name}).")
                registry[name] = dict(entry, family=path.stem)
        _cache = registry
    return _cache


def list_models() -> list[str]:
    """Names of every model in the zoo, sorted."""
    return sorted(_registry())


def model_entry(name: str) -> dict:
    """The family file's entry for `name` (raises UserError for an unknown name)."""
    reg = _registry()
    if name not in reg:
        raise UserError(f"unknown model '{name}'; available: {', '.join(sorted(reg))}.")
    return reg[name]


def build_model(name: str, seed: int | None = None) -> nn.Module:
    """A freshly initialised model; with `seed`, initialised reproducibly (global RNG untouched)."""
    entry = model_entry(name)
    if seed is None:
        model = entry["build"]()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry["build"]()
    model.zoo_name = name
    return model


def _fixed(q) -> dict:
    ib = [int(v) for v in q.binary_point().tolist()]
    d = {"width": q.width, "int_bits": ib[0] if q.channels is None else ib, "signed": q.signed,
         "rounding": q.rounding, "overflow": q.overflow}
    if getattr(q, "k", None) is not None:
        d["k"] = q.k
    return d


def layer_precision(model: nn.Module) -> list[dict]:
    """One dict per quantizer / linear / conv / normalisation / pool / add layer, in forward order.

    Brevitas layers give bit widths (``weight_bits``, ``bits``); fixed-point layers give
    ``fixed`` = {width, int_bits (one or per channel), signed, rounding, overflow[, k]}."""
    layers = []
    for lname, m in model.named_modules():
        if isinstance(m, QuantLinear):
            layers.append({"name": lname, "op": "linear", "in_features": m.in_features,
                           "out_features": m.out_features,
                           "weight_bits": int(m.weight_quant.bit_width().item()),
                           "bias": m.bias is not None})
        elif isinstance(m, QuantConv2d):
            layers.append({"name": lname, "op": "conv", "in_channels": m.in_channels,
                           "out_channels": m.out_channels, "kernel": m.kernel_size[0],
                           "stride": m.stride[0], "weight_bits": int(m.weight_quant.bit_width().item()),
                           "bias": m.bias is not None})
        elif isinstance(m, FixedLinear):
            layers.append({"name": lname, "op": "linear", "in_features": m.in_features,
                           "out_features": m.out_features, "weight_bits": m.weight_quant.width,
                           "weight_fixed": _fixed(m.weight_quant), "bias": False})
        elif isinstance(m, FixedConv2d):
            layers.append({"name": lname, "op": "conv", "in_channels": m.in_channels,
                           "out_channels": m.out_channels, "kernel": m.kernel_size[0], "stride": m.stride[0],
                           "weight_bits": m.weight_quant.width, "weight_fixed": _fixed(m.weight_quant),
                           "bias": False})
        elif isinstance(m, QuantIdentity):
            layers.append({"name": lname, "op": "act_quant",
                           "bits": int(m.act_quant.bit_width().item())})
        elif isinstance(m, FixedAct) and not lname.endswith(".quant"):
            layers.append({"name": lname, "op": "act_quant", "bits": m.width, "fixed": _fixed(m)})
        elif isinstance(m, FixedAdd):
            layers.append({"name": lname, "op": "add", "bits": m.quant.width, "fixed": _fixed(m.quant)})
        elif isinstance(m, FixedBatchNorm):
            layers.append({"name": lname, "op": "batchnorm", "features": m.num_features,
                           "mul_fixed": _fixed(m.mul_quant), "add_fixed": _fixed(m.add_quant)})
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers.append({"name": lname, "op": "batchnorm", "features": m.num_features})
        elif isinstance(m, nn.MaxPool2d):
            layers.append({"name": lname, "op": "maxpool", "kernel": m.kernel_size})
        elif isinstance(m, TensorNorm):
            layers.append({"name": lname, "op": "tensornorm"})
    return layers


def _topology(layers: list[dict]) -> list:
    """MLPs: the layer widths [in, h1, ..., out]; others: tokens like 64c3, mp2, r16, 512."""
    if all(l["op"] != "conv" for l in layers):
        lin = [l for l in layers if l["op"] == "linear"]
        return [lin[0]["in_features"]] + [l["out_features"] for l in lin]
    tokens: list = []
    for l in layers:
        if l["op"] == "conv":
            tokens.append(f"{l['out_channels']}c{l['kernel']}")
        elif l["op"] == "maxpool":
            tokens.append(f"mp{l['kernel']}")
        elif l["op"] == "add":
            tokens.append("+")
        elif l["op"] == "linear":
            tokens.append(l["out_features"])
    return tokens


def model_info(name: str) -> dict:
    """Description of zoo model `name`: shapes, dataset, parameter count, per-layer precision."""
    entry = model_entry(name)
    model = build_model(name, seed=0)
    layers = layer_precision(model)
    return {
        "name": name,
        "family": entry["family"],
        "description": entry.get("description", ""),
        "input_shape": tuple(entry["input_shape"]),
        "dataset": entry["dataset"],
        "num_classes": entry["num_classes"],
        "precision": dict(entry["precision"]),
        "defaults": dict(entry["defaults"]),
        "params": sum(p.numel() for p in model.parameters()),
        "topology": _topology(layers),
        "layers": layers,
    }


def read_checkpoint(path, need=("model", "state_dict")) -> dict:
    """The dict a checkpoint written by flow.train.trainer holds, read with weights_only=True (no code
    runs), with the entries `need` present; anything else is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # no forbidden object named: not a pickle torch can read at all
            raise UserError(f"checkpoint '{path}' could not be read (truncated or not a PyTorch checkpoint).") from None
        raise UserError(f"checkpoint '{path}' holds Python objects other than tensors and plain containers; "
                        "only checkpoints written by bnnflow train are read.") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is a user error
        raise UserError(f"checkpoint '{path}' could not be read ({type(exc).__name__}; truncated or not a "
                        "PyTorch checkpoint).") from None
    missing = [k for k in need if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"checkpoint '{path}' lacks the {', '.join(repr(k) for k in missing)} entries of a "
                        "bnnflow checkpoint.")
    if not isinstance(ckpt["model"], str) or not isinstance(ckpt["state_dict"], dict):
        raise UserError(f"checkpoint '{path}' does not name a zoo model with a dict of weights.")
    return ckpt


def load_state(model: nn.Module, state: dict, path, name: str) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError):
        raise UserError(f"checkpoint '{path}' does not match model '{name}'.") from None


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by flow.train.trainer: (model in eval mode, meta without tensors)."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["model"])
    load_state(model, ckpt["state_dict"], path, ckpt["model"])
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer")}
    return model, meta


def cache_dir() -> Path:
    """Where trained zoo checkpoints are kept: $BNNFLOW_CACHE, else ~/.cache/bnnflow."""
    root = os.environ.get("BNNFLOW_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "bnnflow"



def pretrained_checkpoint(name: str) -> Path:
    """Where the checkpoint of zoo model `name` trained with its defaults is cached
    (flow.train.trainer.pretrained_model trains it when missing)."""
    model_entry(name)
    return cache_dir() / "zoo" / name / "best.pt"
