"""Render the stitched RTL top of a dataflow graph of engines (thin glue over rtl/).

`render_graph` takes stage dicts and stream edges (see its docstring), writes the memory init
files, copies the hand-written engine sources it needs and renders rtl/top.sv.j2, the one
template of a top (a chain is the DAG that `render_top` builds from a stage list). The
output depends only on its inputs: memory files are referenced by base name, so a
simulator or synthesis tool runs with the output folder as its working directory.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import jinja2

from flow.core.assets import asset_path
from flow.ir.registry import engines
from flow.ops.packing import mem_text  # noqa: F401  (also the memory files' writer here)


def engine_sources(module: str) -> tuple[str, ...]:
    """The library sources (relative to rtl/, in compile order) of an engine module: its op's
    `engine.sources` (flow.ir.registry.engines)."""
    cls = engines().get(module)
    if cls is None:
        raise ValueError(f"unknown engine module {module!r}")
    return cls.engine.sources


def engine_ports(module: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input port prefixes, output port prefixes) of an engine module, in port order."""
    eng = engines()[module].engine
    return eng.inputs, eng.outputs


_RESERVED = {"out", "ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready"}
# SystemVerilog keywords a sanitised graph name could plausibly hit
_SV_KEYWORDS = set("""always always_comb always_ff always_latch and assign automatic begin bit break buf byte case
casex casez class const continue default defparam do edge else end endcase endfunction endgenerate endmodule
enum event final for force foreach forever fork function generate genvar if initial inout input int integer
interface local localparam logic longint module nand negedge nor not or output package parameter posedge
real reg repeat return shortint signed specify static string struct supply0 supply1 table task time tri type
typedef union unique unsigned var virtual void wait while wire xnor xor join join_any join_none fork
program property sequence assert assume cover config library include inside dist""".split())
_RESERVED |= _SV_KEYWORDS


