"""`bnnflow sweep`: a design-space sweep, every point an ordinary build directory.

The points of a spec (flow.pipeline.sweep_spec) are built in SWEEP/points/<name>/ by the
build pipeline, on the workers of a Dask cluster (flow.pipeline.shard.dask_client) or one
after the other in this process. SWEEP/sweep.json holds one row per point (its parameters,
status, cycles, frames/s, resources, Fmax, mismatches, accuracy, wall time), rewritten as
points finish; SWEEP/sweep.html shows the Pareto front.

- Resumable: a point whose build directory holds a finished report (complete or
  unverified) for the same configuration and the same graph is not built again.
- A failing point is recorded with its reason; the sweep goes on.
- A worker that dies mid-point: the scheduler runs the point again on another worker. A
  build directory is safe to redo: the build claims it again, removes what earlier runs
  wrote, and the lock of a dead process is gone with it (waited for while a live one holds it).
- Identical designs share one Verilator model: a step after `rtl` compiles the simulator
  into the sweep's cache (SWEEP/simcache/, content-keyed, one compile per design at a time)
  and copies it into the point's sim/, where verification finds it.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from flow.boards.catalog import load_board
from flow.boards.ecp5_pll import default_clock
from flow.core.builddir import atomic_write_json, is_build_dir, lock_is_held
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.ir.reference import design_streams
from flow.pipeline.build import FINISHED, load_build, read_report, stale_reason
from flow.pipeline.build import build as run_build
from flow.pipeline.state import BuildConfig, BuildState, Step, StepContext, config_dict
from flow.pipeline.steps import STEPS, with_step
from flow.pipeline.sweep_html import pareto_front, write_sweep_html
from flow.pipeline.sweep_spec import Point, SweepSpec
from flow.sim.rtlsim import RTLSim
from flow.sim.simulate import TOP
from flow.sim.verify import CHECKED, record_problem

SWEEP_JSON, SWEEP_HTML, POINTS, SIM_CACHE = "sweep.json", "sweep.html", "points", "simcache"
LOCK_WAIT_S = 120.0   # a point's build directory locked by a live process: how long to wait for it
RESOURCE_KEYS = ("tool", "LUT", "FF", "BRAM", "DSP")
# parameters that leave the RTL as it is: points that differ only in them share a simulator
SAME_RTL = ("verify_images", "test_data", "synth", "board", "unverified")


def point_config(params: dict, out: Path) -> BuildConfig:
    """The BuildConfig of a point: its parameters, the board's clock (else 100 MHz) unless given."""
    p = dict(params)
    clock, search = p.pop("clock_mhz", None), False
    if clock is None:
        clock, search = default_clock(load_board(p["board"])) if p.get("board") else (100.0, False)
    folding = p.pop("folding", None)
    return BuildConfig(out=Path(out), clock_mhz=clock, clock_search=search, folding=Path(folding) if folding else None,
                       progress=False, **p)


# ---------------------------------------------------------------------------------------
# one point (runs on a worker)


def seed_simulator(graph: DataflowGraph, build_dir: Path, cache: Path) -> Path:
    """The design's Verilator model in BUILD/sim/, taken from the sweep's cache `cache` or
    compiled into it (once per design; a second worker waits for the first:
    flow.core.tools.cached_binary)."""
    s_in, s_out = design_streams(graph)
    sim = RTLSim(build_dir / "rtl", TOP, s_in.width, s_out.width, s_out.beats, s_in.beats, build_dir / "sim",
                 shared_cache=Path(cache))
    return sim.build()


def shared_sim_step(cache: Path) -> Step:
    def run(ctx: StepContext, st: BuildState) -> BuildState:
        seed_simulator(st.graph, ctx.out, Path(cache))
        return st
    return Step("shared_sim", run, doc="the Verilator model from the sweep's cache (one compile per design)")


def _placed(config: dict) -> dict:
    """A build's configuration but for where it is (a sweep folder may move)."""
    return {k: v for k, v in config.items() if k != "out"}


