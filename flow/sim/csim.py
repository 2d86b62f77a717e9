"""C simulation of the generated HLS top: g++ against the ap_types headers of the hls4ml
wheel (no vendor install), one binary per design cached under BUILD/sim/.

The binary streams whole frames of packed beats (the RTL simulation's byte layout, see
flow.sim.rtlsim) through the top and writes the output beats; large batches are split over
the machine's cores.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from flow.codegen.hlsgen import HARNESS, TOP, render, sources
from flow.core import tools
from flow.core.errors import UserError
from flow.core.wire import as_beat_bytes, beat_bytes, pack_beats, unpack_beats
from flow.ir.graph import DataflowGraph
from flow.ir.reference import frame_outputs, image_chunks, to_wire
from flow.sim.simulate import SIM_CHUNK_BYTES

CXX = "g++"
# Measured on 2 cores (benchmarks/bench_csim.py --opt-sweep, TFC-w1a1 at 128 cycles/frame, one process):
# -O0 compiles in 2.3 s and runs 2,400 images/s; -O1 2.5 s and 14,100 images/s; -O2 2.8 s and 14,200 images/s.
CXX_OPT = "-O1"
CXX_FLAGS = ("-std=c++14", "-Wall", "-Wextra", "-Wno-unknown-pragmas")  # HLS pragmas are for Vitis
MIN_FRAMES_PER_PROCESS = 64


def ap_types_dir() -> Path:
    """The ap_int/ap_fixed/hls_stream headers shipped in the hls4ml wheel."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
        if (path / "ap_int.h").is_file() and (path / "hls_stream.h").is_file():
            return path
    raise UserError("the csim engine needs the ap_types headers of the hls4ml wheel: "
                    "pip install --no-deps hls4ml==1.3.0")


