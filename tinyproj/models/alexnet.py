"""AlexNet with batch norm and no biases (Merolla et al. section 4.2): ``alexnet_bn``."""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..errors import UserError
from ..kernels.geometry import trace
from .base import Network, scaled

__all__ = ["AlexNetBN", "alexnet_bn", "alexnet_sizes"]


class AlexNetBN(Network):
    """AlexNet with batch norm and no biases; build it with :func:`alexnet_bn`."""


def alexnet_sizes(input_size: int, conv1_padding: int = 0) -> list:
    """Side of the feature maps: ``[input, conv1, pool1, pool2, pool5]``.

    conv1 is 11×11 stride 4; conv2..conv5 keep the size (padding); the three 3×3/2 pools
    shrink it. 227 → 55 → 27 → 13 → 6 (the classic AlexNet); 224 → 54 → 26 → 12 → 5;
    the smallest side that survives is 67 (→ 15 → 7 → 3 → 1); 32 → 6 → 2 → 0 does not.
    """
    return trace(input_size, [(11, 4, conv1_padding)] + [(3, 2, 0)] * 3)


def alexnet_bn(num_classes: int = 1000, input_size: int = 224, width: float = 1.0, rng=None,
               dropout: float = 0.0, output_bn: bool = False, in_channels: int = 3,
               conv1_padding: int = 0) -> AlexNetBN:
    """AlexNet (Krizhevsky et al. 2012, single tower) with batch norm, as in section 4.2::

        conv1 96 11×11 stride 4 (padding conv1_padding), bn1, relu1, pool1 (max 3×3 stride 2)
        conv2 256 5×5 p2, bn2, relu2, pool2 (3×3/2)
        conv3 384 3×3 p1, bn3, relu3
        conv4 384 3×3 p1, bn4, relu4
        conv5 256 3×3 p1, bn5, relu5, pool5 (3×3/2)
        flatten
        fc6 4096, bn6, relu6, [drop6];  fc7 4096, bn7, relu7, [drop7]
        fc8 num_classes [, bn8]                                  the scores

    * Order: conv → BN → ReLU → pool (the usual batch-norm AlexNet; unlike bc_cifar10, whose
      order follows BinaryConnect's code). Overlapping 3×3 pools with stride 2.
    * No biases. Weights Glorot-uniform.
    * The paper says only "5 conv + 2 FC (+ output) with batch norm". BN follows every conv
      and the two hidden FC layers; on the 1000 output scores it is off by default
      (``output_bn=True`` puts it there too, like bc_cifar10).
    * dropout: probability for Dropout after relu6 and relu7 (classic AlexNet used 0.5);
      0 (default) means no Dropout layers at all, since batch norm replaces it in the paper.

    input_size: side of the square input; the flattened size is computed from it with
    :func:`alexnet_sizes` (224 gives 256·5·5, 227 gives 256·6·6 = 9216). Small inputs work
    for tests: ``alexnet_bn(10, input_size=67, width=0.125)``.
    width: multiplies every channel and unit count (each at least 1).
    rng: generator for the initial weights and (when dropout > 0) the dropout masks.
    """
    c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
    fc = scaled(4096, width)
    sizes = alexnet_sizes(input_size, conv1_padding)
    if min(sizes) < 1:
        raise UserError(f"alexnet_bn: input_size={input_size} is too small; the feature maps "
                        f"would shrink to nothing ({' → '.join(map(str, sizes))}). Use "
                        f"input_size >= 67 (224 or 227 for ImageNet).", flag="--dataset")
    side = sizes[-1]
    layers = OrderedDict()
    specs = [  # (k, c_in, c_out, kernel, stride, padding, pool after)
        (1, in_channels, c[0], 11, 4, conv1_padding, True),
        (2, c[0], c[1], 5, 1, 2, True),
        (3, c[1], c[2], 3, 1, 1, False),
        (4, c[2], c[3], 3, 1, 1, False),
        (5, c[3], c[4], 3, 1, 1, True),
    ]
    for k, c_in, c_out, kernel, stride, padding, pool in specs:
        layers[f"conv{k}"] = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                       bias=False, rng=rng)
        layers[f"bn{k}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{k}"] = nn.ReLU()
        if pool:
            layers[f"pool{k}"] = nn.MaxPool2d(3, stride=2)
    layers["flatten"] = nn.Flatten()
    n_in = c[4] * side * side
    for k in (6, 7):
        layers[f"fc{k}"] = nn.Linear(n_in, fc, bias=False, rng=rng)
        layers[f"bn{k}"] = nn.BatchNorm1d(fc)
        layers[f"relu{k}"] = nn.ReLU()
        if dropout:
            layers[f"drop{k}"] = nn.Dropout(dropout, rng=rng)
        n_in = fc
    layers["fc8"] = nn.Linear(n_in, num_classes, bias=False, rng=rng)
    if output_bn:
        layers["bn8"] = nn.BatchNorm1d(num_classes)
    return AlexNetBN(layers)
