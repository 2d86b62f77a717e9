"""The sliding window's line buffer depth (flow.ops.sliding_window.line_buffer_beats): the
engine's default where it streams every frame at one beat per clock, deeper only where the
next frame's first window row would otherwise wait (tests/test_cocotb_engines.py runs both
kinds at exactly their formula's cycles per frame)."""
from __future__ import annotations

import pytest

from flow.ops.sliding_window import buffer_param, line_buffer_beats


def window(h, w, c, k, stride=1, pad=0, simd=1, **more):
    return {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "STRIDE": stride, "PAD": pad, "PAD_VALUE": 0,
            "SIMD": simd, "ELEM_BITS": 1, **more}


@pytest.mark.parametrize("p", [
    window(32, 32, 3, 3, simd=3),            # CNV's first layer: 4 rows of 32 beats, exactly full
    window(30, 30, 64, 3, simd=32),          # CNV's second layer
    window(14, 14, 32, 3, pad=1, simd=8),    # MobileNet-style padded 3 x 3
    window(224, 224, 3, 7, 2, 3, simd=3),    # ResNet's stem
    window(8, 8, 3, 3, simd=3),
])
def test_common_windows_keep_the_engines_default_buffer(p):
    assert buffer_param(p) == {}


def test_a_window_spanning_the_image_gets_two_frames_of_buffer():
    p = window(7, 6, 2, 4, 2, 0, K_W=2, STRIDE_W=1, PAD_LEFT=1, PAD_BOTTOM=0, PAD_RIGHT=0, DIL_H=2, DIL_W=2)
    # 84 beats a frame; the reader holds 78 of them at its last window, and output beat t of the
    # next frame needs up to t + 61 of its beats: 139, 256 as a power of two (the default, 9 rows
    # of 12 beats, is 128)
    assert buffer_param(p) == {"BUF_BEATS": 256}
    assert line_buffer_beats(7, 6, 2, (4, 2), (2, 1), (0, 1, 0, 0), (2, 2)) == 256


def test_an_unpadded_tall_kernel_gets_a_deeper_buffer():
    # 6 rows of 16 beats 2 wide: the default 8 rows (256 beats) leaves the next frame's rows waiting
    assert buffer_param(window(15, 16, 4, 6, 2, 0, simd=2)) == {"BUF_BEATS": 512}
