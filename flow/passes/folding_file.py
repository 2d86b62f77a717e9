"""Reading and checking a folding file (`--folding`): bnnflow's node names or FINN's key
names, each an object of folding attributes. Whatever the flow would ignore or misread is
refused with one sentence: an unknown key (the message lists the nodes), an unknown or
misplaced attribute (it lists the accepted ones), a PE/SIMD that is not a plain integer
(bool and 2.0 included), an unknown `ram_style`, a file too large or nested too deeply."""
from __future__ import annotations

import json
import re
from pathlib import Path

from flow.core.errors import UserError

MAX_FILE_BYTES = 16 << 20
MAX_LANES = (1 << 31) - 1
RAM_STYLES = ("auto", "block", "distributed", "ultra")  # flow.codegen.hlsgen.RAM_IMPL, Vivado's ram_style values
FIFO_KEYS = ("inFIFODepths", "outFIFODepths")
# attributes FINN writes into its folding files that have no meaning here: accepted, ignored
FINN_ONLY_ATTRS = ("parallel_window", "depth", "impl_style", "resType", "mem_mode", "runtime_writeable_weights",
                   "depth_trigger_uram", "depth_trigger_bram", "ram_style_thresholds", "ram_style_mask",
                   "preferred_impl_style")
# FINN ops that a bnnflow design has no counterpart of (it inserts its own FIFOs and width converters)
FINN_PLUMBING = re.compile(r"^(StreamingFIFO|StreamingDataWidthConverter|StreamingDataWidthConverter_Batch|"
                           r"FMPadding|FMPadding_Batch|TLastMarker|IODMA)(_hls|_rtl)?_\d+$")
MVU_TYPES = ("BinaryMVU", "IntMVU")


def read_folding_file(path: Path) -> dict:
    """The JSON object of a folding file, bounded in size and depth."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UserError(f"folding file {path} holds {size} bytes, more than the {MAX_FILE_BYTES} allowed")
        spec = json.loads(path.read_text())
    except RecursionError:
        raise UserError(f"folding file {path} is nested too deeply to be a folding file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"folding file {path} could not be read as JSON ({type(exc).__name__})") from None
    if not isinstance(spec, dict):
        raise UserError(f"folding file {path} must hold a JSON object of node name -> {{PE, SIMD}}")
    return spec


def _names(ops) -> str:
    names = [o.name for o in ops]
    return ", ".join(names[:40]) + (f" and {len(names) - 40} more" if len(names) > 40 else "")


def resolve_keys(spec: dict, ops, finn_kinds: dict, path) -> list[tuple[str, object, dict]]:
    """(key, op, entry) for every key of the file that names an op of this design; FINN's
    plumbing ops are skipped, "Defaults" checked, anything else refused."""
    by_name = {o.name: o for o in ops}
    by_kind = {k: [o for o in ops if o.op_type in k] for k in finn_kinds}
    found, seen = [], {}
    for key, val in spec.items():
        if key == "Defaults":
            _check_defaults(val, path)
            continue
        if FINN_PLUMBING.match(key):
            continue
        op = by_name.get(key) or _finn_op(key, finn_kinds, by_kind, path)
        if op is None:
            raise UserError(f"folding file {path}: {key!r} is not a node of this design; its nodes are "
                            f"{_names(ops)} (or FINN's names, e.g. MVAU_hls_0)")
        if not isinstance(val, dict):
            raise UserError(f"folding file {path}: {key} must be an object of folding attributes, got {val!r}")
        if op.name in seen:
            raise UserError(f"folding file {path}: {key} and {seen[op.name]} both name {op.name}")
        seen[op.name] = key
        found.append((key, op, val))
    return found


def _finn_op(key: str, finn_kinds: dict, by_kind: dict, path):
    for kind, pat in finn_kinds.items():
        m = pat.match(key)
        if m:
            have = by_kind[kind]
            if int(m.group(3)) >= len(have):
                raise UserError(f"folding file {path}: {key} names op {int(m.group(3))} of its kind, but this design "
                                f"has {len(have)} ({_names(have) or 'none'})")
            return have[int(m.group(3))]
    return None


def _check_defaults(val, path) -> None:
    if not isinstance(val, dict):
        raise UserError(f"folding file {path}: Defaults must be an object, got {val!r}")
    bad = [k for k in val if k not in FINN_ONLY_ATTRS]
    if bad:
        raise UserError(f"folding file {path}: Defaults.{bad[0]} is not supported; give folding attributes per node "
                        f"(Defaults may hold only FINN's {', '.join(FINN_ONLY_ATTRS)})")


def accepted_attrs(op) -> tuple[str, ...]:
    return (*op.folding_attrs, "ram_style", *FIFO_KEYS, *FINN_ONLY_ATTRS)


def _accepted_text(op) -> str:
    return f"{', '.join((*op.folding_attrs, 'ram_style', *FIFO_KEYS))} (and FINN's {', '.join(FINN_ONLY_ATTRS)}, ignored)"


def check_entry(key: str, op, entry: dict, path) -> dict:
    """The attributes of one entry that set something here ({PE, SIMD, ram_style}), checked;
    FIFO depths are checked by the caller that applies them."""
    out = {}
    for attr, value in entry.items():
        if attr not in accepted_attrs(op):
            raise UserError(f"folding file {path}: {key} ({op.op_type}) has no attribute {attr!r}; accepted: "
                            f"{_accepted_text(op)}")
        if attr == "ram_style":
            if not isinstance(value, str) or value not in RAM_STYLES:
                raise UserError(f"folding file {path}: {key}.ram_style must be one of {', '.join(RAM_STYLES)}, "
                                f"got {value!r}")
            if op.op_type in MVU_TYPES + ("VVU",):
                out[attr] = value
        elif attr in op.folding_attrs:
            if type(value) is not int or not 1 <= value <= MAX_LANES:
                raise UserError(f"folding file {path}: {key}.{attr} must be a positive integer (at most {MAX_LANES}), "
                                f"got {value!r}")
            out[attr] = value
    return out


def check_depths(key: str, depths, path) -> list[int]:
    if not isinstance(depths, list) or not all(type(d) is int and 1 <= d <= MAX_LANES for d in depths):
        raise UserError(f"folding file {path}: {key} must be a list of positive integers, got {depths!r}")
    return depths
