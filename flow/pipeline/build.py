"""The build pipeline: a list of named steps over a config dataclass.

Each graph step saves `steps/NN_<step>.onnx` and is followed by an invariant check. A
build directory is marked complete (report.json with "status": "complete") only after
every step has passed; a failing build leaves no complete marker behind.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


from flow.core import builddir
from flow.core.builddir import atomic_write_text, save_graph
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph

DEFAULT_TARGET_CYCLES = 1024


@dataclass
class BuildConfig:
    model: str                       # zoo name, checkpoint (.pt) or .onnx file
    out: Path
    board: str | None = None
    target_fps: float | None = None
    clock_mhz: float = 100.0
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
    force: bool = False               # build into a non-empty folder that is not a build directory
    progress: bool = True
    extra: dict = field(default_factory=dict)

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


@dataclass
class BuildState:
    cfg: BuildConfig
    torch_model: object = None
    onnx_path: Path | None = None
    qonnx: object = None
    graph: DataflowGraph | None = None
    report: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.time)


def _log(state: BuildState, msg: str) -> None:
    if state.cfg.progress:
        print(f"[bnnflow {time.time() - state.t0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# steps


def step_import(st: BuildState) -> None:
    """Resolve the model (zoo name, checkpoint or ONNX) to a cleaned QONNX graph."""
    from flow.frontend.load import load_qonnx

    src = st.cfg.model
    out = st.cfg.out
    if src.endswith(".onnx"):
        st.onnx_path = Path(src)
    else:
        from flow.frontend.export import export_qonnx

        st.torch_model = _torch_model_for(src, lambda m: _log(st, m), st.cfg.progress)
        st.onnx_path = out / "model.onnx"
        _log(st, f"exporting {src} to QONNX")
        export_qonnx(st.torch_model, st.onnx_path)
    st.qonnx = load_qonnx(st.onnx_path)
    for note in st.qonnx.load_notes:
        _log(st, note)
    (out / "steps").mkdir(parents=True, exist_ok=True)
    st.qonnx.set_metadata_prop("bnnflow.weight_quant", json.dumps(st.qonnx.weight_quant, sort_keys=True))
    save_graph(st.qonnx, out / "steps" / "01_import.onnx")


def _torch_model_for(src: str, log=lambda m: None, progress: bool = False):
    """The PyTorch model behind a zoo name or checkpoint (None for an ONNX file)."""
    if src.endswith(".onnx"):
        return None
    from flow.train.zoo import cache_dir, load_checkpoint, model_entry, pretrained_model

    if src.endswith(".pt") or Path(src).is_file():
        return load_checkpoint(src)[0]
    model_entry(src)  # an unknown name is refused before anything is trained
    if not (cache_dir() / "zoo" / src / "best.pt").is_file():
        log(f"no cached checkpoint for {src}: training it once with its defaults")
    return pretrained_model(src, progress=progress)


_STEP_FILE = re.compile(r"^(\d\d)_([a-z_]+)\.onnx$")


def saving_steps() -> set[int]:
    """The 1-based numbers of the steps that save their graph (import and the checked ones)."""
    return {i for i, (name, _fn, check) in enumerate(STEPS, start=1) if name == "import" or check is not None}


def saved_steps(out: Path) -> dict[int, Path]:
    """{1-based step number: steps/NN_<step>.onnx} of the graphs a build saved; any other
    file in steps/ is not the build's and is ignored."""
    found = {}
    folder = Path(out) / "steps"
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = _STEP_FILE.match(p.name)
        if m and int(m.group(1)) in saving_steps() and STEPS[int(m.group(1)) - 1][0] == m.group(2) and p.is_file():
            found[int(m.group(1))] = p
    return found


def resume_state(st: BuildState, step_index: int) -> None:
    """Load what the steps before `step_index` (0-based) saved in the build directory, and
    check every loaded artefact against the graph it resumes from."""
    from qonnx.core.modelwrapper import ModelWrapper

    out = st.cfg.out
    prev = [p for i, p in sorted(saved_steps(out).items()) if i <= step_index]
    if not prev:
        raise UserError(f"cannot resume at step {STEPS[step_index][0]!r}: {out / 'steps'} has no graph from an earlier step")
    st.torch_model = _torch_model_for(st.cfg.model)
    last = prev[-1]
    try:
        if last.name.startswith("01_"):
            st.qonnx = ModelWrapper(str(last))
            st.qonnx.weight_quant = json.loads(st.qonnx.get_metadata_prop("bnnflow.weight_quant") or "{}")
        else:
            st.graph = DataflowGraph.load(last)
    except Exception as exc:  # a damaged or foreign file where a step's graph should be
        raise UserError(f"cannot resume at step {STEPS[step_index][0]!r}: {last} is not a readable graph "
                        f"({type(exc).__name__})") from None
    if step_index > [s[0] for s in STEPS].index("verify"):
        _resume_verification(st, step_index)
        _resume_rtl(st)