def _reserved(name: str) -> bool:
    """A stage name the top cannot use: a port or keyword, or an engine module's name."""
    return name in _RESERVED or name in engines()
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str) -> str:
    """Return `name` if it is a plain SystemVerilog identifier, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in _SV_KEYWORDS:
        raise ValueError(f"not a valid RTL identifier: {name!r}")
    return name


def _sv_value(v: object) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if any(c in v for c in '"\\\n'):
            raise ValueError(f"string parameter may not hold quotes, backslashes or newlines: {v!r}")
        return f'"{v}"'
    raise ValueError(f"parameter value must be int or str, got {type(v).__name__}")


def render_top(stages: list[dict], out_dir: Path, top_name: str = "bnnflow_top") -> dict:
    """Write the stitched top `top_name`.sv of a chain of engines, the memory files and the library
    sources into out_dir: `render_graph` with the edges in -> stage 0 -> ... -> stage n-1 -> out.

    Each stage: {"module": an engine module (flow.ir.registry.engines), "name": identifier, "params": {SV param: int|str},
    "in_bits": int, "out_bits": int, "memories": {PARAM: {"word_bits": int, "words": [int]}}}.
    A memory is written to <name>_<param lower>.mem and its base name passed as PARAM.
    Returns {"top", "files" (compile order, base names), "in_bits", "out_bits"}.
    """
    if not stages:
        raise ValueError("render_top needs at least one stage")
    names = ["in", *(st.get("name") for st in stages), "out"]
    info = render_graph(stages, [list(e) for e in zip(names, names[1:])], out_dir, top_name)
    return {k: info[k] for k in ("top", "files", "in_bits", "out_bits")}


def write_stream_names(out_dir: Path, top_name: str, labels: list[str]) -> None:
    """<top>_streams.txt: one line per stream of the top, in the bit order of its simulation-only
    dbg_tvalid/dbg_tready ports (`BNNFLOW_SIM_DEBUG`), so a stalled simulation names its streams."""
    (Path(out_dir) / f"{top_name}_streams.txt").write_text("".join(f"{x}\n" for x in labels), newline="\n")


def _prepare_stage(st: dict, out_dir: Path, seen: set[str], top_name: str) -> dict:
    """Check one stage dict, write its memory files, return its template record."""
    module = st["module"]
    engine_sources(module)  # refuses an unknown module
    name = check_name(st["name"])
    if name in seen or _reserved(name) or name == top_name or name.startswith(("out_", "e_")):
        raise ValueError(f"duplicate or reserved stage name {name!r}")
    seen.add(name)
    params = {check_name(k): v for k, v in st.get("params", {}).items()}
    for pname, mem in sorted(st.get("memories", {}).items()):
        fname = f"{name}_{check_name(pname).lower()}.mem"
        (out_dir / fname).write_text(mem_text(mem["words"], int(mem["word_bits"])), newline="\n")
        params[pname] = fname
    return {"module": module, "name": name, "params": [(k, _sv_value(v)) for k, v in params.items()]}


def _copy_sources(modules: list[str], out_dir: Path) -> list[str]:
    rtl = asset_path("rtl")
    files: list[str] = []
    for module in modules:
        for src in engine_sources(module):
            base = Path(src).name
            if base not in files:
                shutil.copyfile(rtl / src, out_dir / base)
                files.append(base)
    return files


def _port_bits(st: dict, key: str, n: int) -> list[int]:
    v = st[key]
    bits = [int(b) for b in v] if isinstance(v, (list, tuple)) else [int(v)]
    if len(bits) != n:
        raise ValueError(f"stage {st['name']!r}: {key} lists {len(bits)} widths, {st['module']} has {n} ports")
    return bits


def _endpoint(ref, top_port: str) -> tuple[str, int]:
    """'name' -> (name, 0); ['name', k] / ('name', k) -> (name, k); the top port name -> (top_port, 0)."""
    if isinstance(ref, str):
        return ref, 0
    if isinstance(ref, (list, tuple)) and len(ref) == 2 and isinstance(ref[0], str) and isinstance(ref[1], int):
        return ref[0], int(ref[1])
    raise ValueError(f"bad edge endpoint {ref!r}: use 'stage', ['stage', port] or {top_port!r}")


def render_graph(stages: list[dict], edges: list, out_dir: Path, top_name: str = "bnnflow_top") -> dict:
    """Write the stitched top of a DAG of engines (stream duplicate -> paths -> add_streams).

    stages: stage dicts as for `render_top`; an engine with several stream ports (its op's
    `engine.inputs` / `engine.outputs`: the duplicate has outputs 0 = m0_axis and 1 = m1_axis, add_streams has inputs
    0 = s0_axis and 1 = s1_axis) gives "in_bits" / "out_bits" as a list, one width per port.
    edges: [src, dst] pairs. src is "in" (the top's s_axis), "stage" (its output port 0) or
    ["stage", k] (output port k); dst is "out" (the top's m_axis), "stage" (input port 0) or
    ["stage", k] (input port k). Every stage port and the top's in/out carry exactly one
    edge (a stream fans out only through a duplicate stage), both ends of an edge have the
    same width, and the graph has no cycle. Stage names "in" and "out" are reserved.
    Rate: at a join (add_streams) the branch with the shorter latency must be able to hold
    the beats that wait for the other branch; give it a fifo (depth >= the latency
    difference plus 2), else the duplicate throttles both branches.
    Returns {"top", "files" (compile order, base names), "in_bits", "out_bits", "order"}.
    """
    check_name(top_name)
    if not stages:
        raise ValueError("render_graph needs at least one stage")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_name, ports = _graph_stages(stages)
    recs, driven, used = _graph_edges(edges, by_name, ports)
    order = _topological_order(by_name, ports, recs)
    seen: set[str] = set()
    rendered = []
    for n in order:
        rec = _prepare_stage(by_name[n], out_dir, seen, top_name)
        conns = [(p, recs[driven[(n, k)]]["wire"]) for k, p in enumerate(ports[n][0])]
        conns += [(p, recs[used[(n, k)]]["wire"]) for k, p in enumerate(ports[n][1])]
        rendered.append({**rec, "conns": conns})
    files = _copy_sources([by_name[n]["module"] for n in order], out_dir)
    in_rec, out_rec = recs[used[("in", 0)]], recs[driven[("out", 0)]]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(asset_path("rtl"))), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    text = env.get_template("top.sv.j2").render(
        top=top_name, stages=rendered, edges=recs, in_bits=in_rec["bits"], out_bits=out_rec["bits"],
        in_wire=in_rec["wire"], out_wire=out_rec["wire"])
    (out_dir / f"{top_name}.sv").write_text(text, newline="\n")
    files.append(f"{top_name}.sv")
    write_stream_names(out_dir, top_name, [f"{_stream_end(r['src'], ports, 1)} -> {_stream_end(r['dst'], ports, 0)}"
                                           for r in recs])
    return {"top": top_name, "files": files, "in_bits": in_rec["bits"], "out_bits": out_rec["bits"], "order": order}


def _graph_stages(stages: list[dict]) -> tuple[dict, dict]:
    """The stages by name (unique, not 'in' or 'out') and their (input, output) port names."""
    by_name = {}
    for st in stages:
        if st.get("name") in ("in", "out"):
            raise ValueError("stage names 'in' and 'out' are reserved for the top's ports")
        if st.get("name") in by_name:
            raise ValueError(f"duplicate stage name {st.get('name')!r}")
        by_name[st["name"]] = st
    for st in stages:
        engine_sources(st["module"])  # refuses an unknown module
    return by_name, {n: engine_ports(st["module"]) for n, st in by_name.items()}


def _check_endpoints(edge, src: tuple[str, int], dst: tuple[str, int], by_name: dict, ports: dict) -> None:
    if src[0] == "out" or dst[0] == "in":
        raise ValueError(f"edge {edge!r}: 'in' is only a source, 'out' only a destination")
    for (n, k), side in ((src, 1), (dst, 0)):
        if n in ("in", "out"):
            if k != 0:
                raise ValueError(f"edge {edge!r}: the top has one port {n!r}")
            continue
        if n not in by_name:
            raise ValueError(f"edge {edge!r} names an unknown stage {n!r}")
        if not 0 <= k < len(ports[n][side]):
            raise ValueError(f"edge {edge!r}: {by_name[n]['module']} {n} has no {'output' if side else 'input'} port {k}")


def _graph_edges(edges: list, by_name: dict, ports: dict) -> tuple[list[dict], dict, dict]:
    """One record per edge (wire e_i, ends, width, labels); every port carries exactly one edge.
    Returns (records, input port -> edge index, output port -> edge index)."""
    in_w = {n: _port_bits(st, "in_bits", len(ports[n][0])) for n, st in by_name.items()}
    out_w = {n: _port_bits(st, "out_bits", len(ports[n][1])) for n, st in by_name.items()}
    driven: dict[tuple[str, int], int] = {}
    used: dict[tuple[str, int], int] = {}
    recs = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            raise ValueError(f"edge {edge!r} is not a [src, dst] pair")
        src, dst = _endpoint(edge[0], "in"), _endpoint(edge[1], "out")
        _check_endpoints(edge, src, dst, by_name, ports)
        if src in used:
            raise ValueError(f"output {src} feeds two edges; insert a duplicate stage")
        if dst in driven:
            raise ValueError(f"input {dst} is driven by two edges")
        used[src], driven[dst] = i, i
        sbits = None if src[0] == "in" else out_w[src[0]][src[1]]
        dbits = None if dst[0] == "out" else in_w[dst[0]][dst[1]]
        if sbits is not None and dbits is not None and sbits != dbits:
            raise ValueError(f"stream width mismatch on edge {edge!r}: {sbits} bits into {dbits}")
        bits = sbits if sbits is not None else dbits
        if bits is None:
            raise ValueError(f"edge {edge!r} joins the top's input straight to its output")
        recs.append({"wire": f"e_{i}", "src": src, "dst": dst, "bits": bits,
                     "src_label": src[0] if src[0] == "in" else f"{src[0]}.{ports[src[0]][1][src[1]]}",
                     "dst_label": dst[0] if dst[0] == "out" else f"{dst[0]}.{ports[dst[0]][0][dst[1]]}"})
    _check_connected(by_name, ports, driven, used)
    return recs, driven, used


def _check_connected(by_name: dict, ports: dict, driven: dict, used: dict) -> None:
    for n in by_name:
        for k, pname in enumerate(ports[n][0]):
            if (n, k) not in driven:
                raise ValueError(f"input {n}.{pname} is not connected")
        for k, pname in enumerate(ports[n][1]):
            if (n, k) not in used:
                raise ValueError(f"output {n}.{pname} is not connected")
    if ("in", 0) not in used or ("out", 0) not in driven:
        raise ValueError("the graph needs one edge from 'in' and one edge to 'out'")


def _topological_order(by_name: dict, ports: dict, recs: list[dict]) -> list[str]:
    """Kahn's order of the stages; stage order breaks ties. A cycle is refused."""
    indeg = {n: len(ports[n][0]) for n in by_name}
    for r in recs:
        if r["src"][0] == "in":
            indeg[r["dst"][0]] -= 1 if r["dst"][0] != "out" else 0
    order: list[str] = []
    ready = [n for n in by_name if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for r in recs:
            if r["src"][0] == n and r["dst"][0] != "out":
                indeg[r["dst"][0]] -= 1
                if indeg[r["dst"][0]] == 0:
                    ready.append(r["dst"][0])
    if len(order) != len(by_name):
        raise ValueError(f"the graph has a cycle through {sorted(set(by_name) - set(order))}")
    return order


def _stream_end(end: tuple[str, int], ports: dict, side: int) -> str:
    """A stage name, with its port where the stage has several on that side ("Duplicate_0.m1")."""
    name, k = end
    if name in ("in", "out") or len(ports[name][side]) == 1:
        return name
    return f"{name}.{ports[name][side][k].removesuffix('_axis')}"
