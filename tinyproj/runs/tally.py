"""The training loop's running loss and error count, kept on the device between reads.

On a device every ``.item()`` is a sync, so the loop keeps each step's loss and number of
wrong predictions as device arrays and reads them together every few steps (``READ_EVERY`` of
``training.py``); a non-finite loss is then reported naming the step where it first appeared.
"""
from __future__ import annotations

from .. import backend

__all__ = ["Tally"]


class Tally:
    """Per-step loss and error count, kept as arrays (on the device) until :meth:`read`."""

    def __init__(self, read_every: int = 1):
        self.read_every = read_every          # for the message: how late a NaN is noticed
        self.steps, self.losses, self.wrong, self.sizes = [], [], [], []

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, loss, wrong, size: int) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.wrong.append(wrong)
        self.sizes.append(size)

    def read(self, pos: dict, lr: float, late: bool):
        """Add the steps since the last read to ``pos`` (two syncs on a device); the last
        loss, or None. FloatingPointError naming the first step whose loss is not finite."""
        if not self.steps:
            return None
        xp = backend.xp_of(self.losses[0]) if hasattr(self.losses[0], "shape") else None
        if xp is not None:
            losses = backend.to_numpy(xp.stack(self.losses)).tolist()
        else:
            losses = [float(v) for v in self.losses]
        wrong = backend.to_numpy(backend.xp_of(self.wrong[0]).stack(self.wrong)).tolist()
        steps, sizes = self.steps, self.sizes
        self.steps, self.losses, self.wrong, self.sizes = [], [], [], []
        for step, loss, n in zip(steps, losses, sizes):
            if loss != loss or loss in (float("inf"), float("-inf")):
                ran = (f" The loss is read from the device every {self.read_every} steps, so steps "
                       f"up to {steps[-1]} ran after it: the weights in memory are not usable."
                       if late and step != steps[-1] else "")
                raise FloatingPointError(
                    f"Algorithm 1, step {step}: the loss is {loss} (not finite) after the forward "
                    f"pass (line 5).{ran} Usual causes: a learning rate too high (lr={lr}), "
                    "weights that grew without clipping, or bad input data. Try a smaller "
                    "learning rate or clipping (clipping.clip_bounds(model, 0.5)).")
        for loss, w, n in zip(losses, wrong, sizes):
            pos["loss_sum"] += loss * n
            pos["wrong"] += int(w)
            pos["seen"] += n
        return losses[-1]
