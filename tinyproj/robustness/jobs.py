"""Running the shards of a sweep in parallel processes on one machine (``--jobs N``).

Shard i of N runs in its own process (started with ``spawn``, so nothing is shared with the
parent but the arguments), loads the run folder itself and writes
``<name>.shard-<i>-of-<N>.jsonl``. The per-shard files are left in place;
``merge_sweep_files`` reads them together (the report does the same). A restart moves the
old files aside once, here, before the shards start.

Threads: N processes that each start a full BLAS thread pool would fight over the cores. If
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are not set, the workers
get 1 thread each (set them yourself to give each worker more). On a cluster, prefer one
SLURM array task per shard (``--shard``; see ``benchmarks/slurm_sweep.sh``). The workers use
the parent's array backend (``backend.use("cupy")`` before the call: all on the one GPU).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os

from .. import backend
from ..errors import UserError
from .sweeps import check_levels, get_distortion, merge_sweep_files, sweep_grid, sweep_name

__all__ = ["run_sweep_jobs"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_thread_each():
    """Set the BLAS thread variables to 1 where unset, for the children spawned inside."""
    added = [v for v in _THREAD_VARS if v not in os.environ]
    for v in added:
        os.environ[v] = "1"
    try:
        yield
    finally:
        for v in added:
            os.environ.pop(v, None)


def _worker(run_dir, distortion, levels, index, count, options, errors, backend_name):
    """Body of one process: shard ``index`` of ``count``; failures go back through ``errors``."""
    try:
        from .. import backend
        from .sweeps import run_sweep
        backend.use(backend_name)             # the parent's backend (numpy or cupy)
        if index > 0:                     # one bar on the terminal: shard 0's (round robin,
            options = dict(options, progress=False)     # so it is a fair sample of the rest)
        run_sweep(run_dir, distortion, levels, shard=(index, count), **options)
    except BaseException as err:      # noqa: BLE001 - reported to the parent, then exit 1
        from ..errors import USER_ERRORS
        errors.put((index, f"{type(err).__name__}: {err}", isinstance(err, USER_ERRORS)))
        raise SystemExit(1) from None


def run_sweep_jobs(run_dir, distortion, levels=None, *, jobs: int, layer=None,
                   per_layer: bool = False, restart: bool = False, **options) -> list:
    """Run a sweep as ``jobs`` shards in ``jobs`` parallel processes; returns the merged rows.

    Same arguments as ``sweeps.run_sweep`` (``options``: draws, seed, bn_batches,
    bn_batch_size, test_subset, eval_batch_size, data_dir, progress), with a run *folder*
    (each process loads it). ``jobs=1`` runs the unsharded sweep in this process. Raises
    RuntimeError naming the shards that failed; the points they finished are kept, and
    running the same command again resumes them.
    """
    from pathlib import Path

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise UserError(f"--jobs must be an integer >= 1; got {jobs!r}", flag="--jobs")
    if "shard" in options:
        raise UserError("give either --jobs N (all shards here) or --shard i/n (one shard)",
                        flag="--jobs")
    if not isinstance(run_dir, (str, os.PathLike)):
        raise ValueError("run_sweep_jobs needs a run folder path (each process loads it)")
    name = sweep_name(distortion, per_layer=per_layer or layer is not None)
    levels = check_levels(get_distortion(distortion), levels)
    if jobs == 1:
        from .sweeps import run_sweep
        return run_sweep(run_dir, distortion, levels, layer=layer, per_layer=per_layer,
                         restart=restart, **options)
    if not (Path(run_dir) / "checkpoint.npz").exists():
        from ..runs.training import load_run
        load_run(run_dir)             # raises the usual "not a run folder" error here, once
    if restart:                   # here, once, before the shards start (not in each of them)
        sweep_grid(run_dir, name).move_aside()
    else:
        merge_sweep_files(run_dir, name)    # rows of another network: refused here, once
    options = dict(options, layer=layer, per_layer=per_layer)
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    procs = []
    try:
        with _one_thread_each():
            for i in range(jobs):
                p = ctx.Process(target=_worker, name=f"sweep-shard-{i}-of-{jobs}",
                                args=(str(run_dir), distortion, levels, i, jobs, options, errors,
                                      backend.name()))
                p.start()
                procs.append(p)
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    failed, users = {}, set()
    while not errors.empty():
        index, message, user = errors.get()
        failed[index] = message
        if user:
            users.add(index)
    for i, p in enumerate(procs):
        if p.exitcode != 0 and i not in failed:
            failed[i] = f"exit code {p.exitcode}"
    if failed:
        lines = "\n".join(f"  shard {i}/{jobs}: {m}" for i, m in sorted(failed.items()))
        # every shard stopped by the user's mistake: say it as a user error (exit status 2)
        kind = UserError if users == set(failed) else RuntimeError
        raise kind(f"{len(failed)} of {jobs} shards failed:\n{lines}\nThe points they "
                   "finished are saved; run the same command again to resume.")
    return merge_sweep_files(run_dir, name)