def finished_report(out: Path, cfg: BuildConfig) -> dict | None:
    """The report of a finished build of `cfg` in `out` (None when the point must be built):
    complete or unverified, of the same configuration, describing the graph it left."""
    rep = read_report(out)
    if rep.get("status") not in FINISHED or not isinstance(rep.get("config"), dict) or not is_build_dir(out):
        return None
    if _placed(rep["config"]) != _placed(config_dict(cfg)):
        return None
    if lock_is_held(out) is not None:
        return None
    try:
        return rep if stale_reason(out, load_build(out)) is None else None
    except (UserError, OSError, ValueError):
        return None


def _wait_unlocked(out: Path, limit: float = LOCK_WAIT_S) -> None:
    t0 = time.monotonic()
    while lock_is_held(out) is not None and time.monotonic() - t0 < limit:
        time.sleep(0.5)


def run_point(point: Point, sweep_dir: Path, cache: Path) -> dict:
    """Build one point (or take its finished build); its row. Never raises for a build that fails."""
    t0 = time.monotonic()
    out = Path(sweep_dir) / POINTS / point.name
    try:
        cfg = point_config(point.params, out)
        rep = finished_report(out, cfg)
        if rep is not None:
            return {**point_row(point, rep), "wall_s": None, "resumed": True}
        _wait_unlocked(out)
        rep = run_build(cfg, with_step(STEPS, shared_sim_step(cache), after="rtl"))
        row = point_row(point, rep)
    except UserError as exc:
        row = failed_row(point, str(exc).rstrip("."))
    except Exception as exc:  # anything else a build raises is recorded too: the sweep goes on
        row = failed_row(point, f"{type(exc).__name__}: {exc}")
        row["traceback"] = traceback.format_exc()[-4000:]
    row["wall_s"] = round(time.monotonic() - t0, 3)
    return row


# ---------------------------------------------------------------------------------------
# rows


def _empty_row(point: Point, status: str, reason: str | None) -> dict:
    return {"name": point.name, "dir": f"{POINTS}/{point.name}", "params": dict(point.params), "status": status,
            "reason": reason, "estimated_cycles": None, "measured_cycles": None, "clock_mhz": None,
            "estimated_fps": None, "measured_fps": None, "fps": None, "resources": None, "lut": None,
            "fmax_mhz": None, "mismatches": None, "verified_images": None, "accuracy": None, "design_hash": None,
            "synthesis_error": None, "wall_s": None, "resumed": False}


def failed_row(point: Point, reason: str) -> dict:
    return _empty_row(point, "failed", reason)


def point_row(point: Point, rep: dict) -> dict:
    """The row of a point from its report.json."""
    ver = rep.get("verification") or {}
    est, meas = rep.get("estimated_cycles_per_frame"), rep.get("measured_cycles_per_frame")
    clock = (rep.get("estimated_fps_at_clock") or {}).get("clock_mhz")
    res, acc = rep.get("resources") or {}, rep.get("accuracy") or {}
    est_fps = clock * 1e6 / est if clock and est else None
    meas_fps = clock * 1e6 / meas if clock and meas else None
    why = record_problem(ver) if rep.get("status") == "verification_failed" else None
    return {**_empty_row(point, rep.get("status"), f"verification failed: {why}" if why else None),
            "estimated_cycles": est, "measured_cycles": meas, "clock_mhz": clock,
            "estimated_fps": est_fps, "measured_fps": meas_fps, "fps": meas_fps or est_fps,
            "resources": {k: res.get(k) for k in RESOURCE_KEYS}, "lut": res.get("LUT"),
            "fmax_mhz": rep.get("fmax_mhz"),
            "mismatches": {k: ver[k]["mismatches"] for k in CHECKED if isinstance(ver.get(k), dict)
                           and "mismatches" in ver[k]},
            "verified_images": ver.get("images"),
            "accuracy": acc.get("rtlsim", acc.get("numpy")),
            "design_hash": rep.get("design_hash"), "synthesis_error": rep.get("synthesis_error")}


def summary_of(spec: SweepSpec, rows: dict[str, dict]) -> dict:
    """sweep.json: the rows in the spec's order (pending where a point has not finished)."""
    ordered = [rows.get(p.name) or _empty_row(p, "pending", None) for p in spec.points]
    counts: dict[str, int] = {}
    for r in ordered:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"spec": str(spec.path.absolute()), "points": len(ordered), "counts": dict(sorted(counts.items())),
            "pareto": [r["name"] for r in pareto_front(ordered, "fps")],
            "pareto_accuracy": [r["name"] for r in pareto_front(ordered, "accuracy")],
            "rows": ordered}


