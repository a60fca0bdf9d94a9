"""Exact batch-norm re-estimation: the population statistics of training images, in passes.

Used by the test protocol (``robustness.bn_estimate``, the sweeps) and by the evaluations
during training when ``train --bn-images`` asks for them (``runs.evaluation``). Every
batch-norm layer accumulates, per channel c, over every value x it sees in ⌈images/pass_size⌉
forward passes::

    n_c = Σ 1,    mean_c (float64),    M2_c = Σ (x − mean_c)² (float64)

merging each pass's (n_b, mean_b, M2_b) with Chan's update (exact, no momentum, no
cancellation from a raw Σ x²)::

    δ = mean_b − mean,   mean ← mean + δ·n_b/(n + n_b),   M2 ← M2 + M2_b + δ²·n·n_b/(n + n_b)

and at the end ``running_mean = mean``, ``running_var = M2/(n − 1)``. Inside a pass each layer
normalises with that pass's own statistics, as a training-mode forward pass does. The
reasoning and the other protocols: ``robustness/bn_estimate.py``'s docstring.
"""
from __future__ import annotations

from .. import backend
from .. import functional as F
from ..nn.batchnorm import BatchNormBase
from ..tensor import Tensor, no_grad
from .interrupts import check as check_stop

__all__ = ["reestimate_exact", "DEFAULT_PASS_SIZE"]

DEFAULT_PASS_SIZE = 1000
"""Images per forward pass of the exact re-estimation (memory: one batch's activations)."""


class _Accumulator:
    """Per-channel count, mean and M2 (float64) of one batch-norm layer, merged batch by batch."""

    def __init__(self, layer: BatchNormBase):
        self.layer = layer
        self.n = 0
        self.mean = None
        self.m2 = None

    def forward(self, x, relu: bool = False):
        """Accumulate this batch's statistics; return x normalised with the batch's own.

        relu=True (``nn.Sequential`` fusing a following ReLU) returns relu of that."""
        data = x.data if isinstance(x, Tensor) else x
        xp = backend.xp_of(data)
        axes = (0,) if data.ndim == 2 else (0, 2, 3)
        shape = (1, -1) if data.ndim == 2 else (1, -1, 1, 1)
        n_b = data.size // data.shape[1]
        if n_b < 2:
            raise ValueError(f"{self.layer.describe()}: batch-norm re-estimation needs more than "
                             f"one value per channel; got input of shape {tuple(data.shape)}")
        mean_b = xp.sum(data, axis=axes, dtype="float64") / n_b
        centred = data - mean_b.astype(data.dtype).reshape(shape)
        m2_b = xp.sum(centred * centred, axis=axes, dtype="float64")
        if self.n == 0:
            self.mean, self.m2 = mean_b, m2_b
        else:                                                   # Chan et al.'s merge
            total = self.n + n_b
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (n_b / total)
            self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / total)
        self.n += n_b
        var_b = (m2_b / n_b).astype(data.dtype)                # biased, as training mode uses
        y = F.batch_norm(x, mean_b.astype(data.dtype), var_b, self.layer.weight,
                         self.layer.bias, training=False, eps=self.layer.eps)
        return F.relu(y) if relu else y

    def store(self) -> None:
        """running_mean ← mean, running_var ← M2/(n − 1), in the layer's dtype, in place."""
        m = self.layer
        m.running_mean[...] = self.mean.astype(m.running_mean.dtype)
        m.running_var[...] = (self.m2 / (self.n - 1)).astype(m.running_var.dtype)


def reestimate_exact(model, source, images: int | None = None,
                     pass_size: int = DEFAULT_PASS_SIZE, rng=None, stop=None) -> int:
    """Set every batch-norm layer's statistics to those of ``images`` training images, exactly.

    model: a network; its weights are used as they are now (the distorted ones). source: the
    training set (``len()``, ``.batch(indices) -> (x, y)``). images: how many (None: all), a
    random subset in a random order from ``rng``; they are read in ⌈images/pass_size⌉ forward
    passes. Returns the number of images used (0 when the model has no batch norm). The model
    is left in the mode it was in. See the module docstring for the arithmetic. stop: a
    callable checked before each pass (``interrupts.check``; a requested stop raises
    ``EvaluationStopped`` and leaves the statistics as they were).
    """
    layers = [m for m in model.modules() if isinstance(m, BatchNormBase)]
    if not layers:
        return 0
    n = len(source) if images is None else min(int(images), len(source))
    if n < 1:
        raise ValueError("batch-norm re-estimation needs at least one training image")
    rng = rng if rng is not None else backend.global_rng()
    order = backend.permutation(rng, len(source))[:n]
    accumulators = [_Accumulator(m) for m in layers]
    was_training = model.training
    model.eval()
    for acc in accumulators:
        acc.layer.forward = acc.forward          # an instance attribute shadows the method
    try:
        passes = -(-n // pass_size)              # near-equal passes: none of a single image
        with no_grad():
            for i in range(passes):
                check_stop(stop)
                x, _ = source.batch(order[i * n // passes:(i + 1) * n // passes])
                model(x)
    finally:
        for acc in accumulators:
            del acc.layer.forward
        model.train(was_training)
    for acc in accumulators:
        acc.store()
    return n
