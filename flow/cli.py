"""The `bnnflow` command line: models, train, export, build, run, verify, sweep, prove.

Bad input ends with one sentence on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import numpy as np

from flow.boards.catalog import format_table, list_boards, load_board
from flow.boards.ecp5_pll import default_clock
from flow.boards.step import summary
from flow.core.builddir import MARKER, is_build_dir, locked, refuse_if_locked
from flow.core.errors import UserError
from flow.core.intype import parse
from flow.pipeline.build import FINISHED, BuildConfig, build, load_build, stale_reason
from flow.pipeline.shard import dask_client, sharded_sims, worker_threads
from flow.pipeline.steps import step_names
from flow.pipeline.sweep import SWEEP_HTML, SWEEP_JSON, run_sweep
from flow.pipeline.sweep_spec import load_spec
from flow.sim.execute import check_images, execute
from flow.sim.verify import MAX_IMAGES, verification_images, verify

# The commands that need PyTorch (models, train, export) import the training and export
# modules when they run: torch and brevitas take seconds to load, and every other command,
# a refusal included, runs without them.


INT64_MAX = (1 << 63) - 1
SEED_LIMIT = 1 << 32
MAX_CLOCK_MHZ = 10_000.0


def _positive_int(text: str, limit: int = INT64_MAX) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1 or v > limit:
        raise argparse.ArgumentTypeError(f"expected a positive integer of at most {limit}, got {text!r}")
    return v


MAX_WORKERS = 1024


def _worker_count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers, got {text!r}") from None
    if not 0 <= v <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected a number of workers from 0 to {MAX_WORKERS}, got {text!r}")
    return v


def _image_count(text: str) -> int:
    return _positive_int(text, MAX_IMAGES)


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= v < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {SEED_LIMIT - 1}, got {text!r}")
    return v


def _positive_float(text: str, limit: float = math.inf) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v) and v <= limit):
        bound = "" if limit == math.inf else f" of at most {limit:g}"
        raise argparse.ArgumentTypeError(f"expected a finite positive number{bound}, got {text!r}")
    return v


def _clock_mhz(text: str) -> float:
    return _positive_float(text, MAX_CLOCK_MHZ)


def _input_scale(text: str) -> float:
    """A scale S with p*S a positive finite float32 for every pixel p in 1..255."""
    v = _positive_float(text)
    f32 = np.finfo(np.float32)
    if not float(f32.tiny) <= v <= float(f32.max) / 255:
        raise argparse.ArgumentTypeError(f"expected a scale that float32 holds for every pixel value "
                                         f"(about 1.2e-38 to 1.3e36), got {text!r}")
    return v


def _check_input_type(text: str | None) -> None:
    """--input-type TEXT must name an input type (refused in one sentence before anything runs)."""
    if text is not None:
        try:
            parse(text)
        except ValueError as exc:
            raise UserError(f"--input-type: {exc}") from None


def cmd_models(args) -> int:
    from flow.train.zoo import list_models, model_info  # deferred: torch (see above)

    print(f"{'model':<12} {'params':>9}  {'topology':<28} precision (input/weights/activations)")
    for name in list_models():
        info = model_info(name)
        p = info["precision"]
        topo = "-".join(str(w) for w in info.get("topology", []))
        print(f"{name:<12} {info['params']:>9}  {topo:<28} {p.get('input')}/{p.get('weights')}/{p.get('activations')} bits")
    return 0


def cmd_boards(args) -> int:
    print(format_table(list_boards()))
    return 0


def cmd_train(args) -> int:
    from flow.train.trainer import train  # deferred: torch (see above)

    metrics = train(args.model, epochs=args.epochs, data=args.data, out_dir=args.out, seed=args.seed,
                    test_data=args.test_data, resume=args.resume, progress=not args.quiet)
    print(f"best validation accuracy {metrics.get('best_val_acc', float('nan')):.4f}; "
          f"checkpoints and metrics.json in {args.out}")
    return 0


def cmd_export(args) -> int:
    from flow.frontend.export import export_checkpoint  # deferred: torch (see above)

    if Path(args.out).is_dir() or not Path(args.out).name:
        raise UserError(f"--out {args.out} is a directory; give the .onnx file to write")
    path = export_checkpoint(args.model, args.out)
    print(f"wrote {path}")
    return 0


def cmd_build(args) -> int:
    _check_input_type(args.input_type)
    clock_mhz, search = args.clock_mhz, False
    if clock_mhz is None:  # a board's own clock or its PLL's start clock (and search), else 100 MHz
        clock_mhz, search = default_clock(load_board(args.board)) if args.board else (100.0, False)
    cfg = BuildConfig(model=args.model, out=args.out, board=args.board, target_fps=args.target_fps,
                      clock_mhz=clock_mhz, clock_search=search, target_cycles=args.target_cycles, folding=args.folding,
                      lut_budget=args.lut_budget, synth=args.synth,
                      input_scale=args.input_scale, input_type=args.input_type, verify_images=args.verify_images,
                      test_data=args.test_data, from_step=args.from_step, progress=not args.quiet,
                      unverified=args.unverified, netlist_sim=args.netlist_sim, force=args.force,
                      hls_synth=args.hls_synth,
                      to_step=args.to_step)
    report = build(cfg)
    if report["status"] == "stopped":
        print(f"stopped after step {report['stopped_after']} (--to-step); report: {Path(args.out) / 'report.json'}")
        return 0
    v = (report.get("verification") or {}).get("rtlsim")
    print(f"report: {Path(args.out) / 'report.json'} (for people: report.html)")
    print(f"cycles/frame: estimated {report['estimated_cycles_per_frame']}, measured {report['measured_cycles_per_frame']}; "
          + (f"rtlsim mismatches {v['mismatches']} / {v['images']} images" if v else "not verified"))
    if report.get("accuracy"):
        a = report["accuracy"]
        print(f"accuracy on {a['images']} labelled images from {a['source']}: "
              + ", ".join(f"{k} {a[k]:.4f}" for k in ("numpy", "rtlsim") if k in a))
    n = (report.get("verification") or {}).get("netlist")
    if n:
        print(f"netlist ({n['netlist']}): mismatches {n['mismatches']} / {n['images']} images, {n['seconds']} s "
              f"(compile {n['compile_seconds']} s, simulator {n['binary_bytes'] // 1024} KiB)")
    if report.get("board_build"):
        print(summary(report["board_build"]))
    if report["status"] == "unverified":
        print("bnnflow: note: this design has no verification record (built with --unverified)", file=sys.stderr)
        return 0
    if report["status"] != "complete":
        why = report.get("netlist_error") or ("the synthesised netlist differs from the reference"
                                               if n and n["mismatches"] else "the RTL simulation differs from the reference")
        print(f"bnnflow: verification failed: {why}", file=sys.stderr)
        return 1
    return 0


def _load_images(path: str):
    """The images of a .npy file, memory-mapped (the engines read them a chunk at a time)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file {path} does not exist")
    try:
        x = np.load(p, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"input file {path} is not a readable .npy array ({type(exc).__name__})") from None
    if not isinstance(x, np.ndarray):
        raise UserError(f"input file {path} is not a .npy file holding one array")
    if x.ndim >= 1 and x.shape[0] == 0:
        raise UserError(f"input file {path} holds no images (shape {tuple(x.shape)})")
    return x


