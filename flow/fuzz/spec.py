"""Random network specs: what one fuzzed network is, drawn from a seed, as plain JSON data.

A spec has two parts. Its *structure* (input type and shape, the blocks, bit widths, weight
kinds, the folding target, the output kind) fixes the hardware design; its `weight_seed`
draws the weights, BatchNorms and biases. Random weights keep one entry at the largest and one
at the smallest code, so that networks of one structure share their accumulator widths and
usually one compiled simulator (weights and thresholds are memory files read at run time).

Blocks, applied in order to a tensor of shape (F,), (C, L) or (C, H, W):

    conv     QuantConv1d/QuantConv2d (kernel k, stride, padding) [+ BatchNorm] + activation
    dw       depthwise conv (groups = channels), with or without bias [+ BatchNorm] + activation
    maxpool  MaxPool1d/2d (kernel k, stride)
    avgpool  global average pool (AdaptiveAvgPool to 1, then flatten)
    flatten  flatten to (C*H*W,)
    fc       QuantLinear [+ BatchNorm] + activation
    add      two computing branches (conv or fc) into one shared quantizer, summed, requantized;
             `shortcut`: one branch is the block's input itself (a residual block)
    cat      two computing conv branches concatenated on channels, one shared quantizer or
             (`two_scales`) one each and a requantizer after the Concat

The last layer is a QuantLinear to `classes` logits (compared as integer logits, or as top-1
when `output` is "top1").
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np

INPUT_TYPES = ("uint8", "int8", "bipolar")
WEIGHT_KINDS = ("random", "random", "random", "random", "zero", "equal", "rows")
ACTS = ("relu", "relu", "relu", "signed", "bipolar")
SCALES = ("float", "float", "channel", "pow2")   # the output layer: one scale for all classes (flow limit)


@dataclass
class Block:
    kind: str
    out: int = 0                # output channels / features (conv, fc, add and cat branches)
    k: int = 1
    stride: int = 1
    pad: int = 0
    w_bits: int = 4             # 1: binary (+1/-1) weights
    act: str = "relu"           # relu (unsigned) | signed | bipolar
    act_bits: int = 4
    bn: bool = True
    bias: bool = False
    weights: str = "random"     # random | zero | equal | rows (each output row one value)
    scale: str = "float"        # weight scale: float (per tensor) | channel (per output channel) | pow2
    shortcut: bool = False      # add: one branch is the input itself
    two_scales: bool = False    # cat: each branch its own quantizer, a requantizer after


@dataclass
class Spec:
    index: int
    weight_seed: int
    input_type: str             # uint8 (the model sees p/255) | int8 | bipolar
    shape: list                 # input shape without the batch dimension
    in_quant: int               # 0: the first layer reads the input; else the input quantizer's bits
    in_act: str = "signed"      # the input quantizer: signed (QuantIdentity) | relu (QuantReLU)
    blocks: list = field(default_factory=list)
    classes: int = 3
    out_bits: int = 4
    out_bias: bool = True
    out_weights: str = "random"
    out_scale: str = "float"
    target_cycles: int = 1024
    output: str = "logits"      # logits | top1
    structure: int = 0          # the structure's number (networks of one structure share it)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def summary(self) -> str:
        parts = [b.kind + ("-sc" if b.shortcut else "") + ("-2s" if b.two_scales else "") for b in self.blocks]
        shape = "x".join(str(d) for d in self.shape)
        return f"{self.input_type} {shape} [{' '.join(parts)} fc{self.classes}] T={self.target_cycles} {self.output}"


def spec_from_dict(d: dict) -> Spec:
    """A Spec from its JSON form; ValueError (one sentence) when a field is missing or unknown."""
    if not isinstance(d, dict):
        raise ValueError("a spec must be a JSON object")
    names = {f.name for f in fields(Spec)}
    unknown = sorted(set(d) - names)
    missing = sorted(f.name for f in fields(Spec) if f.name not in d and f.default is MISSING
                     and f.default_factory is MISSING)
    if unknown or missing:
        raise ValueError(f"spec fields: unknown {unknown or 'none'}, missing {missing or 'none'}")
    bnames = {f.name for f in fields(Block)}
    blocks = []
    for b in d.get("blocks", []):
        if not isinstance(b, dict) or "kind" not in b or set(b) - bnames:
            raise ValueError(f"a block must be an object with a 'kind' and fields of {sorted(bnames)}, got {b!r}")
        blocks.append(Block(**b))
    spec = Spec(**{**d, "blocks": blocks})
    if spec.input_type not in INPUT_TYPES:
        raise ValueError(f"input_type {spec.input_type!r} is not one of {', '.join(INPUT_TYPES)}")
    return spec


class _Drawer:
    """Draws one structure; tracks the tensor shape the blocks produce."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def flip(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def bits(self, lo: int = 1, hi: int = 8) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def layer(self, kind: str, out: int, binary_in: bool, **kw) -> Block:
        act = self.pick(ACTS)
        # multi-bit activations have 2 bits or more: Brevitas exports a 1-bit QuantReLU as BipolarQuant
        # (+scale for every value after the Relu), which the flow refuses (seed 1, network 121)
        act_bits = 1 if act == "bipolar" else self.bits(2, 8)
        w_bits = 1 if binary_in and self.flip(0.6) else self.bits()
        scale = "pow2" if w_bits == 1 else self.pick(SCALES)
        return Block(kind, out=out, w_bits=w_bits, act=act, act_bits=act_bits, bn=self.flip(0.8),
                     bias=self.flip(0.4), weights=self.pick(WEIGHT_KINDS), scale=scale, **kw)


