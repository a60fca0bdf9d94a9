"""Weight clipping (Algorithm 1, lines 10-12), the proximal operator it equals, schedules.

After every update the weights of layer k are clipped to a per-layer bound c_k::

    W_k <- max(min(W_k, c_k), -c_k)                       (Algorithm 1, line 12)

    c_k = f * std(initial weights of layer k)             (f = 0.5 unless noted)
        = f * sqrt(2 / (fan_in + fan_out))                Glorot-uniform (every layer's default,
                                                          BinaryConnect's and the paper's)
        = f / sqrt(3 * fan_in)                            a layer built with init="torch"

"NC" (no clipping) means c_k = inf for every k; with the None projection Algorithm 1
is then standard backprop. Only weight tensors (ndim >= 2: linear and conv weights)
are clipped; biases and batch-norm parameters (ndim 1) never are.

Typical use (algorithm1.py does the clipping step itself, visibly)::

    from tinyproj import clipping
    bounds = clipping.clip_bounds(model, f=0.5)       # {param_name: c_k}
    ...                                               # project, forward, backward, update
    clipping.clip_weights(model, bounds)              # line 12, in place

    schedule = clipping.ClipSchedule.alexnet()        # f = 4.5, x1.4 at 5K, 10K, 15K
    bounds = schedule.bounds_at(model, iteration)

Section 5 of the paper reads the clip step as a proximal step; see :func:`prox_linf`.
"""
from __future__ import annotations

import math

from tinyproj import backend
from tinyproj.nn.init import glorot_std

__all__ = [
    "glorot_std", "is_clipped_param", "no_clipping", "clip_bounds", "clip_", "clip_weights",
    "indicator_linf", "prox_linf", "ClipSchedule", "clip_flat_",
]


# glorot_std(shape) = sqrt(2 / (fan_in + fan_out)) is the initializer's own, imported above:
# the clip bound must use exactly the std that nn.init draws the initial weights with.


def is_clipped_param(param) -> bool:
    """True for a weight tensor (``param.data.ndim >= 2``); biases and BN params are not."""
    return param.data.ndim >= 2


def no_clipping(f) -> bool:
    """True when the clip factor ``f`` means "NC": None, "NC" (any case), "none" or inf."""
    if f is None:
        return True
    if isinstance(f, str):
        text = f.strip().lower()
        if text in ("nc", "none", "inf", "infinity"):
            return True
        try:
            f = float(text)
        except ValueError:
            return False
    try:
        return math.isinf(float(f)) and float(f) > 0
    except (TypeError, ValueError):
        return False


def _factor(f) -> float:
    """``f`` as a positive finite float, or a ValueError that explains the choices."""
    try:
        value = float(f.strip() if isinstance(f, str) else f)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"clip factor f must be a positive number (the paper uses 0.5; "
                         f"AlexNet starts at 4.5) or 'NC' / None / inf for no clipping; "
                         f"got {f!r}.")
    return value


def clip_bounds(model, f=0.5) -> dict:
    """The clip bounds ``{param_name: c_k}`` of every weight tensor of ``model``.

    c_k = f * std of W_k's initial weights for each parameter with ndim >= 2, in the order of
    ``model.named_parameters()``: the std the layer drew them with (``param.init_std``, set
    by ``nn.Linear``/``nn.Conv2d``: Glorot's sqrt(2/(fan_in + fan_out)), or 1/sqrt(3·fan_in)
    for ``init="torch"``), and glorot_std(shape) for a weight that does not say. 1-D
    parameters (biases, batch-norm gamma/beta) are left out, which means "not clipped".

    f: a positive number (0.5 in the paper), or "NC" / None / inf for no clipping, which
    returns ``{}`` (every parameter missing, so nothing is clipped). A missing name always
    means "do not clip"; :func:`clip_weights` and Algorithm 1 skip it.

    model: anything whose ``named_parameters()`` yields ``(name, param)`` pairs with the
    array in ``param.data``.

    The bounds depend only on the shapes and initialisation rules, not on the current
    weight values, so they are the same whenever they are computed.
    """
    if no_clipping(f):
        return {}
    factor = _factor(f)
    return {name: factor * _initial_std(param)
            for name, param in model.named_parameters() if is_clipped_param(param)}


