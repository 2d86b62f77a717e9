"""Fast cycle-based simulation of a rendered top with a compiled Verilator harness.

Beats are byte arrays: a stream of N beats of B bits is an (N, ceil(B/8)) uint8 array,
little-endian (element i of a beat at bits [i*EB +: EB]). `pack_beats`/`unpack_beats`
convert to and from integer element arrays for any width.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from flow.core import tools
from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.core.wire import as_beat_bytes, beat_bytes, pack_beats, unpack_beats  # noqa: F401  (part of this module's API)

# C++ optimisation of the verilated model. Measured on 2 cores for an MNIST-sized 5-stage chain:
# -O1 12 s compile / 0.8 s per 10,000 frames, -O2 14.5 s / 0.7 s, -Os 13 s / 1.1 s. On CNV-w1a1
# (FINN's folding, CPU seconds of the simulator): -O2 and -O3 simulate 8 % slower than -O1 and
# compile 30-45 % longer, -Os 28 % slower; Verilator's --threads 2 takes 2.3 times the CPU time.
# BNNFLOW_SIM_COUNTONES: bnn_popcount counts with $countones (rtl/common/bnn_popcount.sv).
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   "-Wno-fatal", "-Wno-lint", "-Wno-style", "+define+BNNFLOW_SIM_COUNTONES")
CXX_OPT = "-O1"
HARNESS_NAME = "harness.cpp"
DEBUG_FLAGS = ("+define+BNNFLOW_SIM_DEBUG", "-CFLAGS", "-DBNNFLOW_EDGE_DEBUG")
STALLED = 3  # the harness's exit status for a design with no output progress


class RTLSim:
    """Compile `top` (sources in rtl_dir, memory files read from rtl_dir at run time) with the
    C++ harness, cache the binary under cache_dir, and stream frames through it.

    A generated top's simulation-only handshake ports (dbg_tvalid/dbg_tready, named in
    <top>_streams.txt) cost about a tenth of a CNV design's simulation time, so runs use a
    binary built without them; a run that stalls is repeated on a second binary built with
    them (stream_debug, compiled on the first stall), whose report names the stalled streams.
    The simulation is deterministic (the same beats, the same stall seed), so it stalls again."""

    def __init__(self, rtl_dir: Path, top: str, in_bits: int, out_bits: int, out_beats_per_frame: int,
                 in_beats_per_frame: int, cache_dir: Path, files: list[str] | None = None,
                 stream_debug: bool = True, shared_cache: Path | None = None, cxx_opt: str = CXX_OPT):
        self.rtl_dir = Path(rtl_dir).resolve()
        self.top = top
        self.in_bits, self.out_bits = int(in_bits), int(out_bits)
        self.out_bpf, self.in_bpf = int(out_beats_per_frame), int(in_beats_per_frame)
        self.cache_dir = Path(cache_dir).resolve()
        self.shared_cache = shared_cache  # None: $BNNFLOW_SIM_CACHE (flow.core.tools.cached_binary)
        self.files = list(files) if files is not None else sorted(p.name for p in self.rtl_dir.glob("*.sv"))
        self.cxx_opt = cxx_opt  # the C++ optimisation of the verilated model (CXX_OPT unless told)
        self.binary: Path | None = None
        self.debug_binary: Path | None = None  # built with the handshake ports, on the first stall
        self.compile_seconds = 0.0
        self.compile_log = ""  # what the C++ compile printed (empty when the binary was reused)
        # stream names of a generated top: a stall is diagnosed on a build with its handshake ports
        names = self.rtl_dir / f"{top}_streams.txt"
        self.streams = names if stream_debug and names.is_file() else None

    def _key(self, debug: bool) -> str:
        h = hashlib.sha256()
        harness = asset_path("sim") / "harness" / "harness.cpp"
        h.update(harness.read_bytes())
        h.update(repr((self.top, VERILATOR_FLAGS, self.cxx_opt, DEBUG_FLAGS if debug else (),
                       tools.versions()["verilator"])).encode())
        # memory files are read by $readmemh at run time, so they do not enter the key
        for name in self.files:
            h.update(name.encode() + b"\0" + (self.rtl_dir / name).read_bytes() + b"\0")
        return h.hexdigest()[:20]

    def _runtime_key(self, debug: bool) -> str:
        """Key of the Verilator run-time objects: compiler, Verilator and the flags they see."""
        parts = (tools.cxx_version(os.environ.get("CXX", "c++")), tools.versions()["verilator"], self.cxx_opt,
                 list(DEBUG_FLAGS) if debug else [], VERILATOR_FLAGS, os.environ.get("CXXFLAGS", ""),
                 os.environ.get("CPPFLAGS", ""))
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]

    def build(self, debug: bool = False) -> Path:
        """Compile the harness (skipped when a binary for the same sources and flags exists); with
        `debug`, the one with the stream handshake ports.

        Verilator hands its output folder and the source paths to `make` and /bin/sh, so the
        compile runs in a private folder with a shell-safe path, on copies of the sources under
        their own (checked) names; only the finished binary lands in cache_dir."""
        final = self.cache_dir / f"{self.top}-{self._key(debug)}"
        exe = final / "harness"
        if not exe.is_file():
            final.mkdir(parents=True, exist_ok=True)
            tools.cached_binary(exe, lambda dst: self._compile(dst, debug), self.shared_cache)
        if debug:
            self.debug_binary = exe
        else:
            self.binary = exe
        return exe

    def _compile(self, exe: Path, debug: bool) -> None:
        """Verilate and compile the harness into `exe`."""
        with tools.safe_workdir("bnnflow-verilator-") as work:
            names = self._stage(work)
            env = tools.verilator_env(work)
            cmd = [tools.verilator_bin(), "--cc", "--exe", *VERILATOR_FLAGS,
                   "--prefix", "Vtop", "--top-module", self.top, "-Mdir", "obj", "-o", "harness",
                   "-CFLAGS", self.cxx_opt, *(DEBUG_FLAGS if debug else ()), *names]
            t0 = time.monotonic()
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
            if res.returncode == 0:  # verilated; the make that --build would run, on the shared run-time objects
                args, offer = tools.shared_runtime_objects(work / "obj", "Vtop", self._runtime_key(debug), env,
                                                           (HARNESS_NAME.replace(".cpp", ".o"),), self.shared_cache)
                res = subprocess.run(["make", "-C", "obj", "-f", "Vtop.mk", "-j", "2", *args], capture_output=True,
                                     text=True, env=env, cwd=work)
            self.compile_seconds = time.monotonic() - t0
            self.compile_log = res.stdout + res.stderr
            built = work / "obj" / "harness"
            if res.returncode != 0 or not built.is_file():
                tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-30:])
                raise UserError(f"Verilator build of {self.top} failed:\n{tail}")
            offer()
            tmp = exe.with_name(f"harness.{os.getpid()}.tmp")
            shutil.copy2(built, tmp)
            os.replace(tmp, exe)  # atomic: a concurrent build sees the whole binary or none

    def _stage(self, work: Path) -> list[str]:
        """Copy the harness and the sources into `work`; return their names (harness first)."""
        names = [HARNESS_NAME, *self.files]
        for name in self.files:
            if not tools.plain_name(name):
                raise UserError(f"the RTL file name {name!r} in {self.rtl_dir} is not a plain name (letters, digits, "
                                "'_', '-' and '.', starting with a letter, digit or '_')")
        shutil.copyfile(asset_path("sim") / "harness" / "harness.cpp", work / HARNESS_NAME)
        for name in self.files:
            shutil.copyfile(self.rtl_dir / name, work / name)
        return names

    def run(self, in_beats, stall_seed: int | None = None, watchdog: int = 1_000_000):
        """Stream whole frames of input beats; return ((N_out, nbytes) uint8 beats, stats dict)."""
        if stall_seed is not None and (isinstance(stall_seed, bool) or not isinstance(stall_seed, (int, np.integer))
                                       or not 0 <= stall_seed < 1 << 32):
            raise UserError(f"the stall seed must be an integer from 0 to {(1 << 32) - 1}, got {stall_seed!r}")
        if self.binary is None:
            self.build()
        data = as_beat_bytes(in_beats, self.in_bits)
        if data.shape[0] % self.in_bpf:
            raise ValueError(f"{data.shape[0]} input beats is not a whole number of {self.in_bpf}-beat frames")
        frames = data.shape[0] // self.in_bpf
        ob = beat_bytes(self.out_bits)
        with tempfile.TemporaryDirectory(prefix="rtlsim-") as tmp:
            tin, tout, tst = (Path(tmp) / n for n in ("in.bin", "out.bin", "stats.json"))
            tin.write_bytes(data.tobytes())
            args = [str(tin), str(tout), str(tst), str(frames), str(self.in_bpf), str(self.out_bpf),
                    str(beat_bytes(self.in_bits)), str(ob), str(-1 if stall_seed is None else int(stall_seed)),
                    str(int(watchdog))]
            res = tools.run_measured([str(self.binary), *args], cwd=self.rtl_dir)
            if res.returncode == STALLED and self.streams:  # again, on the build that names the stalled streams
                res = tools.run_measured([str(self.build(debug=True)), *args, str(self.streams)], cwd=self.rtl_dir)
            if res.returncode != 0:
                raise UserError(f"RTL simulation of {self.top} failed: {(res.stderr or res.stdout).strip()}")
            out = np.frombuffer(tout.read_bytes(), dtype=np.uint8).reshape(-1, ob).copy()
            raw = json.loads(tst.read_text())
        done = raw["frame_done"]
        stats = {"cycles": raw["cycles"], "frames": frames, "wall_s": res.wall_s, "cpu_s": res.cpu_s,
                 "frame_done": done, "latency_cycles": (done[0] - raw["first_in_cycle"] + 1) if done else None}
        h = frames // 2
        stats["cycles_per_frame"] = ((done[-1] - done[h]) / (frames - 1 - h)) if frames - 1 - h > 0 else None
        return out, stats