def _resume_verification(st: BuildState, step_index: int) -> None:
    """The steps after verify read its record: only one made for this graph and these sources."""
    from flow.boards.catalog import verification_gate
    from flow.sim.verify import load_record, record_mismatch

    out = st.cfg.out
    rec, why = load_record(out)
    if why is None:
        why = record_mismatch(rec, st.graph, out)
    if why is None:
        st.report["verification"] = rec
        return
    if st.cfg.unverified:
        _log(st, f"no verification for this design ({why}); --unverified goes on without one")
        return
    if st.cfg.board is not None and step_index <= [s[0] for s in STEPS].index("board"):
        verification_gate(st.graph, out)  # the gate's own refusal
    raise UserError(f"cannot resume at step {STEPS[step_index][0]!r}: {why}; run the build from the verify step "
                    "(--from-step verify)")


def _resume_rtl(st: BuildState) -> None:
    """rtl/ must be what the graph renders to; otherwise the rtl step is redone."""
    import tempfile

    from flow.sim.simulate import generate_rtl
    from flow.sim.verify import source_digests

    rtl = st.cfg.out / "rtl"
    with tempfile.TemporaryDirectory(prefix="bnnflow-rtl-") as tmp:
        generate_rtl(st.graph, Path(tmp))
        fresh = source_digests(Path(tmp))
    if source_digests(rtl) != fresh:
        _log(st, f"{rtl} does not match the graph it resumes from: regenerating it")
        builddir.remove_owned(st.cfg.out, "rtl")
        generate_rtl(st.graph, rtl)


def step_streamline(st: BuildState) -> None:
    from flow.passes.streamline import streamline

    declared = None
    if st.cfg.input_type is not None:
        from flow.core.intype import parse

        if st.cfg.input_scale is not None:
            raise UserError("--input-scale is for the default uint8 pixel input; with --input-type the model sees "
                            "the input's own values")
        try:
            declared = parse(st.cfg.input_type)
        except ValueError as exc:
            raise UserError(f"--input-type: {exc}") from None
    st.graph = streamline(st.qonnx, st.cfg.input_scale, model_name=Path(st.cfg.model).stem, declared=declared)


def step_fold(st: BuildState) -> None:
    from flow.passes.fold import apply_folding_file, fold_for_lut_budget, fold_for_target

    unfolded = st.graph
    if st.cfg.folding is not None:
        st.graph = apply_folding_file(st.graph, st.cfg.folding)
    elif st.cfg.lut_budget is not None:
        st.graph, target = fold_for_lut_budget(st.graph, st.cfg.lut_budget)
        _log(st, f"LUT budget {st.cfg.lut_budget}: folded for {target} cycles per frame")
    else:
        st.graph = fold_for_target(st.graph, st.cfg.cycles_target())
    if st.cfg.board is not None:  # refuse a design that cannot fit before anything is synthesised
        from flow.boards.catalog import check_fit, load_board

        check_fit(st.graph, unfolded, load_board(st.cfg.board))


def step_insert_dwc(st: BuildState) -> None:
    from flow.passes.fold import insert_width_converters

    st.graph = insert_width_converters(st.graph)


def step_fifo(st: BuildState) -> None:
    """Size the shortcut FIFOs of residual branches (flow.passes.fifo)."""
    from flow.passes.fifo import fifo_summary, size_fifos

    st.graph = size_fifos(st.graph)
    s = fifo_summary(st.graph)
    if s["fifos"]:
        depths = ", ".join(f"{r['name']} {r['depth']} (min {r['min_depth']}, frame {r['frame_depth']})"
                           for r in s["fifos"])
        _log(st, f"FIFO depths in beats: {depths}; {s['total_bits']} bits (frame-sized: {s['frame_sized_bits']})")


def step_rtl(st: BuildState) -> None:
    from flow.sim.simulate import generate_rtl

    generate_rtl(st.graph, st.cfg.out / "rtl")


