"""The design clock of an ECP5 board with a PLL when none is asked for: the highest clock
that closed, rounded down to a whole MHz.

Place and route run at the board's start clock (`[pll] start_mhz`); nextpnr reports the
Fmax the routed design reached. The next pass asks the PLL for that Fmax rounded down (a
new placement under a tighter constraint may close higher or lower; after a pass that
missed, 95 % of its Fmax), and so on while a pass can still gain: at most MAX_PASSES
passes. The design keeps the highest clock whose pass met timing; when the last pass is
not that one, that pass runs again (nextpnr runs with a fixed seed, so it places and
routes the same). When no pass met timing the last (lowest) one stays, and the record
says the design does not meet its clock.
"""
from __future__ import annotations

import math
from collections.abc import Callable

MAX_PASSES = 3  # place-and-route passes of the search (one more when the best one is run again)
FAILED_MARGIN = 0.95  # after a pass that missed its clock, the next asks for this share of its Fmax


def next_clock(tried: list[dict], lowest: float) -> float | None:
    """The clock of the next pass after `tried` (records with requested_mhz, clock_mhz,
    fmax_mhz, meets_timing), or None when no pass could close a higher clock. After a pass
    that met timing: its Fmax rounded down. After one that did not: FAILED_MARGIN of its
    Fmax rounded down (a placement under the tighter constraint reaches less than the
    one before it, so asking for the Fmax it reached again rarely closes)."""
    last = tried[-1]
    if last["fmax_mhz"] is None:
        return None
    cand = float(math.floor(last["fmax_mhz"] * (1.0 if last["meets_timing"] else FAILED_MARGIN)))
    met = [t["clock_mhz"] for t in tried if t["meets_timing"]]
    if cand < lowest or (met and cand <= max(met)):
        return None
    if any(cand in (t["requested_mhz"], t["clock_mhz"]) for t in tried):
        return None
    return cand


def _entry(requested: float, rec: dict) -> dict:
    return {"requested_mhz": requested, "clock_mhz": rec["clock_mhz"], "fmax_mhz": rec["fmax_mhz"],
            "meets_timing": bool(rec.get("meets_timing"))}


def search(first: float, attempt: Callable[[float], dict], lowest: float, log=lambda m: None,
           achieved: Callable[[float], float] | None = None) -> dict:
    """Run `attempt(mhz)` (a whole pass: the PLL for at most `mhz`, synthesis, place and
    route, bitstream; returns the board_build record) from `first` on; return the record of
    the pass the design keeps, with `clock_search`: every pass in order. `achieved(mhz)`: the
    clock the PLL makes for a request of `mhz`; a pass whose clock a pass before it already
    ran is not run (asked 101 after 100 met, the ULX3S PLL makes 100 again)."""
    tried: list[dict] = []
    asked = first
    rec = attempt(asked)
    while rec["status"] == "built":
        tried.append(_entry(asked, rec))
        nxt = next_clock(tried, lowest) if len(tried) < MAX_PASSES else None
        if nxt is None or (achieved is not None and achieved(nxt) in [t["clock_mhz"] for t in tried]):
            break
        log(f"clock search: {rec['clock_mhz']:g} MHz reached Fmax {rec['fmax_mhz']:.1f} MHz; next pass at {nxt:g} MHz")
        asked = nxt
        rec = attempt(asked)
    best = max((t for t in tried if t["meets_timing"]), key=lambda t: t["clock_mhz"], default=None)
    if best is not None and (rec["status"] != "built" or rec["clock_mhz"] != best["clock_mhz"]):
        log(f"clock search: {best['clock_mhz']:g} MHz is the highest clock that closed; its pass again")
        rec = attempt(best["requested_mhz"])
        tried.append(_entry(best["requested_mhz"], rec))
    rec["clock_search"] = tried
    return rec

