"""Deterministic training of zoo models with checkpoint selection on a validation split.

`train` writes to out_dir: ``last.pt`` (after every epoch; what ``resume=True`` continues
from), ``best.pt`` (highest validation accuracy, first such epoch on ties) and
``metrics.json``. Checkpoints hold only tensors and plain containers, so
``torch.load(..., weights_only=True)`` reads them (see flow.train.zoo.load_checkpoint).

Determinism: the model is initialised with `seed`; epoch e shuffles with a generator
seeded (seed, e) and seeds torch's global RNG (dropout) the same way, so a run resumed
after epoch k gives the same weights as an uninterrupted run. The learning rate follows a
cosine schedule computed from the epoch index (no scheduler state). The validation split
is stratified and fixed (seed 0) whatever `seed` is, so runs with different seeds select
on the same images. The held-out test set is evaluated once, at the end, on best.pt.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tqdm.auto import tqdm

from flow.train import zoo
from flow.train.data import load_dataset, train_val_split
from flow.core.errors import UserError
from flow.train.nn import clip_weights

VAL_SEED = 0


def _as_arrays(data, split: str):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return np.asarray(data[0], dtype=np.uint8), np.asarray(data[1], dtype=np.int64)
    return load_dataset(str(data), split=split)


def _subsample(images, labels, n: int, seed: int):
    """Deterministic class-balanced subset of about n images (round-robin over classes)."""
    if n >= len(labels):
        return images, labels
    rng = np.random.default_rng(seed)
    per_class = [np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))]
                 for c in np.unique(labels)]
    order = [idx[i] for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
    keep = np.sort(np.asarray(order[:n]))
    return images[keep], labels[keep]


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0)


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of `model` (eval mode) on uint8 images."""
    if len(labels) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        out = model(_to_tensor(images[i:i + batch_size]))
        correct += int((out.argmax(1).numpy() == labels[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / len(labels)


@contextmanager
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _shift(batch: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image (B, C, H, W) by a random integer offset in [-max_shift, max_shift]
    per axis, filling with zeros (background)."""
    if max_shift <= 0:
        return batch
    b, c, h, w = batch.shape
    s = max_shift
    padded = torch.nn.functional.pad(batch, (s, s, s, s))
    oy = torch.randint(0, 2 * s + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * s + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None].expand(b, c, h, w)
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :].expand(b, c, h, w)
    n = torch.arange(b)[:, None, None, None].expand(b, c, h, w)
    ch = torch.arange(c)[None, :, None, None].expand(b, c, h, w)
    return padded[n, ch, rows, cols]


def _flip(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image horizontally with probability 1/2."""
    mask = torch.rand(batch.shape[0], generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], batch.flip(-1), batch)


def _cosine_lr(lr: float, epoch: int, epochs: int) -> float:
    return 0.5 * lr * (1.0 + math.cos(math.pi * epoch / epochs))


@dataclass(frozen=True)
class Schedule:
    """The hyper-parameters of one training run (the zoo entry's defaults where not given)."""

    name: str
    seed: int
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    shift: int
    flip: bool

    @classmethod
    def of(cls, name: str, entry: dict, seed, epochs, lr, batch_size) -> Schedule:
        d = entry["defaults"]
        run = cls(name, seed, int(d["epochs"] if epochs is None else epochs), float(d["lr"] if lr is None else lr),
                  int(d["batch_size"] if batch_size is None else batch_size), float(d.get("weight_decay", 0.0)),
                  int(d.get("shift", 0)), bool(d.get("flip", False)))
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 32:
            raise UserError(f"the seed must be an integer from 0 to {(1 << 32) - 1}, got {seed!r}.")
        if run.epochs < 1 or run.batch_size < 1 or not run.lr > 0 or not math.isfinite(run.lr):
            raise UserError("epochs and batch size must be at least 1 and the learning rate positive.")
        return run


def _source(model_name_or_checkpoint: str) -> tuple[str, dict | None]:
    """(zoo model name, initial state dict or None) of a zoo name or a checkpoint."""
    source = str(model_name_or_checkpoint)
    if source.endswith(".pt") or Path(source).is_file():
        _, meta = zoo.load_checkpoint(source)
        return meta["model"], zoo.read_checkpoint(source)["state_dict"]
    return source, None


def _out_dir(out_dir, name: str) -> Path:
    out = Path(out_dir) if out_dir is not None else Path("runs") / name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory for checkpoints.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _training_data(data, entry: dict, name: str, max_images: int | None, val_fraction: float):
    """(train images, train labels, validation images, validation labels), checked against the model."""
    images, labels = _as_arrays(data, "train")
    if tuple(images.shape[1:]) != tuple(entry["input_shape"]):
        raise UserError(f"data images are shaped {tuple(images.shape[1:])}; model '{name}' "
                        f"takes {tuple(entry['input_shape'])}.")
    if len(labels) != len(images) or len(labels) < 2:
        raise UserError(f"training data holds {len(images)} images and {len(labels)} labels; at least 2 of each, "
                        "as many labels as images, are needed.")
    if labels.min() < 0 or labels.max() >= int(entry["num_classes"]):
        raise UserError(f"training labels range over {labels.min()}..{labels.max()}; model '{name}' has "
                        f"classes 0..{int(entry['num_classes']) - 1}.")
    if max_images is not None:
        images, labels = _subsample(images, labels, int(max_images), VAL_SEED)
    return train_val_split(images, labels, val_fraction, seed=VAL_SEED)


def _train_epoch(model: nn.Module, optimizer, run: Schedule, epoch: int, x_all, y_all, progress: bool):
    """One epoch over the shuffled training set; return (lr, mean loss, accuracy, progress bar)."""
    lr_e = _cosine_lr(run.lr, epoch, run.epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr_e
    gen = torch.Generator().manual_seed(run.seed * 100003 + epoch)
    torch.manual_seed(run.seed * 100003 + epoch)
    order = torch.randperm(len(y_all), generator=gen)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    bar = _bar(range(0, len(order), run.batch_size), f"{run.name} epoch {epoch + 1}/{run.epochs}", progress)
    for i in bar:
        idx = order[i:i + run.batch_size]
        xb, yb = _shift(x_all[idx], run.shift, gen), y_all[idx]
        if run.flip:
            xb = _flip(xb, gen)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clip_weights(model)
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(idx)
        if progress:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
    return lr_e, total_loss / seen, correct / seen, bar


def train(model_name_or_checkpoint: str, epochs: int | None = None, data="mnist-subset",
          out_dir=None, seed: int = 0, test_data=None, lr: float | None = None,
          batch_size: int | None = None, progress: bool = True, resume: bool = False,
          val_fraction: float = 0.1, max_images: int | None = None) -> dict:
    """Train a zoo model (or continue from a checkpoint's weights); return the metrics dict.

    data / test_data: a spec for flow.train.data.load_dataset or an (images, labels) pair;
    max_images: use a class-balanced subset of that many training images (quick runs).
    """
    name, init_state = _source(model_name_or_checkpoint)
    entry = zoo.model_entry(name)
    run = Schedule.of(name, entry, seed, epochs, lr, batch_size)
    out = _out_dir(out_dir, name)
    model = zoo.build_model(name, seed=seed)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimizer = torch.optim.Adam(model.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    history: list[dict] = []
    best = {"epoch": None, "val_acc": -1.0}
    start = 0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.is_file():  # checked before the data are read
        start, history, best = _resume(last_path, name, model, optimizer, best)
    tr_x, tr_y, va_x, va_y = _training_data(data, entry, name, max_images, val_fraction)
    x_all, y_all = _to_tensor(tr_x), torch.from_numpy(tr_y)
    hparams = {"epochs": run.epochs, "lr": run.lr, "batch_size": run.batch_size, "weight_decay": run.weight_decay,
               "shift": run.shift, "flip": run.flip, "val_fraction": val_fraction, "max_images": max_images,
               "data": data if isinstance(data, str) else "arrays", "init": str(model_name_or_checkpoint),
               "train_images": int(len(tr_y)), "val_images": int(len(va_y))}
    t_start = time.perf_counter()
    with _deterministic():
        for epoch in range(start, run.epochs):
            t0 = time.perf_counter()
            lr_e, loss, acc, bar = _train_epoch(model, optimizer, run, epoch, x_all, y_all, progress)
            val_acc = evaluate(model, va_x, va_y)
            history.append({"epoch": epoch + 1, "lr": lr_e, "train_loss": loss, "train_acc": acc, "val_acc": val_acc,
                            "seconds": time.perf_counter() - t0})
            if progress:
                bar.write(f"epoch {epoch + 1}: train loss {loss:.4f} acc {acc:.4f}, val acc {val_acc:.4f}")
            best = _save_epoch(model, optimizer, run, epoch, history, best, hparams, out)
    wall = time.perf_counter() - t_start
    test_acc = None
    if test_data is not None:
        best_model, _ = zoo.load_checkpoint(best_path)
        te_x, te_y = _as_arrays(test_data, "test")
        test_acc = evaluate(best_model, te_x, te_y)
    metrics = _metrics(name, seed, hparams, history, best, test_acc)
    metrics["wall_seconds"] = wall
    _write_json(metrics, out / "metrics.json")
    return metrics


def _save_epoch(model: nn.Module, optimizer, run: Schedule, epoch: int, history: list, best: dict, hparams: dict,
                out: Path) -> dict:
    """last.pt (and best.pt when the validation accuracy improved) and metrics.json; return the best entry."""
    val_acc = history[-1]["val_acc"]
    improved = val_acc > best["val_acc"] or best["epoch"] is None
    if improved:
        best = {"epoch": epoch + 1, "val_acc": val_acc}
    ckpt = {"model": run.name, "state_dict": model.state_dict(), "epoch": epoch + 1,
            "optimizer": optimizer.state_dict(), "seed": run.seed,
            "metrics": {"history": history, "best": best, "val_acc": val_acc},
            "hparams": hparams}
    _save(ckpt, out / "last.pt")
    if improved:
        _save(ckpt, out / "best.pt")
    _write_json(_metrics(run.name, run.seed, hparams, history, best, None), out / "metrics.json")
    return best


def _resume(path: Path, name: str, model: nn.Module, optimizer, best: dict) -> tuple[int, list, dict]:
    """Load last.pt into the model and optimizer; return (epochs done, history, best)."""
    ckpt = zoo.read_checkpoint(path, need=("model", "state_dict", "optimizer", "epoch", "metrics"))
    if ckpt["model"] != name:
        raise UserError(f"cannot resume: {path} holds model '{ckpt['model']}', not '{name}'.")
    metrics, epoch = ckpt["metrics"], ckpt["epoch"]
    if type(epoch) is not int or epoch < 0 or not isinstance(metrics, dict) or not isinstance(ckpt["optimizer"], dict):
        raise UserError(f"cannot resume: {path} has a malformed epoch, optimizer state or metrics entry.")
    history, best = metrics.get("history", []), metrics.get("best", best)
    if not isinstance(history, list) or not isinstance(best, dict) or not {"epoch", "val_acc"} <= set(best):
        raise UserError(f"cannot resume: the metrics in {path} lack a history list or a best entry.")
    zoo.load_state(model, ckpt["state_dict"], path, name)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError):
        raise UserError(f"cannot resume: the optimizer state in {path} does not match model '{name}'.") from None
    return epoch, list(history), dict(best)


def _metrics(name, seed, hparams, history, best, test_acc) -> dict:
    m = {"model": name, "seed": seed, "hparams": hparams, "history": history,
         "best_epoch": best["epoch"], "best_val_acc": best["val_acc"]}
    if test_acc is not None:
        m["test_acc"] = test_acc
    return m


def _bar(iterable, desc: str, enabled: bool):
    if not enabled:
        return iterable
    return tqdm(iterable, desc=desc, leave=False, unit="batch")


def _train_into_cache(name: str, final: Path, progress: bool) -> None:
    """Train `name` in a private sibling folder and move it to `final` when finished: a concurrent
    reader (another test worker, another build) sees the finished checkpoint or none, never the
    best.pt of an early epoch."""
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        train(name, out_dir=work, seed=0, progress=progress)
        try:
            os.replace(work, final)
        except OSError:  # another process finished first (final exists and is not empty): keep its copy
            if not (final / "best.pt").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pretrained_model(name: str, train_if_missing: bool = True, progress: bool = False) -> nn.Module:
    """Zoo model `name` trained with its defaults (seed 0, mnist-subset), in eval mode.

    The checkpoint is cached under zoo.cache_dir()/zoo/<name>/best.pt; when it is missing it is
    trained once (tfc-w1a1: well under a minute on two cores), unless train_if_missing is false.
    """
    best = zoo.pretrained_checkpoint(name)
    if not best.is_file():
        if not train_if_missing:
            raise UserError(f"no trained checkpoint for '{name}' in {best.parent}; run 'bnnflow train {name}'.")
        _train_into_cache(name, best.parent, progress)
    model, _ = zoo.load_checkpoint(best)
    return model
