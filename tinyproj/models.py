"""The networks of the two papers: bc_cifar10, alexnet_bn, mlp_tfc, lenet5.

Every model is an ``nn.Sequential`` of *named* layers (a flat list, no nesting), so the
parameter names say where a weight lives and stay the same from run to run::

    model = models.bc_cifar10()
    [name for name, _ in model.named_parameters()][:4]
    # ['conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight']

Naming rule: the k-th weight layer (conv or fully connected, counted from the input) is
``conv<k>`` or ``fc<k>``; its batch norm is ``bn<k>``, its ReLU ``relu<k>``, its pooling
``pool<k>`` and its dropout ``drop<k>``. So "layer k" of Algorithm 1 (``for k = 1 to N``) and
of the per-layer figures (Figure 1C/D) is the layer whose names end in k.

============  =======================================================================  =========
function      layers (input → scores)                                                  weights
============  =======================================================================  =========
bc_cifar10    (2×128C3)–MP2–(2×256C3)–MP2–(2×512C3)–MP2–1024FC–1024FC–10FC, BN after   9
              every layer (the output too), ReLU, no biases (Merolla Fig. 1A =
              BinaryConnect's CIFAR-10 net), input 3×32×32
alexnet_bn    5 conv (96 11×11/4, 256 5×5, 384, 384, 256 3×3) + BN + ReLU, max-pool    8
              3×3/2 after conv1, conv2, conv5, then FC 4096–4096–classes with BN,
              no biases
mlp_tfc       Flatten, 3 × (Linear 64, [BN], ReLU), Linear 10 (Walking Noise's TFC)    4
lenet5        C6@5–M2–C16@5–M2–FC120–FC84–FC10, ReLU, optional BN                      5
============  =======================================================================  =========

``build(name, **kwargs)`` builds one by name (``MODELS`` lists them); every function takes
``rng`` (the generator for the Glorot-uniform initial weights, rule 5 of DESIGN.md).

The weights that Algorithm 1 projects and clips are the parameters with ndim ≥ 2 (conv and
linear weights); see :func:`tinyproj.algorithm1.weight_params`. Biases and batch-norm
parameters are never projected or clipped.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict

from . import nn

__all__ = ["bc_cifar10", "alexnet_bn", "mlp_tfc", "lenet5", "MODELS", "build", "scaled",
           "BCCifar10", "AlexNetBN", "MLPTFC", "LeNet5"]


def scaled(n: int, width: float) -> int:
    """``round(n · width)``, at least 1: the channel or unit count of a width-scaled model."""
    if not width > 0:
        raise ValueError(f"width must be a positive number (1.0 = the paper's sizes, 0.25 = a "
                         f"quarter of the channels), got {width!r}")
    return max(1, int(round(n * width)))


def _conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial output size of a conv or pool: (size + 2·padding − kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


class _Network(nn.Sequential):
    """A Sequential of named layers; subclasses only build the ``OrderedDict`` of layers.

    The class name shows in ``repr(model)`` and in error messages of the layers' root.
    """

    def weight_layer_names(self) -> list:
        """Names of the conv/linear layers in order (``["conv1", ..., "fc9"]``): the k of
        Algorithm 1."""
        return [name for name, m in self.named_children() if isinstance(m, (nn.Conv2d, nn.Linear))]


# ---------------------------------------------------------------------------
# Merolla et al. Figure 1A / BinaryConnect's CIFAR-10 network
# ---------------------------------------------------------------------------
class BCCifar10(_Network):
    """The CIFAR-10 network of Figure 1A (BinaryConnect's); build it with :func:`bc_cifar10`."""


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
    * Order in the pooled blocks: **conv → max-pool → BN → ReLU**, as in BinaryConnect's code
      (``Conv2DLayer`` with identity nonlinearity, ``MaxPool2DLayer``, ``BatchNormLayer``,
      ``rectify``). Batch norm then normalizes the pooled maps. (Because BN can flip signs,
      this is not the same function as conv → BN → ReLU → pool.)
    * No dropout, no biases, no data augmentation (section 4.1).

    width: multiplies every channel and unit count (128·width, ..., 1024·width, each at least
    1); the 10 outputs stay ``num_classes``. ``width=0.25`` gives a fast model for tests.
    in_channels, input_size: the input is (N, in_channels, input_size, input_size); the
    flattened size is computed from them (input_size must survive three 2×2 pools).
    rng: generator for the initial weights (default ``backend.global_rng()``).
    """
    c1, c2, c3, fc = (scaled(n, width) for n in (128, 256, 512, 1024))
    side = input_size // 2 // 2 // 2
    if side < 1:
        raise ValueError(f"bc_cifar10: input_size={input_size} is too small for three 2×2 "
                         "max-pools; use at least 8 (CIFAR-10 images are 32×32)")
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


# ---------------------------------------------------------------------------
# AlexNet with batch norm (section 4.2)
# ---------------------------------------------------------------------------
class AlexNetBN(_Network):
    """AlexNet with batch norm and no biases; build it with :func:`alexnet_bn`."""


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

    input_size: side of the square input. The flattened size is computed from it:
    224 with conv1_padding 0 gives 54 → 26 → 26 → 12 → 12 → 5, so 256·5·5; 227 gives the
    classic 55 → 27 → 13 → 6 (256·6·6 = 9216). Small inputs work for tests: the smallest
    side that survives the three pools is 67 (``alexnet_bn(10, input_size=67, width=0.125)``).
    width: multiplies every channel and unit count (each at least 1).
    rng: generator for the initial weights and (when dropout > 0) the dropout masks.
    """
    c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
    fc = scaled(4096, width)
    sizes = [input_size, _conv_out(input_size, 11, 4, conv1_padding)]   # conv1
    for _ in ("pool1", "pool2", "pool5"):        # conv2..conv5 keep the size (padding)
        sizes.append(_conv_out(sizes[-1], 3, 2))
    if min(sizes) < 1:
        raise ValueError(f"alexnet_bn: input_size={input_size} is too small; the feature maps "
                         f"would shrink to nothing ({' → '.join(map(str, sizes))}). Use "
                         f"input_size >= 67 (224 or 227 for ImageNet).")
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


# ---------------------------------------------------------------------------
# Walking Noise: MLP "TFC" and LeNet-5
# ---------------------------------------------------------------------------
class MLPTFC(_Network):
    """Walking Noise's MLP "TFC"; build it with :func:`mlp_tfc`."""


def mlp_tfc(bn: bool = False, in_features: int = 784, hidden: int = 64, num_classes: int = 10,
            rng=None) -> MLPTFC:
    """The MLP "TFC" of Walking Noise (FINN/Brevitas's tiny fully connected net)::

        flatten                                    (N, 1, 28, 28) → (N, 784)
        fc1 64, [bn1], relu1
        fc2 64, [bn2], relu2
        fc3 64, [bn3], relu3
        fc4 num_classes                            the scores (logits), no BN, no ReLU

    Biases: with ``bn=True`` no layer has a bias (the TFC of FINN/Brevitas: batch norm's β
    is the bias); with ``bn=False`` every Linear has one (``bias=True``), otherwise the
    network could not shift its units at all.

    Noise sites (Walking Noise: input + every linear + BN + ReLU + logits, not flatten):
    1 + 4 + 3 = 8 without BN, 11 with BN.
    """
    layers = OrderedDict()
    layers["flatten"] = nn.Flatten()
    n_in = in_features
    for k in (1, 2, 3):
        layers[f"fc{k}"] = nn.Linear(n_in, hidden, bias=not bn, rng=rng)
        if bn:
            layers[f"bn{k}"] = nn.BatchNorm1d(hidden)
        layers[f"relu{k}"] = nn.ReLU()
        n_in = hidden
    layers["fc4"] = nn.Linear(n_in, num_classes, bias=not bn, rng=rng)
    return MLPTFC(layers)


class LeNet5(_Network):
    """LeNet-5 with ReLU and max-pooling; build it with :func:`lenet5`."""


def lenet5(bn: bool = False, num_classes: int = 10, in_channels: int = 1, rng=None,
           input_size: int = 28) -> LeNet5:
    """LeNet-5 as in Walking Noise: C6@5–M2–C16@5–M2–FC120–FC84–FC10::

        conv1 6 5×5 (padding p), [bn1], relu1, pool1 (max 2×2)     28×28 → 28×28 → 14×14
        conv2 16 5×5,           [bn2], relu2, pool2                → 10×10 → 5×5
        flatten                                                     (N, 16·5·5 = 400)
        fc3 120, [bn3], relu3;  fc4 84, [bn4], relu4
        fc5 num_classes                                             the scores (logits)

    * conv1's padding pads the input up to LeNet's 32×32: p = (32 − input_size) // 2 when
      the input is smaller, so MNIST's 28×28 gets padding 2 (the classic LeNet on MNIST) and
      a 32×32 input (CIFAR-10, SVHN with ``in_channels=3``) none. The flattened size is
      computed from input_size either way.
    * ReLU and max-pooling (the modern LeNet-5 of Walking Noise, not tanh/subsampling);
      order conv → [BN] → ReLU → pool.
    * Biases as in :func:`mlp_tfc`: every layer has one when ``bn=False``, none when
      ``bn=True``. BN (when on) follows every conv and hidden FC, never the output.

    Noise sites (input + conv/linear + BN + ReLU + pool + logits): 12 without BN, 16 with.
    """
    padding = max(0, (32 - input_size) // 2)
    side = _conv_out(input_size, 5, 1, padding) // 2
    side = _conv_out(side, 5) // 2
    if side < 1:
        raise ValueError(f"lenet5: input_size={input_size} is too small for two 5×5 convs and "
                         "two 2×2 pools; use 28 (MNIST) or 32 (CIFAR-10, SVHN)")
    layers = OrderedDict()

    def block(k, layer, n_out, bn_cls, pool):
        layers[f"{'conv' if isinstance(layer, nn.Conv2d) else 'fc'}{k}"] = layer
        if bn:
            layers[f"bn{k}"] = bn_cls(n_out)
        layers[f"relu{k}"] = nn.ReLU()
        if pool:
            layers[f"pool{k}"] = nn.MaxPool2d(2)

    block(1, nn.Conv2d(in_channels, 6, 5, padding=padding, bias=not bn, rng=rng), 6,
          nn.BatchNorm2d, pool=True)
    block(2, nn.Conv2d(6, 16, 5, bias=not bn, rng=rng), 16, nn.BatchNorm2d, pool=True)
    layers["flatten"] = nn.Flatten()
    block(3, nn.Linear(16 * side * side, 120, bias=not bn, rng=rng), 120, nn.BatchNorm1d,
          pool=False)
    block(4, nn.Linear(120, 84, bias=not bn, rng=rng), 84, nn.BatchNorm1d, pool=False)
    layers["fc5"] = nn.Linear(84, num_classes, bias=not bn, rng=rng)
    return LeNet5(layers)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------
MODELS = {
    "bc_cifar10": bc_cifar10,
    "alexnet_bn": alexnet_bn,
    "mlp_tfc": mlp_tfc,
    "lenet5": lenet5,
}
"""Name → function that builds the model; :func:`build` looks names up here."""


def build(name: str, **kwargs):
    """Build the model called ``name`` with keyword arguments, e.g.
    ``build("bc_cifar10", width=0.5, rng=rng)`` or ``build("lenet5", bn=True)``.

    An unknown name, or an argument the model does not take, raises ValueError listing what
    is available. Names are case-insensitive and ``-`` may stand for ``_``.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; the models are: {', '.join(MODELS)} "
                         "(models.build(name, **kwargs), e.g. build('bc_cifar10', width=0.5))")
    fn = MODELS[key]
    accepted = list(inspect.signature(fn).parameters)
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"model {key!r} takes no argument {', '.join(map(repr, unknown))}; "
                         f"it takes: {', '.join(accepted)}")
    return fn(**kwargs)
