"""The stand-in's CUDA graph: record one step's kernels, replay them on the same memory.

A CUDA graph (tinyproj/graphs.py) records the kernels a stream receives, with their arguments,
and replays them: same kernels, same arrays, the same Python numbers they were launched with.
That is what makes a graph fast, and what makes it wrong when a number that should change from
step to step was a launch argument. This module does the same on the CPU, so that the
difference between an eager step and a replayed one can be *tested* without a GPU::

    outputs, graph = standin.capture(step, "the training step")   # runs step once, recorded
    graph.launch()                                              # runs the recording again

While capturing, every operation of the stand-in that runs a kernel logs a closure over the
very arrays it read and wrote and the Python values it was given (``counters.record``);
``launch`` reruns the closures in order and writes each result into the array the capture
made for it — the graph's memory. A Python ``if`` on a host number, a learning rate passed as
an argument, a slice position computed on the host: all frozen, as on a GPU. A draw of the run's
generator (kernels/generator.py) is two recorded kernels, the move of its (seed, stream) key in
device memory and the fill that reads it, so a replay draws the next stream's numbers; a draw
of ``standin.random``'s own generator draws anew (its state lives "on the device", as CuPy's
generator's does). And, as in a CUDA
capture, a sync or a copy inside is refused (``capture_check``), naming the operation.

Unlike CUDA, the capture also runs the step (the stand-in cannot record without computing),
so the captured call is a real step and needs no launch after it.
"""
from __future__ import annotations

import numpy as np

from . import counters

__all__ = ["StandinGraph", "capture"]


def _store(target, value) -> None:
    """Write ``value`` into the array(s) ``target`` that the capture made for it."""
    if target is None or value is target:
        return
    if isinstance(target, np.ndarray):
        if isinstance(value, (np.ndarray, np.generic)) or np.isscalar(value):
            target[...] = value
        return
    if type(target) in (tuple, list) and type(value) in (tuple, list):
        for t, v in zip(target, value):
            _store(t, v)


class StandinGraph:
    """A recorded step: ``launch()`` replays its kernels in order on the captured memory."""

    def __init__(self, log):
        self.log = log

    def __len__(self) -> int:
        """The number of recorded kernels (what one replay launches)."""
        return len(self.log)

    def launch(self, stream=None) -> None:
        """Replay every recorded kernel (counted as launches, like the kernels of a graph)."""
        for rerun, result in self.log:
            _store(result, rerun())
        counters.launch("graph.launch")


def capture(fn, region: str = "the captured step"):
    """Run ``fn()`` once while recording it; ``(its outputs, StandinGraph)``. Inside, syncs and
    copies raise :class:`counters.CaptureError` (see ``capture_check``)."""
    if counters.recording():
        raise RuntimeError("standin.capture: already capturing")
    log = []
    counters.start_recording(log)
    try:
        with counters.capture_check(region):
            outputs = fn()
    finally:
        counters.stop_recording()
    return outputs, StandinGraph(log)
