"""The lint configuration in pyproject.toml ([tool.ruff]) holds for the whole tree."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_catches_a_planted_mistake(tmp_path):
    bad = tmp_path / "planted.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and "F401" in res.stdout and "F821" in res.stdout, res.stdout + res.stderr
