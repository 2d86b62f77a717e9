"""The integer type of the model input: what a user feeds, what the model sees, what the wire carries.

An input element is an integer x in {lo, lo + stride, ..., hi}; the float model sees x * step
(or x / divisor for the default uint8 pixels p/255). The wire carries the unsigned code
u = (x - lo) / stride: uint8 and binary as they are, int8 and fixed<W,I> as offset binary
(x + 2^(W-1)), bipolar as 0 for -1 and 1 for +1.

    uint8        0..255, the model sees x            int8          -128..127, the model sees x
    binary       0 or 1                              bipolar       -1 or +1
    fixed<W,I>   W-bit signed x, the model sees x * 2^(I-W) (FINN's FIXED<W,I>: I integer bits, sign included)
    (default)    uint8 pixels p, the model sees p/255 (or p*S with --input-scale S)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from flow.core.quant import Codes

NAMES = ("uint8", "int8", "bipolar", "binary", "fixed<W,I>")
MAX_FIXED_BITS = 16


@dataclass(frozen=True)
class InputType:
    name: str
    lo: int
    hi: int
    stride: int = 1
    step: float = 1.0                 # the model sees x * step ...
    divisor: float | None = None      # ... or x / divisor

    @property
    def levels(self) -> int:
        return (self.hi - self.lo) // self.stride + 1

    @property
    def bits(self) -> int:
        return max(1, int(self.levels - 1).bit_length())

    @property
    def bipolar(self) -> bool:
        return self.stride == 2 and self.lo == -1

    def values(self) -> np.ndarray:
        """Every integer value, in code order."""
        return np.arange(self.lo, self.hi + 1, self.stride, dtype=np.int64)

    def float_values(self, x) -> np.ndarray:
        """What the float model sees for integer inputs x."""
        f = np.asarray(x).astype(np.float32)
        if self.divisor is not None:
            return (f / np.float32(self.divisor)).astype(np.float32)
        return (f * np.float32(self.step)).astype(np.float32)

    def codes(self) -> Codes:
        """The input as a quantized tensor (when a layer reads it directly)."""
        if self.divisor is not None:  # pixels p seen as p/255: one step is float32(1/255)
            return Codes(self.levels, self.stride, self.lo, float(np.float32(1.0) / np.float32(self.divisor)))
        return Codes(self.levels, self.stride, self.lo, float(self.step), bipolar=self.bipolar)

    def to_codes(self, x: np.ndarray) -> np.ndarray:
        codes = np.asarray(x, np.int64) - self.lo  # a new array
        return codes // self.stride if self.stride != 1 else codes

    def check(self, x: np.ndarray, what: str = "input images") -> str | None:
        """Why integer array x is not a batch of this type's values, or None."""
        v = np.asarray(x)
        kind = self.name.split()[0]
        if v.dtype.kind not in "iu":
            return f"{what} must be {kind} values ({self.describe()}), got dtype {v.dtype}"
        if v.size == 0:
            return None
        lo, hi = int(v.min()), int(v.max())
        if lo < self.lo or hi > self.hi:
            bad = lo if lo < self.lo else hi
            return f"{what} must be {kind} values ({self.describe()}), got {v.dtype} values such as {bad}"
        if self.stride != 1 and np.any((v.astype(np.int64) - self.lo) % self.stride):
            bad = int(v[(v.astype(np.int64) - self.lo) % self.stride != 0].flat[0])
            return f"{what} must be {kind} values ({self.describe()}), got {v.dtype} values such as {bad}"
        return None

    def describe(self) -> str:
        if self.bipolar:
            return "-1 or +1"
        return f"integers {self.lo}..{self.hi}"

    def random(self, n: int, shape: tuple, seed: int = 0) -> np.ndarray:
        """n deterministic random inputs shaped `shape` (for uint8 pixels the same draws as before types)."""
        rng = np.random.default_rng(seed)
        u = rng.integers(0, self.levels, (n, *shape), dtype=np.uint8 if self.levels <= 256 else np.int64)
        if self.lo == 0 and self.stride == 1 and self.dtype() == np.uint8:
            return u.astype(np.uint8)
        return (self.lo + self.stride * u.astype(np.int64)).astype(self.dtype())

    def dtype(self):
        return np.uint8 if self.lo >= 0 and self.hi <= 255 else np.int8 if self.lo >= -128 and self.hi <= 127 else np.int32

    def meta(self) -> dict:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "stride": self.stride, "step": self.step,
                "divisor": self.divisor}

    def convention(self) -> str:
        if self.divisor is not None:
            return f"uint8 pixels p; the model sees p/{self.divisor:g}"
        if self.name == "uint8 pixels":
            return f"uint8 pixels p; the model sees p*{self.step}"
        sees = "x" if self.step == 1.0 else f"x*{self.step:g}"
        return f"{self.name} inputs x ({self.describe()}); the model sees {sees}; the wire carries {self.wire()}"

    def wire(self) -> str:
        if self.bipolar:
            return "1-bit codes, 0 for -1 and 1 for +1"
        if self.lo < 0:
            return f"{self.bits}-bit offset-binary codes x + {-self.lo}"
        return f"{self.bits}-bit codes x"


