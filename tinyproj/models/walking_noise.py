"""The networks of Walking Noise: the MLP "TFC" (``mlp_tfc``) and LeNet-5 (``lenet5``).

Both take ``bn`` (batch norm after every hidden layer, or not) and ``width`` (multiplies
every hidden unit and channel count, as in bc_cifar10; 1.0 is the paper's network), and two
settings for matching the authors' PyTorch code:

* ``bias``: None (default) gives every Linear/Conv a bias when ``bn=False`` and none when
  ``bn=True`` (batch norm's β is the bias then); True or False forces it for every layer.
  The authors' layers are PyTorch's defaults, which always have a bias (``bias=True``).
* ``init``: "glorot" (default: Glorot-uniform weights, zero biases) or "torch" (PyTorch's
  default: weights and biases U(±1/√fan_in), what the authors trained from; see ``nn.init``).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..errors import UserError
from ..kernels.geometry import trace
from .base import Network, scaled

__all__ = ["MLPTFC", "LeNet5", "mlp_tfc", "lenet5", "lenet5_sizes"]


class MLPTFC(Network):
    """Walking Noise's MLP "TFC"; build it with :func:`mlp_tfc`."""


def _bias(bias, bn: bool) -> bool:
    """The layers' bias switch: ``not bn`` when ``bias`` is None, else ``bias``."""
    if bias is None:
        return not bn
    if isinstance(bias, str) or bias not in (False, True):
        raise UserError(f"--bias must be auto, true or false, got {bias!r}", flag="--bias")
    return bool(bias)


def mlp_tfc(bn: bool = False, in_features: int = 784, hidden: int = 64, num_classes: int = 10,
            rng=None, width: float = 1.0, bias=None, init: str = "glorot") -> MLPTFC:
    """The MLP "TFC" of Walking Noise (FINN/Brevitas's tiny fully connected net)::

        flatten                                    (N, 1, 28, 28) → (N, 784)
        fc1 64, [bn1], relu1
        fc2 64, [bn2], relu2
        fc3 64, [bn3], relu3
        fc4 num_classes                            the scores (logits), no BN, no ReLU

    width: the hidden layers get ``round(hidden · width)`` units (at least 1): width 0.5
    gives 32 units, width 2 gives 128. The input and output sizes do not change.

    Biases (``bias=None``): with ``bn=True`` no layer has a bias (the TFC of FINN/Brevitas:
    batch norm's β is the bias); with ``bn=False`` every Linear has one, otherwise the
    network could not shift its units at all. ``bias=True`` gives every Linear a bias
    whatever ``bn`` (the authors' PyTorch layers), ``bias=False`` none.
    init: "glorot" or "torch" (PyTorch's default, the authors'); see the module docstring.

    Noise sites (Walking Noise: input + every linear + BN + ReLU + logits, not flatten):
    1 + 4 + 3 = 8 without BN, 11 with BN.
    """
    units = scaled(hidden, width)
    has_bias = _bias(bias, bn)
    layers = OrderedDict()
    layers["flatten"] = nn.Flatten()
    n_in = in_features
    for k in (1, 2, 3):
        layers[f"fc{k}"] = nn.Linear(n_in, units, bias=has_bias, rng=rng, init=init)
        if bn:
            layers[f"bn{k}"] = nn.BatchNorm1d(units)
        layers[f"relu{k}"] = nn.ReLU()
        n_in = units
    layers["fc4"] = nn.Linear(n_in, num_classes, bias=has_bias, rng=rng, init=init)
    return MLPTFC(layers)


class LeNet5(Network):
    """LeNet-5 with ReLU and max-pooling; build it with :func:`lenet5`."""


def lenet5_sizes(input_size: int, conv1_padding: int = 0) -> list:
    """Side of the feature maps: ``[input, conv1, pool1, conv2, pool2]``.

    The authors' LeNet-5 pads nothing: 28 → 24 → 12 → 8 → 4 on MNIST (fc3 gets 16·4·4 = 256
    inputs) and 32 → 28 → 14 → 10 → 5 on CIFAR-10/SVHN (16·5·5 = 400). The classic LeNet's
    ``conv1_padding=2`` on MNIST gives 28 → 28 → 14 → 10 → 5 (400).
    """
    return trace(input_size, [(5, 1, conv1_padding), (2, 2, 0), (5, 1, 0), (2, 2, 0)])


