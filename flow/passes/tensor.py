"""Tensor: a quantized activation as the streamliner carries it between lowering rules."""
from __future__ import annotations

from dataclasses import dataclass

from flow.core.quant import Codes


@dataclass(frozen=True)
class Tensor:
    """A quantized activation as the hardware carries it: codes, logical shape, the
    hardware stream holding it, and for a flattened tensor the logical (NCHW-flat) index
    at each stream position."""

    codes: Codes
    shape: tuple            # (C, H, W) or (F,)
    hw: str = "global_in"
    perm: tuple | None = None
    flipped: tuple | None = None  # per element: the code is complemented (binary input only)
    pad: tuple | None = None      # ((top, left, bottom, right), code) of a pending constant Pad before a Conv;
    #                               code None: zeros on a bipolar tensor (the Conv re-codes it)
    rank: int = 2                 # spatial rank in the ONNX graph: 2 (C, H, W), 1 (C, L) carried as (C, 1, L)
