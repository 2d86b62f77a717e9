"""The build steps. Each is a function (StepContext, BuildState) -> BuildState, listed in
STEPS with its invariant check and the paths it writes; the list is data, so a caller can
insert a step of its own (`with_step`) and hand the list to flow.pipeline.build.build."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from flow.boards.catalog import check_fit, load_board
from flow.boards.step import run_board
from flow.boards.synth import synthesize
from flow.codegen.hlsgen import render, run_vitis_hls
from flow.core.builddir import atomic_write_text, save_graph
from flow.core.errors import UserError
from flow.core.intype import parse as parse_input_type
from flow.deploy.bundle import write_deploy
from flow.frontend.load import load_qonnx
from flow.ir.graph import DataflowGraph
from flow.passes.fifo import fifo_summary, size_fifos
from flow.passes.fold import apply_folding_file, edges, fold_for_lut_budget, fold_for_target, folding_config
from flow.passes.fold import insert_width_converters
from flow.passes.streamline import streamline
from flow.pipeline.report import write_report
from flow.pipeline.state import BuildState, Step, StepContext
from flow.sim.hls_rtl import vendor_rtl_dir, verify_vendor_rtl
from flow.sim.netlist import NetlistCheck
from flow.sim.simulate import TOP, generate_rtl
from flow.sim.verify import verification_images, verify

replace = dataclasses.replace


def torch_model_for(src: str, log=lambda m: None, progress: bool = False):
    """The PyTorch model behind a zoo name or checkpoint (None for an ONNX file)."""
    if src.endswith(".onnx"):
        return None
    # deferred: torch and brevitas load only for a zoo name or a checkpoint, not for an ONNX file
    from flow.train import zoo
    from flow.train.trainer import pretrained_model

    if src.endswith(".pt") or Path(src).is_file():
        return zoo.load_checkpoint(src)[0]
    zoo.model_entry(src)  # an unknown name is refused before anything is trained
    if not zoo.pretrained_checkpoint(src).is_file():
        log(f"no cached checkpoint for {src}: training it once with its defaults")
    return pretrained_model(src, progress=progress)


def step_import(ctx: StepContext, st: BuildState) -> BuildState:
    """Resolve the model (zoo name, checkpoint or ONNX) to a cleaned QONNX graph."""
    src = ctx.cfg.model
    torch_model = None
    if src.endswith(".onnx"):
        onnx_path = Path(src)
    else:
        from flow.frontend.export import export_qonnx  # deferred: torch, as in torch_model_for

        torch_model = torch_model_for(src, ctx.log, ctx.cfg.progress)
        onnx_path = ctx.out / "model.onnx"
        ctx.log(f"exporting {src} to QONNX")
        export_qonnx(torch_model, onnx_path)
    qonnx = load_qonnx(onnx_path)
    for note in qonnx.load_notes:
        ctx.log(note)
    qonnx.set_metadata_prop("bnnflow.weight_quant", json.dumps(qonnx.weight_quant, sort_keys=True))
    return replace(st, torch_model=torch_model, onnx_path=onnx_path, qonnx=qonnx)


def step_streamline(ctx: StepContext, st: BuildState) -> BuildState:
    cfg, declared = ctx.cfg, None
    if cfg.input_type is not None:
        if cfg.input_scale is not None:
            raise UserError("--input-scale is for the default uint8 pixel input; with --input-type the model sees "
                            "the input's own values")
        try:
            declared = parse_input_type(cfg.input_type)
        except ValueError as exc:
            raise UserError(f"--input-type: {exc}") from None
    graph = streamline(st.qonnx, cfg.input_scale, model_name=Path(cfg.model).stem, declared=declared)
    return replace(st, graph=graph)


def step_fold(ctx: StepContext, st: BuildState) -> BuildState:
    cfg = ctx.cfg
    if cfg.folding is not None:
        graph = apply_folding_file(st.graph, cfg.folding)
    elif cfg.lut_budget is not None:
        graph, target = fold_for_lut_budget(st.graph, cfg.lut_budget)
        ctx.log(f"LUT budget {cfg.lut_budget}: folded for {target} cycles per frame")
    else:
        graph = fold_for_target(st.graph, cfg.cycles_target())
    if cfg.board is not None:  # refuse a design that cannot fit before anything is synthesised
        check_fit(graph, st.graph, load_board(cfg.board))
    return replace(st, graph=graph)


def step_insert_dwc(ctx: StepContext, st: BuildState) -> BuildState:
    return replace(st, graph=insert_width_converters(st.graph))


def step_fifo(ctx: StepContext, st: BuildState) -> BuildState:
    """Size the shortcut FIFOs of residual branches (flow.passes.fifo)."""
    graph = size_fifos(st.graph)
    s = fifo_summary(graph)
    if s["fifos"]:
        depths = ", ".join(f"{r['name']} {r['depth']} (min {r['min_depth']}, frame {r['frame_depth']})"
                           for r in s["fifos"])
        ctx.log(f"FIFO depths in beats: {depths}; {s['total_bits']} bits (frame-sized: {s['frame_sized_bits']})")
    return replace(st, graph=graph)


def step_rtl(ctx: StepContext, st: BuildState) -> BuildState:
    generate_rtl(st.graph, ctx.out / "rtl")
    return st


def step_hls(ctx: StepContext, st: BuildState) -> BuildState:
    """Generate the Vitis-HLS project in BUILD/hls/; with --hls-synth run vitis_hls on it where it exists."""
    hls = ctx.out / "hls"
    render(st.graph, hls, clock_mhz=ctx.cfg.clock_mhz)
    if not (ctx.cfg.hls_synth and run_vitis_hls(hls, log=ctx.log, echo=print)):
        return st
    images, _labels, _source = verification_images(st.graph, ctx.cfg.verify_images, ctx.cfg.test_data)
    ctx.log(f"Verilator: {len(images)} images through the RTL that vitis_hls exported")
    rec = verify_vendor_rtl(st.graph, vendor_rtl_dir(hls), ctx.out / "hls_rtl", images)
    ctx.log(f"HLS RTL: {rec['images']} images, {rec['mismatches']} mismatches against numpy")
    return replace(st, hls_rtl_verification=rec)


def step_verify(ctx: StepContext, st: BuildState) -> BuildState:
    found = verify(st.graph, ctx.out, ctx.cfg.verify_images, torch_model=st.torch_model,
                   test_data=ctx.cfg.test_data, log=ctx.log)
    return replace(st, verification=found)


def step_synth(ctx: StepContext, st: BuildState) -> BuildState:
    """Resource figures from yosys for the generated RTL (--synth TARGET)."""
    if ctx.cfg.synth is None:
        return st
    ctx.log(f"yosys synthesis for {ctx.cfg.synth}")
    try:
        return replace(st, synthesis=synthesize(ctx.out / "rtl", TOP, ctx.cfg.synth,
                                                      cache_dir=ctx.out / "sim"))
    except RuntimeError as exc:  # a tool failure: keep the analytic figures and say why
        ctx.log(f"yosys could not synthesise the design; resources stay analytic ({exc})")
        return replace(st, synthesis_error=str(exc)[:2000])


def step_board(ctx: StepContext, st: BuildState) -> BuildState:
    """--board B: the board's project and bitstream in BUILD/board/B/, behind the verification
    gate; on ECP5 the synthesised netlist is simulated before place and route (not with
    --no-netlist-sim)."""
    cfg = ctx.cfg
    if cfg.board is None:
        return st
    netlist = NetlistCheck(cfg.verify_images, cfg.test_data) if cfg.netlist_sim else None
    made = run_board(st.graph, cfg.out, cfg.board, cfg.clock_mhz, cfg.unverified, log=ctx.log, netlist=netlist,
                     clock_search=cfg.clock_search)
    return replace(st, board=made,
                   synthesis=st.synthesis if st.synthesis is not None else made.synthesis,
                   synthesis_error=made.synthesis_error if made.synthesis_error is not None else st.synthesis_error)


def step_deploy(ctx: StepContext, st: BuildState) -> BuildState:
    """BUILD/deploy/: driver.py, io.json, samples, notebook, and the bitstream when the board step built one."""
    board_build = st.board.record if st.board is not None else None
    return replace(st, deploy=write_deploy(st.graph, ctx.out, ctx.cfg.board, board_build))


def step_report(ctx: StepContext, st: BuildState) -> BuildState:
    text = json.dumps(folding_config(st.graph), indent=2) + "\n"
    atomic_write_text(ctx.out / "folding_config.json", text)
    save_graph(st.graph, ctx.out / "dataflow.onnx")  # before report.json, which describes it
    write_report(ctx, st)
    return st


def check_hw_graph(g: DataflowGraph) -> None:
    """Invariant: every node is a registered hardware op whose attributes are consistent."""
    for op in g.ops():
        try:
            op.check()
        except ValueError as exc:
            raise UserError(str(exc)) from None


def check_streams(g: DataflowGraph) -> None:
    """Invariant before codegen: every edge has one stream type on both of its ends."""
    check_hw_graph(g)
    for a, k, b, i in edges(g):
        if a.out_stream_of(k) != b.in_stream_of(i):
            raise UserError(f"stream {a.name} -> {b.name}: {a.out_stream_of(k)} does not match {b.in_stream_of(i)}")


STEPS: tuple[Step, ...] = (
    Step("import", step_import, saves_graph=True, outputs=("model.onnx",),
         doc="the model (zoo name, checkpoint or .onnx) as a cleaned QONNX graph"),
    Step("streamline", step_streamline, check_hw_graph, saves_graph=True,
         doc="QONNX to hardware ops with integer thresholds"),
    Step("fold", step_fold, check_hw_graph, saves_graph=True,
         doc="PE/SIMD per op for a target, or a FINN/bnnflow folding file"),
    Step("insert_dwc", step_insert_dwc, check_streams, saves_graph=True,
         doc="data-width converters where neighbouring streams differ"),
    Step("fifo", step_fifo, check_streams, saves_graph=True, doc="residual shortcut FIFOs sized"),
    Step("rtl", step_rtl, outputs=("rtl", "rtl_logits"), doc="stitched SystemVerilog top over the rtl/ library"),
    Step("hls", step_hls, outputs=("hls", "hls_logits", "hls_rtl"), doc="Vitis-HLS C++ top over hls_templates/"),
    Step("verify", step_verify, outputs=("verification.json",), doc="PyTorch == numpy == RTL simulation"),
    Step("synth", step_synth, doc="yosys resource figures (--synth)"),
    Step("board", step_board, outputs=("board",), doc="--board: project and bitstream behind the gate"),
    Step("deploy", step_deploy, outputs=("deploy",), doc="driver.py, io.json, samples, notebook"),
    Step("report", step_report, doc="report.json and report.html"),
)


def step_names(steps=STEPS) -> list[str]:
    return [s.name for s in steps]


def with_step(steps: tuple[Step, ...], step: Step, after: str) -> tuple[Step, ...]:
    """The step list with `step` inserted after the step named `after`."""
    names = step_names(steps)
    if after not in names:
        raise ValueError(f"no step {after!r} to insert {step.name!r} after; steps: {', '.join(names)}")
    if step.name in names:
        raise ValueError(f"a step named {step.name!r} is already in the list")
    i = names.index(after) + 1
    return (*steps[:i], step, *steps[i:])


def run_in_memory(ctx: StepContext, steps, st: BuildState | None = None) -> BuildState:
    """Run `steps` one after the other with their checks, without the build directory's
    bookkeeping (no marker, no saved graphs): for tests and notebooks."""
    st = st or BuildState()
    for step in steps:
        st = step.run(ctx, st)
        if step.check is not None and st.graph is not None:
            step.check(st.graph)
    return st
