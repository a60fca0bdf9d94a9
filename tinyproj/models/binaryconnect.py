"""Merolla et al. Figure 1A: BinaryConnect's CIFAR-10 network, ``bc_cifar10``."""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..errors import UserError
from ..kernels.geometry import trace
from .base import Network, scaled

__all__ = ["BCCifar10", "bc_cifar10", "bc_cifar10_sizes"]


class BCCifar10(Network):
    """The CIFAR-10 network of Figure 1A (BinaryConnect's); build it with :func:`bc_cifar10`."""


def bc_cifar10_sizes(input_size: int) -> list:
    """Side of the feature maps: ``[input, after pool2, pool4, pool6]``; 32 → 16 → 8 → 4.

    The 3×3 convolutions with padding 1 keep the size; only the three 2×2 max-pools shrink
    it, so the input needs a side of at least 8 (the last entry must be >= 1).
    """
    return trace(input_size, [(2, 2, 0)] * 3)


def bc_cifar10(width: float = 1.0, num_classes: int = 10, rng=None, in_channels: int = 3,
               input_size: int = 32) -> BCCifar10:
    """The CIFAR-10 network of Merolla et al. Figure 1A, which is BinaryConnect's::

        (2×128C3)–MP2–(2×256C3)–MP2–(2×512C3)–MP2–1024FC–1024FC–10FC

    Layers, with the names they get (x: (N, 3, 32, 32) → scores (N, 10))::

        conv1 128 3×3 p1, bn1, relu1                            32×32
        conv2 128 3×3 p1, pool2 (max 2×2), bn2, relu2           → 16×16
        conv3 256, bn3, relu3;  conv4 256, pool4, bn4, relu4    → 8×8
        conv5 512, bn5, relu5;  conv6 512, pool6, bn6, relu6    → 4×4
        flatten                                                  (N, 512·4·4 = 8192)
        fc7 1024, bn7, relu7;  fc8 1024, bn8, relu8
        fc9 10, bn9                                              the scores: batch-normed, no ReLU

    * 3×3 convolutions with padding 1 (the size is kept), stride 1; no biases anywhere
      (batch norm's β plays that role). Weights Glorot-uniform.
    * Batch norm after **every** layer, the output layer included (BatchNorm1d on the 10
      scores), as in BinaryConnect; the square hinge loss reads those normalized scores.
      There is no switch for it (``models.build(..., bn=True)`` is refused as meaningless).
    * Order in the pooled blocks: **conv → max-pool → BN → ReLU**, as in BinaryConnect's code
      (``Conv2DLayer`` with identity nonlinearity, ``MaxPool2DLayer``, ``BatchNormLayer``,
      ``rectify``). Batch norm then normalizes the pooled maps. (Because BN can flip signs,
      this is not the same function as conv → BN → ReLU → pool.)
    * No dropout, no biases, no data augmentation (section 4.1).

    width: multiplies every channel and unit count (128·width, ..., 1024·width, each at least
    1); the 10 outputs stay ``num_classes``. ``width=0.25`` gives a fast model for tests.
    in_channels, input_size: the input is (N, in_channels, input_size, input_size); the
    flattened size is computed from them (input_size must survive three 2×2 pools: >= 8).
    rng: generator for the initial weights (default ``backend.global_rng()``).
    """
    c1, c2, c3, fc = (scaled(n, width) for n in (128, 256, 512, 1024))
    sizes = bc_cifar10_sizes(input_size)
    if sizes[-1] < 1:
        raise UserError(f"bc_cifar10: input_size={input_size} is too small for three 2×2 "
                        f"max-pools ({' → '.join(map(str, sizes))}); use at least 8 (CIFAR-10 "
                        "images are 32×32)", flag="--dataset")
    side = sizes[-1]
    layers = OrderedDict()

    def conv(k, c_in, c_out, pool):
        layers[f"conv{k}"] = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng)
        if pool:
            layers[f"pool{k}"] = nn.MaxPool2d(2)
        layers[f"bn{k}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{k}"] = nn.ReLU()

    conv(1, in_channels, c1, pool=False)
    conv(2, c1, c1, pool=True)
    conv(3, c1, c2, pool=False)
    conv(4, c2, c2, pool=True)
    conv(5, c2, c3, pool=False)
    conv(6, c3, c3, pool=True)
    layers["flatten"] = nn.Flatten()
    layers["fc7"] = nn.Linear(c3 * side * side, fc, bias=False, rng=rng)
    layers["bn7"] = nn.BatchNorm1d(fc)
    layers["relu7"] = nn.ReLU()
    layers["fc8"] = nn.Linear(fc, fc, bias=False, rng=rng)
    layers["bn8"] = nn.BatchNorm1d(fc)
    layers["relu8"] = nn.ReLU()
    layers["fc9"] = nn.Linear(fc, num_classes, bias=False, rng=rng)
    layers["bn9"] = nn.BatchNorm1d(num_classes)     # batch norm on the scores, no ReLU
    return BCCifar10(layers)
