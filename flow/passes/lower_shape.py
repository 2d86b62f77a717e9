"""Lowering of shape ops on quantized tensors: flattening (Reshape, Flatten, Squeeze,
Unsqueeze) and a Transpose that only reorders what a flatten reads.

A mixin of the Streamliner (flow/passes/streamline.py). The hardware streams channels last;
a flattened tensor records, at each stream position, its logical index in the flat vector
the next dense layer reads (`Tensor.perm`), so the layer's weight columns are reordered
instead of the data.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.passes.segments import attrs as _attrs
from flow.passes.segments import channels_last_permutation, nhwc_permutation
from flow.passes.tensor import Tensor


class ShapeLowering:
    def reshape(self, t: Tensor, node) -> Tensor:
        out = self.mw.get_tensor_shape(node.output[0])
        if out is None:
            raise UserError(f"node {node.name!r} ({node.op_type}) has no inferred output shape")
        out = tuple(out[1:])
        n = int(np.prod(t.shape))
        if int(np.prod(out)) != n:
            raise UserError(f"node {node.name!r} changes the number of elements")
        if t.pad is not None:
            raise UserError(f"node {node.name!r} follows a Pad; padding is supported directly before a Conv")
        if len([d for d in out if d != 1]) <= 1:  # a flatten
            if t.perm is not None:
                return t
            return replace(t, shape=(n,), perm=tuple(nhwc_permutation(t.shape).tolist()))
        if out == t.shape:
            return t
        raise UserError(f"node {node.name!r} ({node.op_type}) reshapes to {out}; only flattening is supported")

    def _flattened(self, name: str) -> bool:
        """Every reader of `name` is a Reshape or Flatten to one axis (besides the batch)."""
        readers = self.consumers.get(name, [])
        shapes = [self.mw.get_tensor_shape(r.output[0]) for r in readers]
        return bool(readers) and all(r.op_type in ("Reshape", "Flatten") and s is not None
                                     and len([d for d in s[1:] if d != 1]) <= 1 for r, s in zip(readers, shapes))

    def transpose(self, t: Tensor, node) -> Tensor:
        """A Transpose read only by a flatten (a channels-last flatten as x.permute(0, 2, 3, 1)
        .reshape(n, -1) writes it): the flat vector's logical index at each stream position."""
        p = [int(v) for v in _attrs(node).get("perm", [])]
        shape = self.mw.get_tensor_shape(node.input[0])
        if (not p or p[0] != 0 or shape is None or len(p) != len(shape) or t.flipped is not None or t.pad is not None
                or not self._flattened(node.output[0])):
            raise UserError(f"Transpose {node.name!r} (perm {p}): a transpose that keeps the batch axis first and "
                            "is read only by a flatten (Reshape or Flatten) is supported")
        if t.perm is not None:  # already a flat vector: only the identity leaves it as it is
            if p != sorted(p):
                raise UserError(f"Transpose {node.name!r} reorders a flat vector; not supported")
            return t
        dims = tuple(int(d) for d in shape[1:])
        n = int(np.prod(dims))
        moved = np.arange(n).reshape((1, *dims)).transpose(p).ravel()  # element at each flat position
        where = np.empty(n, dtype=np.int64)
        where[moved] = np.arange(n)
        return replace(t, shape=(n,), perm=tuple(where[channels_last_permutation(dims)].tolist()))
