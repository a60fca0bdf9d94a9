"""What every network of tinyproj shares: a Sequential of named layers, and width scaling."""
from __future__ import annotations

import math

from .. import nn
from ..errors import UserError

__all__ = ["Network", "scaled", "check_width"]


def check_width(width) -> float:
    """``width`` as a float, or :class:`~tinyproj.errors.UserError` (flag ``--width``) unless it
    is a finite number > 0. (NaN fails ``width > 0``; infinity would ask for infinite layers.)"""
    try:
        value = float(width)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(width, bool) or not (value > 0 and math.isfinite(value)):
        raise UserError(f"--width must be a positive number (1.0 = the paper's sizes, 0.25 = a "
                        f"quarter of the channels and units), got {width!r}", flag="--width")
    return value


def scaled(n: int, width: float) -> int:
    """``round(n · width)``, at least 1: the channel or unit count of a width-scaled model.

    ``scaled(128, 0.25) == 32``, ``scaled(6, 0.1) == 1`` (never 0: a layer of no channels
    would cut the network in two).
    """
    return max(1, int(round(n * check_width(width))))


class Network(nn.Sequential):
    """A Sequential of named layers; each model's subclass only names the network.

    The class name shows in ``repr(model)`` and in error messages of the layers' root.
    """

    def weight_layer_names(self) -> list:
        """Names of the conv/linear layers in order (``["conv1", ..., "fc9"]``): the k of
        Algorithm 1."""
        return [name for name, m in self.named_children() if isinstance(m, (nn.Conv2d, nn.Linear))]
