"""Vitis-HLS C++ generation: a thin top over the hls_templates stream library.

Each op's `hls_stage()` (next to its `rtl_stage()`) names its stream function, the
template arguments and its memories; this module renders, with Jinja2 StrictUndefined,

    <top>.cpp         the DATAFLOW top: AXI-Stream ports, one stream per edge, one call per op
    <top>.h           its interface and frame geometry (used by the C-simulation harness)
    <top>_params.h    weights/thresholds/parameters as const arrays of 64-bit chunks
    run_hls.tcl       the Vitis HLS script (csim, csynth, optional cosim, export as IP)

and copies the library headers and the C-simulation harness next to them, so the folder
is a self-contained HLS project. Rendering is deterministic: the same graph gives the
same bytes.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2

from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.core.intype import from_meta
from flow.core.wire import pack_beats
from flow.ir.graph import DataflowGraph
from flow.ir.reference import execute_numpy, to_wire
from flow.ir.registry import registry
from flow.ops.base import HWOp, memory, stage  # noqa: F401  (the hls_stage helpers, re-exported)

TOP = "bnnflow_top"
DEFAULT_PART = "xczu3eg-sbva484-1-e"
TB_FRAMES = 4
RAM_IMPL = {"auto": "auto", "block": "bram", "distributed": "lutram", "ultra": "uram"}
COMMON_HEADER = "common.h"  # the library's shared types
UMBRELLA = "bnnflow.h"       # generated: includes every op's header
HARNESS = "csim_main.cpp"


def op_headers() -> tuple[str, ...]:
    """Every registered op's `hls.header` (in the order of the ops' registration, each once)."""
    return tuple(dict.fromkeys(cls.hls.header for cls in registry().values() if cls.hls is not None))


def library() -> tuple[str, ...]:
    """The stream library's headers of hls_templates/: common.h, then the ops' headers."""
    return (COMMON_HEADER, *op_headers())


def umbrella_header() -> str:
    """bnnflow.h: the one include of the generated top, listing common.h and every op's header
    (sorted), so that an op's header joins the library by its op's declaration alone."""
    lines = [f'#include "{h}"' for h in (COMMON_HEADER, *sorted(op_headers()))]
    return ("// bnnflow HLS stream library: one function template per hardware op.\n#ifndef BNNFLOW_H\n"
            "#define BNNFLOW_H\n\n" + "\n".join(lines) + "\n\n#endif\n")


def library_dir() -> Path:
    return asset_path("hls_templates")


def library_functions() -> set[str]:
    """Names of the function templates the stream library defines."""
    names = set()
    for f in library():
        names |= set(re.findall(r"^void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", (library_dir() / f).read_text(), re.M))
    return names


def c_name(text: str) -> str:
    """A C identifier for a node or tensor name."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return s if re.match(r"[A-Za-z_]", s) else f"n_{s}"


def _named_config(op) -> bool:
    """Whether the op's stream function takes a named config struct (it implements `hls_config`)."""
    return type(op).hls_config is not HWOp.hls_config


def _stage_of(op) -> dict:
    """An op's call in the top: its `hls_stage()`; an op with a named config struct (it
    implements `hls_config`) gets the struct `<node>_config`, with no positional arguments
    when its hls_stage does not give any (its memories, if any, come from hls_stage)."""
    if not _named_config(op):
        return op.hls_stage()
    own = type(op).hls_stage is not HWOp.hls_stage
    st = op.hls_stage() if own else stage(op, [], [])
    return {**st, "config": dict((k, int(v)) for k, v in op.hls_config().items())}


