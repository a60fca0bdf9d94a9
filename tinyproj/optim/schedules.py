"""Learning-rate schedules: ``schedule(t) -> lr`` and ``schedule.apply(optimizer, t)``.

``t`` is whatever the schedule counts: iterations for :class:`StepDrops` and
:class:`Cosine`, epochs for :class:`ExponentialDecay` (the training loop decides
when to call ``apply``)::

    schedule = ExponentialDecay(0.003, 2e-6, num_epochs=500)
    for epoch in range(500):
        schedule.apply(optimizer, epoch)     # sets optimizer.lr
        ...
"""
from __future__ import annotations

import bisect
import math

__all__ = ["Schedule", "Constant", "StepDrops", "ExponentialDecay", "Cosine"]


def _positive(value, what, owner):
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a finite number > 0, got {value!r}")
    return value


def _check_t(t, owner):
    if t < 0:
        raise ValueError(f"{owner}: t must be >= 0 (an iteration or epoch count), got {t!r}")


class Schedule:
    """Base class: subclasses implement ``__call__(t) -> lr``."""

    def __call__(self, t) -> float:
        raise TypeError(f"{type(self).__name__} must implement __call__(t) -> lr")

    def apply(self, optimizer, t) -> float:
        """Set ``optimizer.lr = self(t)`` and return that learning rate."""
        lr = self(t)
        optimizer.lr = lr
        return lr


class Constant(Schedule):
    """lr(t) = lr for every t."""

    def __init__(self, lr):
        if float(lr) < 0 or not math.isfinite(float(lr)):
            raise ValueError(f"Constant: lr must be a finite number >= 0, got {lr!r}")
        self.lr = float(lr)

    def __call__(self, t):
        _check_t(t, "Constant")
        return self.lr

    def __repr__(self):
        return f"Constant({self.lr})"


class StepDrops(Schedule):
    """Piecewise constant: multiply the rate by ``factor`` at each milestone.

        lr(t) = lr0 · factor^(number of milestones ≤ t)

    ``factor`` may also be a list, one factor per milestone. The paper's AlexNet run says
    "the learning rate was dropped from 0.1 by 0.01× at iterations 100K and 125K", which
    has two readings, both offered (``--lr-factor``, presets in ``runs/presets.py``):

    * literal, ×0.01 at each milestone (preset ``alexnet-stochm3-c``):
      ``StepDrops(0.1, [100_000, 125_000], 0.01)`` → 0.1, then 1e-3 from 100,000,
      then 1e-5 from 125,000;
    * two tenfold drops, the usual AlexNet recipe, reaching 0.01 × the start in all
      (preset ``alexnet-stochm3-c-drop10``): ``StepDrops(0.1, [100_000, 125_000], 0.1)``
      → 0.1, 0.01 from 100,000, 1e-3 from 125,000.
    """

    def __init__(self, lr0, milestones, factor):
        self.lr0 = _positive(lr0, "lr0", "StepDrops")
        milestones = [int(m) for m in milestones]
        if any(m < 0 for m in milestones) or any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"StepDrops: milestones must be non-negative and strictly "
                             f"increasing, got {milestones}")
        factors = list(factor) if hasattr(factor, "__len__") else [factor] * len(milestones)
        if len(factors) != len(milestones):
            raise ValueError(f"StepDrops: {len(factors)} factors for {len(milestones)} milestones")
        self.factors = [_positive(f, "factor", "StepDrops") for f in factors]
        self.milestones = milestones
        self.factor = factor

    def __call__(self, t):
        _check_t(t, "StepDrops")
        lr = self.lr0
        for f in self.factors[:bisect.bisect_right(self.milestones, t)]:
            lr *= f
        return lr

    def __repr__(self):
        return f"StepDrops({self.lr0}, {self.milestones}, {self.factor})"


class ExponentialDecay(Schedule):
    """Geometric decay from ``lr_start`` to ``lr_end`` over ``num_epochs`` (BinaryConnect).

        lr(e) = lr_start · (lr_end / lr_start)^(e / num_epochs)

    so lr(0) = lr_start and lr(num_epochs) = lr_end; each epoch multiplies the rate by
    the constant (lr_end / lr_start)^(1/num_epochs). The paper's CIFAR-10 runs decay
    from 0.003 to 2e-6 over 500 epochs: ``ExponentialDecay(0.003, 2e-6, 500)`` (each
    epoch ×0.98548). Beyond num_epochs the rate keeps decaying at the same pace.
    """

    def __init__(self, lr_start, lr_end, num_epochs):
        self.lr_start = _positive(lr_start, "lr_start", "ExponentialDecay")
        self.lr_end = _positive(lr_end, "lr_end", "ExponentialDecay")
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
            raise ValueError(f"ExponentialDecay: num_epochs must be a positive integer, got "
                             f"{num_epochs!r}")
        self.num_epochs = num_epochs

    def __call__(self, e):
        _check_t(e, "ExponentialDecay")
        return self.lr_start * (self.lr_end / self.lr_start) ** (e / self.num_epochs)

    def __repr__(self):
        return f"ExponentialDecay({self.lr_start}, {self.lr_end}, {self.num_epochs})"


class Cosine(Schedule):
    """Cosine annealing from ``lr_max`` (t = 0) to ``lr_min`` (t = total_steps):

        lr(t) = lr_min + (lr_max − lr_min) · (1 + cos(π · t / T)) / 2,   T = total_steps

    For t > T the rate stays at lr_min. ``t`` may count steps (``--lr-schedule cosine``:
    T = all the run's steps, a new rate every step) or epochs (``cosine_epoch``: T = the
    epochs, the rate constant within an epoch). The Walking Noise authors use PyTorch's
    ``CosineAnnealingLR(T_max=num_epochs)`` stepped once after each epoch, with
    lr_min = 0: epoch e (0-based) trains at lr(e), so the first epoch at lr_max and the last
    at lr_max · (1 + cos(π (E − 1)/E)) / 2 > 0 — that is ``cosine_epoch``.
    """

    def __init__(self, lr_max, total_steps, lr_min=0.0):
        self.lr_max = _positive(lr_max, "lr_max", "Cosine")
        if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
            raise ValueError(f"Cosine: total_steps must be a positive integer, got {total_steps!r}")
        lr_min = float(lr_min)
        if not 0.0 <= lr_min <= self.lr_max:
            raise ValueError(f"Cosine: lr_min must be in [0, lr_max={self.lr_max}], got {lr_min!r}")
        self.total_steps = total_steps
        self.lr_min = lr_min

    def __call__(self, t):
        _check_t(t, "Cosine")
        t = min(t, self.total_steps)
        return self.lr_min + (self.lr_max - self.lr_min) * (
            1.0 + math.cos(math.pi * t / self.total_steps)) / 2.0

    def __repr__(self):
        return f"Cosine({self.lr_max}, {self.total_steps}, lr_min={self.lr_min})"