def write_results(out: Path, spec: SweepSpec, rows: dict[str, dict], html: bool = True) -> dict:
    summary = summary_of(spec, rows)
    if html:
        write_sweep_html(summary, out / SWEEP_HTML)
    atomic_write_json(out / SWEEP_JSON, summary)
    return summary


# ---------------------------------------------------------------------------------------
# the sweep


def _previous_wall(out: Path) -> dict[str, float]:
    """Wall times of the rows of an earlier sweep.json (a resumed point keeps its own)."""
    old = read_report_file(out / SWEEP_JSON)
    rows = old.get("rows") if isinstance(old.get("rows"), list) else []
    return {r["name"]: r.get("wall_s") for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str)}


def read_report_file(path: Path) -> dict:
    try:
        d = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    except (OSError, ValueError, RecursionError):
        return {}
    return d if isinstance(d, dict) else {}


def check_sweep_dir(out) -> Path:
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / SWEEP_JSON).is_file() and not (out / POINTS).is_dir():
        raise UserError(f"{out} is not empty and holds no sweep ({SWEEP_JSON}); choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def plan(spec: SweepSpec, out: Path) -> tuple[dict[str, dict], list[Point]]:
    """(rows of the points already built, the points left to build)."""
    walls = _previous_wall(out)
    done, todo = {}, []
    for p in spec.points:
        cfg = point_config(p.params, out / POINTS / p.name)
        rep = finished_report(cfg.out, cfg)
        if rep is None:
            todo.append(p)
        else:
            done[p.name] = {**point_row(p, rep), "wall_s": walls.get(p.name), "resumed": True}
    return done, todo


def _lost(point: Point, exc: BaseException) -> dict:
    return failed_row(point, f"the point did not finish on the cluster ({type(exc).__name__}: {exc})")


def interleaved(points: list[Point]) -> list[Point]:
    """The points, those that likely share a design (they differ only in SAME_RTL) spread
    apart: in spec order one point of each such group in turn, so that the first points the
    workers take compile different simulators instead of waiting for the same one."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        key = json.dumps({k: v for k, v in p.params.items() if k not in SAME_RTL}, sort_keys=True)
        groups.setdefault(key, []).append(p)
    return [p for batch in itertools.zip_longest(*groups.values()) for p in batch if p is not None]


def _run_on(client, todo: list[Point], out: Path, cache: Path, record) -> None:
    from distributed import as_completed  # deferred: the optional extra `sweep` (flow.pipeline.shard)

    futures = {client.submit(run_point, p, out, cache, pure=False): p for p in interleaved(todo)}
    for fut in as_completed(list(futures)):
        try:
            row = fut.result()
        except Exception as exc:  # KilledWorker (a point that took down every worker it ran on), a lost scheduler
            row = _lost(futures[fut], exc)
        record(row)
        fut.release()


def _cluster_for(todo: list[Point], client, connect):
    """A context giving the client the points run on (None: here, one after the other)."""
    if todo and client is None and connect is not None:
        return connect()
    return contextlib.nullcontext(client if todo else None)


def run_sweep(spec: SweepSpec, out, client=None, connect=None, cache=None, progress: bool = True) -> dict:
    """Build every point not yet built; return sweep.json's content. The points run on
    `client`, else on the client `connect()` opens (a context manager, entered only when a
    point is left to build), else one after the other here."""
    out = check_sweep_dir(out)
    cache = Path(cache).absolute() if cache is not None else out / SIM_CACHE
    rows, todo = plan(spec, out)
    write_results(out, spec, rows, html=False)
    with _cluster_for(todo, client, connect) as c:
        bar = tqdm(total=len(spec.points), initial=len(rows), unit="point", desc="sweep", disable=not progress,
                   dynamic_ncols=True)

        def record(row: dict) -> None:
            rows[row["name"]] = row
            write_results(out, spec, rows, html=False)
            bar.update(1)
            bar.set_postfix_str(f"{sum(r['status'] not in FINISHED for r in rows.values())} not complete",
                                refresh=False)

        try:
            if c is not None:
                _run_on(c, todo, out, cache, record)
            else:
                for p in interleaved(todo):
                    record(run_point(p, out, cache))
        finally:
            bar.close()
            summary = write_results(out, spec, rows)
    return summary