def step_hls(st: BuildState) -> None:
    """Generate the Vitis-HLS project in BUILD/hls/; with --hls-synth run vitis_hls on it where it exists."""
    from flow.codegen.hlsgen import render, run_vitis_hls

    render(st.graph, st.cfg.out / "hls", clock_mhz=st.cfg.clock_mhz)
    if st.cfg.extra.get("hls_synth") and run_vitis_hls(st.cfg.out / "hls", log=lambda m: _log(st, m), echo=print):
        from flow.sim.hls_rtl import vendor_rtl_dir, verify_vendor_rtl
        from flow.sim.verify import verification_images

        images, _labels, _source = verification_images(st.graph, st.cfg.verify_images, st.cfg.test_data)
        _log(st, f"Verilator: {len(images)} images through the RTL that vitis_hls exported")
        rec = verify_vendor_rtl(st.graph, vendor_rtl_dir(st.cfg.out / "hls"), st.cfg.out / "hls_rtl", images)
        st.report["hls_rtl_verification"] = rec
        _log(st, f"HLS RTL: {rec['images']} images, {rec['mismatches']} mismatches against numpy")


def step_verify(st: BuildState) -> None:
    from flow.sim.verify import verify

    st.report["verification"], extra = verify(
        st.graph, st.cfg.out, st.cfg.verify_images, torch_model=st.torch_model,
        test_data=st.cfg.test_data, log=lambda m: _log(st, m))
    st.report.update(extra)


def step_synth(st: BuildState) -> None:
    """Resource figures from yosys for the generated RTL (--synth TARGET)."""
    if st.cfg.synth is None:
        return
    from flow.sim.simulate import TOP
    from flow.boards.synth import synthesize

    _log(st, f"yosys synthesis for {st.cfg.synth}")
    try:
        st.report["synthesis"] = synthesize(st.cfg.out / "rtl", TOP, st.cfg.synth)
    except RuntimeError as exc:  # a tool failure: keep the analytic figures and say why
        _log(st, f"yosys could not synthesise the design; resources stay analytic ({exc})")
        st.report["synthesis_error"] = str(exc)[:2000]


def step_board(st: BuildState) -> None:
    """--board B: the board's project and bitstream in BUILD/board/B/, behind the verification gate."""
    if st.cfg.board is None:
        return
    from flow.boards.step import run_board

    run_board(st, log=lambda m: _log(st, m))


def step_deploy(st: BuildState) -> None:
    """BUILD/deploy/: driver.py, io.json, samples, notebook, and the bitstream when the board step built one."""
    from flow.deploy.bundle import write_deploy

    st.report["deploy"] = write_deploy(st.graph, st.cfg.out, st.cfg.board, st.report.get("board_build"))


def step_report(st: BuildState) -> None:
    from flow.passes.fold import folding_config
    from flow.pipeline.report import write_report

    text = json.dumps(folding_config(st.graph), indent=2) + "\n"
    atomic_write_text(st.cfg.out / "folding_config.json", text)
    save_graph(st.graph, st.cfg.out / "dataflow.onnx")  # before report.json, which describes it
    write_report(st)


def check_hw_graph(g: DataflowGraph) -> None:
    """Invariant: every node is a registered hardware op whose attributes are consistent."""
    for op in g.ops():
        try:
            op.check()
        except ValueError as exc:
            raise UserError(str(exc)) from None


def check_streams(g: DataflowGraph) -> None:
    """Invariant before codegen: every edge has one stream type on both of its ends."""
    from flow.passes.fold import edges

    check_hw_graph(g)
    for a, k, b, i in edges(g):
        if a.out_stream_of(k) != b.in_stream_of(i):
            raise UserError(f"stream {a.name} -> {b.name}: {a.out_stream_of(k)} does not match {b.in_stream_of(i)}")


STEPS = [
    ("import", step_import, None),
    ("streamline", step_streamline, check_hw_graph),
    ("fold", step_fold, check_hw_graph),
    ("insert_dwc", step_insert_dwc, check_streams),
    ("fifo", step_fifo, check_streams),
    ("rtl", step_rtl, None),
    ("hls", step_hls, None),
    ("verify", step_verify, None),
    ("synth", step_synth, None),
    ("board", step_board, None),
    ("deploy", step_deploy, None),
    ("report", step_report, None),
]


# what each step writes at the top of the build directory: removed when the build runs it again
STEP_OUTPUTS = {"import": ("model.onnx",), "rtl": ("rtl", "rtl_logits"), "hls": ("hls", "hls_logits", "hls_rtl"),
                "verify": ("verification.json",), "board": ("board",), "deploy": ("deploy",)}
RUN_OUTPUTS = ("report.json", "report.html", "dataflow.onnx", "folding_config.json")