class CSim:
    """A compiled C simulation of the HLS project in `src_dir` (binary cached by source hash)."""

    def __init__(self, src_dir: Path, in_bits: int, out_bits: int, in_beats: int, out_beats: int,
                 cache_dir: Path):
        self.src_dir = Path(src_dir).resolve()
        self.in_bits, self.out_bits = int(in_bits), int(out_bits)
        self.in_bpf, self.out_bpf = int(in_beats), int(out_beats)
        self.cache_dir = Path(cache_dir).resolve()
        self.binary: Path | None = None
        self.compile_seconds = 0.0
        self.compiler_output = ""

    def key(self) -> str:
        h = hashlib.sha256(repr((CXX, tools.cxx_version(CXX), CXX_OPT, CXX_FLAGS)).encode())
        for f in sources(self.src_dir):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()[:20]

    def compile_cmd(self, exe: Path) -> list[str]:
        return [CXX, *CXX_FLAGS, CXX_OPT, "-isystem", str(ap_types_dir()), "-I", str(self.src_dir),
                str(self.src_dir / HARNESS), str(self.src_dir / f"{TOP}.cpp"), "-o", str(exe)]

    def build(self) -> Path:
        """Compile (skipped when a binary for the same sources and flags exists)."""
        work = self.cache_dir / f"csim-{self.key()}"
        exe = work / "csim"
        if exe.is_file():
            self.binary = exe
            return exe
        work.mkdir(parents=True, exist_ok=True)
        tools.cached_binary(exe, self._compile)
        self.binary = exe
        return exe

    def _compile(self, exe: Path) -> None:
        tmp = exe.with_name(f"csim.{os.getpid()}.tmp")
        t0 = time.monotonic()
        res = subprocess.run(self.compile_cmd(tmp), capture_output=True, text=True)
        self.compile_seconds = time.monotonic() - t0
        self.compiler_output = res.stdout + res.stderr
        if res.returncode != 0 or not tmp.is_file():
            tail = "\n".join(self.compiler_output.strip().splitlines()[-30:])
            raise UserError(f"C simulation build of {self.src_dir} failed:\n{tail}")
        os.replace(tmp, exe)  # the binary alone stays (its compiler output: self.compiler_output)

    def _run_one(self, data: np.ndarray, frames: int, tmp: Path, tag: str) -> np.ndarray:
        tin, tout = tmp / f"in{tag}.bin", tmp / f"out{tag}.bin"
        tin.write_bytes(data.tobytes())
        res = subprocess.run([str(self.binary), str(tin), str(tout), str(frames)], capture_output=True, text=True)
        if res.returncode != 0:
            raise UserError(f"C simulation failed: {(res.stderr or res.stdout).strip()}")
        return np.frombuffer(tout.read_bytes(), dtype=np.uint8).reshape(-1, beat_bytes(self.out_bits)).copy()

    def run(self, in_beats: np.ndarray, processes: int | None = None) -> tuple[np.ndarray, dict]:
        """Stream whole frames of (N, bytes) uint8 beats; return (output beats, stats)."""
        if self.binary is None:
            self.build()
        data = as_beat_bytes(in_beats, self.in_bits)
        if data.shape[0] % self.in_bpf:
            raise ValueError(f"{data.shape[0]} input beats is not a whole number of {self.in_bpf}-beat frames")
        frames = data.shape[0] // self.in_bpf
        procs = processes or max(1, min(os.cpu_count() or 1, frames // MIN_FRAMES_PER_PROCESS))
        bounds = np.linspace(0, frames, procs + 1).astype(int)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="csim-") as tmp:
            parts = [(data[a * self.in_bpf:b * self.in_bpf], b - a, Path(tmp), str(i))
                     for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
            with ThreadPoolExecutor(max_workers=max(1, len(parts))) as pool:
                outs = list(pool.map(lambda args: self._run_one(*args), parts))
        wall = time.monotonic() - t0
        out = np.concatenate(outs) if outs else np.zeros((0, 1), np.uint8)
        return out, {"frames": frames, "wall_s": wall, "processes": len(parts),
                     "frames_per_s": frames / wall if wall > 0 else None}


def hls_dir(build_dir: Path, logits: bool = False) -> Path:
    return Path(build_dir) / ("hls_logits" if logits else "hls")


def compiled_csim(graph: DataflowGraph, build_dir: Path, logits: bool = False, **render_kw):
    """Render the HLS project (top-1 or logits variant) and compile its C simulation, cached."""
    build_dir = Path(build_dir)
    info = render(graph, hls_dir(build_dir, logits), logits, **render_kw)
    sim = CSim(info["dir"], info["in"].width, info["out"].width, info["in"].beats, info["out"].beats,
               build_dir / "sim")
    sim.build()
    return sim, info


def run_csim(graph: DataflowGraph, build_dir: Path, images: np.ndarray, logits: bool = False,
             processes: int | None = None, chunk_bytes: int | None = None) -> tuple[np.ndarray, dict]:
    """Stream uint8 images (N, C, H, W) through the C simulation; return (outputs, stats).
    Images go in chunks of about `chunk_bytes` pixels (default flow.sim.simulate.SIM_CHUNK_BYTES);
    the outputs do not depend on the chunking."""
    chunks = image_chunks(graph, images, chunk_bytes or SIM_CHUNK_BYTES)
    sim, info = compiled_csim(graph, build_dir, logits)
    outs, runs = [], []
    for part in chunks:
        y, stats = _csim_frames(sim, info, to_wire(graph, part), processes)
        outs.append(y)
        runs.append(stats)
    wall = sum(r["wall_s"] for r in runs)
    frames = sum(r["frames"] for r in runs)
    stats = {"frames": frames, "wall_s": wall, "processes": max(r["processes"] for r in runs),
             "frames_per_s": frames / wall if wall > 0 else None, "compile_s": sim.compile_seconds}
    if len(runs) > 1:
        stats["chunks"] = len(runs)
    return frame_outputs(graph, np.concatenate(outs), logits), stats


def _csim_frames(sim: CSim, info: dict, x: np.ndarray, processes: int | None):
    s_in, s_out = info["in"], info["out"]
    out_beats, stats = sim.run(pack_beats(x, s_in.lanes, s_in.bits), processes=processes)
    y = unpack_beats(out_beats, s_out.lanes, s_out.bits, signed=info["out_signed"])
    return y.reshape(len(x), -1)[:, : s_out.elems].astype(np.int64), stats
