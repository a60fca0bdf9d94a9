"""THE model factory: every command builds its network here, from the dataset's input shape.

    model = models.build("lenet5", input_shape=(3, 32, 32), num_classes=10, bn=True, rng=rng)
    models.check("alexnet_bn", (1, 28, 28))   # UserError now, before any data or weights

``check`` validates a request without allocating a single weight, so a run's settings can be
refused before any folder is made or any data is loaded; ``build`` runs the same checks and
then builds. What the factory derives from ``input_shape`` (C, H, W) or (features,):

=============  ======================================================  ==============  ======
model          derived from input_shape                                 width          bn
=============  ======================================================  ==============  ======
bc_cifar10     in_channels = C, input_size = H (square, H >= 8)         channels+units  always
alexnet_bn     in_channels = C, input_size = H (square, H >= 67)        channels+units  always
mlp_tfc        in_features = C·H·W (any shape; flattened)               hidden units    switch
lenet5         in_channels = C, input_size = H (square)                 channels+units  switch
=============  ======================================================  ==============  ======

Refusals (all :class:`~tinyproj.errors.UserError`, a ValueError, naming the flag to change):
an unknown name (``--model``); a width that is not a finite number > 0 (``--width``);
``bn=True`` for bc_cifar10 or alexnet_bn, which have batch norm after every layer and no
switch for it (``--bn``); an ``init`` other than glorot or torch (``--init``), a ``bias`` other
than None/True/False (``--bias``), and either of them set away from its default (init
"glorot", bias None) for bc_cifar10 or alexnet_bn, which have Merolla's Glorot weights and no
biases; an input shape the network cannot take — a flat vector for a
conv net, non-square images, or images so small that the pools shrink them to nothing,
e.g. alexnet_bn on 28×28 or 32×32 (``--dataset``); a bad ``num_classes``; a keyword the
model does not take, or one the factory derives (``in_channels``, ``input_size``,
``in_features``: pass ``input_shape`` instead).
"""
from __future__ import annotations

import inspect
import math
import numbers

from ..errors import UserError
from .alexnet import alexnet_bn, alexnet_sizes
from .base import check_width
from .binaryconnect import bc_cifar10, bc_cifar10_sizes
from .walking_noise import lenet5, lenet5_sizes, mlp_tfc

__all__ = ["MODELS", "DEFAULT_INPUT_SHAPES", "BN_SWITCH", "model_name", "check", "build"]

MODELS = {
    "bc_cifar10": bc_cifar10,
    "alexnet_bn": alexnet_bn,
    "mlp_tfc": mlp_tfc,
    "lenet5": lenet5,
}
"""Name → function that builds the model; :func:`build` looks names up here."""

DEFAULT_INPUT_SHAPES = {"bc_cifar10": (3, 32, 32), "alexnet_bn": (3, 224, 224),
                        "mlp_tfc": (1, 28, 28), "lenet5": (1, 28, 28)}
"""The input shape of each model's paper (CIFAR-10, ImageNet, MNIST): used when ``build`` is
called without ``input_shape``."""

BN_SWITCH = ("mlp_tfc", "lenet5")
"""Models whose batch norm can be switched on and off (``bn``); the others always have it."""

_DERIVED = ("in_channels", "input_size", "in_features")
_AUTHORS = ("init", "bias")     # the Walking Noise models' PyTorch-default switches
_SIDES = {  # conv nets: side → feature-map sides (the last must be >= 1)
    "bc_cifar10": lambda side, options: bc_cifar10_sizes(side),
    "alexnet_bn": lambda side, options: alexnet_sizes(side, options.get("conv1_padding", 0)),
    "lenet5": lambda side, options: lenet5_sizes(side, options.get("conv1_padding", 0)),
}


def model_name(name) -> str:
    """The registry name of ``name``: case-insensitive, ``-`` may stand for ``_``
    (``"MLP-TFC"`` → ``"mlp_tfc"``). UserError (``--model``) for an unknown name."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in MODELS:
        raise UserError(f"--model: unknown model {name!r}; the models are: {', '.join(MODELS)}",
                        flag="--model")
    return key


def _shape(key: str, input_shape) -> tuple:
    """``input_shape`` as a tuple of positive ints (the model's default when None)."""
    if input_shape is None:
        return DEFAULT_INPUT_SHAPES[key]
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if not shape or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                            and s >= 1 for s in shape):
        raise UserError(f"--dataset: input_shape must be (C, H, W) or (features,) with positive "
                        f"integer sizes, got {input_shape!r}", flag="--dataset")
    return tuple(int(s) for s in shape)


def _image_args(key: str, shape: tuple, options: dict) -> dict:
    """in_channels and input_size of a conv net, or UserError when it cannot take ``shape``."""
    text = "×".join(map(str, shape))
    if len(shape) != 3:
        raise UserError(f"--dataset: {key} is a convolutional network and needs images "
                        f"(C, H, W), but the examples have shape {text}; use --model mlp_tfc "
                        "for flat feature vectors", flag="--dataset")
    c, h, w = shape
    if h != w:
        raise UserError(f"--dataset: {key} needs square images (H = W), but they are {h}×{w}",
                        flag="--dataset")
    sides = _SIDES[key](h, options)
    if sides[-1] < 1:
        least = next(n for n in range(1, 1025) if _SIDES[key](n, options)[-1] >= 1)
        raise UserError(f"--dataset: {key} cannot take {text} images: its feature maps would "
                        f"shrink to nothing ({' → '.join(map(str, sides))}). It needs images of "
                        f"at least {least}×{least}; for small images such as MNIST's 28×28 or "
                        "CIFAR-10's 32×32 use --model bc_cifar10, lenet5 or mlp_tfc",
                        flag="--dataset")
    return {"in_channels": c, "input_size": h}


