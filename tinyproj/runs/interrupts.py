"""Stopping a run cleanly: Ctrl-C or SIGTERM (a cluster's time limit) becomes a flag the
training loop checks between two steps, so it can save a checkpoint before it stops."""
from __future__ import annotations

import signal
import threading

__all__ = ["TrainingInterrupted", "StopFlag"]


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C / SIGTERM (or a requested stop) once a checkpoint has been saved."""


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
        self.log(f"\n{self.requested}: finishing this step (or the evaluation under way) and "
                 "saving a checkpoint (send it again to stop at once; the last checkpoint "
                 "stays intact)")

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False
