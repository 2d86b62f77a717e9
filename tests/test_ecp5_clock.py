"""The ECP5 clock search (flow.boards.ecp5_clock): which passes it runs and which clock the
design keeps, on recorded place-and-route outcomes (the whole flow with the real tools:
tests/test_netlist_sim.py's tiny ULX3S build, which has no --clock-mhz)."""
from __future__ import annotations

import pytest

from flow.boards.ecp5_clock import MAX_PASSES, next_clock, search


def _flow(outcomes: dict[float, float | None]):
    """A pass for each asked clock: achieved = asked, Fmax from `outcomes` (None: a tool
    failure, no bitstream); records the asked clocks in order."""
    asked = []

    def attempt(mhz: float) -> dict:
        asked.append(mhz)
        fmax = outcomes[mhz]
        if fmax is None:
            return {"status": "not_built", "clock_mhz": mhz, "fmax_mhz": None, "meets_timing": False}
        return {"status": "built", "clock_mhz": mhz, "fmax_mhz": fmax, "meets_timing": fmax >= mhz, "pass": len(asked)}

    return attempt, asked


@pytest.mark.parametrize("outcomes, passes, kept", [
    ({100.0: 104.6, 104.0: 106.2, 106.0: 107.0}, [100.0, 104.0, 106.0], 106.0),  # up while it closes
    ({100.0: 100.4}, [100.0], 100.0),                                 # nothing higher to ask for
    ({100.0: 142.4, 142.0: 136.3, 129.0: 133.5}, [100.0, 142.0, 129.0], 129.0),  # missed, then 95 % of it
    ({100.0: 142.4, 142.0: 136.3, 129.0: 128.0}, [100.0, 142.0, 129.0, 100.0], 100.0),  # best again
    ({100.0: 88.7, 84.0: 90.1, 90.0: 89.0}, [100.0, 84.0, 90.0, 84.0], 84.0),  # down from a missed start
    ({100.0: 60.0, 57.0: 55.0, 52.0: 50.0}, [100.0, 57.0, 52.0], 52.0),  # never met: the last stays
    ({100.0: None}, [100.0], 100.0),                                  # a tool failure: no search
    ({100.0: 110.0, 110.0: None}, [100.0, 110.0, 100.0], 100.0),      # a failed pass after one that met
])
def test_search_keeps_the_highest_clock_that_met(outcomes, passes, kept):
    attempt, asked = _flow(outcomes)
    rec = search(100.0, attempt, lowest=10.0)
    assert asked == passes and rec["clock_mhz"] == kept
    assert len(asked) <= MAX_PASSES + 1
    assert [t["requested_mhz"] for t in rec["clock_search"]] == [a for a, o in zip(asked, map(outcomes.get, asked))
                                                                 if o is not None]
    met = [t["clock_mhz"] for t in rec["clock_search"] if t["meets_timing"]]
    assert rec["meets_timing"] == bool(met) or outcomes[kept] is None
    if met:
        assert kept == max(met)


def test_a_pass_at_a_clock_already_run_is_skipped():
    """Asked 101 after 100 closed, a PLL that makes 100 again gives no new pass."""
    attempt, asked = _flow({100.0: 101.3, 101.0: 101.3})
    rec = search(100.0, attempt, lowest=10.0, achieved=lambda mhz: float(int(mhz) // 2 * 2))
    assert asked == [100.0] and rec["clock_mhz"] == 100.0 and len(rec["clock_search"]) == 1


def test_next_clock_rounds_down_and_stays_in_range():
    assert next_clock([{"requested_mhz": 100.0, "clock_mhz": 100.0, "fmax_mhz": 133.99, "meets_timing": True}], 10) == 133
    missed = {"requested_mhz": 133.0, "clock_mhz": 133.0, "fmax_mhz": 120.0, "meets_timing": False}
    assert next_clock([missed], 10) == 114  # 95 % of 120
    assert next_clock([missed], 115) is None  # below the PLL's lowest clock
    assert next_clock([{**missed, "fmax_mhz": None}], 10) is None
