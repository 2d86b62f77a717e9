"""The numpy reference's fast paths equal the straightforward formulas.

torch's oneDNN int8 kernels where torch is installed (±1 and 8-bit products, one threshold
compared in the kernel, an MVU over sliding windows as one convolution), and the numpy paths
without it: bit-packed XNOR-popcount (64 bits to a word, blocks of rows by columns),
integer GEMM in float32 / float64 BLAS where every partial sum is provably exact and in int64
beyond, the threshold compare in the accumulators' own width (or a table of counts), strided
sliding windows and max-pool, and chunks of a batch run side by side: each against the formula
written out on random inputs, with the edge sizes (widths around multiples of 64, 1-bit and
8-bit inputs, negative and huge weights, thresholds outside the reachable range).
"""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_nets import Layer, TinyNet, save
from flow.core import int8_gemm
from flow.frontend.load import load_qonnx
from flow.ir import reference
from flow.ops import bitpack, semantics
from flow.passes.streamline import streamline

WIDTHS = (1, 7, 63, 64, 65, 127, 129, 192, 193, 577)


def count_thresholds(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """out[n, c] = #{t : v[n, c] >= thr[c, t]}, in Python integers."""
    v, thr = np.asarray(v).astype(object), np.asarray(thr).astype(object)
    return (v[:, :, None] >= thr[None, :, :]).sum(axis=2).astype(np.int64)


def matches(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """XNOR-popcount written out: the positions where the bits agree."""
    return (x[:, None, :] == w[None, :, :]).sum(axis=2).astype(np.int64)


def use_torch(monkeypatch) -> None:
    """torch's int8 kernels for every product they take (the test is skipped without torch)."""
    pytest.importorskip("torch")
    monkeypatch.setattr(int8_gemm, "IMPORT_MACS", 0)
    assert int8_gemm.torch_or_none(0) is not None, "torch's int8 kernels failed their check"


def no_torch(monkeypatch) -> None:
    """The numpy paths alone, as without torch."""
    monkeypatch.setattr(int8_gemm, "torch_or_none", lambda macs: None)


@pytest.fixture(params=["int8 GEMM", "numpy", "numpy, small blocks"])
def path(request, monkeypatch):
    """torch's int8 kernels for every product they take (skipped without torch), and the
    numpy paths alone: the popcount kernel's blocks as they are, and small enough to split
    every operand (partial blocks of rows and of columns)."""
    if request.param == "int8 GEMM":
        use_torch(monkeypatch)
        return
    no_torch(monkeypatch)
    if request.param == "numpy, small blocks":
        monkeypatch.setattr(bitpack, "BLOCK_COLS", 5)
        monkeypatch.setattr(bitpack, "POPCOUNT_BLOCK", 15)


@pytest.mark.parametrize("mw", WIDTHS)
def test_xnor_popcount_equals_the_formula(mw, path):
    rng = np.random.default_rng(mw)
    for rows, mh in ((1, 1), (3, 17), (70, 9)):  # both kernel orientations (rows < MH and rows >= MH)
        x = rng.integers(0, 2, (rows, mw)).astype(rng.choice([np.uint8, np.int64]))
        w = rng.integers(0, 2, (mh, mw))
        want = matches(x, w)
        got = semantics.binary_mvu(x, w)
        assert got.dtype == np.int64 and np.array_equal(got, want), int(np.sum(got != want))
        for t in (1, 2, 4, 6):  # compared in the kernel's blocks (T <= 4) and through multithreshold
            thr = np.sort(rng.integers(-3, mw + 4, (mh, t)), axis=1)
            got = semantics.binary_mvu(x, w, thr)
            assert got.dtype == np.uint8 and np.array_equal(got, count_thresholds(want, thr))


def test_xnor_popcount_beyond_16_bit_counts(path):
    rng = np.random.default_rng(1)
    mw = (1 << 16) + 70  # the counts leave uint16
    x, w = rng.integers(0, 2, (3, mw)), rng.integers(0, 2, (2, mw))
    x[0], w[0] = 1, 1  # every bit agrees: the largest count
    want = matches(x, w)
    assert np.array_equal(semantics.binary_mvu(x, w), want)
    thr = np.array([[mw], [mw // 2]])
    assert np.array_equal(semantics.binary_mvu(x, w, thr), count_thresholds(want, thr))


def test_pack_bits_layout():
    bits = np.zeros((2, 130), np.uint8)
    bits[0, [0, 63, 64, 129]] = 1
    words = bitpack.pack_bits(bits)
    assert words.shape == (2, 3) and words.dtype == np.uint64
    assert words[0].tolist() == [1 | 1 << 63, 1, 2] and words[1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("in_bits", [1, 8])
@pytest.mark.parametrize("w_range", [(-1, 1), (-128, 127), (-(1 << 40), 1 << 40), (-(1 << 54), 1 << 54)])
def test_int_gemm_equals_the_formula(in_bits, w_range, path):
    """int8 GEMM for int8 weights (8-bit inputs less 128), float32 BLAS below 2**24, float64
    below 2**53, int64 beyond: the same integers."""
    rng = np.random.default_rng(in_bits + len(str(w_range)))
    for mw in (1, 3, 27, 65) if w_range[1] < 1 << 50 else (1, 2):
        x = rng.integers(0, 1 << in_bits, (40, mw)).astype(rng.choice([np.uint8, np.int64]))
        w = rng.integers(w_range[0], w_range[1] + 1, (6, mw))
        w[0] = w_range[0]  # the most negative weights
        x[0] = (1 << in_bits) - 1
        want = (x.astype(object) @ w.T.astype(object)).astype(np.int64)
        got = semantics.int_mvu(x, w)
        assert got.dtype == np.int64 and np.array_equal(got, want), int(np.sum(got != want))
        lo, hi = int(want.min()), int(want.max())
        for t in (1, 3, 7):
            thr = np.sort(rng.integers(lo - 5, hi + 6, (6, t)), axis=1)
            if t > 1:
                thr[:, 0] = -(1 << 60)  # below every reachable accumulator
            got = semantics.int_mvu(x, w, thr)
            assert np.array_equal(got, count_thresholds(want, thr)), int(np.sum(got != count_thresholds(want, thr)))


def test_signed_int8_inputs(path):
    """Inputs of -128..127 go to the int8 GEMM as they are; one past them does not."""
    rng = np.random.default_rng(9)
    for lo, hi in ((-128, 127), (-129, 127), (-128, 128)):
        x, w = rng.integers(lo, hi + 1, (30, 40)), rng.integers(-128, 128, (7, 40))
        x[0], x[1], w[0] = lo, hi, -128
        want = (x.astype(object) @ w.T.astype(object)).astype(np.int64)
        assert np.array_equal(semantics.int_mvu(x, w), want)
        thr = np.sort(rng.integers(int(want.min()) - 2, int(want.max()) + 3, (7, 2)), axis=1)
        assert np.array_equal(semantics.int_mvu(x, w, thr), count_thresholds(want, thr))


def test_int_gemm_just_past_float32(path):
    """A sum of 2**24 + 1 is not a float32: the bound sends it to float64."""
    x = np.ones((2, 3), np.int64)
    w = np.array([[1 << 23, 1 << 23, 1], [-(1 << 23), -(1 << 23), -1]])
    assert semantics.int_mvu(x, w).tolist() == [[(1 << 24) + 1, -(1 << 24) - 1]] * 2
    thr = np.array([[(1 << 24) + 1], [-(1 << 24)]])
    assert semantics.int_mvu(x, w, thr).tolist() == [[1, 0]] * 2


def test_depthwise_product_equals_the_formula():
    rng = np.random.default_rng(4)
    for dtype, bits in ((np.uint8, 8), (np.int64, 1)):
        x = rng.integers(0, 1 << bits, (3, 5, 9, 6)).astype(dtype)
        w = rng.integers(-128, 128, (6, 9))
        want = (x.astype(object)[:, :, :, :] * w.T.astype(object)[None, None]).sum(axis=2).astype(np.int64)
        got = semantics.vvu(x, w)
        assert got.dtype == np.int64 and np.array_equal(got, want)
        thr = np.sort(rng.integers(int(want.min()) - 3, int(want.max()) + 4, (6, 5)), axis=1)
        assert np.array_equal(semantics.vvu(x, w, thr), count_thresholds(want.reshape(-1, 6), thr).reshape(3, 5, 6))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("t", [1, 4, 5, 40, 300])
def test_multithreshold_equals_the_formula(dtype, t):
    """Both the table of counts (few values, many of them) and the binary search, thresholds
    in any order, outside the values' range and at the dtype's ends."""
    rng = np.random.default_rng(t)
    info = np.iinfo(dtype)
    for rows, span, top in ((2000, 40, False), (7, 1 << 12, True)):
        lo = max(int(info.min), -span // 2)
        v = rng.integers(lo, min(int(info.max), lo + span) + 1, (rows, 3)).astype(dtype)
        thr = rng.integers(lo - 10, lo + span + 10, (3, t))
        if top:  # the dtype's largest value, and a threshold just past it
            v[0, 0] = info.max
            thr[0, -1] = int(info.max) + 1 if info.bits < 64 else int(info.max)
        got = semantics.multithreshold(v, thr)
        assert got.dtype == (np.uint8 if t < 256 else np.int32)
        assert np.array_equal(got, count_thresholds(v, thr)), int(np.sum(got != count_thresholds(v, thr)))


def window_formula(x, k, s, pad, pad_value, d):
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    pt, pl, pb, pr = pad
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    oh, ow = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1, (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, kh * kw * x.shape[3]), x.dtype)
    for oy in range(oh):
        for ox in range(ow):
            taps = [xp[:, oy * sh + ky * dh, ox * sw + kx * dw, :] for ky in range(kh) for kx in range(kw)]
            out[:, oy, ox] = np.concatenate(taps, axis=1)
    return out


def test_sliding_window_and_maxpool_equal_the_formula():
    rng = np.random.default_rng(3)
    for case in range(40):
        h, w, c = (int(v) for v in rng.integers(5, 10, 3))
        x = rng.integers(0, 4, (2, h, w, c)).astype(rng.choice([np.uint8, np.int64]))
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        s = tuple(int(v) for v in rng.integers(1, 3, 2))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = tuple(int(v) for v in rng.integers(0, 2, 4))
        got = semantics.sliding_window(x, k, s, pad, 3, d)
        assert got.dtype == x.dtype and np.array_equal(got, window_formula(x, k, s, pad, 3, d)), case
        win = window_formula(x, k, s, (0, 0, 0, 0), 0, (1, 1))
        want = win.reshape(*win.shape[:3], k[0] * k[1], c).max(axis=3)
        assert np.array_equal(semantics.maxpool(x, k, s), want), case


def test_chunks_side_by_side_equal_one_chunk(tmp_path, monkeypatch, path):
    rng = np.random.default_rng(5)
    net = TinyNet(20, 8, [Layer(rng.choice([-1, 1], (16, 20)), 0), Layer(rng.integers(-3, 4, (5, 16)), 3)])
    graph = streamline(load_qonnx(save(net, tmp_path / "m.onnx")))
    images = rng.integers(0, 256, (50, 20), dtype=np.uint8)
    whole = reference.execute_numpy(graph, images, logits=True)
    monkeypatch.setattr(reference, "CHUNK_ELEMS", 1)  # one image a chunk: 50 chunks over the cores
    assert np.array_equal(reference.execute_numpy(graph, images, logits=True), whole)
    assert np.array_equal(reference.execute_numpy(graph, images), np.argmax(whole, axis=1))


@pytest.mark.parametrize("k", [1, 2, 7, 27, 63, 64, 65, 127, 129, 577, 4608])
def test_int8_kernel_equals_int64_products(k, monkeypatch):
    """torch's int8 GEMM at the edge widths and on the extreme operands (inputs 0 and 255 or
    0 and 128 about a zero point of 128, weights -128 and 127, or -1 and 1 where the sums
    would leave float32's exact integers): the int64 sums plus the bias, and one threshold
    compared in the kernel."""
    use_torch(monkeypatch)
    rng = np.random.default_rng(k)
    top = 127 if 255 * 128 * k < 1 << 23 else 1
    for (n, h), zp in zip(((1, 1), (3, 17), (70, 9)), (0, 128, 0)):
        x, w = rng.integers(0, 256, (n, k)).astype(np.uint8), rng.integers(-top - 1, top + 1, (h, k)).astype(np.int8)
        x[0], x[-1], w[0], w[-1] = 255, 0, -top - 1, top
        want = (x.astype(np.int64) - zp) @ w.T.astype(np.int64)
        bias = rng.integers(-k, k + 1, h)
        got = int8_gemm.Int8Linear(w, zp, bias)(x)
        assert got.dtype == np.float32 and np.array_equal(got, want + bias)
        t = rng.integers(int(want.min()), int(want.max()) + 2, h)
        got = int8_gemm.Int8Linear(w, zp, 1 - t, clip01=True)(x)
        assert got.dtype == np.uint8 and np.array_equal(got, (want >= t).astype(np.uint8))


@pytest.mark.parametrize("mw", [1, 2, 63, 64, 65, 577, 2304, 4608])
def test_binary_int8_gemm_equals_popcount(mw, monkeypatch):
    """The bits against the ±1 weights in the int8 GEMM equal the popcount kernel: all-ones
    and all-zero rows and weights, random bits, no / one / few / many thresholds."""
    use_torch(monkeypatch)
    rng = np.random.default_rng(mw)
    x, w = rng.integers(0, 2, (50, mw)).astype(np.uint8), rng.integers(0, 2, (12, mw))
    x[0], x[1], w[0], w[1] = 1, 0, 1, 0
    thr = np.sort(rng.integers(-3, mw + 4, (12, 6)), axis=1)
    thr[0] = [-1, 0, 1, mw - 1, mw, mw + 1]
    cases = (None, thr[:, :1], thr[:, 2:5], thr)
    runs = []  # the int8 kernel's calls
    monkeypatch.setattr(int8_gemm.Int8Linear, "_run", lambda *a, run=int8_gemm.Int8Linear._run: runs.append(1) or run(*a))
    fast = [semantics.binary_mvu(x, w, t) for t in cases]
    assert len(runs) == len(cases)
    no_torch(monkeypatch)
    for t, got in zip(cases, fast):
        want = semantics.binary_mvu(x, w, t)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(fast[0], matches(x, w))


def random_window(rng: np.random.Generator) -> tuple:
    """A sliding window as `SlidingWindow.conv_window` gives it: a small image, a kernel of
    1..3, strides and dilations of 1..2, padding (asymmetric too) of 0..1."""
    h, w, c = (int(v) for v in rng.integers(4, 9, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    s, d = tuple(int(v) for v in rng.integers(1, 3, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
    return (h, w, c), k, s, tuple(int(v) for v in rng.integers(0, 2, 4)), int(rng.integers(0, 2)), d


@pytest.mark.parametrize("binary", [True, False])
def test_convolution_equals_the_windows_product(binary, monkeypatch):
    """An MVU over a sliding window as one int8 convolution of the image equals the windows
    written out and multiplied in numpy: kernels, strides, dilations, padding with 0 and 1,
    1-bit, 8-bit and signed 8-bit inputs, no / one / three thresholds."""
    use_torch(monkeypatch)
    rng = np.random.default_rng(8 + binary)
    for case in range(30):
        window = random_window(rng)
        (h, w, c), k, s, pads, pad_value, d = window
        lo, hi = (0, 1) if binary else ((0, 255), (-128, 127), (0, 3))[case % 3]
        x = rng.integers(lo, hi + 1, (3, h * w * c)).astype(np.uint8 if lo == 0 else np.int64)
        wts = rng.integers(0, 2, (5, k[0] * k[1] * c)) if binary else rng.integers(-128, 128, (5, k[0] * k[1] * c))
        windows = semantics.sliding_window(x.reshape(3, h, w, c), k, s, pads, pad_value, d)
        for t in (None, 1, 3):
            thr = None if t is None else np.sort(rng.integers(-20, 20, (5, t)), axis=1) * (1 if binary else 500)
            conv = semantics.mvu_conv_kernel(binary, wts, thr, window)
            got = conv(x)
            with monkeypatch.context() as m:
                no_torch(m)
                kernel = (semantics.binary_mvu_kernel if binary else semantics.int_mvu_kernel)(wts, thr)
                want = kernel(windows.reshape(-1, wts.shape[1])).reshape(3, -1)
                assert conv(x) is None
            assert got is not None and got.dtype == want.dtype and np.array_equal(got, want), (case, t)


def test_empty_operands(path):
    """No vectors, no neurons, no inputs, no thresholds: the shapes and counts of the formula."""
    w, thr = np.ones((3, 5), np.int64), np.zeros((3, 1), np.int64)
    for mvu in (semantics.binary_mvu, semantics.int_mvu):
        assert mvu(np.zeros((0, 5), np.uint8), w).shape == (0, 3) and mvu(np.zeros((0, 5), np.uint8), w, thr).shape == (0, 3)
        assert mvu(np.ones((2, 5), np.uint8), np.zeros((0, 5), np.int64)).shape == (2, 0)
        assert mvu(np.ones((2, 5), np.uint8), w, np.zeros((3, 0), np.int64)).tolist() == [[0] * 3] * 2
    assert semantics.int_mvu(np.ones((2, 0), np.uint8), np.zeros((3, 0), np.int64), thr).tolist() == [[1] * 3] * 2


def test_int8_kernels_unused_when_their_check_fails(monkeypatch):
    """A kernel that gets the extreme operands wrong (a saturating one) is never used."""
    pytest.importorskip("torch")
    monkeypatch.setattr(int8_gemm, "_state", {"macs": 0})
    monkeypatch.setattr(int8_gemm.Int8Linear, "_run", lambda self, torch, x: np.zeros((len(x), len(self.w8)), np.float32))
    assert int8_gemm.torch_or_none(1 << 40) is None
    assert int8_gemm.Int8Linear(np.ones((3, 70), np.int8), 0)(np.ones((2, 70), np.uint8)) is None
    x, w = np.ones((4, 70), np.uint8), np.ones((3, 70), np.int64)
    assert semantics.binary_mvu(x, w).tolist() == [[70] * 3] * 4


def test_torch_threads_are_restored():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with int8_gemm.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
