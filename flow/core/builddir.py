"""Build-directory ownership, the build lock and atomic writes.

A build directory carries a marker, `.bnnflow-build.json`: the bnnflow version and the
manifest of the top-level paths the build owns (directories wholly). A build refuses a
non-empty folder without the marker unless `force`, never writes over a path it does not
own, and deletes only paths listed in its manifest. `.bnnflow.lock` (flock, holding the
pid) keeps a second build or verification out while one runs; the kernel drops the lock
of a process that died, so a stale lock never blocks.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from flow import __version__
from flow.core.assets import ASSET_NAMES, asset_path
from flow.core.errors import UserError

MARKER = ".bnnflow-build.json"
LOCK = ".bnnflow.lock"

# every top-level path a build (or `verify`/`run` on its directory) may write
OWNED = ("model.onnx", "steps", "rtl", "rtl_logits", "hls", "hls_logits", "hls_rtl", "sim", "verification.json",
         "board", "deploy", "folding_config.json", "report.html", "report.json", "dataflow.onnx")


# ---------------------------------------------------------------------------------------
# atomic writes


@contextlib.contextmanager
def replacing(path: Path):
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename,
    so a reader sees the old file or the new one, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_graph(graph, path: Path) -> None:
    """DataflowGraph.save (or a QONNX ModelWrapper's) through a temporary file."""
    with replacing(path) as tmp:
        graph.save(str(tmp))


# ---------------------------------------------------------------------------------------
# where a build may go


def _project_dirs() -> list[Path]:
    """The package and its asset folders: no build may go into (or above) them."""
    pkg = Path(__file__).resolve().parent.parent  # the flow package
    dirs = [pkg]
    for name in ASSET_NAMES:
        with contextlib.suppress(FileNotFoundError):
            dirs.append(asset_path(name).resolve())
    return dirs


def forbidden_reason(out: Path) -> str | None:
    """Why `out` can never be a build directory (None when it may be one)."""
    p = Path(os.path.abspath(out))
    real = p.resolve()
    if real == Path(real.anchor):
        return "it is the root of the file system"
    if real == Path.home().resolve():
        return "it is the home directory"
    if (real / "flow" / "pipeline" / "build.py").is_file() and (real / "rtl").is_dir():
        return "it is a bnnflow checkout (it holds flow/ and rtl/)"
    for d in _project_dirs():
        if real == d or real in d.parents:
            return f"it holds bnnflow's own files ({d})"
        if d in real.parents:
            return f"it is inside bnnflow's own files ({d})"
    return None


def check_out_path(out) -> Path:
    """Refuse an --out that can never be a build directory; return it as a Path."""
    if out is None or str(out).strip() == "":
        raise UserError("--out must name a directory, got an empty path")
    p = Path(out)
    why = forbidden_reason(p)
    if why:
        raise UserError(f"refusing to build into {p}: {why}; choose another --out")
    if p.exists() and not p.is_dir():
        raise UserError(f"--out {p} is an existing file, not a directory")
    for anc in [p, *p.absolute().parents]:
        if anc.exists():
            if not anc.is_dir():
                raise UserError(f"--out {p} cannot be created: {anc} is a file")
            if not os.access(anc, os.W_OK | os.X_OK):
                raise UserError(f"--out {p} is not writable ({anc} does not allow writing)")
            break
    return p


# ---------------------------------------------------------------------------------------
# the marker and its manifest


def read_marker(out: Path) -> dict | None:
    """The marker of a bnnflow build directory, or None when `out` has none (or a broken one)."""
    path = Path(out) / MARKER
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or not isinstance(m.get("paths"), list):
        return None
    return m


def is_build_dir(out: Path) -> bool:
    return read_marker(out) is not None


def owned_paths(out: Path) -> set[str]:
    m = read_marker(out)
    return {p for p in (m or {}).get("paths", []) if isinstance(p, str) and p in OWNED}


def write_marker(out: Path, paths) -> None:
    atomic_write_json(Path(out) / MARKER, {"bnnflow": __version__, "paths": sorted(set(paths)),
                                           "note": "bnnflow build directory: a build deletes only these paths"})


def claim(out: Path, force: bool = False) -> set[str]:
    """Take ownership of `out` for a build: refuse (touching nothing) a non-empty folder
    that is not a build directory unless `force`, and any path a build writes that exists
    without being in the manifest. Write the marker; return the owned paths."""
    out = Path(out)
    entries = {p.name for p in out.iterdir()} - {LOCK} if out.is_dir() else set()
    marked = read_marker(out) is not None
    if entries and not marked and not force:
        raise UserError(f"{out} is not empty and not a bnnflow build directory (no {MARKER}); choose an empty or "
                        "new --out, or pass --force to write alongside its files (none of them is deleted)")
    owned = owned_paths(out)
    foreign = sorted(n for n in OWNED if n in entries and n not in owned)
    if foreign:
        raise UserError(f"{out / foreign[0]} was not written by bnnflow (not in {MARKER}); bnnflow never deletes "
                        "or overwrites it: move it away or choose another --out")
    owned |= set(OWNED)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, owned)
    return owned


def remove_owned(out: Path, name: str) -> None:
    """Delete the top-level path `name` of a build directory, only when its manifest lists it."""
    out = Path(out)
    if name not in owned_paths(out):
        return
    p = out / name
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


# ---------------------------------------------------------------------------------------
# the lock


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode().strip()
        if text:
            return f"pid {int(text)}"
    return "another process"


@contextlib.contextmanager
def locked(out: Path, what: str = "build"):
    """Hold `<out>/.bnnflow.lock` for the duration; a second build or verification of the
    same directory is refused with the pid of the one that holds it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise UserError(f"{out} is in use: another bnnflow run ({_holder(fd)}) holds {path}; wait for it to "
                            f"finish before this {what}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing drops the flock


def refuse_if_locked(out: Path, what: str = "build") -> None:
    """Refuse, touching nothing, while another bnnflow run holds the lock of `out`."""
    holder = lock_is_held(out)
    if holder is not None:
        raise UserError(f"{out} is in use: another bnnflow run ({holder}) holds {Path(out) / LOCK}; wait for it to "
                        f"finish before this {what}")


def lock_is_held(out: Path) -> str | None:
    """The holder of a lock on `out` ('pid N'), or None when nobody holds it."""
    path = Path(out) / LOCK
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _holder(fd)
        return None
    finally:
        os.close(fd)
