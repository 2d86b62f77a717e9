"""The op registry: op type -> op class, filled by the op modules of `flow.ops` as they load.

As qonnx's custom-op registry, a lookup loads the op package by name the first time it is
needed, so the graph layer never imports the ops (which import it)."""
from __future__ import annotations

import importlib

REGISTRY: dict[str, type] = {}
OPS_PACKAGE = "flow.ops"  # loaded on first lookup; its modules register their classes


def register(cls: type) -> type:
    """Class decorator: make an op known to the compiler, executor and code generators."""
    if cls.op_type in REGISTRY and REGISTRY[cls.op_type] is not cls:
        raise ValueError(f"op type {cls.op_type!r} is registered twice")
    REGISTRY[cls.op_type] = cls
    return cls


def registry() -> dict[str, type]:
    """Every registered op class, by op type (loads the op package)."""
    importlib.import_module(OPS_PACKAGE)
    return REGISTRY


def make_op(node, graph):
    """The op object of an ONNX node of the dataflow graph."""
    try:
        cls = registry()[node.op_type]
    except KeyError:
        raise ValueError(f"node {node.name!r} has op type {node.op_type!r}, which is not a registered hardware op") from None
    return cls(node, graph)


def engines() -> dict[str, type]:
    """RTL engine module name -> the op class that owns it (each engine has one owner)."""
    out: dict[str, type] = {}
    for cls in registry().values():
        eng = getattr(cls, "engine", None)
        if eng is not None and eng.module not in out:
            out[eng.module] = cls
    return out
