"""flow.train.nn.quantize_fixed equals ap_fixed/ap_ufixed (hls4ml 1.3.0's ap_types headers), bit for bit.

One C++ program (compiled once per session) assigns every input double to
ap_[u]fixed<W, I, Q, O> for all 7 rounding x 4 overflow modes and prints what is stored;
the Python function must return exactly the same numbers (array_equal, no tolerance)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from flow.train.nn import OVERFLOW, ROUNDING, quantize_fixed

CONFIGS = [(8, 3), (5, 0), (4, 6), (6, -2), (12, 5)]  # (W, I): I > W and I < 0 included
N_VALUES = 100_000

HARNESS = r"""
#include <ap_fixed.h>
#include <cstdio>
#include <cstdlib>
#include <vector>

static std::vector<double> in;
static std::vector<float> out;

template <class T> static void run() {
    for (size_t i = 0; i < in.size(); i++) { T v = in[i]; out[i] = (float)v.to_double(); }
    fwrite(out.data(), sizeof(float), out.size(), stdout);
}
#define O4(S, W, I, Q) run<S<W, I, Q, AP_SAT> >(); run<S<W, I, Q, AP_SAT_ZERO> >(); \
    run<S<W, I, Q, AP_SAT_SYM> >(); run<S<W, I, Q, AP_WRAP> >();
#define Q7(S, W, I) O4(S, W, I, AP_TRN) O4(S, W, I, AP_TRN_ZERO) O4(S, W, I, AP_RND) \
    O4(S, W, I, AP_RND_ZERO) O4(S, W, I, AP_RND_INF) O4(S, W, I, AP_RND_MIN_INF) O4(S, W, I, AP_RND_CONV)
#define CFG(n, W, I) if (cfg == n) { Q7(ap_fixed, W, I) Q7(ap_ufixed, W, I) }

int main(int argc, char** argv) {
    int cfg = atoi(argv[1]);
    size_t n = 0;
    if (fread(&n, sizeof(n), 1, stdin) != 1) return 1;
    in.resize(n); out.resize(n);
    if (fread(in.data(), sizeof(double), n, stdin) != n) return 1;
    %CONFIGS%
    return 0;
}
"""


def _find_headers() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    return path if (path / "ap_fixed.h").is_file() else None


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    inc = _find_headers()
    if inc is None:
        pytest.skip("hls4ml 1.3.0 (ap_types headers) is not installed; run 'make install'")
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    d = tmp_path_factory.mktemp("apfixed")
    cfgs = "\n    ".join(f"CFG({i}, {w}, {ib})" for i, (w, ib) in enumerate(CONFIGS))
    (d / "h.cpp").write_text(HARNESS.replace("%CONFIGS%", cfgs))
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", f"-I{inc}", "h.cpp", "-o", "h"], cwd=d, check=True)
    return d / "h"


def _values(width: int, int_bits: int, n: int, seed: int) -> np.ndarray:
    """Grid points, exact ties, quarter points, continuous values, far out-of-range values."""
    rng = np.random.default_rng(seed)
    lsb = 2.0 ** (int_bits - width)
    span = 2 ** (width + 2)
    k = rng.integers(-span, span + 1, n).astype(np.float64)
    parts = [
        k[: n // 4] * lsb,  # on the grid, in and out of range
        (k[n // 4: n // 2] + 0.5) * lsb,  # exact ties
        (k[n // 2: 5 * n // 8] + rng.choice([0.25, 0.75, 1e-9, -1e-9], n // 8)) * lsb,
        rng.uniform(-1.0, 1.0, n // 4) * 2.0 ** (int_bits + 2),  # continuous
        np.sign(rng.standard_normal(n // 8)) * 2.0 ** rng.uniform(int_bits, int_bits + 40, n // 8),  # far out
    ]
    x = np.concatenate(parts)
    lo_hi = np.array([-(2 ** (width - 1)), 2 ** (width - 1) - 1, 0, 2 ** width - 1], np.float64)
    edges = np.concatenate([lo_hi + d for d in (-1.5, -1, -0.5, 0, 0.5, 1, 1.5)]) * lsb
    x = np.concatenate([x, edges, [0.0, -0.0, lsb / 2, -lsb / 2]])
    return x[:n] if len(x) >= n else np.concatenate([x, rng.uniform(-4, 4, n - len(x)) * lsb])


@pytest.mark.parametrize("cfg", range(len(CONFIGS)), ids=[f"W{w}I{i}" for w, i in CONFIGS])
def test_quantize_fixed_equals_ap_fixed(harness, cfg):
    width, int_bits = CONFIGS[cfg]
    x = _values(width, int_bits, N_VALUES, seed=cfg)
    assert len(x) == N_VALUES
    payload = np.array([len(x)], np.uint64).tobytes() + x.astype(np.float64).tobytes()
    raw = subprocess.run([str(harness), str(cfg)], input=payload, capture_output=True, check=True).stdout
    got = np.frombuffer(raw, np.float32).reshape(2, len(ROUNDING), len(OVERFLOW), len(x))
    xt = torch.from_numpy(x)
    failures = []
    for si, signed in enumerate((True, False)):
        for qi, rounding in enumerate(ROUNDING):
            for oi, overflow in enumerate(OVERFLOW):
                ours = quantize_fixed(xt, width, int_bits, rounding, overflow, signed).numpy()
                ref = got[si, qi, oi].astype(np.float64)
                if not np.array_equal(ours, ref):
                    bad = np.flatnonzero(ours != ref)
                    failures.append(f"{'ap_fixed' if signed else 'ap_ufixed'}<{width},{int_bits},{rounding},"
                                    f"{overflow}>: {len(bad)} differ, e.g. x={x[bad[0]]!r} ours={ours[bad[0]]} "
                                    f"ap={ref[bad[0]]}")
    assert not failures, "\n".join(failures[:20])