def _initial_std(param) -> float:
    """The std of ``param``'s initial weights: its own ``init_std`` if its layer recorded one
    (``init="torch"`` layers draw 1.7-2.4x narrower than Glorot), else Glorot's from the shape."""
    std = getattr(param, "init_std", None)
    return float(std) if std is not None else glorot_std(param.data.shape)


def clip_(pairs) -> None:
    """Clip arrays in place: ``a[...] = max(min(a, c), -c)`` for each ``(a, c)`` in pairs.

    A bound of None or inf leaves its array alone. ``c`` must be >= 0.
    """
    for array, c in pairs:
        if c is None or math.isinf(c):
            continue
        if not c >= 0:
            raise ValueError(f"clip bound must be >= 0; got {c}.")
        xp = backend.xp_of(array)
        xp.clip(array, -c, c, out=array)


def clip_flat_(flat, offsets, bounds, cache=None) -> None:
    """Clip every tensor of a flat buffer in place, tensor s to [−bounds[s], bounds[s]]:
    ``clip_`` for all layers in one kernel launch (``kernels.get("clip_segments")``).

    flat: (P,) the weights side by side (optim/flat.py); offsets: (S + 1,) int64 on flat's
    device; bounds: S numbers (inf or None: leave that tensor alone). cache: an object with
    ``device_table(key, values, dtype)`` (a FlatParams) that keeps the bounds on the device
    between steps, so a step copies nothing up while they stay the same.
    """
    values = tuple(math.inf if c is None else float(c) for c in bounds)
    for c in values:
        if not c >= 0:
            raise ValueError(f"clip bound must be >= 0; got {c}.")
    if all(math.isinf(c) for c in values):
        return
    if cache is not None:
        table = cache.device_table("clip_bounds", values, flat.dtype)
    else:
        import numpy as np
        table = backend.to_device(np.asarray(values, dtype=flat.dtype),
                                  "gpu" if backend.is_gpu_array(flat) else "cpu")
    from . import kernels
    kernels.get("clip_segments", flat)(flat, offsets, table, out=flat)


def clip_weights(model, bounds) -> None:
    """Algorithm 1, line 12, in place: W_k <- max(min(W_k, c_k), -c_k) for every bounded W_k.

    bounds: ``{param_name: c_k}`` from :func:`clip_bounds` or :meth:`ClipSchedule.bounds_at`.
    Parameters not named in bounds (biases, batch-norm parameters, or everything when
    bounds is ``{}``) are left alone, as are those with an infinite bound. Only entries
    beyond the bound change; the arrays are modified in place (``xp.clip(..., out=...)``).
    """
    params = dict(model.named_parameters())
    unknown = [name for name in bounds if name not in params]
    if unknown:
        raise ValueError(f"clip bounds name parameters the model does not have: {unknown}. "
                         f"The model's parameters are {list(params)}; compute the bounds "
                         "from this model with clipping.clip_bounds(model, f).")
    clip_((params[name].data, c) for name, c in bounds.items())


# ---------------------------------------------------------------------------
# Section 5: clipping is a proximal step.
# ---------------------------------------------------------------------------
def indicator_linf(x, c):
    """G(x): 0 where |x| <= c, +inf elsewhere (element-wise), the indicator of the l-inf ball.

    Summed over the elements this is the G of section 5: 0 when ||x||_inf <= c, +inf
    otherwise. Returns an array of x's dtype.
    """
    xp = backend.xp_of(x)
    x = xp.asarray(x)
    return xp.where(xp.abs(x) <= c, 0.0, xp.inf).astype(x.dtype if x.dtype.kind == "f" else "float64")


