"""flow.train.trainer: determinism, checkpoints readable with weights_only=True, resume, metrics."""
import json

import numpy as np
import pytest
import torch

from flow.train.data import load_dataset
from flow.core.errors import UserError
from flow.train.trainer import train
from flow.train.zoo import load_checkpoint


@pytest.fixture(scope="module")
def small():
    x, y = load_dataset("mnist-subset")
    keep = np.concatenate([np.flatnonzero(y == c)[:30] for c in range(10)])
    return x[keep], y[keep]


def _run(out, data, **kw):
    kw = {"epochs": 1, "batch_size": 50, "seed": 0, "progress": False, **kw}
    return train("tfc-w1a1", data=data, out_dir=out, **kw)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_and_files(tmp_path, small):
    m1 = _run(tmp_path / "a", small)
    _run(tmp_path / "b", small)
    c = _run(tmp_path / "c", small, seed=1)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    cc = torch.load(tmp_path / "c" / "last.pt", weights_only=True)
    assert _same(a["state_dict"], b["state_dict"])
    assert not _same(a["state_dict"], cc["state_dict"])
    assert set(a) >= {"model", "state_dict", "epoch", "optimizer", "metrics", "seed"}
    assert a["model"] == "tfc-w1a1" and a["epoch"] == 1 and a["seed"] == 0
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["history"][0].keys() >= {"epoch", "train_loss", "train_acc", "val_acc"}
    assert metrics["hparams"]["train_images"] == 270 and metrics["hparams"]["val_images"] == 30
    assert m1["best_epoch"] == 1 and "test_acc" not in m1
    assert c["seed"] == 1
    model, meta = load_checkpoint(tmp_path / "a" / "best.pt")
    assert meta["epoch"] == 1 and not model.training


def test_resume_equals_uninterrupted_run(tmp_path, small):
    full = _run(tmp_path / "full", small, epochs=2)
    _run(tmp_path / "split", small, epochs=1)
    resumed = _run(tmp_path / "split", small, epochs=2, resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert b["epoch"] == 2
    assert _same(a["state_dict"], b["state_dict"])
    assert [r["val_acc"] for r in full["history"]] == [r["val_acc"] for r in resumed["history"]]


def test_test_data_is_evaluated_on_best_checkpoint(tmp_path, small):
    x, y = small
    m = _run(tmp_path, small, test_data=(x[:40], y[:40]), max_images=200)
    model, _ = load_checkpoint(tmp_path / "best.pt")
    with torch.no_grad():
        pred = model(torch.from_numpy(x[:40].astype(np.float32) / 255)).argmax(1).numpy()
    assert m["test_acc"] == pytest.approx(float((pred == y[:40]).mean()))
    assert json.loads((tmp_path / "metrics.json").read_text())["test_acc"] == m["test_acc"]
    assert m["hparams"]["train_images"] + m["hparams"]["val_images"] == 200


def test_wrong_image_shape_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="takes"):
        train("tfc-w1a1", data="digits", out_dir=tmp_path, epochs=1, progress=False)


def test_fixed_point_and_conv_families_train_deterministically(tmp_path, small):
    x, y = small
    runs = [train("khot-mlp", data=(x[:100], y[:100]), out_dir=tmp_path / f"k{i}", epochs=1, batch_size=50,
                  progress=False) for i in range(2)]
    a = torch.load(tmp_path / "k0" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "k1" / "last.pt", weights_only=True)["state_dict"]
    assert _same(a, b) and runs[0]["history"] == [dict(r, seconds=r["seconds"]) for r in runs[0]["history"]]
    model, _ = load_checkpoint(tmp_path / "k0" / "best.pt")
    assert all(bool(m.initialized) for m in model.modules() if hasattr(m, "initialized"))
    rng = np.random.default_rng(0)
    cx = rng.integers(0, 256, (30, 3, 32, 32), dtype=np.uint8)
    cy = np.arange(30) % 10
    m = train("cnv-w1a1", data=(cx, cy), out_dir=tmp_path / "cnv", epochs=1, batch_size=10, progress=False)
    assert m["hparams"]["flip"] is True and m["hparams"]["shift"] == 4
    load_checkpoint(tmp_path / "cnv" / "best.pt")