def _check_switches(key: str, init, bias) -> dict:
    """``{"init": ..., "bias": ...}`` for a model with the switches, ``{}`` for one without
    (where only the defaults are accepted). UserError naming ``--init`` or ``--bias``."""
    from ..nn.init import check_init
    try:
        init = check_init(init)
    except ValueError as err:
        raise UserError(f"--init: {err}", flag="--init") from None
    if isinstance(bias, str) or bias not in (None, False, True):
        raise UserError(f"--bias must be auto, true or false, got {bias!r}", flag="--bias")
    if key in BN_SWITCH:
        return {"init": init, "bias": None if bias is None else bool(bias)}
    if init != "glorot":
        raise UserError(f"--init: {key} has Glorot initial weights only (its clip bounds are "
                        f"built on them); --init torch is for {' and '.join(BN_SWITCH)}",
                        flag="--init")
    if bias is not None:
        raise UserError(f"--bias: {key} has no biases (batch norm's β after every layer); "
                        f"--bias true/false is for {' and '.join(BN_SWITCH)}", flag="--bias")
    return {}


def check(name, input_shape=None, num_classes: int = 10, width: float = 1.0, bn: bool = False,
          **options) -> tuple:
    """Validate a model request without building anything (no weights are allocated).

    Returns ``(key, kwargs)``: the registry name and the keyword arguments that ``build``
    passes to ``MODELS[key]`` (``rng`` aside). Raises UserError naming the flag to change
    (see the module docstring for the rules).
    """
    key = model_name(name)
    width = check_width(width)
    if isinstance(bn, str) or bn not in (False, True):     # numpy's bool_ is fine too
        raise UserError(f"--bn must be true or false, got {bn!r}", flag="--bn")
    if bn and key not in BN_SWITCH:
        raise UserError(f"--bn: {key} always has batch norm after every layer and no switch "
                        f"for it; leave out --bn (it turns batch norm on for "
                        f"{' and '.join(BN_SWITCH)})", flag="--bn")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
            or num_classes < 1:
        raise UserError(f"--dataset: num_classes must be a positive integer, got "
                        f"{num_classes!r}", flag="--dataset")
    switches = _check_switches(key, options.pop("init", "glorot"), options.pop("bias", None))
    accepted = [p for p in inspect.signature(MODELS[key]).parameters
                if p not in _DERIVED + _AUTHORS + ("num_classes", "width", "bn", "rng")]
    derived = [k for k in options if k in _DERIVED]
    if derived:
        raise UserError(f"model {key!r}: {', '.join(derived)} come from the input shape; pass "
                        f"input_shape=(C, H, W) instead")
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise UserError(f"model {key!r} takes no argument {', '.join(map(repr, unknown))}; it "
                        f"takes: input_shape, num_classes, width, "
                        f"{'bn, ' if key in BN_SWITCH else ''}rng"
                        f"{''.join(', ' + a for a in accepted)}")
    shape = _shape(key, input_shape)
    kwargs = dict(options, num_classes=int(num_classes), width=width)
    if key in BN_SWITCH:
        kwargs.update(switches, bn=bool(bn))
    if key == "mlp_tfc":
        kwargs["in_features"] = math.prod(shape)
    else:
        kwargs.update(_image_args(key, shape, options))
    return key, kwargs


def build(name, input_shape=None, num_classes: int = 10, width: float = 1.0, bn: bool = False,
          rng=None, **options):
    """Build the model ``name`` for examples of ``input_shape``, initialized from ``rng``.

    name:         "bc_cifar10", "alexnet_bn", "mlp_tfc" or "lenet5" (case-insensitive,
                  ``-`` for ``_``).
    input_shape:  one example's shape from the dataset, (C, H, W) or (features,); None:
                  the model's paper's (:data:`DEFAULT_INPUT_SHAPES`).
    num_classes:  the number of scores (the dataset's classes).
    width:        multiplies the channel / hidden-unit counts (each rounded, at least 1).
    bn:           batch norm on (mlp_tfc, lenet5); refused for the models that always have it.
    rng:          generator for the initial weights (rule 5 of docs/design.md).
    options:      model-specific keywords (alexnet_bn: dropout, output_bn, conv1_padding;
                  mlp_tfc: hidden; lenet5: conv1_padding; mlp_tfc and lenet5: init "glorot" | "torch", bias
                  None | True | False).

    Same checks as :func:`check`, done before any weight is allocated. Example::

        ds = data.load_dataset("cifar10")
        model = models.build("lenet5", ds.input_shape, ds.num_classes, rng=rng)
    """
    key, kwargs = check(name, input_shape, num_classes, width, bn, **options)
    return MODELS[key](rng=rng, **kwargs)
