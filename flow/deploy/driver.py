"""Run a bnnflow accelerator from Python: one API, three backends.

    from driver import Accelerator
    acc = Accelerator("deploy", backend="pynq")                       # on a Zynq board with PYNQ
    acc = Accelerator("deploy", backend="sim")                        # anywhere bnnflow is installed
    acc = Accelerator("deploy", backend="uart", port="/dev/ttyUSB0")  # ULX3S over its USB UART
    top1 = acc.predict(images)           # integer inputs (N, *input_shape) -> int64 (N,)
    acc.verify()                         # the shipped samples against their expected top-1
    acc.throughput_test()                # images per second

The backends move the same beats; only the transport differs:
- "pynq": the bitstream through `pynq.Overlay`, one AXI DMA transfer per batch. MM2S sends
  N*in_beats rows of axi_bytes(in_bits) bytes and asserts TLAST on the last one; S2MM returns
  N*out_beats rows of axi_bytes(out_bits) bytes. The DMA buffers are reused across batches.
- "sim": the build's compiled Verilator model (imports bnnflow; the deploy directory must sit
  in its build directory).
- "uart": pyserial, 8N1; each image goes out as its in_beats beats of beat_bytes(in_bits)
  bytes and each output beat comes back as beat_bytes(out_bits) bytes.

Only numpy is imported at import time; `pynq`, `serial` and `flow` are imported by the backend
that needs them. Every build's deploy/ carries a copy of this file next to io.json.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pynq import PynqBuffer

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

IO_FILE = "io.json"
SAMPLES_FILE = "samples.npz"
GRAPH_FILE = "dataflow.onnx"  # the build's graph, next to deploy/ (the sim backend)
BACKENDS = ("pynq", "sim", "uart")
# the AXI DMA instance of the Zynq block design (boards/templates/build.tcl.j2)
DMA_IP = "axi_dma_0"
# The AXI DMA's default buffer length register is 14 bits wide; the .hwh (or io.json) gives the
# width the board's block design set.
DEFAULT_DMA_MAX_BYTES = (1 << 14) - 1
DEFAULT_MAX_BATCH = {"pynq": 1024, "sim": 4096, "uart": 64}


def beat_bytes(bits: int) -> int:
    """Bytes of one beat of `bits` bits on the stream and on the UART."""
    return max(1, -(-bits // 8))


def axi_bytes(bits: int) -> int:
    """Bytes of one AXI-Stream row: the smallest power of two >= beat_bytes(bits)."""
    n = 1
    while n < beat_bytes(bits):
        n *= 2
    return n


@dataclass(frozen=True)
class IOSpec:
    """What the driver needs to know about a design (io.json)."""

    input_shape: tuple[int, ...]       # one image, (C, H, W) or (features,)
    wire_axes: tuple[int, ...]         # transpose of an (N, *input_shape) batch into wire order
    in_lanes: int
    in_elem_bits: int
    in_beats: int
    out_lanes: int
    out_elem_bits: int
    out_beats: int
    out_elems: int
    out_signed: bool
    emits: str                         # "top1", "logits", or "codes" (a final quantizer's codes or a decision)
    classes: int
    logits_scale: float
    logits_bias: float
    design_hash: str
    board: str | None = None
    uart_baud: int | None = None
    dma_max_bytes: int = DEFAULT_DMA_MAX_BYTES
    bitstream: str | None = None       # file name inside the deploy directory
    hwh: str | None = None
    input_name: str = "uint8"          # an input element is an integer lo, lo+stride, ..., hi
    input_lo: int = 0
    input_hi: int = 255
    input_stride: int = 1

    @property
    def in_bits(self) -> int:
        return self.in_lanes * self.in_elem_bits

    @property
    def out_bits(self) -> int:
        return self.out_lanes * self.out_elem_bits

    @classmethod
    def load(cls, path: Path) -> IOSpec:
        try:
            return cls._parse(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a bnnflow io.json ({type(exc).__name__}: {str(exc)[:120]})") from None

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> IOSpec:
        s_in, s_out = d["input_stream"], d["output_stream"]
        return cls(
            input_shape=tuple(int(v) for v in d["input_shape"]), wire_axes=tuple(int(v) for v in d["wire_axes"]),
            in_lanes=int(s_in["lanes"]), in_elem_bits=int(s_in["elem_bits"]), in_beats=int(s_in["beats"]),
            out_lanes=int(s_out["lanes"]), out_elem_bits=int(s_out["elem_bits"]), out_beats=int(s_out["beats"]),
            out_elems=int(s_out["elems"]), out_signed=bool(s_out["signed"]), emits=str(d["emits"]),
            classes=int(d["classes"]), logits_scale=float(d["logits"]["scale"]),
            logits_bias=float(d["logits"]["bias"]), design_hash=str(d["design_hash"]), board=d.get("board"),
            uart_baud=d.get("uart_baud"), dma_max_bytes=int(d.get("dma_max_bytes") or DEFAULT_DMA_MAX_BYTES),
            bitstream=d.get("bitstream"), hwh=d.get("hwh"), **cls._input_values(d.get("input_values")))

    @staticmethod
    def _input_values(v: dict[str, Any] | None) -> dict[str, Any]:
        if v is None:  # an io.json from before input types: uint8 pixels
            return {}
        return {"input_name": str(v["name"]), "input_lo": int(v["lo"]), "input_hi": int(v["hi"]),
                "input_stride": int(v["stride"])}


# ---------------------------------------------------------------------------------------
# packing: images -> beats -> bytes, and back


def _elem_dtype(elem_bits: int) -> np.dtype[Any]:
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if elem_bits <= 8 * np.dtype(dt).itemsize:
            return np.dtype(dt).newbyteorder("<")
    raise ValueError(f"elements of {elem_bits} bits are wider than 64 bits")


def pack_elements(values: I64, lanes: int, elem_bits: int) -> U8:
    """(N, E) integer elements -> (N*E/lanes, beat_bytes(lanes*elem_bits)) uint8 beats; element i
    of a beat at bits [i*elem_bits +: elem_bits], little-endian, two's complement."""
    n, e = values.shape
    if e % lanes:
        raise ValueError(f"{e} elements per image is not a multiple of {lanes} lanes")
    nb = n * e // lanes
    u = values.astype(np.int64).astype(np.uint64) & np.uint64((1 << elem_bits) - 1)
    raw = u.astype(_elem_dtype(elem_bits)).reshape(nb, lanes, 1).view(np.uint8)
    bits = np.unpackbits(raw, axis=2, bitorder="little")[:, :, :elem_bits].reshape(nb, lanes * elem_bits)
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_elements(beats: U8, lanes: int, elem_bits: int, signed: bool = False) -> I64:
    """(N, >= beat_bytes) uint8 beats -> (N, lanes) int64 elements."""
    nb = beats.shape[0]
    dt = _elem_dtype(elem_bits)
    bits = np.unpackbits(beats, axis=1, bitorder="little")[:, :lanes * elem_bits].reshape(nb, lanes, elem_bits)
    pad = 8 * dt.itemsize - elem_bits
    if pad:
        bits = np.concatenate([bits, np.zeros((nb, lanes, pad), np.uint8)], axis=2)
    vals = np.packbits(bits, axis=2, bitorder="little").view(dt)[:, :, 0].astype(np.int64)
    if signed:
        vals = np.where(vals >= (1 << (elem_bits - 1)), vals - (1 << elem_bits), vals)
    return vals


