"""Simulation and sweeps on a Dask cluster: the client (an embedded LocalCluster of worker
processes, or a running `dask scheduler`), and the RTL / C simulators of a verification
sharded over its workers.

The simulator is compiled once, by the caller, into the build directory; the workers run
that binary on consecutive slices of the images and send back the output beats, which are
unpacked and concatenated in order. The outputs are those of the single-process engines bit
for bit (the slices are chunks as the engines themselves cut them); only the measured
cycles per frame is the frame-weighted mean over the slices. Workers must see the build
directory at the same path (one machine, or a shared file system).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os

import numpy as np

from flow.core.errors import UserError
from flow.core.wire import pack_beats, unpack_beats
from flow.ir.reference import frame_outputs, image_chunks, to_wire
from flow.sim.csim import compiled_csim
from flow.sim.simulate import SIM_CHUNK_BYTES, compiled_sim, default_watchdog, merge_run_stats

# How long a client waits for a scheduler that does not answer.
CONNECT_TIMEOUT_S = 20


def default_workers() -> int:
    """Worker processes of the embedded cluster when none are asked for: half the cores
    (every Verilator compile uses two), at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A distributed.Client: connected to `scheduler` (an address such as tcp://host:8786), or
    to an embedded LocalCluster of `workers` single-threaded worker processes (closed on exit)."""
    try:
        # deferred: dask and distributed are the optional extra `sweep` (pip install 'bnnflow[sweep]');
        # only `sweep` and `verify --workers/--scheduler` need them
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("sweeps and sharded verification need dask and distributed: pip install 'bnnflow[sweep]'") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: {exc})") from None
        with client:
            yield client
        return
    n = workers or default_workers()
    # the dashboard on a free port; only errors of the cluster's own logs reach stderr
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def worker_threads(client) -> int:
    """The threads of the cluster's workers (at least 1): how many slices a run is cut into."""
    return max(1, sum(client.nthreads().values()))


def _pieces(chunks: list[np.ndarray], shards: int) -> list[np.ndarray]:
    """The engines' chunks, each cut further so that there are at least `shards` slices."""
    per = max(1, math.ceil(shards / max(1, len(chunks))))
    return [p for c in chunks for p in np.array_split(c, min(per, len(c))) if len(p)]


def _scattered(client, graph, images: np.ndarray, s_in):
    """The slice's input beats, sent to the cluster as data of their own (not inside a task)."""
    return client.scatter(pack_beats(to_wire(graph, images), s_in.lanes, s_in.bits), hash=False)


def _run_rtl_piece(sim, beats, stall_seed, watchdog):
    return sim.run(beats, stall_seed=stall_seed, watchdog=watchdog)


def _run_c_piece(sim, beats):
    return sim.run(beats)


def sharded_rtlsim(client, shards: int | None = None):
    """A drop-in for flow.sim.simulate.run_rtlsim that runs the slices on `client`'s workers."""
    def run(graph, build_dir, images, logits=False, stall_seed=None, watchdog=None, chunk_bytes=None):
        chunks = image_chunks(graph, images, chunk_bytes or SIM_CHUNK_BYTES)
        sim, s_in, s_out = compiled_sim(graph, build_dir, logits)  # compiled here, once
        wd = default_watchdog(graph) if watchdog is None else watchdog
        pieces = _pieces(chunks, shards or worker_threads(client))
        futures = [client.submit(_run_rtl_piece, sim, _scattered(client, graph, p, s_in), stall_seed, wd, pure=False)
                   for p in pieces]
        results = client.gather(futures)
        y = np.concatenate([unpack_beats(b, s_out.lanes, s_out.bits).reshape(len(p), -1)[:, : s_out.elems]
                            for (b, _stats), p in zip(results, pieces)]).astype(np.int64)
        stats = merge_run_stats([s for _b, s in results])
        return frame_outputs(graph, y, logits), {**stats, "shards": len(pieces)}
    return run


def sharded_csim(client, shards: int | None = None):
    """A drop-in for flow.sim.csim.run_csim that runs the slices on `client`'s workers."""
    def run(graph, build_dir, images, logits=False, processes=None, chunk_bytes=None):
        chunks = image_chunks(graph, images, chunk_bytes or SIM_CHUNK_BYTES)
        sim, info = compiled_csim(graph, build_dir, logits)  # compiled here, once
        s_in, s_out = info["in"], info["out"]
        pieces = _pieces(chunks, shards or worker_threads(client))
        futures = [client.submit(_run_c_piece, sim, _scattered(client, graph, p, s_in), pure=False) for p in pieces]
        results = client.gather(futures)
        y = np.concatenate([unpack_beats(b, s_out.lanes, s_out.bits, signed=info["out_signed"])
                            .reshape(len(p), -1)[:, : s_out.elems] for (b, _stats), p in zip(results, pieces)])
        wall = sum(s["wall_s"] for _b, s in results)
        stats = {"frames": len(y), "wall_s": wall, "shards": len(pieces), "compile_s": sim.compile_seconds}
        return frame_outputs(graph, y.astype(np.int64), logits), stats
    return run


def sharded_sims(client, shards: int | None = None) -> dict:
    """The `sims` of flow.sim.verify.verify that shard both simulators over `client`."""
    return {"rtlsim": sharded_rtlsim(client, shards), "csim": sharded_csim(client, shards)}
