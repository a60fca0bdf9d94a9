"""The optimizer's per-step scalars in device memory: lr, and Adam's t and bias corrections.

Why. A GPU kernel gets Python numbers as launch arguments. A CUDA graph (tinyproj/graphs.py)
records the launches of one step with their arguments and replays them as recorded, so a
learning rate or an Adam step t passed as an argument would stay the captured step's value
forever. So on a device every number that changes from step to step lives in device memory
and the kernels read it there (``adam_update_scalars``, ``sgd_update_scalars``)::

    values = [lr, 1 − β1^t, 1 − β2^t]     (3,) in the parameters' dtype (SGD: [lr])
    t      = Adam's step count            0-d int64

How each one moves (the choices, and why):

* **t and the bias corrections: on the device, by the step itself.** ``advance_adam`` runs
  ``t += 1``, ``p = β^t`` (float64, both betas at once) and ``values[1:3] = 1 − p`` (rounded
  to float32 on the store): three tiny launches that a graph replays, so each replay computes
  its own t. Same arithmetic as the host's ``1.0 - beta1 ** t`` in float64, then rounded as
  the kernel argument was, so the result is the host path's bit for bit on the stand-in
  (NumPy's pow); CUDA's pow is within 2 ulp of it in float64, which the rounding to float32
  absorbs except in a rare tie. Eager and replayed steps on a GPU run this same code.
* **lr: one fill launch when it changes, outside the captured step.** ``write_lr`` compares
  the new rate with the one last written (a host mirror, no read-back) and, if different,
  writes it with one small kernel (CuPy fills a scalar by a kernel launch with the value as
  its argument: no host→device copy, no sync, in stream order). A schedule that changes the
  rate every step (cosine) costs one launch per step; ExponentialDecay one per epoch. A
  device-side schedule kernel would save that launch but would have to reproduce Python's
  float64 ``pow`` and ``cos`` bit for bit on the GPU for every schedule; the graph runner
  calls ``write_lr`` before each replay instead.
"""
from __future__ import annotations

import numpy as np

from .. import backend

__all__ = ["StepScalars", "of"]


class StepScalars:
    """The per-step scalars of one flat parameter group (optim/flat.py) on a device.

    values: (n,) device array of the group's dtype (``[lr]`` or ``[lr, bc1, bc2]``).
    t: 0-d int64 device array (Adam's step count after the queued work), host_t its mirror
    on the host (what t will hold once the queued launches ran; never read back).
    """

    def __init__(self, xp, dtype, n: int):
        self.values = xp.zeros(n, dtype=dtype)
        self.t = xp.zeros((), dtype=np.int64)
        self.host_t = 0
        self.host_lr = None
        self._betas = None                 # (2,) float64 device array (β1, β2), made once
        self._host_betas = None            # what it holds
        self._powers = None                # (2,) float64 scratch for β^t

    def write_lr(self, lr: float) -> None:
        """``values[0] = lr`` when lr changed since the last write (one fill launch)."""
        lr = float(lr)
        if self.host_lr != lr:
            self.values[0:1].fill(lr)
            self.host_lr = lr

    def advance_adam(self, t: int, betas) -> None:
        """On the device: t ← t + 1, values[1:3] = 1 − β^t (three launches); ``t`` is the step
        count the host expects after it (the device counter is set first if they differ)."""
        xp = backend.xp_of(self.values)
        betas = (float(betas[0]), float(betas[1]))
        if self._betas is None:
            self._betas = xp.empty(2, dtype=np.float64)
            self._powers = xp.empty(2, dtype=np.float64)
        if self._host_betas != betas:      # made once; again only if someone changes them
            self._betas[0:1].fill(betas[0])
            self._betas[1:2].fill(betas[1])
            self._host_betas = betas
        if self.host_t != t - 1:           # a resume, or per-parameter steps in between
            self.t.fill(t - 1)
        self.t += 1
        xp.power(self._betas, self.t, out=self._powers)
        xp.subtract(1.0, self._powers, out=self.values[1:3])
        self.host_t = t

    def replayed(self) -> None:
        """The host mirror after a replayed step (the device advanced t by itself)."""
        self.host_t += 1


def of(group, n: int) -> StepScalars:
    """The group's :class:`StepScalars` (made on first use; one per group)."""
    scalars = getattr(group, "step_scalars", None)
    if scalars is None:
        scalars = StepScalars(group.xp, group.dtype, n)
        group.step_scalars = scalars
    return scalars