def check_images(spec: IOSpec, images: npt.ArrayLike) -> npt.NDArray[np.integer[Any]]:
    """An integer batch shaped (N, *input_shape) of the design's input values; a single input
    gets a batch axis."""
    x = np.asarray(images)
    if x.dtype.kind not in "iu":
        raise ValueError(f"images must be {_values(spec)}, got dtype {x.dtype}")
    if tuple(x.shape) == spec.input_shape:
        x = x[None]
    if tuple(x.shape[1:]) != spec.input_shape:
        raise ValueError(f"images must be shaped (N, {', '.join(map(str, spec.input_shape))}), got {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError("images is an empty batch; give at least one image")
    v = x.astype(np.int64)
    bad = (v < spec.input_lo) | (v > spec.input_hi) | ((v - spec.input_lo) % spec.input_stride != 0)
    if np.any(bad):
        raise ValueError(f"images must be {_values(spec)}, got {x.dtype} values such as {int(v[bad].flat[0])}")
    return x


def _values(spec: IOSpec) -> str:
    if spec.input_stride == 2 and spec.input_lo == -1:
        return f"{spec.input_name} values (-1 or +1)"
    return f"{spec.input_name} values (integers {spec.input_lo}..{spec.input_hi})"


def check_count(name: str, value: object) -> int:
    """A positive int (bool, floats and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def optional_count(name: str, value: object) -> int | None:
    return None if value is None else check_count(name, value)


def pack_images(spec: IOSpec, images: U8) -> U8:
    """The input beats of a batch: (N*in_beats, beat_bytes(in_bits)) uint8, images in order."""
    x = check_images(spec, images).transpose(spec.wire_axes).reshape(len(images), -1).astype(np.int64)
    return pack_elements((x - spec.input_lo) // spec.input_stride, spec.in_lanes, spec.in_elem_bits)


def pad_rows(rows: U8, width: int) -> U8:
    """Zero-pad each row to `width` bytes (data in the low bytes)."""
    out = np.zeros((rows.shape[0], width), np.uint8)
    out[:, :rows.shape[1]] = rows
    return out


def pack_axi(spec: IOSpec, images: U8) -> U8:
    """The MM2S buffer of a batch: (N*in_beats, axi_bytes(in_bits)) uint8, the beats zero-padded."""
    return pad_rows(pack_images(spec, images), axi_bytes(spec.in_bits))


def decode_outputs(spec: IOSpec, rows: U8, n: int) -> I64:
    """Output rows (N*out_beats, >= beat_bytes(out_bits)) -> (N, out_elems) int64."""
    if rows.shape[0] != n * spec.out_beats:
        raise ValueError(f"expected {n * spec.out_beats} output beats for {n} images, got {rows.shape[0]}")
    vals = unpack_elements(np.ascontiguousarray(rows[:, :beat_bytes(spec.out_bits)]), spec.out_lanes,
                           spec.out_elem_bits, spec.out_signed)
    return vals.reshape(n, -1)[:, :spec.out_elems]


# ---------------------------------------------------------------------------------------
# backends


class Backend(Protocol):
    max_batch: int

    def transfer(self, images: U8) -> U8:
        """Run one batch; return its output beats, (N*out_beats, >= beat_bytes(out_bits)) uint8."""
        ...

    def close(self) -> None:
        ...


class PynqBackend:
    """The bitstream on a Zynq board: `pynq.Overlay` + the `axi_dma_0` send/receive channels."""

    def __init__(self, spec: IOSpec, deploy_dir: Path, max_batch: int | None = None):
        if spec.bitstream is None or not (deploy_dir / spec.bitstream).is_file():
            raise FileNotFoundError(f"{deploy_dir} holds no bitstream; build with a Zynq --board (e.g. ultra96-v2) "
                                    "and copy the whole deploy/ directory to the board")
        import pynq  # deferred: PYNQ exists only on the board

        self.spec = spec
        self._allocate = pynq.allocate
        self.overlay = pynq.Overlay(str(deploy_dir / spec.bitstream))
        self.dma = self.overlay.axi_dma_0  # DMA_IP, spelled out so that its type is checked
        self.in_row, self.out_row = axi_bytes(spec.in_bits), axi_bytes(spec.out_bits)
        # the longest transfer the DMA's buffer length register allows, from the .hwh when it says
        width = self.overlay.ip_dict.get(DMA_IP, {}).get("parameters", {}).get("C_SG_LENGTH_WIDTH")
        limit = (1 << int(width)) - 1 if width is not None else spec.dma_max_bytes
        per_image = max(spec.in_beats * self.in_row, spec.out_beats * self.out_row)
        fits = max(1, limit // per_image)
        self.max_batch = min(fits, optional_count("max_batch", max_batch) or DEFAULT_MAX_BATCH["pynq"])
        self._in: PynqBuffer | None = None
        self._out: PynqBuffer | None = None
        self._capacity = 0

    def _buffers(self, n: int) -> tuple[PynqBuffer, PynqBuffer]:
        """Contiguous DMA buffers for n images, reused across batches and grown when needed."""
        if self._in is None or self._out is None or n > self._capacity:
            self._free()
            self._in = self._allocate(shape=(n * self.spec.in_beats, self.in_row), dtype=np.uint8)
            self._out = self._allocate(shape=(n * self.spec.out_beats, self.out_row), dtype=np.uint8)
            self._capacity = n
        return self._in, self._out

    def transfer(self, images: U8) -> U8:
        n = len(images)
        rows = pack_axi(self.spec, images)
        src, dst = self._buffers(n)
        src[:rows.shape[0]] = rows
        src.flush()
        out_rows = n * self.spec.out_beats
        self.dma.recvchannel.transfer(dst, nbytes=out_rows * self.out_row)
        self.dma.sendchannel.transfer(src, nbytes=rows.nbytes)  # MM2S asserts TLAST on its last row
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        dst.invalidate()
        return np.array(dst[:out_rows], dtype=np.uint8)

    def _free(self) -> None:
        for buf in (self._in, self._out):
            if buf is not None:
                buf.freebuffer()
        self._in = self._out = None
        self._capacity = 0

    def close(self) -> None:
        self._free()


class SimBackend:
    """The build's compiled Verilator model, fed the same beats the board receives."""

    def __init__(self, spec: IOSpec, deploy_dir: Path, max_batch: int | None = None):
        # deferred: the sim backend needs bnnflow itself; the other backends run without it
        from flow.ir.graph import load_dataflow
        from flow.sim.simulate import compiled_sim, design_hash

        build_dir = deploy_dir.parent
        graph_file = build_dir / GRAPH_FILE
        if not graph_file.is_file():
            raise FileNotFoundError(f"the sim backend needs the build directory around {deploy_dir}: {graph_file} "
                                    "does not exist")
        graph = load_dataflow(graph_file)
        if design_hash(graph) != spec.design_hash:
            raise ValueError(f"{build_dir} holds design {design_hash(graph)}, but {deploy_dir / IO_FILE} "
                             f"describes design {spec.design_hash}; rebuild or use the matching deploy directory")
        self.spec = spec
        self.sim = compiled_sim(graph, build_dir)[0]
        self.max_batch = optional_count("max_batch", max_batch) or DEFAULT_MAX_BATCH["sim"]

    def transfer(self, images: U8) -> U8:
        out, _stats = self.sim.run(pack_images(self.spec, images))
        return np.asarray(out, dtype=np.uint8)

    def close(self) -> None:
        pass


class UartBackend:
    """The ULX3S UART shell over pyserial (8N1 at the board's baud rate)."""

    def __init__(self, spec: IOSpec, port: str | None, baud: int | None = None, timeout_s: float = 10.0,
                 max_batch: int | None = None):
        import serial  # deferred: pyserial is needed only by the uart backend

        if not isinstance(port, str) or not port:
            raise ValueError(f"the uart backend needs the serial port, e.g. port='/dev/ttyUSB0', got {port!r}")
        rate = optional_count("baud", baud) or spec.uart_baud
        if not (isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool) and 0 < timeout_s < float("inf")):
            raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
        if rate is None:
            raise ValueError(f"{IO_FILE} names no UART baud rate (built without a UART board); pass baud=...")
        self.spec = spec
        # a device path (/dev/ttyUSB0, COM3) or a pyserial URL (socket://host:port, rfc2217://...)
        self.port = serial.serial_for_url(port, baudrate=int(rate), timeout=timeout_s)
        self.max_batch = optional_count("max_batch", max_batch) or DEFAULT_MAX_BATCH["uart"]

    def transfer(self, images: U8) -> U8:
        width = beat_bytes(self.spec.out_bits)
        want = len(images) * self.spec.out_beats * width
        self.port.reset_input_buffer()
        self.port.write(pack_images(self.spec, images).tobytes())
        self.port.flush()
        data = self.port.read(want)
        if len(data) != want:
            raise TimeoutError(f"the board returned {len(data)} of {want} bytes; check the port, the baud rate and "
                               "that the bitstream is loaded")
        return np.frombuffer(data, dtype=np.uint8).reshape(-1, width).copy()

    def close(self) -> None:
        self.port.close()


