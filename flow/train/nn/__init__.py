"""Trainable quantized layers.

* flow.train.nn.binary — binary and low-bit layers on Brevitas quantizers (BNN-PYNQ style):
  BinaryLinear, QuantLinearLayer, BinaryConv2d, QuantConv2dLayer, SignAct, QuantAct
  (STE or ReSTE gradients), TensorNorm, clip_weights.
* flow.train.nn.qfx — QFX-style fixed point: quantize_fixed (ap_fixed-exact), the learned binary
  point (FixedPointQuant, FixedAct), K-hot weights (KHotQuant), FixedLinear, FixedConv2d,
  FixedBatchNorm, FixedAdd.

BatchNorm (torch.nn.BatchNorm1d/2d) and max-pooling (torch.nn.MaxPool2d) are used as they
are; they export to ONNX BatchNormalization and MaxPool.
"""
from flow.train.nn.binary import (ESTIMATORS, ActQuant, InputQuant, BinaryConv2d, BinaryLinear, QuantAct, QuantConv2dLayer,
                            QuantLinearLayer, SignAct, TensorNorm, WeightQuant, clip_weights, quant_range,
                            reste_sign)
from flow.train.nn.qfx import (OVERFLOW, QONNX_ROUNDING, ROUNDING, FixedAct, FixedAdd, FixedBatchNorm, FixedConv2d,
                         FixedLinear, FixedPointQuant, KHotQuant, check_exportable, fixed_quantizers,
                         fixed_range, khot_levels, naf_weight, quantize_fixed, round_ste)

__all__ = ["ESTIMATORS", "ActQuant", "InputQuant", "BinaryConv2d", "BinaryLinear", "QuantAct", "QuantConv2dLayer",
           "QuantLinearLayer", "SignAct", "TensorNorm", "WeightQuant", "clip_weights", "quant_range",
           "reste_sign", "OVERFLOW", "QONNX_ROUNDING", "ROUNDING", "FixedAct", "FixedAdd", "FixedBatchNorm",
           "FixedConv2d", "FixedLinear", "FixedPointQuant", "KHotQuant", "check_exportable",
           "fixed_quantizers", "fixed_range", "khot_levels", "naf_weight", "quantize_fixed", "round_ste"]
