"""Slow tier: random legal configurations of every engine, drawn by its op's
`random_params` (flow.ops), batched several per simulator build (sim/batch.py), each streamed
unstalled (exact results, the engine's cycles-per-frame formula) and under four random stall
patterns, beat by beat against flow.ops.semantics (no beat lost, duplicated or reordered).

Totals over the tier: >= 200 configurations and >= 100,000 stream beats."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from flow.ir.registry import engines

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from batch import run_batch  # noqa: E402

pytestmark = [pytest.mark.sim, pytest.mark.slow]

PER_BATCH = 12          # configurations per build
BATCHES = 2             # builds per engine
TOTALS = {"configs": 0, "beats": 0, "batches": 0}
ENGINES = sorted(engines())


def random_batch(engine: str, batch: int) -> list[dict]:
    """PER_BATCH random configurations of `engine` (deterministic per engine and batch)."""
    cls = engines()[engine]
    seed = sum(map(ord, engine)) * 100 + batch
    rng = np.random.default_rng(seed)
    return [{"engine": engine, "params": cls.random_params(rng), "seed": seed + i, "frames": cls.tb_frames}
            for i in range(PER_BATCH)]


@pytest.mark.parametrize("batch", range(BATCHES))
@pytest.mark.parametrize("engine", ENGINES)
def test_random_configurations(engine, batch, tmp_path):
    configs = random_batch(engine, batch)
    stats = run_batch(configs, tmp_path, "verilator")
    assert stats["configs"] == len(configs)
    TOTALS["configs"] += stats["configs"]
    TOTALS["beats"] += stats["beats"]
    TOTALS["batches"] += 1


def test_random_totals():
    """Runs after the random batches (file order): the tier's coverage targets."""
    if TOTALS["batches"] < BATCHES * len(ENGINES):
        pytest.skip("not every random batch ran in this session")
    print(f"random tier: {TOTALS['configs']} configurations, {TOTALS['beats']} beats")
    assert TOTALS["configs"] >= 200
    assert TOTALS["beats"] >= 100_000
