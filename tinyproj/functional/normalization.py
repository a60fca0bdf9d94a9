"""Batch normalization (Ioffe & Szegedy 2015) with its three uses.

For x of shape (N, C) or (N, C, H, W), statistics are per channel c, over
the batch (and the spatial positions):

    μ_c = mean(x[:, c]),   σ²_c = mean((x[:, c] − μ_c)²)          (biased, as in the paper)
    x̂ = (x − μ) / sqrt(σ² + eps),   y = γ · x̂ + β

training=True
    normalize with the batch statistics and update the running estimates in
    place:  running ← (1 − momentum)·running + momentum·batch, where the
    running variance uses the unbiased batch variance σ²·m/(m−1) (m values
    per channel) — the same convention as PyTorch.
training=False
    normalize with the running estimates (evaluation).
re-estimation (Merolla's test protocol)
    reset the running statistics and pass ``momentum = 1/(k+1)`` for the k-th
    batch (k = 0, 1, ...): the running values then become the cumulative
    average over all batches seen. ``nn.BatchNorm`` does this bookkeeping.

Backward in training mode (m values per channel, ĝ = dL/dx̂ = gy·γ)::

    dx = (1/m) · (1/sqrt(σ²+eps)) · (m·ĝ − Σĝ − x̂·Σ(ĝ·x̂))
    dγ = Σ gy·x̂,   dβ = Σ gy
"""
from __future__ import annotations

from .. import kernels
from ..tensor import Function, as_tensor


class BatchNorm(Function):
    """Batch norm, optionally followed by a ReLU in the same kernel (``relu=True``).

    tracked: the layer's 0-d int64 batch counter, raised by one by the kernel in training
    mode (or None). The running statistics, the counter and the ReLU cost no array operation
    of their own: ``kernels.get("batchnorm_forward_fused")`` does them in the same launch (on a
    GPU) or the same pass (Numba); ``kernels/reference.py`` holds them as plain array code.
    """

    def __init__(self, running_mean, running_var, training, momentum, eps, relu=False,
                 tracked=None):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps
        self.relu, self.tracked = relu, tracked

    def forward(self, x, gamma, beta):
        if x.ndim not in (2, 4):
            raise ValueError(f"batch_norm: input must be (N, C) or (N, C, H, W), got {tuple(x.shape)}")
        c = x.shape[1]
        for what, arr in (("gamma", gamma), ("beta", beta), ("running_mean", self.running_mean),
                          ("running_var", self.running_var)):
            if arr is not None and tuple(arr.shape) != (c,):
                raise ValueError(f"batch_norm: {what} has shape {tuple(arr.shape)} but the input "
                                 f"of shape {tuple(x.shape)} has {c} channels: expected ({c},)")
        if self.training and x.size // c < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, "
                             f"got input of shape {tuple(x.shape)}")
        if not self.training and self.running_mean is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        # the array work (statistics, x̂, γ·x̂ + β) is a kernel: kernels/reference.py holds
        # the readable version of exactly the formulas above. Backward recomputes x̂ from x
        # (which the graph keeps anyway) instead of keeping an x̂ array per layer.
        # The running statistics (training) are updated in place by the same kernel:
        #   running ← (1 − momentum)·running + momentum·batch  (variance: unbiased, ·m/(m−1))
        y, mean, var, self.inv_std = kernels.get("batchnorm_forward_fused", x)(
            x, self.running_mean, self.running_var, self.eps, gamma, beta, self.training,
            relu=self.relu, running_mean=self.running_mean if self.training else None,
            running_var=self.running_var if self.training else None,
            momentum=self.momentum if self.training else 0.0,
            tracked=self.tracked if self.training else None)
        # in evaluation mode mean is the running mean itself: copy it, since the running
        # statistics may change before backward runs (only needed when backward will run)
        self.x = x
        self.mean = mean if self.training or not self.recording else mean.copy()
        self.gamma = gamma
        self.y = y if self.relu else None          # the ReLU's output decides its gradient
        return y

    def backward(self, gy):
        # γ's and β's gradients straight into the optimizer's flat buffer when it offers
        # slots for them (tensor.py, Function.grad_slots): no copy afterwards
        slots = getattr(self, "grad_slots", None)
        out = (slots[1], slots[2]) if slots is not None and len(slots) == 3 else None
        gx, ggamma, gbeta = kernels.get("batchnorm_backward_fused", gy)(
            gy, self.x, self.mean, self.inv_std, self.gamma, self.training, relu_out=self.y,
            out=out)
        return gx, (ggamma if self.gamma is not None else None), gbeta


def batch_norm(x, running_mean=None, running_var=None, gamma=None, beta=None,
               training=True, momentum=0.1, eps=1e-5, relu=False, tracked=None):
    """Batch normalization of x (N, C) or (N, C, H, W) per channel; see the module docstring.

    running_mean, running_var : arrays (C,) updated in place when training (or None).
    gamma, beta : Tensors (C,) (scale and shift) or None.
    relu : also apply the ReLU that follows, in the same kernel: ``relu(batch_norm(x))``.
    tracked : a 0-d int64 array raised by one per training batch (the layer's counter), or None.
    """
    x = as_tensor(x)
    inputs = [x, gamma, beta]
    fn = BatchNorm(running_mean, running_var, training, momentum, eps, relu, tracked)
    if gamma is None or beta is None:
        # the Function takes tensors only; absent affine parameters are constants
        return _BatchNormPartial(fn, gamma is not None, beta is not None)(
            *[t for t in inputs if t is not None])
    return fn(x, gamma, beta)


class _BatchNormPartial(Function):
    """Adapter for batch norm without γ and/or β (keeps the graph free of dummy inputs)."""

    def __init__(self, inner, has_gamma, has_beta):
        self.inner, self.has_gamma, self.has_beta = inner, has_gamma, has_beta

    def forward(self, x, *params):
        params = list(params)
        gamma = params.pop(0) if self.has_gamma else None
        beta = params.pop(0) if self.has_beta else None
        return self.inner.forward(x, gamma, beta)

    def backward(self, gy):
        gx, ggamma, gbeta = self.inner.backward(gy)
        out = [gx]
        if self.has_gamma:
            out.append(ggamma)
        if self.has_beta:
            out.append(gbeta)
        return tuple(out)

    def release(self):
        self.inner.release()
