"""The command line as a user runs it (a subprocess), and the shape of a refusal."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bnnflow(*args, cwd=None):
    """`bnnflow ARGS` in a subprocess, importing this checkout's flow/ from any working directory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "flow.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def assert_refused(res, *words):
    """Exit code 2, one line on stderr holding every word, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w.lower() in res.stderr.lower(), (w, res.stderr)
