"""Hardware ops. Each module in this package owns one op (or a few closely related ones):
its typed attribute schema, stream types, exact numpy execution, cycle and resource models,
its RTL engine (module, sources, ports, parameters, memory packing, testbench cases) and its
HLS stream function with a named config struct. Ops register themselves with `@register`;
importing this package loads every op module (a folder scan, as qonnx's registry).
"""
from __future__ import annotations

import importlib
import pkgutil

from flow.ir.registry import REGISTRY, engines, make_op, register
from flow.ops.base import Attr, Engine, EngineCase, HlsFunction, HWOp

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("base", "semantics", "bitpack"):
        importlib.import_module(f"{__name__}.{_mod.name}")


__all__ = ["REGISTRY", "HWOp", "Attr", "Engine", "EngineCase", "HlsFunction", "register", "make_op", "engines"]
