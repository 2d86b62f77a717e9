"""CNV family: BNN-PYNQ's CIFAR-10 convolutional network (32x32x3 input).

Same layers as brevitas_examples/bnn_pynq/models/CNV.py: x = 2x - 1, an 8-bit Q1.7 input
quantizer, six unpadded 3x3 convolutions (64, 64, pool, 128, 128, pool, 256, 256) each
followed by BatchNorm2d and an activation quantizer, then 256-512-512-10 linear layers
(BatchNorm1d + activation quantizer between them) and TensorNorm. w1a1, w1a2 and w2a2 as in
the bnn_pynq cfg files. Inputs are float in [0, 1] (uint8 pixels / 255), NCHW.

Defaults follow BNN-PYNQ's recipe (Adam, lr 0.02, batch 100) with a cosine schedule, random
+-4 pixel translations and horizontal flips; CIFAR-10 must be downloaded (or given as a
directory of python batches) - it is not available offline.
"""
from __future__ import annotations

import torch
from torch import nn

from flow.train.nn import InputQuant, QuantAct, QuantConv2dLayer, QuantLinearLayer, TensorNorm

CNV_OUT_CH_POOL = [(64, False), (64, True), (128, False), (128, True), (256, False), (256, False)]
INTERMEDIATE_FC_FEATURES = [(256, 512), (512, 512)]


class CNV(nn.Module):
    def __init__(self, weight_bits=1, act_bits=1, in_bits=8, num_classes=10, in_ch=3):
        super().__init__()
        layers: list[nn.Module] = [InputQuant(in_bits)]
        for out_ch, pool in CNV_OUT_CH_POOL:
            layers += [QuantConv2dLayer(in_ch, out_ch, 3, weight_bits=weight_bits),
                       nn.BatchNorm2d(out_ch, eps=1e-4), QuantAct(act_bits)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            in_ch = out_ch
        self.conv_features = nn.Sequential(*layers)
        fc: list[nn.Module] = []
        for fin, fout in INTERMEDIATE_FC_FEATURES:
            fc += [QuantLinearLayer(fin, fout, weight_bits), nn.BatchNorm1d(fout, eps=1e-4), QuantAct(act_bits)]
        fc += [QuantLinearLayer(512, num_classes, weight_bits), TensorNorm()]
        self.linear_features = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_features(2.0 * x - 1.0)
        return self.linear_features(x.reshape(x.shape[0], -1))


def _entry(w, a):
    words = {1: "binary", 2: "2-bit"}
    return {
        "build": lambda: CNV(weight_bits=w, act_bits=a, in_bits=8),
        "input_shape": (3, 32, 32),
        "dataset": "cifar10",
        "num_classes": 10,
        "precision": {"input": 8, "weights": w, "activations": a},
        "defaults": {"epochs": 100, "lr": 0.02, "batch_size": 100, "weight_decay": 0.0, "shift": 4,
                     "flip": True},
        "description": f"CIFAR-10 CNN 64-64-128-128-256-256 conv + 512-512-10, {words[w]} weights, "
                       f"{words[a]} activations (BNN-PYNQ CNV)",
    }


MODELS = {f"cnv-w{w}a{a}": _entry(w, a) for w, a in ((1, 1), (1, 2), (2, 2))}
