"""Batch normalization layers, with the re-estimation mode of Merolla et al.'s test protocol.

    y = γ · (x − μ) / sqrt(σ² + eps) + β          per channel c

BatchNorm1d takes x (N, C); BatchNorm2d takes x (N, C, H, W) (statistics over N, H, W).

Three uses (the arithmetic is in ``functional/normalization.py``):

training mode
    μ, σ² are the batch statistics (σ² biased); the running estimates are updated in
    place with the PyTorch convention

        running_mean ← (1 − momentum) · running_mean + momentum · μ
        running_var  ← (1 − momentum) · running_var  + momentum · σ² · m/(m − 1)

    (m values per channel: the running variance uses the unbiased batch variance).
    momentum=None: the cumulative average since the last reset (momentum 1/k at the k-th
    batch, k = num_batches_tracked), computed on the device without reading k back.
evaluation mode (``model.eval()``)
    μ, σ² are ``running_mean`` and ``running_var``.
re-estimation (``start_reestimation()`` ... ``stop_reestimation()``)
    Resets running_mean = 0, running_var = 1 and a counter k = 0. The k-th
    training-mode batch after that (k = 0, 1, ...) uses momentum 1/(k + 1), so after
    K batches the running values are the plain averages over those K batches::

        running_mean = (1/K) Σ_k μ_k,     running_var = (1/K) Σ_k σ²_k · m/(m − 1)

    This is how the paper re-estimates the statistics on training data after the
    weights have been distorted, before scoring the test set.
"""
from __future__ import annotations

from .. import backend
from .. import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["BatchNormBase", "BatchNorm1d", "BatchNorm2d", "start_bn_reestimation",
           "stop_bn_reestimation"]


class BatchNormBase(Module):
    """Shared code of BatchNorm1d/2d. ``_ndim`` is the input rank the subclass expects."""

    _ndim = 2
    _layout = "(N, C)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True):
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] (or None for a cumulative "
                             f"average), got {momentum!r}")
        self.num_features = num_features
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = bool(affine)
        if affine:
            self.weight = Parameter(init.ones(num_features))    # γ
            self.bias = Parameter(init.zeros(num_features))     # β
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", init.zeros(num_features))
        self.register_buffer("running_var", init.ones(num_features))
        self.register_buffer("num_batches_tracked", backend.xp().zeros((), dtype="int64"))
        self.reestimating = False
        self.reestimation_batches = 0   # k: batches seen since start_reestimation()

    # -- re-estimation ------------------------------------------------------
    def reset_running_stats(self) -> None:
        """running_mean ← 0, running_var ← 1, num_batches_tracked ← 0 (in place)."""
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.num_batches_tracked[...] = 0

    def start_reestimation(self) -> None:
        """Reset the running statistics and average them over the coming training-mode batches.

        The k-th batch (k = 0, 1, ...) uses momentum 1/(k + 1): after K batches the
        running mean is exactly the mean of the K batch means (and likewise the variance).
        """
        self.reset_running_stats()
        self.reestimating = True
        self.reestimation_batches = 0

    def stop_reestimation(self) -> None:
        """Back to the ordinary momentum; the re-estimated statistics are kept."""
        self.reestimating = False

    # -- forward ------------------------------------------------------------
    def _momentum(self) -> float:
        """The host momentum of this batch: 1/(k + 1) while re-estimating (k counted on the
        host), else the fixed one (momentum=None is handled by ``_cumulative_forward``)."""
        if self.reestimating:
            k = self.reestimation_batches
            self.reestimation_batches = k + 1
            return 1.0 / (k + 1)
        return float(self.momentum)

    def forward(self, x, relu: bool = False):
        """y = γ·x̂ + β (see the module docstring); relu=True returns relu(y), computed in the
        same kernel (``nn.Sequential`` asks for it when a ReLU follows this layer)."""
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"{self._layout.replace('C', str(self.num_features))}, "
                             f"got {tuple(x.shape)}")
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                training=False, momentum=0.0, eps=self.eps, relu=relu)
        m = x.size // x.shape[1]
        if m < 2:
            raise ValueError(f"{self.describe()}: training mode needs more than one value per "
                             f"channel to compute batch statistics, got input of shape "
                             f"{tuple(x.shape)} (use a batch larger than 1, or call eval())")
        if self.momentum is None and not self.reestimating:
            return self._cumulative_forward(x, relu)
        # the counter is raised by one inside the kernel
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=True, momentum=self._momentum(), eps=self.eps, relu=relu,
                            tracked=self.num_batches_tracked)

    def _cumulative_forward(self, x, relu: bool):
        """Training with momentum=None: the running statistics are the plain average of the
        batch statistics since the last reset. With k = num_batches_tracked after this batch::

            w = 1/k  (a 0-d device array),   running ← (1 − w)·running + w·batch

        The fused kernel takes its momentum as a host number (a launch argument), and reading
        k back to the host would be one sync per layer and step on a GPU (a CUDA graph could
        not hold it). So the kernel runs with momentum 1, which writes the batch statistics
        (variance unbiased, ·m/(m − 1)) into two fresh zero arrays, and w stays on the device.
        The arrays are fresh so that 0·(an old inf or NaN) cannot leak into this batch.
        """
        xp = backend.xp_of(self.running_mean)
        batch_mean = xp.zeros_like(self.running_mean)
        batch_var = xp.zeros_like(self.running_var)
        y = F.batch_norm(x, batch_mean, batch_var, self.weight, self.bias, training=True,
                         momentum=1.0, eps=self.eps, relu=relu, tracked=self.num_batches_tracked)
        w = (1.0 / self.num_batches_tracked).astype(self.running_mean.dtype)
        for running, batch in ((self.running_mean, batch_mean), (self.running_var, batch_var)):
            running *= 1 - w
            running += w * batch
        return y

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        return s + (", reestimating" if self.reestimating else "")


class BatchNorm1d(BatchNormBase):
    """Batch norm over x (N, C): one (γ, β, running mean/var) per feature C."""

    _ndim = 2
    _layout = "(N, C)"


class BatchNorm2d(BatchNormBase):
    """Batch norm over x (N, C, H, W): statistics per channel over N, H and W."""

    _ndim = 4
    _layout = "(N, C, H, W)"


def _bn_modules(model):
    return [m for m in model.modules() if isinstance(m, BatchNormBase)]


def start_bn_reestimation(model) -> list:
    """Call ``start_reestimation()`` on every batch-norm layer of ``model``; returns them."""
    layers = _bn_modules(model)
    for bn in layers:
        bn.start_reestimation()
    return layers


def stop_bn_reestimation(model) -> list:
    """Call ``stop_reestimation()`` on every batch-norm layer of ``model``; returns them."""
    layers = _bn_modules(model)
    for bn in layers:
        bn.stop_reestimation()
    return layers


_BatchNorm = BatchNormBase   # older spelling, kept for code that already imports it
