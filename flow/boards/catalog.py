"""Boards as data: one TOML file per board in boards/, loaded and checked here.

A board file names the part, its capacity, its clock, the shell around the accelerator
(`zynq-ps`: processing system + AXI DMA; `uart`: a serial shell on a bare FPGA) and the
toolchain that makes its bitstream (`vivado` or `open-ecp5`). Adding a board is adding
one file.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.passes.fold import fold_for_lut_budget, insert_width_converters
from flow.sim.simulate import design_hash
from flow.sim.verify import digest, file_digest, load_record, record_mismatch, source_digests, sources_mismatch

TOOLCHAINS = ("vivado", "open-ecp5")
FAMILIES = ("xcup", "xc7", "ecp5")
SHELLS = ("zynq-ps", "uart")
ZYNQ_PS = ("zynq_ultra_ps_e", "processing_system7")
CAPACITY_KEYS = ("lut", "ff", "bram", "dsp")

# The analytic resource model counts 6-input LUTs. An ECP5 slice has 4-input LUTs; a LUT6
# function takes up to four of them, the logic of these engines (XNOR + popcount adder
# trees, compares) about two: the fit check counts 2 LUT4 per estimated LUT6.
LUT4_PER_LUT6 = 2.0

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    toolchain: str
    family: str
    part: str
    package: str
    speed: str
    clock_mhz: float
    clock_source: str
    capacity: dict
    shell: dict
    pins: dict
    extra: dict
    path: Path

    @property
    def lut_factor(self) -> float:
        """Device LUTs per analytic (LUT6) LUT."""
        return LUT4_PER_LUT6 if self.capacity.get("lut_kind") == "lut4" else 1.0


def boards_dir() -> Path:
    return asset_path("boards")


def templates():
    """Jinja2 environment over boards/templates/ (toolchain scripts: TCL, LPF)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(boards_dir() / "templates")),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                              lstrip_blocks=True, autoescape=False)


def board_names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def _need(d: dict, key: str, kind, where: str):
    if key not in d:
        raise UserError(f"board file {where} lacks the field {key!r}")
    v = d[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or isinstance(v, bool):
        raise UserError(f"board file {where}: field {key!r} must be a {kind.__name__}, got {v!r}")
    return v


def _choice(d: dict, key: str, allowed: tuple, where: str) -> str:
    v = _need(d, key, str, where)
    if v not in allowed:
        raise UserError(f"board file {where}: {key} {v!r} is not supported (supported: {', '.join(allowed)})")
    return v


def parse_board(path: Path) -> Board:
    """Read and validate one board file."""
    where = Path(path).name
    try:
        d = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"board file {where} is not valid TOML ({exc})") from None
    name = _need(d, "name", str, where)
    if name != Path(path).stem or not _NAME.match(name):
        raise UserError(f"board file {where}: name {name!r} must equal the file name and use a-z, 0-9 and '-'")
    clock = _need(d, "clock", dict, where)
    cap = _need(d, "capacity", dict, where)
    for k in CAPACITY_KEYS:
        if _need(cap, k, int, where) < 0:
            raise UserError(f"board file {where}: capacity {k} must not be negative")
    shell = _need(d, "shell", dict, where)
    kind = _choice(shell, "kind", SHELLS, where)
    toolchain = _choice(d, "toolchain", TOOLCHAINS, where)
    family = _choice(d, "family", FAMILIES, where)
    if kind == "zynq-ps":
        _choice(shell, "ps", ZYNQ_PS, where)
        _need(shell, "board_part", str, where)
        if toolchain != "vivado":
            raise UserError(f"board file {where}: a zynq-ps shell is built with the vivado toolchain")
    pins = d.get("pins", {})
    if kind == "uart":
        if _need(shell, "uart_baud", int, where) < 1:
            raise UserError(f"board file {where}: uart_baud must be positive")
        for port in ("clk", "rst_n", "uart_rx", "uart_tx"):
            _need(pins, port, str, where)
        if toolchain != "open-ecp5":
            raise UserError(f"board file {where}: the uart shell is built with the open-ecp5 toolchain")
    mhz = _need(clock, "mhz", float, where)
    if mhz <= 0:
        raise UserError(f"board file {where}: clock mhz must be positive")
    known = {"name", "description", "toolchain", "family", "part", "package", "speed", "clock", "capacity",
             "shell", "pins"}
    return Board(name=name, description=_need(d, "description", str, where), toolchain=toolchain, family=family,
                 part=_need(d, "part", str, where), package=_need(d, "package", str, where),
                 speed=_need(d, "speed", str, where), clock_mhz=mhz,
                 clock_source=_need(clock, "source", str, where), capacity=dict(cap), shell=dict(shell),
                 pins=dict(pins), extra={k: v for k, v in d.items() if k not in known}, path=Path(path))


def load_board(name: str) -> Board:
    """The board called `name`; an unknown name is refused with the list of boards."""
    names = board_names()
    if name not in names:
        raise UserError(f"unknown board {name!r}; supported boards: {', '.join(names)}")
    return parse_board(boards_dir() / f"{name}.toml")