def _output_path(text: str | None) -> Path | None:
    """Where `run --output` writes (np.save adds .npy); its folder must exist, checked before any run."""
    if text is None:
        return None
    p = Path(text)
    if not p.name or p.is_dir():
        raise UserError(f"--output {text} is a directory; give the .npy file to write")
    p = p if p.suffix == ".npy" else p.with_name(p.name + ".npy")
    if not p.parent.is_dir():
        raise UserError(f"--output {text}: the folder {p.parent} does not exist")
    if p.is_dir():
        raise UserError(f"--output {text}: {p} is a directory")
    return p


def cmd_run(args) -> int:
    output = _output_path(args.output)
    if args.engine != "numpy":
        refuse_if_locked(Path(args.build_dir), "run")
    graph = load_build(args.build_dir)
    images = _load_images(args.input)
    check_images(graph, images)  # the images are checked before the build directory
    why = stale_reason(Path(args.build_dir), graph)
    if why is not None:
        raise UserError(f"{Path(args.build_dir) / 'dataflow.onnx'} {why}; run `bnnflow build` again")
    if args.engine == "numpy":
        y = execute(graph, images, engine="numpy", logits=args.logits)
    else:  # the simulators write rtl/, sim/ and hls/ of the build directory
        with locked(Path(args.build_dir), "run"):
            y = execute(graph, images, engine=args.engine, logits=args.logits, build_dir=Path(args.build_dir))
    y = np.asarray(y, dtype=np.int64)
    if output is not None:
        try:
            np.save(output, y)
        except OSError as exc:
            raise UserError(f"--output {output} could not be written ({exc.strerror or type(exc).__name__})") from None
        print(f"wrote {output} {y.shape} int64")
    else:
        np.set_printoptions(threshold=50)
        print(y)
    return 0


