"""The op contract (flow.ops.base): every registered op declares its attribute schema, RTL
engine, HLS function and FINN name consistently, and no central per-op table reappears in
the layers that read the contract (folding, code generation, simulation, the testbenches)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from onnx import helper

from flow.ir.registry import engines, registry
from flow.ops.base import REQUIRED, Attr

REPO = Path(__file__).resolve().parent.parent
OPS = sorted(registry())

# Sources that read the contract: a string literal naming an op type or an engine module
# there is a per-op table or special case in the making.
SCANNED = [*sorted((REPO / "flow" / "passes").glob("*.py")), *sorted((REPO / "flow" / "codegen").glob("*.py")),
           *sorted((REPO / "flow" / "sim").glob("*.py")), *sorted((REPO / "sim").glob("*.py"))]
# The lowering rules emit ops by their type (one of the few files a new op touches); ONNX's
# own operator names ("MaxPool") coincide with some op types there.
LOWERING_RULES = {REPO / "flow" / "passes" / f for f in ("streamline.py", "lower_layer.py", "lower_output.py",
                                                          "lower_pool.py", "lower_concat.py")}


@pytest.mark.parametrize("op_type", OPS)
def test_schema_is_typed(op_type):
    cls = registry()[op_type]
    assert cls.attrs, f"{op_type} declares no attributes"
    names = [a.name for a in cls.attrs]
    assert len(names) == len(set(names)), f"{op_type}: attributes declared twice in {names}"
    for a in cls.attrs:
        assert isinstance(a, Attr) and a.type in (int, float, str, list), f"{op_type}.{a.name}: type {a.type}"
        if a.default is not REQUIRED and a.default is not None:
            assert type(a.default) is a.type, f"{op_type}.{a.name}: default {a.default!r} is not {a.type.__name__}"
        if a.like is not None:
            assert a.like in names[:names.index(a.name)] and a.default is REQUIRED, \
                f"{op_type}.{a.name}: like={a.like!r} must name an earlier attribute, without a default of its own"
    for key in (cls.lanes, cls.channels, *cls.folding_attrs, cls.fifo_depth_attr):
        assert key is None or key in names, f"{op_type}: {key!r} is not a declared attribute"
    if cls.folding_attrs:
        assert cls.lanes in cls.folding_attrs and cls.channels, f"{op_type}: folding without lanes/channels"


@pytest.mark.parametrize("op_type", OPS)
def test_engine_hls_and_finn_name(op_type):
    cls = registry()[op_type]
    for src in cls.engine.sources:
        assert (REPO / "rtl" / src).is_file(), f"{op_type}: rtl/{src} is missing"
    module_text = (REPO / "rtl" / cls.engine.sources[-1]).read_text()
    assert re.search(rf"^\s*module\s+{cls.engine.module}\b", module_text, re.M), \
        f"{op_type}: rtl/{cls.engine.sources[-1]} does not define module {cls.engine.module}"
    for port in (*cls.engine.inputs, *cls.engine.outputs):
        assert f"{port}_tdata" in module_text, f"{op_type}: {cls.engine.module} has no port {port}"
    header = REPO / "hls_templates" / cls.hls.header
    assert header.is_file(), f"{op_type}: hls_templates/{cls.hls.header} is missing"
    assert re.search(rf"^void\s+{cls.hls.function}\s*\(", header.read_text(), re.M), \
        f"{op_type}: {cls.hls.header} does not define {cls.hls.function}"
    if cls.finn_op is not None:
        assert re.fullmatch(r"[A-Za-z]+(_hls|_rtl)", cls.finn_op), f"{op_type}: finn_op {cls.finn_op!r}"
    else:  # left out of FINN-named folding files: no FINN counterpart, or FINN's plumbing
        assert not cls.finn_aliases


def test_attr_reads_only_declared_names():
    cls = registry()["Thresholding"]
    with pytest.raises(ValueError, match="unknown attribute"):
        cls.make_attrs({"NumChannels": 4, "InputBits": 8, "Channels": 4})
    attrs = cls.make_attrs({"NumChannels": 4, "InputBits": 8})
    assert attrs["PE"] == 1 and attrs["InputSigned"] == 0


def test_attr_like_takes_the_named_value_when_absent():
    cls = registry()["SlidingWindow"]
    base = {"IFM_H": 5, "IFM_W": 6, "C": 2, "K": 3, "Stride": 2, "Pad": 1, "ElemBits": 2}
    attrs = cls.make_attrs(base)
    assert (attrs["KW"], attrs["StrideW"], attrs["PadLeft"], attrs["PadRight"], attrs["DilationW"]) == (3, 2, 1, 1, 1)
    node = helper.make_node("SlidingWindow", ["x"], ["y"], name="sw", **{**base, "KW": 1, "PadRight": 0})
    op = cls(node, None)
    assert op.window() == ((3, 1), (2, 2), (1, 1, 1, 0), (1, 1)) and not op.square()
    assert op.window_params() == {"K_W": 1, "STRIDE_W": 2, "PAD_LEFT": 1, "PAD_BOTTOM": 1, "PAD_RIGHT": 0,
                                  "DIL_H": 1, "DIL_W": 1}
    square = cls(helper.make_node("SlidingWindow", ["x"], ["y"], name="sq", **base), None)
    assert square.square() and square.window_params() == {}


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_central_per_op_table():
    names = set(registry()) | set(engines())
    found = [f"{p.relative_to(REPO)}:{line}: {value!r}" for p in SCANNED if p not in LOWERING_RULES
             for line, value in _literals(p) if value in names]
    assert not found, "op types or engine names spelled out where the op contract should be read:\n" + "\n".join(found)


def test_the_scan_sees_a_table(tmp_path):
    """The scan finds the kind of table it forbids (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text('SOURCES = {"bnn_mvu": ("a.sv",)}\nKINDS = ("IntMVU",)\n')
    names = set(registry()) | set(engines())
    assert [v for _, v in _literals(bad) if v in names] == ["bnn_mvu", "IntMVU"]
