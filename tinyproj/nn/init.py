"""Weight initializers: arrays in the framework's default dtype (float32) on the backend in use.

Glorot (Xavier) uniform, the default of every layer, draws

    W ~ U(−a, a),   a = sqrt(6 / (fan_in + fan_out)),

whose standard deviation is a / sqrt(3) = sqrt(2 / (fan_in + fan_out)). The clip
bounds of the paper (c_k = f · std of the initial weights) are built on that std.

PyTorch's default (``init="torch"``, what Walking Noise's authors used: ``nn.Linear`` and
``nn.Conv2d`` as constructed, ``kaiming_uniform_(a=√5)`` for the weight) draws

    W ~ U(−1/√fan_in, 1/√fan_in),   b ~ U(−1/√fan_in, 1/√fan_in),

std 1/√(3·fan_in). For mlp_tfc's fc1 (784 → 64) that is 0.0206 against Glorot's 0.0486:
Glorot is 1.7–2.4× larger on the Walking Noise networks, which moves the baseline of the
weight-growth measurements.

Fans (see :func:`fans`)::

    shape (out, in)           linear:  fan_in = in,             fan_out = out
    shape (O, C, kh, kw)      conv:    fan_in = C · kh · kw,    fan_out = O · kh · kw

Randomness is explicit (rule 5): pass the run's generator as ``rng``; with
``rng=None`` the global fallback ``backend.global_rng()`` is used.
"""
from __future__ import annotations

import math

from .. import backend

__all__ = ["fans", "glorot_uniform", "glorot_normal", "glorot_std", "torch_uniform",
           "torch_bound", "torch_std", "init_std", "INITS", "check_init", "zeros", "ones"]

INITS = ("glorot", "torch")
"""The initialisations a Linear or Conv2d layer can take (``init=``)."""


def _shape(shape) -> tuple:
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(s) for s in shape)


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``.

    (out, in) → (in, out);  (O, C, kh, kw) → (C·kh·kw, O·kh·kw). Any trailing
    dimensions beyond the first two count as the receptive field.
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"fans: a weight needs at least 2 dimensions (out, in, ...), got shape "
                         f"{shape}; 1-D parameters (biases, batch-norm scales) have no fans")
    receptive = math.prod(shape[2:])  # 1 for a linear weight
    return shape[1] * receptive, shape[0] * receptive


def glorot_std(shape) -> float:
    """std of Glorot initial weights: sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return math.sqrt(2.0 / (fan_in + fan_out))


def glorot_uniform(shape, rng=None, dtype=None):
    """An array of ``shape`` drawn from U(−a, a) with a = sqrt(6 / (fan_in + fan_out)).

    rng : a generator from ``backend.make_rng`` (default ``backend.global_rng()``).
    Returns a float32 array (or ``dtype``) on the backend in use.
    """
    shape = _shape(shape)
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    rng = rng if rng is not None else backend.global_rng()
    u = rng.random(shape)                      # U[0, 1), float64
    w = (2.0 * u - 1.0) * a                    # U[−a, a)
    return backend.asarray(w, dtype=dtype or backend.default_float)


def glorot_normal(shape, rng=None, dtype=None):
    """An array of ``shape`` drawn from N(0, 2 / (fan_in + fan_out))."""
    shape = _shape(shape)
    rng = rng if rng is not None else backend.global_rng()
    w = rng.standard_normal(shape) * glorot_std(shape)
    return backend.asarray(w, dtype=dtype or backend.default_float)


def check_init(init) -> str:
    """``init`` lower-cased if it is one of :data:`INITS`, else ValueError naming them."""
    key = str(init).strip().lower()
    if key not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)} (glorot: U(±√(6/(fan_in + "
                         f"fan_out))), biases 0; torch: PyTorch's default U(±1/√fan_in) for "
                         f"weights and biases), got {init!r}")
    return key


def torch_bound(fan_in: int) -> float:
    """1/√fan_in: the half-width of PyTorch's default uniform for weights and biases.

    (``kaiming_uniform_(a=√5)``: gain √(2/(1+a²)) = √(1/3), bound = √3·gain/√fan_in.)
    """
    if fan_in < 1:
        raise ValueError(f"torch_bound: fan_in must be >= 1, got {fan_in}")
    return 1.0 / math.sqrt(fan_in)


def torch_std(shape) -> float:
    """std of PyTorch's default initial weights: 1/√(3·fan_in)."""
    return torch_bound(fans(shape)[0]) / math.sqrt(3.0)


def init_std(shape, how: str = "glorot") -> float:
    """std of the initial weights of ``shape`` under rule ``how``: :func:`glorot_std` or
    :func:`torch_std`."""
    return torch_std(shape) if check_init(how) == "torch" else glorot_std(shape)


def torch_uniform(shape, fan_in: int | None = None, rng=None, dtype=None):
    """An array of ``shape`` from U(−1/√fan_in, 1/√fan_in): PyTorch's default init.

    For a weight, ``fan_in`` is taken from ``shape`` (:func:`fans`); for a bias (1-D) pass
    the fan_in of its layer's weight, as PyTorch does.
    """
    shape = _shape(shape)
    if fan_in is None:
        fan_in = fans(shape)[0]
    a = torch_bound(fan_in)
    rng = rng if rng is not None else backend.global_rng()
    w = (2.0 * rng.random(shape) - 1.0) * a    # U[−a, a)
    return backend.asarray(w, dtype=dtype or backend.default_float)


def zeros(shape, dtype=None):
    """An array of zeros (float32 by default) on the backend in use."""
    return backend.xp().zeros(_shape(shape), dtype=dtype or backend.default_float)


def ones(shape, dtype=None):
    """An array of ones (float32 by default) on the backend in use."""
    return backend.xp().ones(_shape(shape), dtype=dtype or backend.default_float)
