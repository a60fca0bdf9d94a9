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


def sync(n: int = 1, op: str = "a device→host transfer") -> None:
    """Count ``n`` device→host syncs (``op``: what made them, for a capture check's error)."""
    _refuse_in_capture("syncs the host with the device", op)
    _counts["syncs"] += n


def copy(n: int = 1, op: str = "a host→device transfer") -> None:
    """Count ``n`` host→device copies (``op``: what made them)."""
    _refuse_in_capture("copies host data to the device", op)
    _counts["copies"] += n


# ---------------------------------------------------------------------------
# Capture check: what a CUDA graph capture would refuse, refused here (tinyproj/graphs.py).
# ---------------------------------------------------------------------------
class CaptureError(RuntimeError):
    """An operation inside a region checked as if captured into a CUDA graph synced with the
    host or copied host data up; ``op`` names it, ``region`` the region."""

    def __init__(self, message, op=None, region=None):
        super().__init__(message)
        self.op, self.region = op, region


_capture = {"region": None}


def _refuse_in_capture(what: str, op: str) -> None:
    region = _capture["region"]
    if region is not None:
        raise CaptureError(
            f"{op} {what} inside {region}, a region checked as if captured into a CUDA graph. "
            "A graph cannot contain it: a device→host read would happen once, at capture, and "
            "a replay would reuse what it read; host data copied up at capture would be the "
            "same at every replay. Keep the value on the device (a device array that the "
            "kernels read), or do the transfer outside the captured step.", op=op, region=region)


@contextlib.contextmanager
def capture_check(region: str = "the captured step"):
    """``with standin.capture_check("the training step"): step()`` — inside, any device→host
    sync or host→device copy raises :class:`CaptureError` naming the operation. Launches are
    allowed (a graph is made of them). Regions do not nest."""
    if _capture["region"] is not None:
        raise RuntimeError(f"capture_check: already checking {_capture['region']}")
    _capture["region"] = region
    try:
        yield
    finally:
        _capture["region"] = None


def capturing() -> bool:
    """True inside :func:`capture_check`."""
    return _capture["region"] is not None


# ---------------------------------------------------------------------------
# Recording: the stand-in's CUDA graph (standin/graph.py). While a log is open, every
# operation that runs a kernel appends ``(rerun, result)``: a closure that runs it again on
# the same arrays with the same Python arguments, and the array(s) it wrote. Replaying the
# log is what replaying a CUDA graph does: same kernels, same memory, same frozen arguments.
# ---------------------------------------------------------------------------
_recording = {"log": None}


def record(rerun, result=None) -> None:
    """Append one replayable operation to the open log (nothing when none is open)."""
    log = _recording["log"]
    if log is not None:
        log.append((rerun, result))


def recording() -> bool:
    """True while a log is open (``start_recording``)."""
    return _recording["log"] is not None


def start_recording(log: list) -> None:
    """Open ``log``: operations append ``(rerun, result)`` to it until ``stop_recording``."""
    _recording["log"] = log


def stop_recording() -> None:
    _recording["log"] = None