def build(cfg: BuildConfig) -> dict:
    """Run every step; return the report dict. The build directory is checked (never `/`,
    the home directory, the checkout; a foreign folder only with --force), claimed (its
    marker lists what the build owns) and locked for the duration."""
    cfg.out = builddir.check_out_path(cfg.out)
    start = _check_config(cfg)
    builddir.refuse_if_locked(cfg.out)
    if start and not builddir.is_build_dir(cfg.out):
        raise UserError(f"cannot resume at step {cfg.from_step!r}: {cfg.out} is not a bnnflow build directory "
                        f"(no {builddir.MARKER})")
    builddir.claim(cfg.out, cfg.force)
    with builddir.locked(cfg.out):  # the manifest keeps every path a build, run or verify may write
        return _run_steps(cfg, start)


def _check_config(cfg: BuildConfig) -> int:
    """Refuse inconsistent options before anything is written; return the first step (0-based)."""
    if cfg.board is not None:
        from flow.boards.catalog import load_board

        board = load_board(cfg.board)  # an unknown board or a malformed board file stops here
        if board.clock_source != "ps" and cfg.clock_mhz != board.clock_mhz:
            raise UserError(f"{board.name} clocks the accelerator from its {board.clock_mhz:g} MHz {board.clock_source}; "
                            f"a clock of {cfg.clock_mhz:g} MHz is not supported for it (--clock-mhz {board.clock_mhz:g})")
    if cfg.verify_images < 1:
        raise UserError(f"--verify-images must be at least 1, got {cfg.verify_images}")
    chosen = [k for k in ("target_fps", "target_cycles", "folding", "lut_budget") if getattr(cfg, k) is not None]
    if len(chosen) > 1:
        raise UserError(f"choose one folding goal, not {' and '.join(chosen)} (target_fps, target_cycles, folding "
                        "or lut_budget)")
    cfg.cycles_target()  # validate early
    names = [s[0] for s in STEPS]
    if cfg.from_step is not None and cfg.from_step not in names:
        raise UserError(f"unknown step {cfg.from_step!r} for --from-step; steps: {', '.join(names)}")
    return names.index(cfg.from_step) if cfg.from_step else 0


def _clear_outputs(out: Path, start: int) -> None:
    """Remove what the steps from `start` on wrote in an earlier run (only paths the marker
    lists), so nothing of that run is mistaken for this one's."""
    for i, (name, _fn, _check) in enumerate(STEPS[start:], start=start + 1):
        for top in STEP_OUTPUTS.get(name, ()):
            builddir.remove_owned(out, top)
        stale = out / "steps" / f"{i:02d}_{name}.onnx"
        if i in saving_steps() and stale.is_file() and "steps" in builddir.owned_paths(out):
            stale.unlink()


def _run_steps(cfg: BuildConfig, start: int) -> dict:
    st = BuildState(cfg)
    for name in RUN_OUTPUTS:  # never leave an old build marked complete
        builddir.remove_owned(cfg.out, name)
    if start:
        resume_state(st, start)
    _clear_outputs(cfg.out, start)
    for i, (name, fn, check) in enumerate(STEPS, start=1):
        if i <= start:
            continue
        _log(st, f"step {i}/{len(STEPS)}: {name}")
        fn(st)
        if st.graph is not None and check is not None:
            check(st.graph)
            save_graph(st.graph, cfg.out / "steps" / f"{i:02d}_{name}.onnx")
    _log(st, f"report: {cfg.out / 'report.json'}")
    return st.report


def config_dict(cfg: BuildConfig) -> dict:
    d = asdict(cfg)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items() if k not in ("progress", "extra")}


def load_build(build_dir: Path) -> DataflowGraph:
    build_dir = Path(build_dir)
    path = build_dir / "dataflow.onnx"
    if not path.is_file():
        raise UserError(f"{build_dir} is not a bnnflow build directory (no dataflow.onnx); run `bnnflow build` first")
    from flow.ir.graph import load_dataflow

    return load_dataflow(path)


FINISHED = ("complete", "unverified")


def stale_reason(build_dir: Path, graph: DataflowGraph) -> str | None:
    """Why BUILD/dataflow.onnx is not the graph of a finished build (None when it is):
    report.json must be there, finished, and describe this very graph."""
    rep = read_report(build_dir)
    if not rep:
        return "belongs to no finished build (no report.json: the build that wrote it did not finish)"
    if rep.get("graph_hash") != graph.fingerprint():
        return "is not the graph report.json describes (it was left by another build)"
    if rep.get("status") not in FINISHED:
        return f"belongs to a build whose status is {rep.get('status')!r}, not complete"
    return None


def read_report(build_dir: Path) -> dict:
    p = Path(build_dir) / "report.json"
    try:
        rep = json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError, RecursionError):
        return {}
    return rep if isinstance(rep, dict) else {}


