"""Render the stitched RTL top of a linear chain of engines (thin glue over rtl/).

`render_top` takes a list of stage dicts (see its docstring), writes the memory init
files, copies the hand-written engine sources it needs and renders rtl/top.sv.j2. The
output depends only on its inputs: memory files are referenced by base name, so a
simulator or synthesis tool runs with the output folder as its working directory.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import jinja2

from flow.core.assets import asset_path

# engine -> library sources it needs, in compile order (relative to rtl/)
ENGINE_SOURCES: dict[str, tuple[str, ...]] = {
    "bnn_mvu": ("common/bnn_popcount.sv", "common/mvu_sequencer.sv", "common/mvu_output.sv", "mvu_binary/bnn_mvu.sv"),
    "thresholding": ("thresholding/thresholding.sv",),
    "label_select": ("label_select/label_select.sv",),
    "dwc": ("dwc/dwc.sv",),
    "fifo": ("fifo/fifo.sv",),
    "int_mvu": ("common/mvu_sequencer.sv", "common/mvu_output.sv", "mvu_int/int_mvu.sv"),
    "sliding_window": ("sliding_window/sliding_window.sv",),
    "maxpool": ("sliding_window/sliding_window.sv", "maxpool/maxpool.sv"),
    "global_acc_pool": ("global_pool/global_acc_pool.sv",),
    "duplicate": ("stream_ops/duplicate.sv",),
    "add_streams": ("stream_ops/add_streams.sv",),
    "fixed_scale": ("fixed_scale/fixed_scale.sv",),
    "streaming_concat": ("stream_ops/concat.sv",),
}

# engines that move or copy streams without computing on them (no op of their own needed)
INFRASTRUCTURE = frozenset({"fifo", "dwc", "duplicate"})

# stream ports of each engine: (input port prefixes, output port prefixes), in port order
ENGINE_PORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "duplicate": (("s_axis",), ("m0_axis", "m1_axis")),
    "add_streams": (("s0_axis", "s1_axis"), ("m_axis",)),
    "streaming_concat": (("s0_axis", "s1_axis"), ("m_axis",)),
}
DEFAULT_PORTS = (("s_axis",), ("m_axis",))

_RESERVED = {"out", "ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", *ENGINE_SOURCES}
# SystemVerilog keywords a sanitised graph name could plausibly hit
_SV_KEYWORDS = set("""always always_comb always_ff always_latch and assign automatic begin bit break buf byte case
casex casez class const continue default defparam do edge else end endcase endfunction endgenerate endmodule
enum event final for force foreach forever fork function generate genvar if initial inout input int integer
interface local localparam logic longint module nand negedge nor not or output package parameter posedge
real reg repeat return shortint signed specify static string struct supply0 supply1 table task time tri type
typedef union unique unsigned var virtual void wait while wire xnor xor join join_any join_none fork
program property sequence assert assume cover config library include inside dist""".split())
_RESERVED |= _SV_KEYWORDS
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str) -> str:
    """Return `name` if it is a plain SystemVerilog identifier, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in _SV_KEYWORDS:
        raise ValueError(f"not a valid RTL identifier: {name!r}")
    return name