def lenet5(bn: bool = False, num_classes: int = 10, in_channels: int = 1, rng=None,
           input_size: int = 28, width: float = 1.0, bias=None, init: str = "glorot",
           conv1_padding: int = 0) -> LeNet5:
    """LeNet-5 as in Walking Noise: C6@5–M2–C16@5–M2–FC120–FC84–FC10::

                                                  MNIST (1×28×28)      CIFAR-10, SVHN (3×32×32)
        conv1 6 5×5, [bn1], relu1                 (N, 6, 24, 24)       (N, 6, 28, 28)
        pool1 (max 2×2)                           (N, 6, 12, 12)       (N, 6, 14, 14)
        conv2 16 5×5, [bn2], relu2                (N, 16, 8, 8)        (N, 16, 10, 10)
        pool2                                     (N, 16, 4, 4)        (N, 16, 5, 5)
        flatten                                   (N, 256)             (N, 400)
        fc3 120, [bn3], relu3                     (N, 120)
        fc4 84, [bn4], relu4                      (N, 84)
        fc5 num_classes                           (N, 10) the scores (logits)

    * No padding anywhere, as the authors' code (``nn.Conv2d(..., kernel_size=5)``, fc3 a
      ``LazyLinear``): on MNIST fc3 has 256 inputs. ``conv1_padding=2`` gives the classic
      LeNet on MNIST (28 padded to 32, fc3 with 400 inputs). The flattened size is computed
      from ``input_size`` (:func:`lenet5_sizes`), which must be the side of the images.
    * ReLU and max-pooling (the modern LeNet-5 of Walking Noise, not tanh/subsampling);
      order conv → [BN] → ReLU → pool.
    * Biases as in :func:`mlp_tfc`: with ``bias=None`` every layer has one when ``bn=False``,
      none when ``bn=True``; ``bias=True``/``False`` forces it. BN (when on) follows every
      conv and hidden FC, never the output.
    * init: "glorot" or "torch" (PyTorch's default, the authors'); see the module docstring.
    * width: multiplies the channel and unit counts 6, 16, 120, 84 (each rounded, at least 1).

    Noise sites (input + conv/linear + BN + ReLU + pool + logits): 12 without BN, 16 with.
    """
    c1, c2, f3, f4 = (scaled(n, width) for n in (6, 16, 120, 84))
    if isinstance(conv1_padding, bool) or not isinstance(conv1_padding, int) or conv1_padding < 0:
        raise UserError(f"lenet5: conv1_padding must be an integer >= 0, got {conv1_padding!r}")
    sizes = lenet5_sizes(input_size, conv1_padding)
    if sizes[-1] < 1:
        raise UserError(f"lenet5: input_size={input_size} is too small for two 5×5 convs and "
                        "two 2×2 pools; use 28 (MNIST) or 32 (CIFAR-10)", flag="--dataset")
    side = sizes[-1]
    has_bias = _bias(bias, bn)
    layers = OrderedDict()

    def block(k, layer, n_out, bn_cls, pool):
        layers[f"{'conv' if isinstance(layer, nn.Conv2d) else 'fc'}{k}"] = layer
        if bn:
            layers[f"bn{k}"] = bn_cls(n_out)
        layers[f"relu{k}"] = nn.ReLU()
        if pool:
            layers[f"pool{k}"] = nn.MaxPool2d(2)

    opts = dict(bias=has_bias, rng=rng, init=init)
    block(1, nn.Conv2d(in_channels, c1, 5, padding=conv1_padding, **opts), c1,
          nn.BatchNorm2d, pool=True)
    block(2, nn.Conv2d(c1, c2, 5, **opts), c2, nn.BatchNorm2d, pool=True)
    layers["flatten"] = nn.Flatten()
    block(3, nn.Linear(c2 * side * side, f3, **opts), f3, nn.BatchNorm1d, pool=False)
    block(4, nn.Linear(f3, f4, **opts), f4, nn.BatchNorm1d, pool=False)
    layers["fc5"] = nn.Linear(f4, num_classes, **opts)
    return LeNet5(layers)
