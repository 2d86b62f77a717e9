"""Fully connected family (BNN-PYNQ TFC/SFC/LFC topologies) on MNIST-sized inputs.

Forward: flatten, x = 2x - 1, input quantizer, then per hidden layer
QuantLinear -> BatchNorm1d -> activation quantizer, then QuantLinear -> TensorNorm -> logits.
Inputs are float in [0, 1] (uint8 pixels / 255). Add a topology by adding an entry to MODELS.

Default hyper-parameters (Adam, cosine-decayed lr, CE loss, dropout, random +-`shift` pixel
translations) were chosen on the validation split of mnist-subset (4,500 train / 500 val).
"""
from __future__ import annotations

from math import prod

import torch
from torch import nn

from flow.nn import QuantAct, QuantLinearLayer, TensorNorm


class FC(nn.Module):
    """784-h1-...-hk-10 quantized MLP with `weight_bits`/`act_bits` precision."""

    def __init__(self, hidden=(64, 64, 64), num_classes=10, in_shape=(1, 28, 28),
                 weight_bits=1, act_bits=1, in_bits=1, dropout=0.0):
        super().__init__()
        self.in_shape = tuple(in_shape)
        layers: list[nn.Module] = [QuantAct(in_bits)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = prod(in_shape)
        for h in hidden:
            layers += [QuantLinearLayer(width, h, weight_bits), nn.BatchNorm1d(h), QuantAct(act_bits)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers += [QuantLinearLayer(width, num_classes, weight_bits), TensorNorm()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        x = 2.0 * x - 1.0
        return self.features(x)


def _entry(hidden, w, a, epochs, lr, batch_size, dropout, shift, description):
    return {
        "build": lambda: FC(hidden, weight_bits=w, act_bits=a, in_bits=1, dropout=dropout),
        "input_shape": (1, 28, 28),
        "dataset": "mnist",
        "num_classes": 10,
        "precision": {"input": 1, "weights": w, "activations": a},
        "defaults": {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                     "weight_decay": 0.0, "shift": shift},
        "description": description,
    }


MODELS = {
    "tfc-w1a1": _entry((64, 64, 64), 1, 1, epochs=60, lr=0.02, batch_size=100, dropout=0.1, shift=1,
                       description="784-64-64-64-10 MLP, binary weights and activations (BNN-PYNQ TFC)"),
}
