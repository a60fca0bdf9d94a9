"""Neural-network building blocks (``import tinyproj.nn as nn``).

* ``module.py``    Module (registration, names, modes, state_dict), Parameter
* ``sequential.py`` Sequential
* ``layers.py``    Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout
* ``batchnorm.py`` BatchNorm1d, BatchNorm2d (with re-estimation of the running statistics)
* ``init.py``      initializers: glorot_uniform (the default), glorot_normal, zeros, ones, fans

A model is a tree of Modules::

    model = nn.Sequential(nn.Linear(784, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    model(x)                      # forward
    model.named_parameters()      # [("0.weight", ...), ("1.weight", ...), ...]
    model.eval(); model.train()   # modes, recursively
    sd = model.state_dict(); model.load_state_dict(sd)
"""
from . import init
from .batchnorm import (BatchNorm1d, BatchNorm2d, BatchNormBase, start_bn_reestimation,
                        stop_bn_reestimation)
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from .module import LoadResult, Module, Parameter, StateDictError
from .sequential import Sequential

__all__ = ["Module", "Parameter", "Sequential", "StateDictError", "LoadResult",
           "Linear", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Dropout",
           "BatchNormBase", "BatchNorm1d", "BatchNorm2d", "start_bn_reestimation", "stop_bn_reestimation",
           "init"]
