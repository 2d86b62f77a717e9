"""SPEC.toml of `bnnflow sweep`: the points of a design-space sweep.

Every top-level key is a build option (model, target_cycles, folding, board, synth, ...)
holding one value or a list; the lists are the axes of a grid, and the points are every
combination of them. `[[point]]` tables add a list: each is crossed with the grid, so a
spec may be a grid, a list, or both. A key is either at the top level or in the points,
never both. Relative paths are relative to the spec's folder. Every value is checked before
anything is built; bad input is refused in one sentence.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flow.boards.catalog import load_board
from flow.core.errors import UserError
from flow.core.intype import parse as parse_input_type
from flow.sim.verify import MAX_IMAGES

SYNTH_TARGETS = ("xcup", "xc7", "ecp5")
GOALS = ("target_fps", "target_cycles", "folding", "lut_budget")
DATASETS = ("mnist-subset", "digits", "mnist", "cifar10")
MAX_POINTS = 10_000
MAX_CLOCK_MHZ = 10_000.0

# key -> what its values are (the checks below, and the words of a refusal)
KEYS = {
    "model": "a zoo name, a checkpoint (.pt) or a QONNX file (.onnx)",
    "target_fps": "a positive number of frames/s",
    "target_cycles": "a positive integer number of cycles per frame",
    "folding": "a folding file (JSON)",
    "lut_budget": "a positive integer number of LUTs",
    "board": "a board name (see `bnnflow boards`) or \"none\"",
    "clock_mhz": f"a clock in MHz, above 0 and at most {MAX_CLOCK_MHZ:g}",
    "synth": "a yosys target (xcup, xc7, ecp5) or \"none\"",
    "input_scale": "a positive number",
    "input_type": "an input type (uint8, int8, bipolar, binary, fixed<W,I>)",
    "verify_images": f"an integer number of images from 1 to {MAX_IMAGES}",
    "test_data": "a dataset name or an idx folder of labelled images",
    "unverified": "true or false",
}


@dataclass(frozen=True)
class Point:
    name: str        # the point's folder under SWEEP/points/
    params: dict     # the build options of this point (checked, paths absolute)


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    points: tuple[Point, ...]


def _number(v, limit: float = math.inf) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= limit


def _count(v, limit: int = 1 << 62) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limit


def _path(v: str, base: Path) -> Path:
    p = Path(v).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _model(v: str, base: Path):
    if v.endswith((".onnx", ".pt")) or "/" in v or (base / v).is_file():
        p = _path(v, base)
        return str(p) if p.is_file() else f"the file {p} does not exist"
    return v


def _check_text(key: str, v, base: Path):
    """A text value checked and normalised (paths resolved), or a str starting with 'the '
    that says why not."""
    if key == "model":
        return _model(v, base)
    if key == "folding":
        p = _path(v, base)
        return str(p) if p.is_file() else f"the file {p} does not exist"
    if key == "test_data":
        if v in DATASETS:
            return v
        p = _path(v, base)
        return str(p) if p.is_dir() else f"the folder {p} does not exist"
    if key == "board":
        return None if v.lower() == "none" else load_board(v).name  # an unknown board is refused there
    if key == "synth":
        return None if v.lower() == "none" else (v if v in SYNTH_TARGETS else "the target is unknown")
    try:
        parse_input_type(v)
    except ValueError as exc:
        return f"the type is not one: {str(exc).rstrip('.')}"
    return v


_NUMBERS = {"target_fps": math.inf, "input_scale": math.inf, "clock_mhz": MAX_CLOCK_MHZ}
_COUNTS = {"target_cycles": 1 << 62, "lut_budget": 1 << 62, "verify_images": MAX_IMAGES}


def check_value(key: str, v, base: Path, where: str):
    """The value of `key`, checked (UserError naming `where` when it is not one)."""
    if key not in KEYS:
        raise UserError(f"{where}: unknown key {key!r}; the keys are {', '.join(KEYS)}, and [[point]] tables")
    bad = UserError(f"{where}: {key} must be {KEYS[key]}, got {v!r}")
    if key in _NUMBERS:
        if not _number(v, _NUMBERS[key]):
            raise bad
        return float(v)
    if key in _COUNTS:
        if not _count(v, _COUNTS[key]):
            raise bad
        return v
    if key == "unverified":
        if not isinstance(v, bool):
            raise bad
        return v
    if not isinstance(v, str) or not v.strip():
        raise bad
    got = _check_text(key, v.strip(), base)
    if isinstance(got, str) and got.startswith("the "):
        raise UserError(f"{where}: {key} {v!r}: {got}")
    return got


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"sweep spec {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"sweep spec {path} could not be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"sweep spec {path} is not valid TOML ({str(exc).rstrip('.')})") from None


def _axes(doc: dict, base: Path, where: str) -> list[tuple[str, list]]:
    """(key, values) of the top-level keys; a single value is an axis of one."""
    axes = []
    for key, v in doc.items():
        values = v if isinstance(v, list) else [v]
        if not values:
            raise UserError(f"{where}: {key} is an empty list; give at least one value")
        axes.append((key, [check_value(key, x, base, where) for x in values]))
    return axes


def _point_tables(tables, base: Path, where: str, top: set[str]) -> list[dict]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables) or not tables:
        raise UserError(f"{where}: point must be a list of [[point]] tables")
    out = []
    for i, t in enumerate(tables, start=1):
        at = f"{where}, point {i}"
        for key, v in t.items():
            if key in top:
                raise UserError(f"{at}: {key} is also given at the top level; give it in one place")
            if isinstance(v, list | dict):
                raise UserError(f"{at}: {key} must be one value, not a list or table")
        out.append({k: check_value(k, v, base, at) for k, v in t.items()})
    return out


FILE_KEYS = ("model", "folding")  # parameters that may name a file whose bytes are part of the point


def point_name(params: dict) -> str:
    """The point's folder: the model's name and a hash of every parameter and of the files
    they name (stable across runs; a model or folding file that changed is a new point)."""
    files = {k: hashlib.sha256(Path(params[k]).read_bytes()).hexdigest() for k in FILE_KEYS
             if k in params and Path(params[k]).is_absolute() and Path(params[k]).is_file()}
    text = json.dumps([params, files], sort_keys=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(params["model"])).stem)[:40].strip("._") or "model"
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _check_point(params: dict, where: str) -> None:
    if "model" not in params:
        raise UserError(f"{where}: no model; give model = \"...\" at the top level or in every [[point]]")
    goals = [k for k in GOALS if k in params]
    if len(goals) > 1:
        raise UserError(f"{where}: a point has more than one folding goal ({' and '.join(goals)}); give one of "
                        f"{', '.join(GOALS)} per point")
    if "input_scale" in params and "input_type" in params:
        raise UserError(f"{where}: input_scale is for the default uint8 pixel input; a point with input_type "
                        "takes the input's own values")


def load_spec(path) -> SweepSpec:
    """The checked points of a sweep spec."""
    path = Path(path)
    doc, where, base = _read(path), f"sweep spec {path}", path.resolve().parent
    tables = doc.pop("point", None)
    axes = _axes(doc, base, where)
    listed = _point_tables(tables, base, where, set(doc)) if tables is not None else [{}]
    size = math.prod(len(v) for _k, v in axes) * len(listed)
    if size > MAX_POINTS:
        raise UserError(f"{where}: {size} points is more than {MAX_POINTS}; sweep a smaller grid")
    points, seen = [], {}
    for combo in itertools.product(*(v for _k, v in axes)):
        for extra in listed:
            params = {k: v for (k, _vals), v in zip(axes, combo)} | extra
            params = {k: v for k, v in params.items() if v is not None}  # "none": the build's default
            _check_point(params, where)
            name = point_name(params)
            if name in seen:
                raise UserError(f"{where}: points {seen[name] + 1} and {len(points) + 1} are the same build "
                                f"({json.dumps(params, sort_keys=True)})")
            seen[name] = len(points)
            points.append(Point(name, params))
    return SweepSpec(path, tuple(points))
