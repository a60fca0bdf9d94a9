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
* ``to_torch(model)``: any tinyproj model of the layers PyTorch also has (conv, linear,
  batch norm, ReLU, max-pool, flatten; dropout left out), with tinyproj's weights — the
  twin that ``bench --device gpu`` times (bc_cifar10 and AlexNet-BN), tested equal.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import backend


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

    def __call__(self, x, y):
        """One step; returns the loss as a 0-d tensor on the device (no sync: the timed step
        must not wait for the GPU where tinyproj's does not; ``float()`` it to read it)."""
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
        return loss.detach()


def to_torch(model, torch_device):
    """A torch.nn.Sequential with tinyproj ``model``'s layers and weights, in its order."""
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            t = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          stride=layer.stride, padding=layer.padding, bias=False)
        elif kind == "Linear":
            t = nn.Linear(layer.in_features, layer.out_features, bias=False)
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            n = int(np.prod(layer.weight.data.shape))
            t = getattr(nn, kind)(n, eps=1e-5, momentum=0.1)
        elif kind == "ReLU":
            t = nn.ReLU()
        elif kind == "MaxPool2d":
            t = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif kind == "Flatten":
            t = nn.Flatten()
        elif kind == "Dropout":
            continue
        else:
            raise TypeError(f"to_torch: no PyTorch twin for tinyproj layer {kind}")
        if kind in ("Conv2d", "Linear"):
            with torch.no_grad():
                t.weight.copy_(torch.as_tensor(backend.to_numpy(layer.weight.data)))
        layers.append(t)
    return nn.Sequential(*layers).to(torch_device)


def torch_step(tmodel, bounds, batch, shape, torch_device, optimizer="adam", seed=0):
    """A function running one Algorithm-1 step of ``tmodel`` on a fixed random minibatch:
    :class:`SignStep` (Adam, square hinge) or :class:`SignSGDStep` (SGD, cross-entropy)."""
    tmodel.train()
    if optimizer == "adam":
        step = SignStep(tmodel, bounds)
    else:
        step = SignSGDStep(tmodel, bounds)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch,) + shape, generator=g).to(torch_device)
    y = (torch.arange(batch) % 10).to(torch_device)
    return lambda: step(x, y)


class SignSGDStep:
    """Algorithm 1 with Sign, plain SGD and cross-entropy (the AlexNet step), in PyTorch."""

    def __init__(self, model, bounds, lr=0.01):
        self.model, self.bounds = model, bounds
        self.weights = [p for p in model.parameters() if p.ndim >= 2]
        self.opt = torch.optim.SGD(model.parameters(), lr=lr)

    def __call__(self, x, y):
        saved = [w.detach().clone() for w in self.weights]
        with torch.no_grad():
            for w in self.weights:
                w.copy_(torch.where(w >= 0, 1.0, -1.0) * w.abs().max())
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for w, s in zip(self.weights, saved):
                w.copy_(s)
        self.opt.step()
        with torch.no_grad():
            for w, c in zip(self.weights, self.bounds):
                w.clamp_(-c, c)


def torch_forward(tmodel, images, batch, shape, torch_device, train_mode):
    """Forward passes of ``tmodel`` over ``images`` random images without gradients."""
    x = torch.randn((batch,) + shape).to(torch_device)

    def run():
        tmodel.train(train_mode)
        with torch.no_grad():
            for _ in range(max(1, images // batch)):
                tmodel(x)
    return run
