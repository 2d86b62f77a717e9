"""Fixed-point MLPs on MNIST: K-hot (shift-add) weights, and the same with plain fixed point.

    x = 2x - 1 -> ap_fixed<8,1> input
    2 x [ linear 784/256 -> 256 (8-bit weights, learned binary point per output channel)
          -> fixed BatchNorm (8 bit) -> ap_ufixed<4,I> (a clipped ReLU, learned binary point) ]
    linear 256 -> 10 -> TensorNorm

khot-mlp keeps each integer weight to at most K=2 power-of-two terms (canonical signed
digits, see flow.ops.semantics.khot_terms), so every multiplication is <= 2 shift-adds;
fx-mlp is the same network with plain 8-bit fixed-point weights.
"""
from __future__ import annotations

import torch
from torch import nn

from flow.train.nn import FixedAct, FixedBatchNorm, FixedLinear, TensorNorm


class FixedMLP(nn.Module):
    def __init__(self, hidden=(256, 256), k: int | None = 2, weight_width: int = 8, act_width: int = 4,
                 num_classes: int = 10, in_features: int = 784):
        super().__init__()
        layers: list[nn.Module] = [FixedAct(8, int_bits=1.0, learn=False)]
        width = in_features
        for h in hidden:
            layers += [FixedLinear(width, h, weight_width, k=k), FixedBatchNorm(h, 8),
                       FixedAct(act_width, int_bits=2.0, signed=False)]
            width = h
        layers += [FixedLinear(width, num_classes, weight_width, k=k), TensorNorm()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(2.0 * x.reshape(x.shape[0], -1) - 1.0)


def _entry(k):
    weights = f"khot{k}x8" if k else "fx8"
    return {
        "build": lambda: FixedMLP(k=k),
        "input_shape": (1, 28, 28),
        "dataset": "mnist",
        "num_classes": 10,
        "precision": {"input": "fx8", "weights": weights, "activations": "ufx4"},
        "defaults": {"epochs": 10, "lr": 0.005, "batch_size": 100, "weight_decay": 0.0, "shift": 1},
        "description": (f"784-256-256-10 MLP, K-hot weights (<= {k} shift-adds per weight, 8-bit grid), "
                        "ap_fixed BatchNorm, ap_ufixed<4,I> activations") if k else
                       "784-256-256-10 MLP, ap_fixed<8,I> weights, ap_fixed BatchNorm, ap_ufixed<4,I> activations",
    }


MODELS = {"khot-mlp": _entry(2), "fx-mlp": _entry(None)}
