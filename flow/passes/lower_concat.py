"""Lowering of a Concat along channels: StreamingConcat of the codes of N >= 2 quantized tensors.

A mixin of the Streamliner (flow/passes/streamline.py). N inputs become a chain of two-input
StreamingConcats, cat(x0, x1, x2) = cat(cat(x0, x1), x2): per vector the chain emits x0's
channels, then x1's, then x2's, the order the N-way concat streams in channels last. Tensors of
one scale concatenate as they are. Tensors of different scales (each branch its own quantizer)
concatenate where a quantizer follows the Concat, through float ops only: the concatenated codes
carry one scale per channel, and that quantizer becomes per-channel thresholds on them
(Streamliner.requantize), so every channel is requantized exactly from its own scale. Anywhere
else a Concat of different scales is refused, naming the node.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.passes.segments import attrs as _attrs
from flow.passes.tensor import Tensor


class ConcatLowering:
    def concat_node(self, node, ins: list[Tensor]) -> None:
        """Lower `node` (a Concat of the tensors `ins`), with the quantizer after it where the
        scales differ."""
        if len([i for i in node.input if i]) != len(ins):
            raise UserError(f"Concat {node.name!r} reads a constant tensor; concatenating quantized tensors "
                            "computed by the network is supported")
        follow = None
        scales = [t.codes.scale for t in ins]
        if any(s != scales[0] for s in scales):
            follow = self.quantizer_after(node)
            if follow is None:
                raise UserError(f"Concat {node.name!r}: its inputs have the scales {' and '.join(map(str, scales))}; "
                                "concatenating tensors of one scale is supported, or of different scales where an "
                                "activation quantizer follows the Concat (through float ops only)")
        t = ins[0]
        for nxt in ins[1:]:
            t = self.concat(t, nxt, node)
        if follow is None:
            self.publish(node.output[0], t)
            self.done.add(node.name)
            return
        seg, qnext = follow
        self.publish(qnext.output[0], self.requantize(t, seg, qnext, f"Concat {node.name!r}"))
        self.done.update(x.name for x in [node, *seg, qnext])

    def concat(self, a: Tensor, b: Tensor, node) -> Tensor:
        """StreamingConcat of the codes of a and b (channels of a first); the result has one
        scale, or one per channel where a and b differ."""
        ca, cb = a.codes, b.codes
        if (ca.a, ca.o, ca.bipolar) != (cb.a, cb.o, cb.bipolar) \
                or any(x is not None for x in (a.flipped, b.flipped, a.pad, b.pad)):
            raise UserError(f"Concat {node.name!r}: its inputs are quantized differently (signedness, range or "
                            "a pending Pad); concatenating outputs of one kind of quantizer is supported")
        axis = int(_attrs(node).get("axis", 1))
        rank = len(a.shape)
        if len(b.shape) != rank or axis not in (1, -rank) or a.shape[1:] != b.shape[1:]:
            raise UserError(f"Concat {node.name!r}: concatenating along channels (axis 1) of tensors with equal "
                            f"other dimensions is supported, got {a.shape} and {b.shape} on axis {axis}")
        vectors = int(np.prod(a.shape[1:]))
        c = self.add("StreamingConcat", {"NumVectors": vectors, "ChannelsA": a.shape[0], "ChannelsB": b.shape[0],
                                         "ElemBitsA": ca.bits, "ElemBitsB": cb.bits, "SIMD": 1}, {},
                     self.join_inputs(a, b))
        perm = None
        if rank == 1 and (_stream_order(a) or _stream_order(b)):
            pa, pb = (list(t.perm) if t.perm is not None else list(range(t.shape[0])) for t in (a, b))
            perm = tuple(pa + [a.shape[0] + i for i in pb])
        scale = ca.scale if ca.scale == cb.scale else \
            tuple(float(s) for s in np.concatenate([ca.scales(a.shape[0]), cb.scales(b.shape[0])]))
        codes = replace(ca, levels=max(ca.levels, cb.levels), scale=scale)
        return Tensor(codes, (a.shape[0] + b.shape[0], *a.shape[1:]), c.output[0], perm, rank=a.rank)


def _stream_order(t: Tensor) -> tuple | None:
    """The stream order of a flattened tensor, None where it is the logical order."""
    if t.perm is None or t.perm == tuple(range(len(t.perm))):
        return None
    return t.perm
