"""Differentiable operations on Tensors (``import tinyproj.functional as F``).

One file per family, each op a small :class:`~tinyproj.tensor.Function` with
its forward and backward side by side:

* ``elementwise.py``   add, sub, mul, div, neg, pow, exp, log, sqrt, maximum, relu, dropout
* ``reductions.py``    sum, mean, max over axes
* ``shape.py``         reshape, transpose, getitem (indexing/slicing), concatenate, flatten
* ``linalg.py``        matmul, linear
* ``conv.py``          conv2d (im2col + one matrix product)
* ``pooling.py``       max_pool2d (overlapping windows allowed)
* ``normalization.py`` batch_norm (training, evaluation, re-estimation)
* ``losses.py``        square_hinge_loss, cross_entropy
"""
from .conv import conv2d
from .elementwise import (add, div, dropout, exp, log, maximum, mul, neg, pow, relu, sqrt, sub,
                          sum_to)
from .linalg import linear, matmul
from .losses import cross_entropy, one_vs_all_targets, square_hinge_loss
from .normalization import batch_norm
from .pooling import max_pool2d
from .reductions import max, mean, sum
from .shape import concatenate, flatten, getitem, reshape, transpose

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "maximum", "relu",
           "dropout", "sum_to", "sum", "mean", "max", "matmul", "linear", "reshape", "transpose",
           "getitem", "concatenate", "flatten", "conv2d", "max_pool2d", "batch_norm",
           "square_hinge_loss", "cross_entropy", "one_vs_all_targets"]
