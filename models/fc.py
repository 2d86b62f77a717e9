"""Fully connected family: BNN-PYNQ's TFC, SFC and LFC topologies on MNIST-sized inputs.

Same layers as brevitas_examples/bnn_pynq/models/FC.py: flatten, x = 2x - 1, input
quantizer, then per hidden layer QuantLinear -> BatchNorm1d -> activation quantizer, then
QuantLinear -> TensorNorm -> logits. Hidden widths and bit widths follow the bnn_pynq cfg
files (tfc 64x3, sfc 256x3, lfc 1024x3; w1a1 with a 1-bit input, w1a2/w2a2 with a 2-bit
input). BNN-PYNQ has no lfc-w2a2, so neither has this zoo. Inputs are float in [0, 1]
(uint8 pixels / 255).

Default hyper-parameters (Adam, cosine-decayed lr, CE loss, dropout, random +-`shift` pixel
translations): tfc-w1a1's were chosen on the validation split of mnist-subset (4,500 train /
500 val); the wider models reuse them with BNN-PYNQ's dropout of 0.2.
"""
from __future__ import annotations

from math import prod

import torch
from torch import nn

from flow.train.nn import QuantAct, QuantLinearLayer, TensorNorm


class FC(nn.Module):
    """784-h1-...-hk-10 quantized MLP with `weight_bits`/`act_bits` precision."""

    def __init__(self, hidden=(64, 64, 64), num_classes=10, in_shape=(1, 28, 28),
                 weight_bits=1, act_bits=1, in_bits=1, dropout=0.0, estimator="ste"):
        super().__init__()
        self.in_shape = tuple(in_shape)
        est = estimator if act_bits == 1 else "ste"
        layers: list[nn.Module] = [QuantAct(in_bits)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = prod(in_shape)
        west = estimator if weight_bits == 1 else "ste"
        for h in hidden:
            layers += [QuantLinearLayer(width, h, weight_bits, estimator=west), nn.BatchNorm1d(h),
                       QuantAct(act_bits, estimator=est)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers += [QuantLinearLayer(width, num_classes, weight_bits, estimator=west), TensorNorm()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        x = 2.0 * x - 1.0
        return self.features(x)


def _entry(hidden, w, a, epochs, lr, batch_size, dropout, shift, description):
    in_bits = 1 if a == 1 else 2
    return {
        "build": lambda: FC(hidden, weight_bits=w, act_bits=a, in_bits=in_bits, dropout=dropout),
        "input_shape": (1, 28, 28),
        "dataset": "mnist",
        "num_classes": 10,
        "precision": {"input": in_bits, "weights": w, "activations": a},
        "defaults": {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                     "weight_decay": 0.0, "shift": shift},
        "description": description,
    }


_TOPOLOGIES = {"tfc": (64, 64, 64), "sfc": (256, 256, 256), "lfc": (1024, 1024, 1024)}
_PRECISIONS = {"tfc": ((1, 1), (1, 2), (2, 2)), "sfc": ((1, 1), (1, 2), (2, 2)), "lfc": ((1, 1), (1, 2))}
_WORDS = {1: "binary", 2: "2-bit"}

MODELS = {}
for _fam, _hidden in _TOPOLOGIES.items():
    for _w, _a in _PRECISIONS[_fam]:
        _h = "-".join(map(str, _hidden))
        MODELS[f"{_fam}-w{_w}a{_a}"] = _entry(
            _hidden, _w, _a, epochs=60, lr=0.02, batch_size=100, dropout=0.1 if _fam == "tfc" else 0.2,
            shift=1, description=f"784-{_h}-10 MLP, {_WORDS[_w]} weights, {_WORDS[_a]} activations "
                                 f"(BNN-PYNQ {_fam.upper()})")
