"""Shared pytest configuration: test tiers as markers, and one compiled-simulator cache per test run.

Many tests build the same design (the same SystemVerilog or HLS sources; weights differ only in
memory files read at run time) in their own build folder. $BNNFLOW_SIM_CACHE makes every build
take a simulator that an earlier build of this run compiled (content-keyed, see
flow.core.tools.cached_binary): one Verilator or C++ compile per distinct design, shared by the
pytest-xdist workers of the run. Each build folder still holds its own copy of the binary, and
every simulation still runs; only compiles are shared. A test run that sets the variable itself
keeps its value."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_OWNED = "_BNNFLOW_TEST_SIM_CACHE_OWNED"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running configurations (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "sim: needs Verilator (RTL simulation)")
    if "BNNFLOW_SIM_CACHE" in os.environ:
        return  # a worker inherits the controller's folder; a user's own choice is kept
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    root = Path(tempfile.gettempdir()) / f"bnnflow-test-sim-{run}"
    root.mkdir(exist_ok=True)
    os.environ["BNNFLOW_SIM_CACHE"] = str(root)
    os.environ[_OWNED] = str(root)


def pytest_unconfigure(config):
    if hasattr(config, "workerinput"):
        return  # the controller removes the folder once all workers are done
    root = os.environ.pop(_OWNED, None)
    if root and os.environ.get("BNNFLOW_SIM_CACHE") == root:
        shutil.rmtree(root, ignore_errors=True)
        del os.environ["BNNFLOW_SIM_CACHE"]
