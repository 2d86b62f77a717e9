"""Host side of the UART shell (ULX3S): images to bytes on the wire, bytes back to classes.

The host sends each image as its input beats of ceil(in_bits/8) little-endian bytes; the
shell answers each output beat with ceil(out_bits/8) bytes (a top-1 design: one byte, the
class index).
"""
from __future__ import annotations

import numpy as np

from flow.core.wire import beat_bytes, pack_beats, unpack_beats
from flow.ir.reference import design_streams, to_wire


def _streams(graph):
    return design_streams(graph, False)


def image_bytes(graph, images: np.ndarray) -> bytes:
    """The bytes the host sends for uint8 images (N, C, H, W)."""
    s_in, _s_out = _streams(graph)
    return pack_beats(to_wire(graph, images), s_in.lanes, s_in.bits).tobytes()


def reply_bytes_per_image(graph) -> int:
    _s_in, s_out = _streams(graph)
    return s_out.beats * beat_bytes(s_out.width)


def decode_reply(graph, data: bytes, n: int) -> np.ndarray:
    """The shell's reply for n images -> int64 top-1 indices (n,)."""
    _s_in, s_out = _streams(graph)
    per = reply_bytes_per_image(graph)
    if len(data) != n * per:
        raise ValueError(f"expected {n * per} reply bytes for {n} images, got {len(data)}")
    beats = np.frombuffer(data, dtype=np.uint8).reshape(-1, beat_bytes(s_out.width))
    y = unpack_beats(beats, s_out.lanes, s_out.bits).reshape(n, -1)[:, : s_out.elems]
    return y[:, 0].astype(np.int64)


def classify_over_uart(graph, images: np.ndarray, port: str, baud: int = 115200, timeout_s: float = 10.0):
    """Send images to a board running the UART shell (pyserial) and return its top-1 answers."""
    import serial  # deferred: pyserial is optional, needed only where a board is attached

    images = np.asarray(images)
    per = reply_bytes_per_image(graph)
    out = bytearray()
    with serial.Serial(port, baudrate=baud, timeout=timeout_s) as link:
        link.reset_input_buffer()
        for i in range(len(images)):  # one image at a time: the reply paces the host
            link.write(image_bytes(graph, images[i:i + 1]))
            got = link.read(per)
            if len(got) != per:
                raise TimeoutError(f"no reply from {port} for image {i} within {timeout_s} s")
            out += got
    return decode_reply(graph, bytes(out), len(images))