def list_boards() -> list[Board]:
    return [load_board(n) for n in board_names()]


# ---------------------------------------------------------------------------------------
# fit check


def design_need(graph) -> dict:
    """Analytic LUT/FF/BRAM/DSP of a folded graph (LUT6 units), width converters included."""
    need = {k: 0 for k in ("LUT", "FF", "BRAM", "DSP")}
    for op in insert_width_converters(graph).ops():
        r = op.resources()
        for k in need:
            need[k] += int(r[k])
    return need


def check_fit(folded, unfolded, board: Board) -> dict:
    """Refuse a folded design whose analytic resources exceed the board, naming need vs
    capacity and the fastest folding that would fit; return the need otherwise."""
    need = design_need(folded)
    f = board.lut_factor
    device = {"LUT": int(round(need["LUT"] * f)), "FF": need["FF"], "BRAM": need["BRAM"], "DSP": need["DSP"]}
    over = [k for k in device if device[k] > board.capacity[k.lower()]]
    if not over:
        return device
    names = {"LUT": f"LUT4 ({f:g} per estimated LUT6)" if f != 1.0 else "LUT", "BRAM": "BRAM36"}
    what = ", ".join(f"{device[k]} {names.get(k, k)} vs {board.capacity[k.lower()]}" for k in over)
    try:
        _g, target = fold_for_lut_budget(unfolded, int(board.capacity["lut"] / f))
        hint = f"a folding that fits is --target-cycles {target}"
    except UserError:
        hint = "no folding of this model fits it"
    raise UserError(f"the design does not fit {board.name} ({board.part}): it needs {what} available "
                    f"(analytic estimate); {hint}")


# ---------------------------------------------------------------------------------------
# gate: a bitstream only for a verified design


def verification_gate(graph, build_dir: Path, unverified: bool = False) -> dict:
    """The bitstream step runs only when BUILD/verification.json passed (counted from its
    mismatches, never from its `passed` field) for the current design hash and for the
    exact files in BUILD/rtl/ (or with --unverified, which is recorded)."""
    current = design_hash(graph)
    rec, why = load_record(build_dir)
    if why is None:
        why = record_mismatch(rec, graph, build_dir)
    ok = why is None
    gate = {"design_hash": current, "verified_hash": rec.get("design_hash") if isinstance(rec, dict) else None,
            "verification_passed": ok, "unverified_override": unverified, "passed": ok,
            "reason": why, "sources": rec["sources"] if ok else None}
    if ok or unverified:
        return gate
    raise UserError(f"no bitstream for {Path(build_dir)}: {why}; re-run verification (`bnnflow verify "
                    f"{Path(build_dir)}` or the build from the verify step), or pass --unverified")


def seal_project(gate: dict, build_dir: Path, src: Path, generated: dict, rewrite: dict | None = None,
                 scripts=()) -> dict:
    """Right before synthesis: every file in the board project's src/ must be a verified
    source (BUILD/rtl/ as simulated, through `rewrite` where the flow rewrites it) or a
    file bnnflow generated for the shell (`generated`: name -> bytes); anything else or any
    changed byte is refused, naming the file. Return the digests of the sources and of the
    toolchain scripts, for the report."""
    rewrite = rewrite or {}
    expected = {name: digest(data) for name, data in generated.items()}
    verified = gate.get("sources")
    if verified is not None:
        rtl = Path(build_dir) / "rtl"
        why = sources_mismatch(verified, rtl)
        for name, simulated in verified.items():
            data = (rtl / name).read_bytes() if why is None else b""
            expected[name] = digest(rewrite[name](data)) if name in rewrite else simulated
        why = why or sources_mismatch(expected, Path(src))
        if why is not None:
            raise UserError(f"no bitstream for {Path(build_dir)}: {why}; re-run the build from the rtl step")
    return {"sources_checked": verified is not None, "sources": source_digests(Path(src)),
            "scripts": {Path(s).name: file_digest(Path(s)) for s in scripts}}


def format_table(boards: list[Board]) -> str:
    rows = [f"{'board':<11} {'part':<22} {'toolchain':<10} {'clock':>7}  {'LUT':>7} {'FF':>7} {'BRAM36':>6} "
            f"{'DSP':>5}  shell"]
    for b in boards:
        c = b.capacity
        lut = f"{c['lut']}" + ("*" if c.get("lut_kind") == "lut4" else "")
        rows.append(f"{b.name:<11} {b.part:<22} {b.toolchain:<10} {b.clock_mhz:>4.0f}MHz  {lut:>7} {c['ff']:>7} "
                    f"{c['bram']:>6} {c['dsp']:>5}  {b.shell['kind']}")
    if any(b.capacity.get("lut_kind") == "lut4" for b in boards):
        rows.append("* LUT4s (the fit check counts 2 LUT4 per estimated LUT6)")
    return "\n".join(rows)