def _chunks(word_bits: int) -> int:
    return max(1, -(-word_bits // 64))


def _mem_body(words: list[int], word_bits: int) -> str:
    ch = _chunks(word_bits)
    mask = (1 << 64) - 1
    lines = []
    for w in words:
        w = int(w)
        if w < 0 or w >> word_bits:
            raise ValueError(f"memory word {w:#x} does not fit in {word_bits} bits")
        lines.append("    {" + ", ".join(f"0x{(w >> (64 * c)) & mask:016x}ULL" for c in range(ch)) + "},")
    return "\n".join(lines)


def _ops(graph: DataflowGraph, logits: bool) -> list:
    ops = graph.ops()
    return [o for o in ops if not o.label_head] if logits else ops


def _env():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(library_dir())), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def design_info(graph: DataflowGraph, logits: bool = False) -> dict:
    """Stages, streams and memories of the top (a pure function of the graph)."""
    ops = _ops(graph, logits)
    out_tensor = ops[-1].stream_outputs[0]
    stream_of = {"global_in": "s_axis", out_tensor: "m_axis"}
    streams, stages, memories = [], [], []
    forks = {t for o in ops if len(o.stream_outputs) > 1 for t in o.stream_outputs}
    hls_stages = {o.name: _stage_of(o) for o in ops}
    for o in ops:
        for k, t in enumerate(o.stream_outputs):
            if t in stream_of:
                continue
            s = o.out_stream_of(k)
            stream_of[t] = f"s_{c_name(t)}"
            # a FIFO op sets its depth; a fork's branches hold up to a frame while the other computes
            depth = hls_stages[o.name].get("out_depth") or (s.beats if t in forks else 2)
            streams.append({"name": stream_of[t], "bits": s.width, "depth": depth})
    for o in ops:
        st = hls_stages[o.name]
        ports = [stream_of[t] for t in o.stream_inputs] + [stream_of[t] for t in o.stream_outputs]
        args = list(st["args"])
        for m in st["memories"]:
            name = f"{c_name(o.name)}_{m['key']}"
            ch = _chunks(m["word_bits"])
            if "config" not in st:  # a config struct holds its memories' chunk counts
                args.append(ch)
            ports.append(name)
            memories.append({"name": name, "stage": o.name, "key": m["key"], "depth": len(m["words"]),
                             "chunks": ch, "word_bits": m["word_bits"], "words": m["words"],
                             "impl": RAM_IMPL.get(str(m["ram_style"]), "auto")})
        stages.append({**st, "args": args, "ports": ports, "config": st.get("config"),
                       "config_name": f"{c_name(o.name)}_config"})
    first = [o for o in ops if "global_in" in o.stream_inputs][0]
    s_in, s_out = first.in_stream(), ops[-1].out_stream()
    widths = [s_in.width, s_out.width, *(s["bits"] for s in streams)]  # memories stay 64-bit chunks
    return {"stages": stages, "streams": streams, "memories": memories, "in": s_in, "out": s_out,
            "max_width": max(1024, *widths),
            "out_signed": stages[-1]["out_signed"]}


def tb_vectors(graph: DataflowGraph, logits: bool, frames: int = TB_FRAMES) -> tuple[bytes, bytes]:
    """Input beats of `frames` random inputs (seed 0) and the reference output beats."""
    info_in, info_out = _ops(graph, logits)[0].in_stream(), _ops(graph, logits)[-1].out_stream()
    shape = tuple(graph.meta("input")["shape"][1:])
    images = from_meta(graph.meta("input")).random(frames, shape, seed=0)
    y = execute_numpy(graph, images, logits=logits).reshape(frames, -1)
    return (pack_beats(to_wire(graph, images), info_in.lanes, info_in.bits).tobytes(),
            pack_beats(y, info_out.lanes, info_out.bits).tobytes())


def render(graph: DataflowGraph, out_dir: Path, logits: bool = False, part: str | None = None,
           clock_mhz: float = 100.0) -> dict:
    """Write the HLS project folder; return {"top", "files", "in", "out", "out_signed"}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = design_info(graph, logits)
    design = graph.fingerprint() + ("-logits" if logits else "")
    env = _env()
    common = {"top": TOP, "design": design, "in_bits": info["in"].width, "out_bits": info["out"].width}
    mems = [{**m, "body": _mem_body(m["words"], m["word_bits"])} for m in info["memories"]]
    texts = {
        f"{TOP}.cpp": env.get_template("top.cpp.j2").render(**common, stages=info["stages"],
                                                           streams=info["streams"], memories=mems),
        f"{TOP}.h": env.get_template("top.h.j2").render(**common, guard=f"{TOP.upper()}_H",
                                                         in_beats=info["in"].beats, out_beats=info["out"].beats,
                                                         max_width=info["max_width"]),
        f"{TOP}_params.h": env.get_template("params.h.j2").render(**common, guard=f"{TOP.upper()}_PARAMS_H",
                                                                   memories=mems),
        "run_hls.tcl": env.get_template("run_hls.tcl.j2").render(
            **common, project=f"{TOP}_hls", part=part or DEFAULT_PART,
            period_ns=f"{1000.0 / clock_mhz:.3f}", tb_frames=TB_FRAMES),
    }
    for name in (*library(), HARNESS):
        texts[name] = (library_dir() / name).read_text()
    texts[UMBRELLA] = umbrella_header()
    for name, text in texts.items():
        _write_if_changed(out_dir / name, text.encode())
    tb_in, tb_ref = tb_vectors(graph, logits)
    _write_if_changed(out_dir / "tb_in.bin", tb_in)
    _write_if_changed(out_dir / "tb_ref.bin", tb_ref)
    return {"top": TOP, "files": sorted(texts), "in": info["in"], "out": info["out"],
            "out_signed": info["out_signed"], "dir": out_dir}


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


def sources(out_dir: Path) -> list[Path]:
    """The C++ sources of a rendered folder (what a compiled simulator depends on)."""
    return [Path(out_dir) / n for n in (f"{TOP}.cpp", f"{TOP}.h", f"{TOP}_params.h", *library(), UMBRELLA, HARNESS)]


def run_vitis_hls(hls_dir: Path, log=print, echo=print) -> bool:
    """Run `vitis_hls -f run_hls.tcl` in hls_dir when vitis_hls is on PATH; otherwise say in
    one line what to install. Returns whether synthesis ran and succeeded."""
    exe = shutil.which("vitis_hls")
    if exe is None:
        echo(f"bnnflow: vitis_hls is not on PATH: install AMD Vitis HLS (2022.1 or later) and source its "
             f"settings64.sh to synthesise {Path(hls_dir) / 'run_hls.tcl'}; the C++ was generated (C simulation: "
             "bnnflow run --engine csim).")
        return False
    log(f"vitis_hls: synthesising {hls_dir} (log in vitis_hls.log)")
    with open(Path(hls_dir) / "vitis_hls.log", "w") as fh:
        res = subprocess.run([exe, "-f", "run_hls.tcl"], cwd=hls_dir, stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        raise UserError(f"vitis_hls failed with exit code {res.returncode}; see {Path(hls_dir) / 'vitis_hls.log'}")
    return True
