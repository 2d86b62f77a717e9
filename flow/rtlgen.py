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

from flow.assets import asset_path

# engine -> library sources it needs, in compile order (relative to rtl/)
ENGINE_SOURCES: dict[str, tuple[str, ...]] = {
    "bnn_mvu": ("common/bnn_popcount.sv", "mvu_binary/bnn_mvu.sv"),
    "thresholding": ("thresholding/thresholding.sv",),
    "label_select": ("label_select/label_select.sv",),
    "dwc": ("dwc/dwc.sv",),
    "fifo": ("fifo/fifo.sv",),
}

_RESERVED = {"out", "ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", *ENGINE_SOURCES}
# SystemVerilog keywords a sanitised graph name could plausibly hit
_SV_KEYWORDS = set("""always always_comb always_ff always_latch and assign automatic begin bit break buf byte case
casex casez class const continue default defparam do edge else end endcase endfunction endgenerate endmodule
enum event final for force foreach forever fork function generate genvar if initial inout input int integer
interface local localparam logic longint module nand negedge nor not or output package parameter posedge
real reg repeat return shortint signed specify static string struct supply0 supply1 table task time tri type
typedef union unique unsigned var virtual void wait while wire xnor xor""".split())
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
    return {"top": top_name, "files": files, "in_bits": rendered[0]["in_bits"], "out_bits": rendered[-1]["out_bits"]}


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


def thresh_words(thr, pe: int, tb: int) -> list[int]:
    """Threshold memory: word nf, bits [(p*T+t)*TB +: TB] = thr[nf*PE+p, t] (two's complement)."""
    import numpy as np

    thr = np.asarray(thr, dtype=np.int64)
    c, t = thr.shape
    if c % pe:
        raise ValueError(f"PE={pe} must divide C={c}")
    lo, hi = -(1 << (tb - 1)), (1 << tb) - 1
    if thr.min(initial=0) < lo or thr.max(initial=0) > hi:
        raise ValueError(f"thresholds do not fit in {tb} bits")
    mask = (1 << tb) - 1
    words = []
    for nf in range(c // pe):
        word = 0
        for k, v in enumerate(thr[nf * pe:(nf + 1) * pe].reshape(-1)):
            word |= (int(v) & mask) << (k * tb)
        words.append(word)
    return words