# ---------------------------------------------------------------------------------------
# the accelerator


def find_deploy_dir(path: str | Path) -> Path:
    """The deploy directory itself, or the build directory that contains it."""
    p = Path(path)
    for d in (p, p / "deploy"):
        if (d / IO_FILE).is_file():
            return d.resolve()
    raise FileNotFoundError(f"{p} is neither a bnnflow deploy directory nor a build directory with one ({IO_FILE} "
                            "not found)")


class Accelerator:
    """A deployed bnnflow design; `backend` is one of "pynq", "sim", "uart"."""

    def __init__(self, build_or_deploy_dir: str | Path, backend: str = "pynq", *, port: str | None = None,
                 baud: int | None = None, max_batch: int | None = None):
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; supported: {', '.join(BACKENDS)}")
        optional_count("max_batch", max_batch)
        self.deploy_dir = find_deploy_dir(build_or_deploy_dir)
        self.spec = IOSpec.load(self.deploy_dir / IO_FILE)
        self.backend_name = backend
        self.backend: Backend
        if backend == "pynq":
            self.backend = PynqBackend(self.spec, self.deploy_dir, max_batch)
        elif backend == "sim":
            self.backend = SimBackend(self.spec, self.deploy_dir, max_batch)
        elif backend == "uart":
            self.backend = UartBackend(self.spec, port, baud, max_batch=max_batch)
        else:
            raise ValueError(f"unknown backend {backend!r}; supported: {', '.join(BACKENDS)}")

    def outputs(self, images: npt.ArrayLike) -> I64:
        """What the design emits for each image, (N, out_elems) int64, in batches of max_batch."""
        x = check_images(self.spec, images)
        parts = [np.zeros((0, self.spec.out_elems), np.int64)]
        for i in range(0, len(x), self.backend.max_batch):
            batch = np.ascontiguousarray(x[i:i + self.backend.max_batch])
            parts.append(decode_outputs(self.spec, self.backend.transfer(batch), len(batch)))
        return np.concatenate(parts)

    def predict(self, images: npt.ArrayLike) -> I64:
        """Top-1 class per image, (N,) int64 (ties -> lowest index, as torch.argmax); for a design
        that emits codes, the codes (N, outputs), or (N,) for a single output (its decision)."""
        y = self.outputs(images)
        if self.spec.emits == "codes":
            return y[:, 0] if y.shape[1] == 1 else y
        return y[:, 0] if self.spec.emits == "top1" else np.argmax(y, axis=1).astype(np.int64)

    def logits(self, images: npt.ArrayLike) -> I64:
        """Integer logits (N, classes); float logits are logits_scale * y + logits_bias."""
        if self.spec.emits != "logits":
            raise ValueError("this design emits top-1 classes only, not logits")
        return self.outputs(images)

    def samples(self) -> tuple[U8, I64]:
        """The shipped sample images and their expected top-1 (from the numpy reference)."""
        with np.load(self.deploy_dir / SAMPLES_FILE, allow_pickle=False) as z:
            return np.asarray(z["images"]), np.asarray(z["top1"], dtype=np.int64)

    def verify(self, samples: tuple[U8, I64] | None = None) -> dict[str, object]:
        """Run (images, expected top-1), by default the shipped samples; count the mismatches."""
        images, expected = samples if samples is not None else self.samples()
        expected = np.asarray(expected)
        got = self.predict(images)
        if expected.shape != got.shape or not np.issubdtype(expected.dtype, np.integer):
            raise ValueError(f"expected top-1 must be integers shaped {got.shape}, got {expected.dtype} {expected.shape}")
        mismatches = int(np.sum(np.any(got.reshape(len(got), -1) != expected.reshape(len(got), -1), axis=1)))
        return {"images": int(len(images)), "mismatches": mismatches, "passed": mismatches == 0,
                "backend": self.backend_name, "design_hash": self.spec.design_hash}

    def throughput_test(self, images: npt.ArrayLike | None = None, n: int = 1000) -> float:
        """Images per second through the backend (transfers and packing included)."""
        n = check_count("n", n)
        x = check_images(self.spec, images if images is not None else self.samples()[0])
        reps = -(-n // len(x))
        batch = np.concatenate([x] * reps)[:n]
        t0 = time.perf_counter()
        self.outputs(batch)
        return n / (time.perf_counter() - t0)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
