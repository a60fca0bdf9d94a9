"""The stand-in's counters: launches, syncs and copies, and where implicit conversions are refused.

Every array operation of the stand-in device calls :func:`launch` (a kernel launch), a
device→host transfer :func:`sync`, a host→device transfer :func:`copy`; ``counts()``,
``by_op()``, ``reset()`` and ``counting()`` read them (see the package docstring).
"""
from __future__ import annotations

import contextlib
import sys
from collections import Counter

_counts = {"launches": 0, "syncs": 0, "copies": 0}
_ops: Counter = Counter()
_mode = {"strict": "framework"}


def set_strict(strict) -> object:
    """Where ``float(x)``, ``int(x)``, ``bool(x)``, ``x.tolist()``, iteration and formatting
    of a device array raise instead of syncing silently:

    * ``"framework"`` (default): in tinyproj's own code (modules ``tinyproj.*``), where a
      hidden sync is a bug; elsewhere — tests, lessons, a user's script — they work as in
      CuPy, each counted as a sync;
    * ``True``: everywhere; ``False``: nowhere (to measure code as it is, as CuPy runs it).

    Returns the previous setting."""
    previous = _mode["strict"]
    _mode["strict"] = strict if strict == "framework" else bool(strict)
    return previous


def strict_at(depth: int) -> bool:
    """Whether an implicit conversion made ``depth`` frames up from the caller is refused."""
    strict = _mode["strict"]
    if strict != "framework":
        return strict
    frame = sys._getframe(depth + 1)
    return str(frame.f_globals.get("__name__", "")).startswith("tinyproj.")


def counts() -> dict:
    """``{"launches", "syncs", "copies"}`` since the last :func:`reset` (a copy)."""
    return dict(_counts)


def by_op() -> dict:
    """Launches per operation name since the last :func:`reset`, most frequent first."""
    return dict(_ops.most_common())


def reset() -> None:
    """Set every counter to zero."""
    for key in _counts:
        _counts[key] = 0
    _ops.clear()


class _Counted(dict):
    """What :func:`counting` yields: filled with the counts when the block ends."""

    launches = property(lambda self: self["launches"])
    syncs = property(lambda self: self["syncs"])
    copies = property(lambda self: self["copies"])


@contextlib.contextmanager
def counting():
    """``with standin.counting() as c: ...`` — afterwards ``c.launches``, ``c.syncs``,
    ``c.copies`` and ``c.ops`` hold what the block did (the global counters keep running)."""
    before, ops_before = counts(), Counter(_ops)
    result = _Counted()
    try:
        yield result
    finally:
        after = counts()
        result.update({k: after[k] - before[k] for k in after})
        result.ops = dict((Counter(_ops) - ops_before).most_common())


def launch(op: str, n: int = 1) -> None:
    """Count ``n`` kernel launches of operation ``op``."""
    _counts["launches"] += n
    _ops[op] += n


def sync(n: int = 1) -> None:
    """Count ``n`` device→host syncs."""
    _counts["syncs"] += n


def copy(n: int = 1) -> None:
    """Count ``n`` host→device copies."""
    _counts["copies"] += n
