"""Hardware ops. Each module in this package owns one op: attributes, stream types,
exact numpy execution, cycle model, resource model and the parameters of its RTL engine.
Ops register themselves with `@register`; importing this package loads every op module.
"""
from __future__ import annotations

import importlib
import pkgutil

from flow.ops.base import REGISTRY, HWOp, register

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("base", "semantics"):
        importlib.import_module(f"{__name__}.{_mod.name}")


def make_op(node, graph) -> HWOp:
    try:
        cls = REGISTRY[node.op_type]
    except KeyError:
        raise ValueError(f"node {node.name!r} has op type {node.op_type!r}, which is not a registered hardware op") from None
    return cls(node, graph)


__all__ = ["REGISTRY", "HWOp", "register", "make_op"]
