"""Exact int8 products through torch's oneDNN kernels, when torch is installed.

torch's oneDNN kernels for quantized inference (`torch.ops.onednn.qlinear_pointwise` and
`qconv2d_pointwise`: uint8 inputs less a zero point times int8 weights, int32 sums, VNNI
dot-product instructions where the CPU has them) run the ±1 and 8-bit products of the numpy
reference several times faster than float32 BLAS or the bit-packed popcount, and a
convolution without writing out its sliding windows. With every scale 1 they are integer
products: a sum leaves as float32 plus a per-neuron bias (exact while |sum| + |bias| < 2**24,
which the callers guarantee), or clipped to [0, 1] into uint8, which with a bias of 1 - t is
the one threshold t compared inside the kernel (sum - t + 1 >= 1 exactly when sum >= t).

Callers keep their numpy path for when torch is absent, and a kernel returns None rather
than risk a wrong sum:

- torch is imported lazily: when something else has already loaded it, or once the products
  run without it add up to about the time its import takes (a second: then the import costs
  at most as much again as the products left without it);
- the first use checks both kernels on the extreme operands (inputs 0 and 255, weights -128
  and 127, in every mix): a kernel that saturates 16-bit pair sums (int8 code without
  dot-product instructions) or lacks these ops fails the check, and torch is not used again
  in the process.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import numpy as np

# Multiply-adds run without torch that take about as long as its import (~1e11 a second).
IMPORT_MACS = 1 << 37
# "torch": the module once loaded and checked, or None when unusable; "macs": the multiply-adds
# asked for before it was loaded; "threads": the limit of torch_threads in force;
# "default_threads": torch's own number when first imported inside it
_state: dict = {"macs": 0}
_lock = threading.Lock()
_local = threading.local()  # "threads": the limit this thread has applied


def _extremes(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (rows, k) of 0 and 255 and weights (rows, k) of -128 and 127, in every mix."""
    x = np.resize(np.array([[255] * k, [0, 255] * (k // 2), [255, 0] * (k // 2)], np.uint8), (rows, k))
    w = np.resize(np.array([[127] * k, [-128] * k, [127, -128] * (k // 2), [-128, 127] * (k // 2)], np.int8),
                  (rows, k))
    return x, w


def _exact(torch) -> bool:
    """Both kernels give the int64 sums on the extreme operands (one threshold too)."""
    x, w = _extremes(16, 64)
    want = x.astype(np.int64) @ w.T.astype(np.int64)
    lin = Int8Linear(w, 0)._run(torch, x)
    t = np.full(16, 128 * 64 // 3)
    above = Int8Linear(w, 0, 1.0 - t, clip01=True)._run(torch, x)
    xi, wi = x.reshape(1, 4, 4, 64), w.reshape(16, 1, 1, 64)
    conv = Int8Conv(wi, (4, 4, 64), (1, 1), (1, 1), 0)._run(torch, xi.reshape(1, -1)).reshape(16, 16)
    return (np.array_equal(lin, want) and np.array_equal(above, (want >= t).astype(np.uint8))
            and np.array_equal(conv, want))


def _load():
    """torch when importable and its int8 kernels exact on the extreme operands, else None."""
    try:
        import torch
        if "threads" in _state:  # imported inside torch_threads: the limit holds from now on
            _state["default_threads"] = _set_threads(_state["threads"])
        ok = _exact(torch)
    except Exception:  # no torch, no oneDNN int8 ops, or a build that refuses them: the numpy path
        return None
    return torch if ok else None


def torch_or_none(macs: int):
    """torch for a product of `macs` multiply-adds, or None (not installed, not exact, or
    not loaded yet and the products so far too few to pay the import)."""
    if "torch" not in _state:
        _state["macs"] += macs
        if "torch" not in sys.modules and _state["macs"] < IMPORT_MACS:
            return None
        with _lock:
            if "torch" not in _state:
                _state["torch"] = _load()
    torch = _state["torch"]
    limit = _state.get("threads")
    if torch is not None and limit is not None and getattr(_local, "threads", None) != limit:
        torch.set_num_threads(limit)  # oneDNN reads the calling thread's own OpenMP setting
        _local.threads = limit
    return torch


class Int8Kernel:
    """An int8 product with weights (H, ...) int8, a zero point of the uint8 inputs, a
    per-neuron float32 bias (or None) and the [0, 1] clip (`clip01`); the weights are packed
    for oneDNN on the first call. Calling it on uint8 inputs gives the outputs, or None when
    torch is not at hand."""

    def __init__(self, w8: np.ndarray, zero_point: int, bias=None, clip01: bool = False):
        self.w8, self.zero_point, self.clip01 = np.ascontiguousarray(w8, dtype=np.int8), int(zero_point), clip01
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self._packed = None

    def __call__(self, x: np.ndarray) -> np.ndarray | None:
        if x.size == 0:
            return None  # the callers' numpy paths take empty batches
        torch = torch_or_none(x.size * (self.w8.size // self.w8.shape[-1]))  # multiply-adds
        return None if torch is None else self._run(torch, x)

    def _args(self, torch):
        """The weight-side arguments of the oneDNN call: packed weights, scales, zero points, bias."""
        if self._packed is None:
            self._packed = self._pack(torch)
        h = len(self.w8)
        bias = None if self.bias is None else torch.from_numpy(self.bias)
        return self._packed, torch.ones(h), torch.zeros(h, dtype=torch.int64), bias

    def _out(self, torch):
        """The output arguments: scale, zero point, dtype, post-op and its arguments, algorithm."""
        if self.clip01:
            return 1.0, 0, torch.uint8, "hardtanh", [0.0, 1.0], ""
        return 1.0, 0, torch.float32, "none", [], ""


class Int8Linear(Int8Kernel):
    """(N, K) uint8 inputs x -> (N, H): sum_k (x[n, k] - zero_point) * w8[h, k] + bias[h]."""

    def _pack(self, torch):
        return torch.ops.onednn.qlinear_prepack(torch.from_numpy(self.w8), None)

    def _run(self, torch, x: np.ndarray) -> np.ndarray:
        packed, ws, wz, bias = self._args(torch)
        tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))
        return torch.ops.onednn.qlinear_pointwise(tx, 1.0, self.zero_point, packed, ws, wz, bias,
                                                  *self._out(torch)).numpy()


class Int8Conv(Int8Kernel):
    """A convolution of (N, H*W*C) uint8 images in (y, x, c) order by weights w8 (O, KH, KW, C),
    image = (H, W, C), stride and dilation (y, x) pairs, no padding -> (N, OH*OW*O) in
    (oy, ox, o) order: the sliding windows' products with the weights, as `Int8Linear`."""

    def __init__(self, w8: np.ndarray, image, stride, dilation, zero_point: int, bias=None, clip01: bool = False):
        super().__init__(w8, zero_point, bias, clip01)
        self.image, self.stride, self.dilation = tuple(image), list(stride), list(dilation)

    def _pack(self, torch):
        w = torch.from_numpy(self.w8).permute(0, 3, 1, 2)  # OIHW view of the (o, ky, kx, c) weights
        return torch.ops.onednn.qconv_prepack(w, torch.ones(len(self.w8)), 1.0, self.zero_point, self.stride,
                                              [0, 0], self.dilation, 1, None)

    def _run(self, torch, x: np.ndarray) -> np.ndarray:
        packed, ws, wz, bias = self._args(torch)
        img = np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), *self.image)
        tx = torch.from_numpy(img).permute(0, 3, 1, 2)  # NCHW view of NHWC: oneDNN's channels-last
        y = torch.ops.onednn.qconv2d_pointwise(tx, 1.0, self.zero_point, packed, ws, wz, bias, self.stride, [0, 0],
                                               self.dilation, 1, *self._out(torch))
        return np.ascontiguousarray(y.permute(0, 2, 3, 1).numpy()).reshape(len(x), -1)


def _set_threads(n: int) -> int | None:
    """Set torch's intra-op threads to n (the calling thread's among them) when torch is
    loaded; the former number, else None."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_num_threads"):
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    _local.threads = n
    return before


@contextmanager
def torch_threads(n: int):
    """torch's intra-op threads limited to n inside the block, and so for a torch first
    imported inside; the former number is restored after. Chunks already running side by
    side on the cores then do not oversubscribe them. The limit is the OpenMP setting of each
    thread, which a thread started inside does not inherit: `torch_or_none` applies it in
    every thread that asks for torch."""
    before = _set_threads(n)
    _state["threads"] = n
    try:
        yield
    finally:
        del _state["threads"]
        before = _state.pop("default_threads", before)
        if before is not None:
            _set_threads(before)
