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
"""
from __future__ import annotations

import importlib.machinery
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["ScriptSafePool", "default_workers"]


def default_workers(most: int = 16) -> int:
    """The number of CPUs this process may use, at most ``most``."""
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1))
    return max(1, min(most, cpus))


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
    the script is kept from being imported again."""

    def __init__(self, workers: int):
        context = (multiprocessing.get_context("forkserver")
                   if "forkserver" in multiprocessing.get_all_start_methods() else None)
        super().__init__(workers, mp_context=context)

    def submit(self, fn, /, *args, **kwargs):
        with _main_not_reimported():
            return super().submit(fn, *args, **kwargs)
