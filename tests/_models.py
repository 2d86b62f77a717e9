"""Model fixtures shared by the compiler tests: binary MLPs with randomised BatchNorm."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def randomize_norms(model: torch.nn.Module, seed: int, negative_output_scale: bool = False) -> torch.nn.Module:
    """Random BatchNorm statistics with both signs of gamma; random TensorNorm."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            mod.weight.data = torch.randn(n, generator=g)
            mod.bias.data = torch.randn(n, generator=g) * 2
            mod.running_mean.data = torch.randn(n, generator=g) * 4
            mod.running_var.data = torch.rand(n, generator=g) * 16 + 0.05
        elif type(mod).__name__ == "TensorNorm":
            mod.running_mean.data = torch.randn(1, generator=g)
            mod.running_var.data = torch.rand(1, generator=g) * 4 + 0.5
            w = torch.rand(1, generator=g) + 0.5
            mod.weight.data = -w if negative_output_scale else w
            mod.bias.data = torch.randn(1, generator=g)
    return model.eval()


def calibrated(model: torch.nn.Module, shape: tuple, seed: int) -> torch.nn.Module:
    """BatchNorm statistics (gammas of both signs) and activation scales set from 32 random uint8
    images seen as p/255, the output layer's bias centred (tests/_battery.py `_fit`, `_balance`),
    so that the model's classes vary between inputs as a trained network's do: with
    randomize_norms alone most small test networks give one class for every input, and a
    top-1 comparison with them shows little."""
    from _battery import _balance, _fit

    x = np.random.default_rng(seed).integers(0, 256, (32, *shape)).astype(np.float32) / np.float32(255.0)
    _fit(model, torch.from_numpy(x), seed)
    _balance(model, torch.from_numpy(x))
    return model.eval()


def zoo_mlp(seed: int = 0, hidden=None, negative_output_scale: bool = False) -> torch.nn.Module:
    """The zoo's tfc-w1a1 (or the same family with other hidden widths), random weights."""
    from flow.train.zoo import build_model, model_entry

    if hidden is None:
        model = build_model("tfc-w1a1", seed=seed)
    else:
        torch.manual_seed(seed)
        fc = type(build_model("tfc-w1a1", seed=seed))
        model = fc(hidden=hidden)
        model.zoo_name = None
        _ = model_entry  # the family class comes from the zoo entry
    return randomize_norms(model, seed + 1, negative_output_scale)


def brevitas_tfc(seed: int = 0) -> torch.nn.Module:
    """BNN-PYNQ's own TFC-w1a1 from brevitas_examples, random weights and BatchNorm."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _cfg = model_with_cfg("tfc_1w1a", pretrained=False)
    return randomize_norms(model, seed + 1)


def export(model: torch.nn.Module, path: Path, shape=(1, 28, 28)) -> Path:
    from brevitas.export import export_qonnx

    model.eval()
    export_qonnx(model, torch.rand(1, *shape), str(path))
    return Path(path)


def mnist_images(n: int) -> np.ndarray:
    from flow.train.data import load_dataset

    from flow.train.data import class_interleaved

    images, labels = load_dataset("mnist-subset")  # sorted by class: take every class in turn
    return images[class_interleaved(labels)[:n]]


def torch_logits(model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images).float() / 255.0).numpy()
