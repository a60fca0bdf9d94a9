"""A pool of worker processes that any script may start, with or without a main guard.

The image decoders (:class:`~tinyproj.data.decode_pool.DecodePool`,
:func:`~tinyproj.data.imagenet_shrink.shrink_imagenet`) run their work in processes started
with ``forkserver``: fresh processes forked from a server, which hold none of the parent's
open files (a forked worker would keep a run folder's lock alive after the run ended).

Such a worker normally *imports the parent's script again* (as ``__mp_main__``) so that
functions defined in it can be found — which is why Python asks every script that starts
processes to put its code under ``if __name__ == "__main__":``. A lesson or a notebook-style
script has no such guard, and importing it again would re-run the whole lesson inside each
worker (and fail, since that would start processes of its own). Our workers only ever run
functions of tinyproj, so they do not need the script: while a worker starts,
:class:`ScriptSafePool` makes ``__main__`` look like a package's ``__main__.py`` run with
``python -m``, which multiprocessing never imports again.

Ctrl-C reaches every process of the terminal's process group, workers included. The workers
ignore it (SIGINT is set to ignored as each one starts, before it imports tinyproj): the
parent gets the KeyboardInterrupt and shuts the pool down, and the workers finish the task in
hand instead of each printing a traceback. A SIGTERM (a cluster's time limit, ``timeout``)
ends them, as the pool needs it to end a broken pool's workers; the training loop then saves
its checkpoint without them (runs/training.py). A pool may have at most :func:`max_workers`
processes (4 per CPU, at least 16): decoding is CPU-bound, so more only cost memory and
start-up time.
"""
from __future__ import annotations

import importlib.machinery
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["ScriptSafePool", "default_workers", "max_workers", "check_workers"]

WORKERS_PER_CPU = 4         # the most processes a pool may start per CPU ...
WORKERS_ALWAYS = 16         # ... but always this many (a script written for 16 cores runs)


def _cpus() -> int:
    """The number of CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def default_workers(most: int = 16) -> int:
    """The number of CPUs this process may use, at most ``most``."""
    return max(1, min(most, _cpus()))


def max_workers() -> int:
    """The most worker processes a pool may have: 4 per CPU this process may use, and at
    least 16 (the most :func:`default_workers` gives, so ``--workers 16`` works anywhere)."""
    return max(WORKERS_ALWAYS, WORKERS_PER_CPU * _cpus())


def check_workers(workers: int, what: str = "workers") -> int:
    """``workers`` if it is between 0 and :func:`max_workers`, else ValueError naming ``what``.

    A pool starts one process per task it is given, up to ``workers``, so an absurd count
    (``--workers 100000``) would start one process per image."""
    if isinstance(workers, bool) or not isinstance(workers, int) or \
            not 0 <= workers <= max_workers():
        raise ValueError(f"{what} must be between 0 and {max_workers()} ({WORKERS_PER_CPU} per "
                         f"CPU, at least {WORKERS_ALWAYS}; this process may use {_cpus()} "
                         f"CPUs), got {workers}")
    return workers


@contextmanager
def _main_not_reimported():
    """While inside: ``sys.modules["__main__"]`` has the spec of a ``__main__`` module, which
    multiprocessing's start-up skips (multiprocessing/spawn.py, ``_fixup_main_from_name``)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    had, before = hasattr(main, "__spec__"), getattr(main, "__spec__", None)
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        if had:
            main.__spec__ = before
        else:
            del main.__spec__


class ScriptSafePool(ProcessPoolExecutor):
    """A ``forkserver`` ProcessPoolExecutor (where the platform has it) whose workers never
    re-run the calling script; it can run only functions importable from a module.

    Workers start on demand inside ``submit`` (and ``map``, which submits), so that is where
    the script is kept from being imported again. They ignore Ctrl-C (the parent handles it;
    see the module docstring). ``workers``: 1 to :func:`max_workers`, else ValueError."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"a pool needs workers >= 1 (0 means: no pool), got {workers}")
        check_workers(workers)
        context = (multiprocessing.get_context("forkserver")
                   if "forkserver" in multiprocessing.get_all_start_methods() else None)
        # the initializer is signal.signal itself, whose module is loaded already: a worker
        # ignores SIGINT before it imports anything (a tinyproj function would be imported
        # first, and a Ctrl-C during that import would print a traceback per worker). SIGTERM
        # keeps its default: the pool itself ends a broken pool's workers with it.
        super().__init__(workers, mp_context=context, initializer=signal.signal,
                         initargs=(signal.SIGINT, signal.SIG_IGN))

    def submit(self, fn, /, *args, **kwargs):
        with _main_not_reimported():
            return super().submit(fn, *args, **kwargs)
