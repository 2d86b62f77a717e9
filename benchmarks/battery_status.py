"""Status of the test battery (tests/_battery.py): ordinary Brevitas networks of the kinds FINN's
end-to-end tests and notebooks compile, random weights and BatchNorm. Each is exported to QONNX
(brevitas.export.export_qonnx) and built with `bnnflow build` as a user would; a built one is run
with the numpy and rtlsim engines and compared with PyTorch. Prints a table: model, exported node
types, result (built and verified with mismatch counts, or refused with bnnflow's sentence).

    python benchmarks/battery_status.py [--variants small,full] [--models NAME,...] [--seed S]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _battery import BATTERY  # noqa: E402
from _battery_run import check, summary  # noqa: E402


def _types(counts: dict) -> str:
    return " ".join(f"{k}x{v}" if v > 1 else k for k, v in sorted(counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="small,full")
    ap.add_argument("--models", default=",".join(BATTERY))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(BATTERY))
    if unknown:
        sys.exit(f"battery_status: unknown model {unknown[0]!r}; the battery has {', '.join(BATTERY)}")
    print("| model | variant | exported node types | result | seconds |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bnnflow-battery-") as tmp:
        for name in names:
            for variant in args.variants.split(","):
                t0 = time.perf_counter()
                o = check(name, variant, Path(tmp) / f"{name}-{variant}", seed=args.seed)
                print(f"| {name} | {variant} | {_types(o.node_types)} | {summary(o)} | {time.perf_counter() - t0:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