def pixels(scale: float | None = None) -> InputType:
    """The default: uint8 pixels seen as p/255, or p*scale."""
    if scale is None:
        return InputType("uint8 pixels", 0, 255, divisor=255.0)
    return InputType("uint8 pixels", 0, 255, step=float(scale))


def parse(text: str) -> InputType:
    """--input-type TEXT -> InputType (ValueError with one sentence when it is not one)."""
    t = str(text).strip().lower()
    if t == "uint8":
        return InputType("uint8", 0, 255)
    if t == "int8":
        return InputType("int8", -128, 127)
    if t == "bipolar":
        return InputType("bipolar", -1, 1, stride=2)
    if t == "binary":
        return InputType("binary", 0, 1)
    m = re.fullmatch(r"fixed<\s*(\d+)\s*,\s*(-?\d+)\s*>", t)
    if m:
        w, i = int(m.group(1)), int(m.group(2))
        if not 2 <= w <= MAX_FIXED_BITS or not 1 <= i <= w:
            raise ValueError(f"fixed<W,I> needs 2 <= W <= {MAX_FIXED_BITS} total bits and 1 <= I <= W integer "
                             f"bits, got {text!r}")
        return InputType(f"fixed<{w},{i}>", -(1 << (w - 1)), (1 << (w - 1)) - 1, step=float(2.0 ** (i - w)))
    raise ValueError(f"expected one of {', '.join(NAMES)}, got {text!r}")


def from_datatype(dt) -> InputType | None:
    """The InputType of a qonnx DataType annotation (None for FLOAT32 and types the input cannot take)."""
    name = dt.name
    if name in ("UINT8", "INT8", "BIPOLAR", "BINARY"):
        return parse(name.lower())
    m = re.fullmatch(r"FIXED<(\d+),(\d+)>", name)
    if m:
        return parse(name.lower())
    m = re.fullmatch(r"(U?)INT(\d+)", name)
    if m and 2 <= int(m.group(2)) <= MAX_FIXED_BITS:
        b = int(m.group(2))
        lo, hi = (0, (1 << b) - 1) if m.group(1) else (-(1 << (b - 1)), (1 << (b - 1)) - 1)
        return InputType(name.lower(), lo, hi)
    return None


def from_meta(info: dict) -> InputType:
    """The InputType a dataflow graph's input metadata records (old graphs: uint8 pixels)."""
    t = info.get("type")
    if not isinstance(t, dict):
        return pixels(info.get("scale"))
    return InputType(str(t["name"]), int(t["lo"]), int(t["hi"]), int(t.get("stride", 1)), float(t.get("step", 1.0)),
                     None if t.get("divisor") is None else float(t["divisor"]))
