"""The networks of the two papers: bc_cifar10, alexnet_bn, mlp_tfc, lenet5, and THE factory.

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
              BinaryConnect's CIFAR-10 net), input 3×32×32           (binaryconnect.py)
alexnet_bn    5 conv (96 11×11/4, 256 5×5, 384, 384, 256 3×3) + BN + ReLU, max-pool    8
              3×3/2 after conv1, conv2, conv5, then FC 4096–4096–classes with BN,
              no biases                                                     (alexnet.py)
mlp_tfc       Flatten, 3 × (Linear 64, [BN], ReLU), Linear 10 (Walking Noise's TFC)    4
lenet5        C6@5–M2–C16@5–M2–FC120–FC84–FC10, ReLU, optional BN, no padding      5
              (fc3: 256 inputs on MNIST, 400 on 32×32)              (walking_noise.py)
============  =======================================================================  =========

Commands build models through one factory (factory.py), which takes the input shape from
the dataset and honours or refuses every option before a weight is allocated::

    models.build(name, input_shape, num_classes, width=1.0, bn=False, rng=None, **options)
    models.check(name, input_shape, num_classes, width=1.0, bn=False, **options)

Every function takes ``rng`` (the generator for the Glorot-uniform initial weights, rule 5
of docs/design.md) and ``width`` (multiplies the channel and unit counts).

The weights that Algorithm 1 projects and clips are the parameters with ndim ≥ 2 (conv and
linear weights); see :func:`tinyproj.algorithm1.weight_params`. Biases and batch-norm
parameters are never projected or clipped.
"""
from .alexnet import AlexNetBN, alexnet_bn, alexnet_sizes
from .base import Network, check_width, scaled
from .binaryconnect import BCCifar10, bc_cifar10, bc_cifar10_sizes
from .factory import BN_SWITCH, DEFAULT_INPUT_SHAPES, MODELS, build, check, model_name
from .walking_noise import LeNet5, MLPTFC, lenet5, lenet5_sizes, mlp_tfc

__all__ = ["bc_cifar10", "alexnet_bn", "mlp_tfc", "lenet5", "MODELS", "build", "check",
           "model_name", "DEFAULT_INPUT_SHAPES", "BN_SWITCH", "scaled", "check_width",
           "Network", "BCCifar10", "AlexNetBN", "MLPTFC", "LeNet5",
           "bc_cifar10_sizes", "alexnet_sizes", "lenet5_sizes"]
