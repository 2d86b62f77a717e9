"""The typed records of a build: its configuration, the state the steps pass along, and the
step itself (a name, a function from state to state, an optional invariant check)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flow.boards.step import BoardBuild
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.sim.verify import Verification

DEFAULT_TARGET_CYCLES = 1024


@dataclass
class BuildConfig:
    model: str                       # zoo name, checkpoint (.pt) or .onnx file
    out: Path
    board: str | None = None
    target_fps: float | None = None
    clock_mhz: float = 100.0
    clock_search: bool = False        # ECP5 with a PLL, no --clock-mhz: place and route choose the clock from clock_mhz up
    target_cycles: int | None = None
    folding: Path | None = None
    lut_budget: int | None = None     # fastest folding whose analytic LUT estimate fits
    synth: str | None = None          # yosys resource figures for xcup, xc7 or ecp5
    input_scale: float | None = None
    input_type: str | None = None     # uint8, int8, bipolar, binary or fixed<W,I> (flow.core.intype)
    verify_images: int = 100
    test_data: str | None = None
    from_step: str | None = None
    unverified: bool = False          # let the board step build a design without a passing verification
    netlist_sim: bool = True          # ECP5 boards: simulate the synthesised netlist before place and route
    force: bool = False               # build into a non-empty folder that is not a build directory
    progress: bool = True
    hls_synth: bool = False           # run vitis_hls on the generated C++ where it is on PATH
    to_step: str | None = None        # stop after this step (report.json says so)

    def cycles_target(self) -> int:
        if self.folding is not None or self.lut_budget is not None:
            return 0
        if self.target_cycles is not None:
            return int(self.target_cycles)
        if self.target_fps is not None:
            if self.target_fps <= 0:
                raise UserError(f"--target-fps must be positive, got {self.target_fps}")
            return max(1, int(self.clock_mhz * 1e6 // self.target_fps))
        return DEFAULT_TARGET_CYCLES


# how a build runs, not what it builds: left out of report.json's "config"
RUN_ONLY = ("progress", "hls_synth", "to_step")


def config_dict(cfg: BuildConfig) -> dict:
    d = asdict(cfg)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items() if k not in RUN_ONLY}


@dataclass
class BuildState:
    """What the steps have made so far. Each step takes the state and returns the next one."""

    torch_model: object = None               # the PyTorch model behind a zoo name or checkpoint
    onnx_path: Path | None = None
    qonnx: object = None                     # the cleaned QONNX ModelWrapper (import step)
    graph: DataflowGraph | None = None       # the dataflow graph (streamline step on)
    verification: Verification | None = None
    hls_rtl_verification: dict | None = None  # the RTL vitis_hls exported, against numpy (--hls-synth)
    synthesis: dict | None = None            # yosys figures of the generated RTL (--synth or the board's family)
    synthesis_error: str | None = None
    board: BoardBuild | None = None
    deploy: dict | None = None               # report.json's "deploy" record


@dataclass(frozen=True)
class StepContext:
    """What every step may read besides the state: the configuration and the progress log."""

    cfg: BuildConfig
    t0: float = field(default_factory=time.time)

    @property
    def out(self) -> Path:
        return self.cfg.out

    def log(self, msg: str) -> None:
        if self.cfg.progress:
            print(f"[bnnflow {time.time() - self.t0:6.1f}s] {msg}", flush=True)


StepFn = Callable[[StepContext, BuildState], BuildState]
CheckFn = Callable[[DataflowGraph], None]


@dataclass(frozen=True)
class Step:
    """One build step. A step with `saves_graph` leaves its graph in steps/NN_<name>.onnx
    (after its `check` passed), which `--from-step` resumes from; `outputs` are the paths it
    writes at the top of the build directory, removed when the build runs it again."""

    name: str
    run: StepFn
    check: CheckFn | None = None
    saves_graph: bool = False
    outputs: tuple[str, ...] = ()
    doc: str = ""
