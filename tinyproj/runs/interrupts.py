"""Stopping a run cleanly: Ctrl-C or SIGTERM (a cluster's time limit) becomes a flag the
training loop checks between two steps, so it can save a checkpoint before it stops.

An evaluation (minutes, with exact batch-norm re-estimation over every training image) checks
the same flag between two of its batches: :func:`check` raises :class:`EvaluationStopped`
there, the evaluation's context managers put the weights and batch-norm statistics back, and
the loop saves a checkpoint that marks the evaluation as pending, so that ``--resume`` runs
it first. A cluster's grace period between SIGTERM and SIGKILL is often 30–60 s, shorter
than an evaluation: waiting for it to end would lose the epoch."""
from __future__ import annotations

import signal
import threading

__all__ = ["TrainingInterrupted", "EvaluationStopped", "StopFlag", "check"]


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C / SIGTERM (or a requested stop) once a checkpoint has been saved."""


class EvaluationStopped(Exception):
    """Raised by :func:`check` inside an evaluation when a stop was requested; every context
    manager it passes through restores what the evaluation changed."""


def check(stop) -> None:
    """Raise :class:`EvaluationStopped` when ``stop`` (a callable, or None for "never") returns
    true. Called between two batches of an evaluation: a host-side flag, never a device sync."""
    if stop is not None and stop():
        raise EvaluationStopped


class StopFlag:
    """Turns the first Ctrl-C or SIGTERM into a flag checked between steps; the second
    one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, log):
        self.requested, self.log, self._previous = None, log, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        self.log(f"\n{self.requested}: stopping after this step (an evaluation under way "
                 "stops at its next batch and runs again on --resume) and saving a checkpoint "
                 "(send it again to stop at once; the last checkpoint stays intact)")

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False
