"""`pip install .` into a fresh virtual environment outside the checkout: the wheel
carries the asset folders and the `bnnflow` entry point finds them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.sim
def test_wheel_installs_into_a_fresh_venv(tmp_path):
    wheels = tmp_path / "wheels"
    # build the wheel from a copy so the checkout is not touched by build/ folders
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                              ".pytest_cache", ".hypothesis", "runs"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(wheels), str(src)], capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr
    wheel = next(wheels.glob("bnnflow-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the dependencies come from the project's venv (already installed by `make`)
    site = Path(sysconfig.get_paths()["purelib"])
    vsite = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                         text=True).strip())
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr
    # added after the install, so pip does not see the checkout's editable install
    (vsite / "deps.pth").write_text(str(site) + "\n")
    probe = ("import flow, flow.deploy.driver, flow.deploy.bundle, flow.core.assets as a; from pathlib import Path; "
             "print(Path(flow.__file__).parent); "
             "[print(a.asset_path(n)) for n in ('rtl', 'sim', 'models')]")
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    pkg = Path(lines[0])
    assert str(pkg).startswith(str(vsite)), "flow was imported from the checkout, not the wheel"
    for p in lines[1:]:
        assert Path(p).is_relative_to(pkg / "_assets"), p
        assert any(Path(p).iterdir())
    assert (pkg / "_assets" / "rtl" / "mvu_binary" / "bnn_mvu.sv").is_file()
    assert (pkg / "_assets" / "sim" / "harness" / "harness.cpp").is_file()
    models = subprocess.run([str(venv / "bin" / "bnnflow"), "models"], capture_output=True, text=True, cwd=tmp_path,
                            env=ENV)
    assert models.returncode == 0, models.stderr
    assert "tfc-w1a1" in models.stdout
    assert (pkg / "_assets" / "boards" / "templates" / "build.tcl.j2").is_file()
    assert (pkg / "_assets" / "rtl" / "shell" / "bnnflow_axis.sv").is_file()
    boards = subprocess.run([str(venv / "bin" / "bnnflow"), "boards"], capture_output=True, text=True, cwd=tmp_path,
                            env=ENV)
    assert boards.returncode == 0, boards.stderr
    assert "ulx3s-85f" in boards.stdout and "ultra96-v2" in boards.stdout
