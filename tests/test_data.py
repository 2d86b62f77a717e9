"""flow.train.data: bundled datasets, the idx parser and the stratified split."""
import gzip

import numpy as np
import pytest

from flow.train.data import load_dataset, load_idx_dir, read_idx, train_val_split, write_idx
from flow.core.errors import UserError


def test_mnist_subset_shape_dtype_and_balance():
    x, y = load_dataset("mnist-subset")
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (5000,) and y.dtype == np.int64
    assert np.array_equal(np.bincount(y), [500] * 10)
    assert x.max() == 255 and x.min() == 0


def test_digits_is_small_uint8():
    x, y = load_dataset("digits")
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.uint8 and x.max() == 255
    assert y.dtype == np.int64


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_and_directory(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels)
    raw = (tmp_path / f"t10k-images-idx3-ubyte{suffix}").read_bytes()
    head = gzip.decompress(raw) if suffix else raw
    assert head[:4] == b"\x00\x00\x08\x03" and int.from_bytes(head[4:8], "big") == 7
    assert np.array_equal(read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}"), images)
    x, y = load_dataset(str(tmp_path), split="test")
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.uint8
    assert np.array_equal(x[:, 0], images) and np.array_equal(y, labels.astype(np.int64))
    # only t10k files present: split="train" falls back to them
    assert np.array_equal(load_idx_dir(tmp_path, "train")[1], y)


def test_idx_multibyte_dtypes(tmp_path):
    for dt in (np.int16, np.int32, np.float32, np.float64):
        a = np.arange(-6, 6).reshape(3, 4).astype(dt)
        write_idx(tmp_path / "a.idx", a)
        b = read_idx(tmp_path / "a.idx")
        assert b.shape == a.shape and np.array_equal(b, a)


def test_bad_directories_and_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="holds no pair"):
        load_dataset(str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(UserError, match="not an idx file"):
        load_dataset(str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(UserError, match="expected"):
        load_dataset(str(tmp_path))
    with pytest.raises(UserError, match="unknown data"):
        load_dataset("cifar100")


def test_full_mnist_without_torchvision_is_a_user_error():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="torchvision"):
            load_dataset("mnist")
    else:
        pytest.skip("torchvision is installed")


def test_held_out_test_set_reads_when_present():
    from pathlib import Path

    d = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-t10k"
    if not d.is_dir():
        pytest.skip("held-out MNIST test set not present")
    x, y = load_dataset(str(d), split="test")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)


def test_train_val_split_is_stratified_deterministic_and_disjoint():
    x, y = load_dataset("mnist-subset")
    a = train_val_split(x, y, 0.1, seed=0)
    b = train_val_split(x, y, 0.1, seed=0)
    c = train_val_split(x, y, 0.1, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[3], c[3]) or not np.array_equal(a[2], c[2])
    tx, ty, vx, vy = a
    assert len(ty) == 4500 and len(vy) == 500
    assert np.array_equal(np.bincount(vy), [50] * 10)
    flat_t = {bytes(i) for i in tx.reshape(len(tx), -1)}
    assert not any(bytes(i) in flat_t for i in vx.reshape(len(vx), -1)[:50])


# --- CIFAR-10 python batches -----------------------------------------------------------------

import pickle  # noqa: E402


def _write_cifar(tmp_path, n=20, seed=0, protocol=2):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        obj = {b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"a.png"] * n}
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    return data, labels


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_directory_loader(tmp_path, protocol):
    data, labels = _write_cifar(tmp_path, protocol=protocol)
    x, y = load_dataset(str(tmp_path), split="train")
    assert x.shape == (40, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x[:20].reshape(20, -1), data) and y[:20].tolist() == labels
    xt, yt = load_dataset(str(tmp_path), split="test")
    assert xt.shape == (20, 3, 32, 32)
    assert np.array_equal(xt[0, 1], data[0, 1024:2048].reshape(32, 32))  # channel-major rows


def test_cifar_loader_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(UserError, match="not a CIFAR-10 python batch .*not allowed"):
        load_dataset(str(tmp_path), split="test")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), object), b"labels": [0, 1]}))
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_dataset(str(tmp_path), split="test")


def test_cifar10_without_torchvision_is_one_sentence(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("torchvision"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(UserError, match="needs torchvision"):
        load_dataset("cifar10")


def test_verification_images_cover_every_class():
    """mnist-subset is stored sorted by class; the verify step takes every class in turn."""
    from flow.train.data import class_interleaved

    _, labels = load_dataset("mnist-subset")
    order = class_interleaved(labels)
    assert sorted(order.tolist()) == list(range(len(labels)))
    assert labels[order[:20]].tolist() == list(range(10)) * 2