def cmd_verify(args) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ("numpy", "csim", "rtlsim")]
    if bad:
        raise UserError(f"unknown engine {bad[0]!r} in --engines; supported: numpy, csim, rtlsim")
    build_dir = Path(args.build_dir)
    refuse_if_locked(build_dir, "verification")
    graph = load_build(build_dir)
    if not is_build_dir(build_dir):
        raise UserError(f"{build_dir} is not a bnnflow build directory (no {MARKER}); run `bnnflow build` first")
    verification_images(graph, args.images, args.test_data)  # bad test data is refused before any warning
    why = stale_reason(build_dir, graph)
    if why is not None:
        print(f"bnnflow: warning: {build_dir / 'dataflow.onnx'} {why}; verifying it as it is", file=sys.stderr)
    with locked(build_dir, "verification"), _cluster(args) as client:
        sims = None
        if client is not None:
            sims = sharded_sims(client, worker_threads(client))
            print(f"simulations sharded over {worker_threads(client)} Dask worker threads", file=sys.stderr)
        found = verify(graph, build_dir, args.images, test_data=args.test_data, stall_seed=args.stall_seed,
                       log=lambda m: print(m, file=sys.stderr), engines=engines, sims=sims)
    print(json.dumps({"verification": found.record, "measured_cycles_per_frame": found.measured_cycles_per_frame},
                     indent=2, sort_keys=True))
    return 0 if found.record["passed"] else 1


def _cluster(args):
    """The Dask client of --scheduler / --workers; none (a null context) without either."""
    if args.scheduler is None and not args.workers:
        return contextlib.nullcontext()
    return dask_client(workers=args.workers, scheduler=args.scheduler)


def cmd_sweep(args) -> int:
    spec = load_spec(args.spec)  # every point is checked before anything is built
    connect = None
    if args.scheduler is not None or args.workers != 0:
        def connect():
            return dask_client(workers=args.workers, scheduler=args.scheduler)
    summary = run_sweep(spec, args.out, connect=connect, cache=args.sim_cache, progress=not args.quiet)
    out = Path(args.out)
    counts = ", ".join(f"{n} {k}" for k, n in summary["counts"].items())
    print(f"{summary['points']} points: {counts}; results in {out / SWEEP_JSON} (for people: {out / SWEEP_HTML})")
    for r in summary["rows"]:
        if r["status"] not in FINISHED:
            print(f"bnnflow: point {r['name']} {r['status']}: {r['reason']}", file=sys.stderr)
    return 0 if all(r["status"] in FINISHED for r in summary["rows"]) else 1


def cmd_prove(args) -> int:
    from flow.core.tools import safe_workdir
    from flow.sim.prove import format_results, prove_engines, select
    select(args.engines)  # an unknown name is refused before any proof runs
    with (contextlib.nullcontext(Path(args.out)) if args.out else safe_workdir("bnnflow-prove-")) as work:
        res = prove_engines(args.engines, work, args.depth, on_result=lambda r: print(
            f"{r.engine} {r.check}: {r.status} ({r.seconds:.1f} s)", file=sys.stderr, flush=True))
    print(format_results(res))
    return 0 if all(r.passed for r in res) else 1


def _add_cluster(s, workers_help: str) -> None:
    g = s.add_mutually_exclusive_group()
    g.add_argument("--workers", type=_worker_count, metavar="N", help=workers_help)
    g.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (e.g. tcp://host:8786, started "
                   "with `dask scheduler`); its workers must see the same paths")


