"""Adam (Kingma & Ba, 2015) with bias correction.

For each parameter w with gradient g, at its t-th update (t = 1, 2, ...)::

    m ← β1 · m + (1 − β1) · g            first moment (mean of g), m starts at 0
    v ← β2 · v + (1 − β2) · g²           second moment (mean of g²), v starts at 0
    m̂ = m / (1 − β1^t)                   bias correction: m and v start at 0, so early
    v̂ = v / (1 − β2^t)                   averages are too small by exactly these factors
    w ← w − lr · m̂ / (sqrt(v̂) + eps)

The step is about lr in size whatever the scale of g (m̂/sqrt(v̂) is scale free), which
is why Adam tolerates the paper's projected (e.g. binarized) forward passes.
Everything stays in the parameter's dtype (float32) and is done in place.
The CIFAR-10 runs of the paper use Adam with lr 0.003 (BinaryConnect's decay schedule).
"""
from __future__ import annotations

from .. import backend, kernels
from . import device_scalars
from .optimizer import Optimizer

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8); see the module docstring.

    state per parameter: ``m`` and ``v`` (arrays like the parameter) and ``step`` (t, the
    number of updates this parameter received — a parameter without a gradient in some
    step is not updated and its t does not advance, as in PyTorch).
    """

    hyper_names = ("lr", "betas", "eps")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        beta1, beta2 = (float(b) for b in betas)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"Adam: betas must each be in [0, 1), got {tuple(betas)!r}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps!r}")
        self.betas = (beta1, beta2)
        self.eps = float(eps)

    def update(self, w, g, state):
        xp = backend.xp_of(w)
        beta1, beta2 = self.betas
        if "m" not in state:
            state["m"] = xp.zeros_like(w)
            state["v"] = xp.zeros_like(w)
            state["step"] = 0
        state["step"] += 1
        # the formulas of the docstring, in one pass over the arrays (kernels/reference.py
        # holds them as plain array code; the Numba kernel gives the same bits)
        kernels.get("adam_update", w)(w, g, state["m"], state["v"], self.lr, beta1, beta2,
                                      self.eps, state["step"])

    def update_flat(self, group, states) -> bool:
        """One ``adam_update`` launch over the group's flat buffers (m and v flat too), when
        every parameter is at the same step count t (always, unless some parameter missed a
        gradient in an earlier step: then per parameter, each with its own t)."""
        steps = {s.get("step", 0) if "m" in s else 0 for s in states}
        if len(steps) != 1 or any(("m" in s) != ("m" in states[0]) for s in states):
            return False
        m = group.state_buffer("m", states)
        v = group.state_buffer("v", states)
        t = steps.pop() + 1
        for s in states:
            s["step"] = t
        beta1, beta2 = self.betas
        if backend.is_gpu_array(group.data):     # lr, t, 1 − β^t in device memory
            scalars = device_scalars.of(group, 3)
            scalars.write_lr(self.lr)
            scalars.advance_adam(t, self.betas)
            kernels.get("adam_update_scalars", group.data)(group.data, group.grad, m, v,
                                                           scalars.values, beta1, beta2,
                                                           self.eps)
            return True
        kernels.get("adam_update", group.data)(group.data, group.grad, m, v, self.lr, beta1,
                                               beta2, self.eps, t)
        return True

    def replayed_group(self, group, states) -> None:
        for s in states:
            s["step"] = s.get("step", 0) + 1
        if getattr(group, "step_scalars", None) is not None:
            group.step_scalars.replayed()

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self.betas = tuple(float(b) for b in self.betas)
