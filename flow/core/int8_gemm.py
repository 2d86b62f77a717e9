"""Exact int8 GEMM through torch's CPU kernel, when torch is installed.

torch's `_int_mm` (int8 x int8 -> int32, oneDNN; VNNI dot-product instructions where the CPU
has them) runs the ±1 and 8-bit products of the numpy reference several times faster than
either float32 BLAS or the bit-packed popcount. The results are integers and the same on
every path; callers keep their numpy path for when torch is absent, and this module refuses
(returns None) rather than risk a wrong sum:

- torch is imported lazily: when something else has already loaded it, or once the products
  run without it add up to about the time its import takes (a second: then the import costs
  at most as much again as the products left without it);
- int32 accumulation: callers guarantee that no partial sum leaves int32;
- the first use checks the kernel on the extreme operands (rows of -128 and 127 in every mix):
  a kernel that saturates 16-bit pair sums (int8 code without dot-product instructions) fails
  the check, and torch is not used again in the process.
"""
from __future__ import annotations

import sys
import threading
import warnings
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


def _load():
    """torch when importable and its int8 GEMM exact on the extreme operands, else None."""
    try:
        import torch
        if "threads" in _state:  # imported inside torch_threads: the limit holds from now on
            _state["default_threads"] = _set_threads(_state["threads"])
        ends = np.array([[-128] * 64, [127] * 64, [-128, 127] * 32, [127, -128] * 32], np.int8)
        probe = np.resize(ends, (16, 64))  # every pair of rows: products of both signs, 2**14 each
        got = torch._int_mm(torch.from_numpy(probe), torch.from_numpy(probe).t()).numpy()
        ok = np.array_equal(got, probe.astype(np.int64) @ probe.T.astype(np.int64))
    except Exception:  # no torch, no `_int_mm`, or a build without int8 GEMM: the numpy path
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
    return _state["torch"]


def int8_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """x (N, K) int8 @ w (H, K) int8 transposed -> (N, H) int32, exactly, or None when torch
    is not at hand (or K < 2, or an operand is empty). The caller guarantees
    K * max|x| * max|w| < 2**31."""
    if x.shape[1] < 2 or 0 in x.shape or 0 in w.shape:  # torch 2.13's products over K = 1 are wrong
        return None
    torch = torch_or_none(x.shape[0] * x.shape[1] * w.shape[0])
    if torch is None:
        return None
    limit = _state.get("threads")
    if limit is not None and getattr(_local, "threads", None) != limit:
        torch.set_num_threads(limit)  # oneDNN reads the calling thread's own OpenMP setting
        _local.threads = limit
    return torch._int_mm(_tensor(torch, x), _tensor(torch, w).t()).numpy()


def _tensor(torch, a: np.ndarray):
    """A torch view of a (a C-contiguous copy where it is not contiguous)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():  # torch warns of read-only arrays; this one is only read
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


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
    thread, which a thread started inside does not inherit: `int8_matmul` applies it in every
    thread that calls it."""
    before = _set_threads(n)
    _state["threads"] = n
    try:
        yield
    finally:
        del _state["threads"]
        before = _state.pop("default_threads", before)
        if before is not None:
            _set_threads(before)