def _spatial_block(d: _Drawer, shape: list, binary_in: bool, quantized: bool) -> tuple[Block, list]:
    """A conv, dw, maxpool or join block on (C, *sizes). Joins read a quantized tensor twice (the
    flow refuses a raw input read twice); nothing pads a binary tensor (zeros are not +1/-1)."""
    c, sizes = shape[0], shape[1:]
    small = min(sizes)
    kinds = ["conv", "conv", "dw"] + (["add", "cat"] if quantized else []) + (["maxpool"] if small >= 2 else [])
    kind = d.pick(kinds)
    if kind == "dw" and binary_in:  # refused by the flow: depthwise convolutions of binary inputs
        kind = "conv"
    if kind == "maxpool":
        k = d.pick([2, 2, 3]) if small >= 3 else 2
        stride = d.pick([1, 2]) if small > k else k if small >= k else 1
        return Block("maxpool", k=k, stride=stride), [c] + [(s - k) // stride + 1 for s in sizes]
    if kind in ("add", "cat"):
        out = c if kind == "add" else int(d.rng.integers(1, 5))
        blk = d.layer(kind, out, binary_in, k=1 if binary_in else d.pick([1, 3]))
        _multibit(d, blk)
        blk.pad = blk.k // 2
        blk.shortcut = kind == "add" and not binary_in and d.flip(0.4)  # an Add of multi-bit tensors
        blk.two_scales = kind == "cat" and d.flip(0.4)
        return blk, [2 * out if kind == "cat" else c] + sizes
    k = d.pick([1, 2, 3, 3]) if small >= 3 else d.pick([1, 2]) if small >= 2 else 1
    pad = d.pick([0, 0, 1]) if k >= 2 and not binary_in else 0
    stride = d.pick([1, 1, 2]) if small + 2 * pad - k >= 2 else 1
    out = c if kind == "dw" else int(d.rng.integers(1, 7))
    blk = d.layer(kind, out, binary_in, k=k, stride=stride, pad=pad)
    return blk, [out] + [(s + 2 * pad - k) // stride + 1 for s in sizes]


def _multibit(d: _Drawer, blk: Block) -> None:
    """An Add joins multi-bit tensors (the flow refuses bipolar ones)."""
    if blk.kind == "add" and blk.act == "bipolar":
        blk.act, blk.act_bits = d.pick(["relu", "signed"]), d.bits(2, 8)


def _binary_out(b: Block, was: bool) -> bool:
    if b.kind in ("maxpool", "flatten"):
        return was
    if b.kind == "avgpool":
        return False
    return b.act == "bipolar"


def random_spec(seed: int, index: int, structure: int | None = None) -> Spec:
    """The spec of network `index` of a run with `seed`: its structure drawn from (seed,
    structure number), its weights from (seed, index)."""
    structure = index if structure is None else structure
    d = _Drawer(np.random.default_rng([seed, structure, 1]))
    dims = d.pick([0, 1, 2, 2])
    input_type = d.pick(INPUT_TYPES)
    shape = ([int(d.rng.integers(3, 17))] if dims == 0 else
             [int(d.rng.integers(1, 5)), int(d.rng.integers(5, 11))] if dims == 1 else
             [int(d.rng.integers(1, 4))] + [int(d.rng.integers(4, 7))] * 2)
    in_quant = 0 if d.flip(0.7 if input_type == "bipolar" else 0.3) else d.pick([8, 8, d.bits(2, 8)])
    if input_type == "uint8" and dims != 2:  # pixels p/255 read directly must be an image (N, C, H, W)
        in_quant = in_quant or 8
    in_act = "relu" if input_type == "uint8" and d.flip() else "signed"
    binary, quantized = input_type == "bipolar" and not in_quant, bool(in_quant)
    blocks, cur = [], list(shape)
    for _ in range(int(d.rng.integers(1, 4)) if dims else 0):
        blk, cur = _spatial_block(d, cur, binary, quantized)
        blocks.append(blk)
        binary, quantized = _binary_out(blk, binary), blk.kind != "maxpool" or quantized
    if dims:
        blocks.append(Block("avgpool" if d.flip(0.35) else "flatten"))
        binary, quantized = _binary_out(blocks[-1], binary), blocks[-1].kind == "flatten" and quantized
        cur = [cur[0]] if blocks[-1].kind == "avgpool" else [int(np.prod(cur))]
    for _ in range(int(d.rng.integers(0 if dims else 1, 3))):
        if quantized and d.flip(0.2):
            blk = d.layer("add", cur[0], binary)
            blk.shortcut = not binary and d.flip(0.5)
            _multibit(d, blk)
        else:
            blk = d.layer("fc", int(d.rng.integers(2, 13)), binary)
            cur = [blk.out]
        quantized = True
        blocks.append(blk)
        binary = _binary_out(blk, binary)
    out_bits = 1 if binary and d.flip(0.6) else d.bits()
    return Spec(index=index, weight_seed=int(np.random.default_rng([seed, index, 2]).integers(2**31)),
                input_type=input_type, shape=shape, in_quant=in_quant, in_act=in_act, blocks=blocks,
                classes=int(d.rng.integers(2, 7)), out_bits=out_bits, out_bias=d.flip(0.6),
                out_weights=d.pick(WEIGHT_KINDS), out_scale="pow2" if out_bits == 1 else d.pick(["float", "pow2", "channel"]),
                target_cycles=d.pick([1, 4, 16, 64, 256, 4096]), output=d.pick(["logits", "logits", "top1"]),
                structure=structure)