def mem_text(words: list[int], word_bits: int) -> str:
    """$readmemh text: one word per line, ceil(word_bits/4) lower-case hex digits."""
    digits = max(1, -(-word_bits // 4))
    limit = 1 << word_bits
    lines = []
    for w in words:
        w = int(w)
        if not 0 <= w < limit:
            raise ValueError(f"memory word {w} does not fit in {word_bits} bits")
        lines.append(format(w, f"0{digits}x"))
    return "\n".join(lines) + "\n"


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
    """Write the stitched top `top_name`.sv, the memory files and the library sources into out_dir.

    Each stage: {"module": one of ENGINE_SOURCES, "name": identifier, "params": {SV param: int|str},
    "in_bits": int, "out_bits": int, "memories": {PARAM: {"word_bits": int, "words": [int]}}}.
    A memory is written to <name>_<param lower>.mem and its base name passed as PARAM.
    Returns {"top", "files" (compile order, base names), "in_bits", "out_bits"}.
    """
    check_name(top_name)
    if not stages:
        raise ValueError("render_top needs at least one stage")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rtl = asset_path("rtl")

    seen: set[str] = set()
    rendered = []
    sources: list[str] = []
    for i, st in enumerate(stages):
        module = st["module"]
        if module not in ENGINE_SOURCES:
            raise ValueError(f"unknown engine module {module!r}")
        name = check_name(st["name"])
        if name in seen or name in _RESERVED or name == top_name or name.startswith("out_"):
            raise ValueError(f"duplicate or reserved stage name {name!r}")
        seen.add(name)
        if i > 0 and stages[i - 1]["out_bits"] != st["in_bits"]:
            raise ValueError(
                f"stream width mismatch: {stages[i - 1]['name']} gives {stages[i - 1]['out_bits']} bits, "
                f"{name} takes {st['in_bits']}")
        params = {check_name(k): v for k, v in st.get("params", {}).items()}
        for pname, mem in sorted(st.get("memories", {}).items()):
            fname = f"{name}_{check_name(pname).lower()}.mem"
            (out_dir / fname).write_text(mem_text(mem["words"], int(mem["word_bits"])), newline="\n")
            params[pname] = fname
        rendered.append({
            "module": module, "name": name, "in_bits": int(st["in_bits"]), "out_bits": int(st["out_bits"]),
            "params": [(k, _sv_value(v)) for k, v in params.items()],
        })
        for src in ENGINE_SOURCES[module]:
            if src not in sources:
                sources.append(src)

    files = []
    for src in sources:
        base = Path(src).name
        shutil.copyfile(rtl / src, out_dir / base)
        files.append(base)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(rtl)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    text = env.get_template("top.sv.j2").render(
        top=top_name, stages=rendered, in_bits=rendered[0]["in_bits"], out_bits=rendered[-1]["out_bits"])
    (out_dir / f"{top_name}.sv").write_text(text, newline="\n")
    files.append(f"{top_name}.sv")
    names = ["in", *(s["name"] for s in rendered), "out"]
    write_stream_names(out_dir, top_name, [f"{a} -> {b}" for a, b in zip(names, names[1:])])
    return {"top": top_name, "files": files, "in_bits": rendered[0]["in_bits"], "out_bits": rendered[-1]["out_bits"]}


def write_stream_names(out_dir: Path, top_name: str, labels: list[str]) -> None:
    """<top>_streams.txt: one line per stream of the top, in the bit order of its simulation-only
    dbg_tvalid/dbg_tready ports (`BNNFLOW_SIM_DEBUG`), so a stalled simulation names its streams."""
    (Path(out_dir) / f"{top_name}_streams.txt").write_text("".join(f"{x}\n" for x in labels), newline="\n")


def _prepare_stage(st: dict, out_dir: Path, seen: set[str], top_name: str) -> dict:
    """Check one stage dict, write its memory files, return its template record."""
    module = st["module"]
    if module not in ENGINE_SOURCES:
        raise ValueError(f"unknown engine module {module!r}")
    name = check_name(st["name"])
    if name in seen or name in _RESERVED or name == top_name or name.startswith(("out_", "e_")):
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
        for src in ENGINE_SOURCES[module]:
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

    stages: stage dicts as for `render_top`; an engine with several stream ports (see
    ENGINE_PORTS: duplicate has outputs 0 = m0_axis and 1 = m1_axis, add_streams has inputs
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
    by_name = {}
    for st in stages:
        if st.get("name") in ("in", "out"):
            raise ValueError("stage names 'in' and 'out' are reserved for the top's ports")
        if st.get("name") in by_name:
            raise ValueError(f"duplicate stage name {st.get('name')!r}")
        by_name[st["name"]] = st
    ports = {n: ENGINE_PORTS.get(st["module"], DEFAULT_PORTS) for n, st in by_name.items()}
    in_w = {n: _port_bits(st, "in_bits", len(ports[n][0])) for n, st in by_name.items()}
    out_w = {n: _port_bits(st, "out_bits", len(ports[n][1])) for n, st in by_name.items()}

    driven: dict[tuple[str, int], int] = {}
    used: dict[tuple[str, int], int] = {}
    recs = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            raise ValueError(f"edge {edge!r} is not a [src, dst] pair")
        src, dst = _endpoint(edge[0], "in"), _endpoint(edge[1], "out")
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
    for n in by_name:
        for k, pname in enumerate(ports[n][0]):
            if (n, k) not in driven:
                raise ValueError(f"input {n}.{pname} is not connected")
        for k, pname in enumerate(ports[n][1]):
            if (n, k) not in used:
                raise ValueError(f"output {n}.{pname} is not connected")
    if ("in", 0) not in used or ("out", 0) not in driven:
        raise ValueError("the graph needs one edge from 'in' and one edge to 'out'")

    # topological order (Kahn); stage order breaks ties
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
    text = env.get_template("graph.sv.j2").render(
        top=top_name, stages=rendered, edges=recs, in_bits=in_rec["bits"], out_bits=out_rec["bits"],
        in_wire=in_rec["wire"], out_wire=out_rec["wire"])
    (out_dir / f"{top_name}.sv").write_text(text, newline="\n")
    files.append(f"{top_name}.sv")
    write_stream_names(out_dir, top_name, [f"{_stream_end(r['src'], ports, 1)} -> {_stream_end(r['dst'], ports, 0)}"
                                           for r in recs])
    return {"top": top_name, "files": files, "in_bits": in_rec["bits"], "out_bits": out_rec["bits"], "order": order}


def _stream_end(end: tuple[str, int], ports: dict, side: int) -> str:
    """A stage name, with its port where the stage has several on that side ("Duplicate_0.m1")."""
    name, k = end
    if name in ("in", "out") or len(ports[name][side]) == 1:
        return name
    return f"{name}.{ports[name][side][k].removesuffix('_axis')}"


def mvu_weight_words(w_bits, pe: int, simd: int) -> list[int]:
    """Binary MVU weight memory: word nf*SF+sf, bit p*SIMD+s = w[nf*PE+p, sf*SIMD+s]."""
    import numpy as np

    w = np.asarray(w_bits, dtype=np.uint8)
    mh, mw = w.shape
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    nf, sf = mh // pe, mw // simd
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd): bit index p*SIMD+s within a word
    blocks = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    return [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in blocks]


def thresh_words(thr, pe: int, tb: int, signed: bool | None = None) -> list[int]:
    """Threshold memory: word nf, bits [(p*T+t)*TB +: TB] = thr[nf*PE+p, t] (two's complement).

    With `signed` given, every threshold must read back as itself from a TB-bit field of
    that kind (two's complement or unsigned); without it, either kind is accepted."""
    import numpy as np

    thr = np.asarray(thr, dtype=np.int64)
    c, t = thr.shape
    if c % pe:
        raise ValueError(f"PE={pe} must divide C={c}")
    lo = -(1 << (tb - 1)) if signed is not False else 0
    hi = (1 << (tb - 1)) - 1 if signed else (1 << tb) - 1
    if thr.min(initial=0) < lo or thr.max(initial=0) > hi:
        kind = {True: "two's complement ", False: "unsigned "}.get(signed, "")
        raise ValueError(f"thresholds {thr.min()}..{thr.max()} do not fit in {tb}-bit {kind}fields")
    mask = (1 << tb) - 1
    words = []
    for nf in range(c // pe):
        word = 0
        for k, v in enumerate(thr[nf * pe:(nf + 1) * pe].reshape(-1)):
            word |= (int(v) & mask) << (k * tb)
        words.append(word)
    return words


def _lane_fields(fields, pe: int, simd: int, wb: int) -> list[int]:
    """(MH, MW) non-negative field values -> MVU memory words: depth NF*SF, address nf*SF+sf,
    lane (p, s) at bits [(p*SIMD+s)*wb +: wb] = fields[nf*PE+p, sf*SIMD+s]."""
    import numpy as np

    f = np.asarray(fields, dtype=object)
    mh, mw = f.shape
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    nf, sf = mh // pe, mw // simd
    blocks = f.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    words = []
    for row in blocks:
        word = 0
        for k, v in enumerate(row):
            word |= int(v) << (k * wb)
        words.append(word)
    return words


def khot_fields(w, k: int, sb: int):
    """K-hot field of integer weights: term j at [j*(2+sb) +: 2+sb], low 2 bits the sign code
    (00 zero, 01 +1, 11 -1), high sb bits the shift; terms from semantics.khot_terms."""
    import numpy as np

    from flow.ops.semantics import khot_terms

    terms = khot_terms(w, k)                          # (..., k, 2): (sign, shift)
    if terms[..., 1].max(initial=0) >= (1 << sb):
        raise ValueError(f"a power-of-two term needs a shift of {int(terms[..., 1].max())}, more than SB={sb} bits hold")
    tw = 2 + sb
    out = np.zeros(terms.shape[:-2], dtype=object)
    for j in range(k):
        sign, shift = terms[..., j, 0], terms[..., j, 1]
        code = np.where(sign == 1, 1, np.where(sign == -1, 3, 0)).astype(object)
        field = np.where(sign == 0, 0, code + (shift.astype(object) << 2))
        out = out + (field.astype(object) << (j * tw))
    return out


def int_mvu_weight_words(w, pe: int, simd: int, mode: int, w_bits: int = 1, k: int = 1,
                         sb: int = 1) -> tuple[list[int], int]:
    """Integer MVU weight memory (int_mvu.sv) -> (words, WB): word nf*SF+sf (PE*SIMD*WB bits),
    lane (p, s) field at [(p*SIMD+s)*WB +: WB] for w[nf*PE+p, sf*SIMD+s].

    mode 0 (bipolar, WB=1): w in {-1,+1}, stored as 1 for +1, 0 for -1.
    mode 1 (K-hot, WB=k*(2+sb)): see `khot_fields`.
    mode 2 (plain, WB=w_bits): two's complement."""
    import numpy as np

    w = np.asarray(w, dtype=np.int64)
    if mode == 0:
        if not np.isin(w, (-1, 1)).all():
            raise ValueError("bipolar weights must be -1 or +1")
        return _lane_fields((w > 0).astype(np.int64), pe, simd, 1), 1
    if mode == 1:
        return _lane_fields(khot_fields(w, k, sb), pe, simd, k * (2 + sb)), k * (2 + sb)
    if mode == 2:
        lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        if w.min(initial=0) < lo or w.max(initial=0) > hi:
            raise ValueError(f"weights do not fit in {w_bits}-bit two's complement")
        return _lane_fields(w & ((1 << w_bits) - 1), pe, simd, w_bits), w_bits
    raise ValueError(f"mode must be 0, 1 or 2, got {mode}")


def int_mvu_weight_bits(mode: int, w_bits: int = 1, k: int = 1, sb: int = 1) -> int:
    """Bits of one lane's weight field (WB) in the int_mvu weight memory."""
    return {0: 1, 1: k * (2 + sb), 2: w_bits}[mode]


def fixed_scale_param_words(mult, bias, pe: int, mult_bits: int, bias_bits: int, mult_mode: int = 1,
                            k: int = 1, sb: int = 1) -> tuple[list[int], int]:
    """fixed_scale.sv parameter memory -> (words, word bits = PE*LW): word nf, lane p at
    [p*LW +: LW] for channel nf*PE+p, LW = MF + bias_bits; the low MF bits hold mult
    (MULT_MODE 0: K-hot field, MF = k*(2+sb); MULT_MODE 1: mult_bits two's complement,
    MF = mult_bits), the bias (two's complement) above."""
    import numpy as np

    mult = np.asarray(mult, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    c = mult.shape[0]
    if c % pe or bias.shape != mult.shape:
        raise ValueError(f"PE={pe} must divide C={c}; mult and bias must have the same shape")
    blo, bhi = -(1 << (bias_bits - 1)), (1 << (bias_bits - 1)) - 1
    if bias.min(initial=0) < blo or bias.max(initial=0) > bhi:
        raise ValueError(f"bias does not fit in {bias_bits} bits")
    if mult_mode == 0:
        mf, mfield = k * (2 + sb), khot_fields(mult, k, sb)
    elif mult_mode == 1:
        lo, hi = -(1 << (mult_bits - 1)), (1 << (mult_bits - 1)) - 1
        if mult.min(initial=0) < lo or mult.max(initial=0) > hi:
            raise ValueError(f"mult does not fit in {mult_bits} bits")
        mf, mfield = mult_bits, mult & ((1 << mult_bits) - 1)
    else:
        raise ValueError(f"mult_mode must be 0 or 1, got {mult_mode}")
    lw = mf + bias_bits
    words = []
    for nf in range(c // pe):
        word = 0
        for p in range(pe):
            ch = nf * pe + p
            lane = int(mfield[ch]) | ((int(bias[ch]) & ((1 << bias_bits) - 1)) << mf)
            word |= lane << (p * lw)
        words.append(word)
    return words, pe * lw


def fixed_scale_lane_bits(mult_mode: int, mult_bits: int, bias_bits: int, k: int = 1, sb: int = 1) -> int:
    """Bits of one lane (LW) in the fixed_scale parameter memory."""
    return (k * (2 + sb) if mult_mode == 0 else mult_bits) + bias_bits
