"""The walkthroughs in notebooks/ run top to bottom (no board, no network) in the venv's own
Python kernel, and are committed without outputs."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"


def _run(nb, cwd: Path, timeout: int = 900):
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_three_walkthroughs():
    assert [p.stem for p in NOTEBOOKS] == ["01_train_export", "02_build_verify", "03_deploy"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


def test_kernel_is_this_python(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    out = _run(nb, tmp_path, timeout=120).cells[0].outputs[0]["text"].strip()
    assert Path(out).resolve() == Path(sys.prefix).resolve()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One folder for the three notebooks, as next to notebooks/ for a user (work/ inside it)."""
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.sim
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, work):
    nb = _run(nbformat.read(path, as_version=4), work)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