def prox_linf(v, c):
    """The proximal operator of G = indicator of {x : ||x||_inf <= c}: max(min(v, c), -c).

    Section 5 of the paper. The proximal gradient method minimises L(w) + G(w) by

        w_{t+1} = prox_G(w_t - lambda * dL/dw),
        prox_G(v) = argmin_x  G(x) + ||x - v||^2 / (2 * lambda).

    For G the indicator of the l-inf ball of radius c, G is 0 inside the box and +inf
    outside, so the argmin is the point of the box nearest to v. The box and the squared
    distance both split into coordinates, so each x_i = the point of [-c, c] nearest
    to v_i = max(min(v_i, c), -c), whatever the step size lambda > 0. So "update, then
    clip" (Algorithm 1 lines 9-12 with SGD) is exactly a proximal gradient step: clipping
    acts as a regulariser that forbids weights outside the l-inf ball.

    v: array; c: bound >= 0 (inf returns a copy). Returns a new array of v's dtype.
    """
    if not hasattr(v, "dtype"):          # a number or a list: make it an array first
        v = backend.asarray(v)
    xp = backend.xp_of(v)
    if not c >= 0:
        raise ValueError(f"prox_linf: the radius c must be >= 0; got {c}.")
    return xp.maximum(xp.minimum(v, c), -c).astype(v.dtype, copy=False)


# ---------------------------------------------------------------------------
# Clip schedules.
# ---------------------------------------------------------------------------
class ClipSchedule:
    """A clip factor that changes with the iteration: f(t) = f0 * factor ** (#milestones <= t).

    The AlexNet benchmark (section 4.2.1) starts at f = 4.5 and multiplies f by 1.4 at
    iterations 5K, 10K and 15K: ``ClipSchedule(4.5, 1.4, (5000, 10000, 15000))``, also
    available as :meth:`ClipSchedule.alexnet`. The new factor applies from the milestone
    iteration itself: f(4999) = 4.5, f(5000) = 6.3. A constant f is
    ``ClipSchedule.constant(0.5)``; "NC" is ``ClipSchedule.constant("NC")``.
    """

    def __init__(self, f0, factor=1.0, milestones=()):
        self.no_clip = no_clipping(f0)
        self.f0 = math.inf if self.no_clip else _factor(f0)
        self.factor = _factor(factor)
        self.milestones = tuple(sorted(int(m) for m in milestones))

    @classmethod
    def constant(cls, f=0.5) -> "ClipSchedule":
        """The same f at every iteration (the CIFAR-10 networks: f = 0.5, or "NC")."""
        return cls(f)

    @classmethod
    def alexnet(cls) -> "ClipSchedule":
        """f from 4.5, scaled by 1.4 at iterations 5000, 10000 and 15000 (section 4.2.1)."""
        return cls(4.5, 1.4, (5000, 10000, 15000))

    def f_at(self, t: int) -> float:
        """The clip factor at iteration t (inf for no clipping)."""
        if self.no_clip:
            return math.inf
        passed = sum(1 for m in self.milestones if t >= m)
        return self.f0 * self.factor ** passed

    def bounds_at(self, model, t: int) -> dict:
        """``clip_bounds(model, f_at(t))``: the per-layer bounds to use at iteration t."""
        return clip_bounds(model, self.f_at(t))

    def as_dict(self) -> dict:
        """A JSON-ready description (for a run's config.json); ``from_dict`` rebuilds it."""
        return {"f0": "NC" if self.no_clip else self.f0, "factor": self.factor,
                "milestones": list(self.milestones)}

    @classmethod
    def from_dict(cls, d) -> "ClipSchedule":
        return cls(d["f0"], d.get("factor", 1.0), d.get("milestones", ()))

    def __repr__(self):
        f0 = "'NC'" if self.no_clip else repr(self.f0)
        return f"ClipSchedule({f0}, {self.factor!r}, {self.milestones!r})"
