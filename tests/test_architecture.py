"""The package's architecture: layers, no import cycles, module and function size limits.

Every module under flow/ is parsed with ast; imports at module level and inside functions both count.
"""
from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "flow"

# Lower layers never import higher ones; flow.cli is the top. Modules directly in flow/ (other than cli)
# belong to the bottom layer.
LAYERS = ["core", "ir", "ops", "train", "frontend", "passes", "codegen", "sim", "boards", "deploy", "pipeline",
          "fuzz", "cli"]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(FLOW.rglob("*.py"))}


MODULES = _modules()


def _resolve(mod: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _target(name: str) -> str | None:
    """The flow module an imported name refers to (the longest known prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str) -> dict[str, int]:
    """flow modules imported by `mod` (anywhere in the file) -> first line number."""
    path = MODULES[mod]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, path, node)
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for name in names:
            target = _target(name)
            if target and target != mod:
                found.setdefault(target, node.lineno)
    return found


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, dict[str, int]]:
    return {m: imports_of(m) for m in MODULES}


def layer_of(mod: str) -> int:
    parts = mod.split(".")
    if len(parts) < 2:
        return 0                       # the package itself
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return 0


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among flow modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_lower_layers_never_import_higher_ones():
    bad = []
    for mod, targets in _graph().items():
        for target, line in targets.items():
            if layer_of(target) > layer_of(mod):
                bad.append(f"{MODULES[mod].relative_to(ROOT)}:{line}: {mod} ({LAYERS[layer_of(mod)]}) imports "
                           f"{target} ({LAYERS[layer_of(target)]})")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_modules_are_at_most_500_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, "modules over 500 lines:\n" + "\n".join(long)


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} is {n} lines")
    return out


def test_functions_are_at_most_60_lines():
    long = [msg for p in MODULES.values() for msg in long_functions(p)]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def _loaded(code: str, cwd: Path = ROOT) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_deferred_imports_keep_torch_out_of_the_cli_and_the_pipeline():
    """The imports deferred on purpose (see their comments) are the ones that keep torch and
    brevitas out of every command but models, train and export."""
    code = ("import sys, flow.cli, flow.pipeline.build, flow.sim.verify, flow.deploy.bundle; "
            "print(sorted(m for m in ('torch', 'brevitas', 'onnxruntime', 'sklearn') if m in sys.modules))")
    assert _loaded(code) == "[]"


def test_the_stand_alone_driver_imports_nothing_of_bnnflow(tmp_path):
    shutil.copyfile(FLOW / "deploy" / "driver.py", tmp_path / "driver.py")
    code = "import sys, driver; print(sorted(m for m in sys.modules if m == 'flow' or m.startswith(('flow.', 'torch'))))"
    assert _loaded(code, cwd=tmp_path) == "[]"


# The checks themselves must be able to fail.

def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_imports_inside_functions_count(tmp_path, monkeypatch):
    pkg = tmp_path / "flow"
    (pkg / "core").mkdir(parents=True)
    (pkg / "sim").mkdir()
    for p in (pkg / "__init__.py", pkg / "core" / "__init__.py", pkg / "sim" / "__init__.py"):
        p.write_text("")
    (pkg / "core" / "low.py").write_text("def f():\n    from ..sim import high\n    return high\n")
    (pkg / "sim" / "high.py").write_text("from flow.core import low\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    mods = {_module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    monkeypatch.setitem(globals(), "MODULES", mods)
    graph = {m: imports_of(m) for m in mods}
    assert "flow.sim.high" in graph["flow.core.low"]
    assert _cycles(graph) == [["flow.core.low", "flow.sim.high"]]
    assert layer_of("flow.core.low") < layer_of("flow.sim.high")


def test_long_function_is_found(tmp_path, monkeypatch):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    src = tmp_path / "m.py"
    src.write_text(f"def f():\n{body}\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert long_functions(src) == [f"m.py:1: f is {MAX_FUNCTION_LINES + 1} lines"]


@pytest.mark.parametrize("mod", ["flow.cli", "flow.pipeline.build", "flow.core.wire"])
def test_layers_are_known(mod):
    assert mod in MODULES
