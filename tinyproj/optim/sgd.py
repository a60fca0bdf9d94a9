"""Stochastic gradient descent, with optional momentum and weight decay (PyTorch convention).

For each parameter w with gradient g::

    g ← g + weight_decay · w            (L2 penalty, if weight_decay > 0)
    v ← momentum · v + g                (momentum buffer, starts at 0)
    w ← w − lr · v

With momentum = 0 this is plain ``w ← w − lr · g``. ``nesterov=True`` uses
``w ← w − lr · (g + momentum · v)`` instead. (PyTorch's convention: the learning rate
multiplies the whole buffer, so changing lr mid-run takes effect at once.)

The AlexNet run of the paper uses SGD without momentum.
"""
from __future__ import annotations

from .. import backend, kernels
from . import device_scalars
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD(params, lr, momentum=0.0, weight_decay=0.0, nesterov=False); see the module docstring."""

    hyper_names = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def update_flat(self, group, states) -> bool:
        """One ``sgd_update`` launch over the group's flat buffers (the momentum buffers flat
        too); the kernel computes exactly ``update`` below, element by element."""
        has_buf = {"momentum_buffer" in s for s in states}
        if len(has_buf) != 1:
            return False
        first = not has_buf.pop()
        buf = group.state_buffer("momentum_buffer", states) if self.momentum else None
        if backend.is_gpu_array(group.data):     # lr read from device memory (graphs)
            scalars = device_scalars.of(group, 1)
            scalars.write_lr(self.lr)
            kernels.get("sgd_update_scalars", group.data)(group.data, group.grad, buf,
                                                          scalars.values, self.momentum,
                                                          self.weight_decay, self.nesterov,
                                                          first=first)
            return True
        kernels.get("sgd_update", group.data)(group.data, group.grad, buf, self.lr,
                                              self.momentum, self.weight_decay, self.nesterov,
                                              first=first)
        return True

    def update(self, w, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()         # v = μ·0 + g
            else:
                v = state["momentum_buffer"]
                v *= self.momentum
                v += g
            v = state["momentum_buffer"]
            g = g + self.momentum * v if self.nesterov else v
        w -= self.lr * g