def _add_sweep(sub) -> None:
    s = sub.add_parser("sweep", help="build every point of a design-space sweep (SPEC.toml) on a Dask cluster")
    s.add_argument("spec", help="TOML: build options, each one value or a list (a grid), and [[point]] tables")
    s.add_argument("--out", required=True, help="sweep directory: points/<name>/ builds, sweep.json, sweep.html")
    _add_cluster(s, "worker processes of an embedded Dask LocalCluster (default: half the cores); 0 builds the "
                    "points one after the other in this process")
    s.add_argument("--sim-cache", metavar="DIR", help="compiled simulators shared by the points (default OUT/simcache)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_sweep)


def _add_train(sub) -> None:
    s = sub.add_parser("train", help="train a zoo model")
    s.add_argument("model", help="zoo name or checkpoint to continue from")
    s.add_argument("--epochs", type=_positive_int)
    s.add_argument("--data", default="mnist-subset", help="mnist-subset (default, offline), mnist, digits, or an idx DIR")
    s.add_argument("--test-data", help="idx DIR evaluated once at the end (e.g. the held-out MNIST test set)")
    s.add_argument("--out", default="runs/train", help="output directory (checkpoints, metrics.json)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_train)


def _add_build_goals(s) -> None:
    """The folding goal (one of them) and the clock."""
    g = s.add_mutually_exclusive_group()
    g.add_argument("--target-fps", type=_positive_float)
    g.add_argument("--target-cycles", type=_positive_int, help="cycles per frame of the slowest layer")
    g.add_argument("--folding", type=Path, help="JSON folding file (bnnflow or FINN format)")
    g.add_argument("--lut-budget", type=_positive_int, metavar="N",
                   help="fastest folding whose analytic LUT estimate is at most N")
    s.add_argument("--clock-mhz", type=_clock_mhz, help="design clock in MHz (default: on a board with a PLL and a start clock, "
                   "the highest clock that closes in place and route from it on, rounded down to a whole MHz; "
                   "else the board's clock, else 100)")


def _add_build(sub) -> None:
    steps = ", ".join(step_names())
    s = sub.add_parser("build", help="compile a model to a verified dataflow accelerator")
    s.add_argument("model", help="zoo name, checkpoint (.pt) or QONNX file (.onnx)")
    s.add_argument("--out", required=True)
    s.add_argument("--board", help="board to build for (see `bnnflow boards`): its project, bitstream and fit check")
    s.add_argument("--unverified", action="store_true",
                   help="let the board step build a design whose verification record is missing, stale or failed "
                        "(recorded in report.json)")
    s.add_argument("--no-netlist-sim", dest="netlist_sim", action="store_false",
                   help="ECP5 boards: skip the simulation of the synthesised netlist before place and route "
                        "(report.json then has no verification.netlist)")
    _add_build_goals(s)
    s.add_argument("--input-scale", type=_input_scale, help="the model sees p*S (default p/255)")
    s.add_argument("--input-type", metavar="TYPE",
                   help="the input's integer type: uint8, int8, bipolar (-1/+1), binary (0/1) or fixed<W,I>; the "
                        "model sees these values (default: the file's input datatype annotation, else uint8 p/255)")
    s.add_argument("--verify-images", type=_image_count, default=100)
    s.add_argument("--test-data", help="idx DIR of labelled images for verification and accuracy")
    s.add_argument("--from-step", help=f"resume an earlier build in --out at this step ({steps})")
    s.add_argument("--to-step", help=f"stop after this step ({steps}); report.json says where (status \"stopped\")")
    s.add_argument("--synth", choices=["xcup", "xc7", "ecp5"],
                   help="resource figures of the generated RTL from yosys for this FPGA family")
    s.add_argument("--hls-synth", action="store_true",
                   help="run Vitis HLS on the generated C++ (BUILD/hls/run_hls.tcl) when vitis_hls is on PATH")
    s.add_argument("--force", action="store_true",
                   help="build into a non-empty folder that is not a bnnflow build directory, alongside its files "
                        "(none of them is deleted or overwritten)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_build)


def _add_run_verify(sub) -> None:
    s = sub.add_parser("run", help="run images through a build")
    s.add_argument("build_dir")
    s.add_argument("--input", required=True, help=".npy of integer inputs (N, *input shape) of the build's input type")
    s.add_argument("--engine", default="numpy", choices=["numpy", "csim", "rtlsim"])
    s.add_argument("--output", help=".npy to write (int64 top-1 (N,) or logits (N, classes); for a model ending "
                   "in a quantizer its codes (N, outputs), for a single-output model its decision (N,))")
    s.add_argument("--logits", action="store_true", help="integer logits instead of top-1 (all output words)")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("verify", help="re-verify a build bit-exactly")
    s.add_argument("build_dir")
    s.add_argument("--engines", default="numpy,rtlsim")
    s.add_argument("--images", type=_image_count, default=100)
    s.add_argument("--test-data")
    s.add_argument("--stall-seed", type=_seed, help="random valid/ready stalls in the simulation")
    _add_cluster(s, "shard the simulations over an embedded Dask LocalCluster of N worker processes")
    s.set_defaults(fn=cmd_verify)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bnnflow", description="Binarized neural networks to bit-exact dataflow accelerators.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the model zoo").set_defaults(fn=cmd_models)
    sub.add_parser("boards", help="list the boards (boards/*.toml)").set_defaults(fn=cmd_boards)
    _add_train(sub)
    s = sub.add_parser("export", help="export a zoo model or checkpoint to QONNX")
    s.add_argument("model")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_export)
    _add_build(sub)
    _add_run_verify(sub)
    _add_sweep(sub)
    s = sub.add_parser("prove", help="formal proofs of the RTL engines' stream protocol (SymbiYosys, bounded)")
    s.add_argument("engines", nargs="*", metavar="ENGINE", help="engine modules (default: all)")
    s.add_argument("--depth", type=lambda t: _positive_int(t, 200), help="BMC depth in cycles (default: each op's)")
    s.add_argument("--out", help="keep the proofs (wrappers, .sby files, traces) in this folder")
    s.set_defaults(fn=cmd_prove)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.fn(args)
    except UserError as exc:
        msg = str(exc).rstrip(".")
        print(f"bnnflow: error: {msg}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
