"""The PyTorch side of ``tinyproj bench``: the same network and the same Algorithm-1 step.

PyTorch is an optional extra (``pip install -e ".[bench]"``); this module is imported only by
the benchmark, lazily, and never by the rest of tinyproj. It mirrors tinyproj exactly so
the two timings compare like with like:

* ``bc_cifar10(width)``: the layers of ``tinyproj.models.bc_cifar10`` in the same order
  (conv → [max-pool] → BN → ReLU, no biases, BN on the scores), float32, batch-norm
  momentum 0.1 and eps 1e-5.
* ``train_step``: Algorithm 1 with the Sign projection — P = α·sign(W) with sign(0) = +1
  and α = max|W| per tensor, forward and backward with P, Adam on W with ∂L/∂P, then W
  clipped to [−c_k, c_k] with tinyproj's own bounds — and the square hinge loss
  mean over samples and classes of max(0, 1 − t·s)².
"""
from __future__ import annotations

import torch
from torch import nn


def bc_cifar10(width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    """BinaryConnect's CIFAR-10 network, layer for layer as in tinyproj.models.bc_cifar10."""
    c1, c2, c3, fc = (max(1, int(round(n * width))) for n in (128, 256, 512, 1024))
    layers = []

    def conv(c_in, c_out, pool):
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))
        if pool:
            layers.append(nn.MaxPool2d(2))
        layers.extend([nn.BatchNorm2d(c_out), nn.ReLU()])

    conv(3, c1, False)
    conv(c1, c1, True)
    conv(c1, c2, False)
    conv(c2, c2, True)
    conv(c2, c3, False)
    conv(c3, c3, True)
    layers += [nn.Flatten(), nn.Linear(c3 * 16, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(),
               nn.Linear(fc, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(),
               nn.Linear(fc, num_classes, bias=False), nn.BatchNorm1d(num_classes)]
    return nn.Sequential(*layers)


def square_hinge_loss(scores, labels):
    """mean over n and k of max(0, 1 − t[n,k]·s[n,k])², t = +1 for the true class, else −1."""
    t = -torch.ones_like(scores)
    t[torch.arange(len(labels)), labels] = 1.0
    return torch.clamp(1.0 - t * scores, min=0.0).pow(2).mean()


class SignStep:
    """One Algorithm-1 step with the Sign projection, clipping and Adam, in PyTorch.

    bounds: ``[c_k]`` for the weights (ndim ≥ 2) in order, taken from tinyproj's
    ``clipping.clip_bounds`` for the same width, so both clip to the same values.
    """

    def __init__(self, model, bounds, lr=0.003):
        self.model = model
        self.weights = [p for p in model.parameters() if p.ndim >= 2]
        self.bounds = list(bounds)
        if len(self.bounds) != len(self.weights):
            raise ValueError(f"{len(self.bounds)} clip bounds for {len(self.weights)} weights")
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)

    def __call__(self, x, y) -> float:
        saved = [p.data for p in self.weights]
        for p in self.weights:                                  # lines 1-3: P = α·sign(W)
            w = p.data
            p.data = torch.where(w >= 0, 1.0, -1.0) * w.abs().max()
        loss = square_hinge_loss(self.model(x), y)              # line 5
        self.opt.zero_grad(set_to_none=True)
        loss.backward()                                         # line 7: ∂L/∂P
        for p, w in zip(self.weights, saved):                   # line 9: update W
            p.data = w
        self.opt.step()
        with torch.no_grad():                                   # lines 11-12: clip
            for p, c in zip(self.weights, self.bounds):
                p.clamp_(-c, c)
        return float(loss.detach())
