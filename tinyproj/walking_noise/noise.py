"""Noise on activations (Walking Noise, docs/papers.md §2.1): the three kinds, drawn fresh every time.

For an activation array x (any shape) and a standard deviation σ, every element of every
sample gets its own draw, and every forward pass draws anew::

    additive        y = x + σ·z                     z ~ N(0, 1)       (x + N(0, σ))
    multiplicative  y = x · (1 + σ·z)               z ~ N(0, 1)       (x · N(1, σ))
    combined        y = x · (1 + σ_mul·z₁) + σ_add·z₂     order "mul-add" (default, the
                                                            authors' FirstMulThenAdd=True)
                    y = (x + σ_add·z₂) · (1 + σ_mul·z₁)   order "add-mul"
                    with amplitude A = sigma and ratio r:  σ_add = A·r,  σ_mul = A·(1 − r)

(r = 1 is purely additive, r = 0 purely multiplicative; the default r = 0.5 splits A evenly.)
Both orders keep the mean, E[y] = x, and differ in the variance::

    mul-add   Var[y] = x²·σ_mul² + σ_add²
    add-mul   Var[y] = (x² + σ_add²)·(1 + σ_mul²) − x² = x²·σ_mul² + σ_add²·(1 + σ_mul²)

(add-mul also multiplies the additive noise by the factor, which is the larger variance).

Gradients. The noise is a random constant of the pass, so backpropagation goes *through* it
(:class:`Noise`): dy/dx = 1 for additive noise and dy/dx = (1 + σ·z), the very factor that was
drawn, for multiplicative noise (combined, either order: the multiplicative factor).
Training with noise on
(``NoiseSpec(train=True)``) therefore learns to live with it.

Where noise is on. A :class:`NoiseSpec` also says *when*: ``train`` (noise in training-mode
forward passes), ``eval`` (in evaluation-mode passes), and ``repeats`` N with ``repeat_at``:

    repeat_at="network"  at evaluation the whole noisy network is run N times and the scores
                         averaged (tinyproj's first reading);
    repeat_at="site"     the authors' reading: at each noisy site the layer's output is
                         computed once and N noise draws of it averaged,
                         y = (1/N)·Σₙ noise(x); ``site_repeats`` gives one N per site (the
                         authors choose N per layer), else every site uses ``repeats``.

Averaging N independent draws at a site divides that site's noise standard deviation by √N
exactly (additive: y = x + σ·mean(z), sd σ/√N); see ``sites.NoisyModel``.

    spec = parse_noise("combined:ratio=0.3", sigma=0.1)
    y = apply_noise(x, spec, rng)                 # arrays in, array out (no graph)
    y = noise(x_tensor, spec, rng)                # a differentiable op on Tensors
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .. import backend, kernels
from ..tensor import Function, Tensor, as_tensor

__all__ = ["KINDS", "ORDERS", "REPEAT_AT", "NoiseSpec", "parse_noise", "apply_noise",
           "draw_noise", "Noise", "noise", "noise_mean"]

KINDS = ("additive", "multiplicative", "combined")
"""The noise kinds of Walking Noise."""

ORDERS = ("mul-add", "add-mul")
"""Combined noise: multiply then add (default, the authors' default) or add then multiply."""

REPEAT_AT = ("network", "site")
"""Where N repeated executions are averaged: the whole network's scores, or at each site."""

_ALIASES = {"additive": "additive", "add": "additive", "addnoise": "additive",
            "multiplicative": "multiplicative", "mult": "multiplicative", "mul": "multiplicative",
            "multnoise": "multiplicative",
            "combined": "combined", "comb": "combined", "both": "combined"}


def _kind(name) -> str:
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise ValueError(f"unknown noise kind {name!r}; the kinds are: {', '.join(KINDS)} "
                         "(e.g. 'additive', 'multiplicative', 'combined:ratio=0.3')")
    return _ALIASES[key]


def _number(value, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class NoiseSpec:
    """One noise setting.

    kind     "additive" | "multiplicative" | "combined"
    sigma    σ (for combined the amplitude A); >= 0, 0 = no noise
    ratio    combined only: the additive share r in [0, 1] (σ_add = A·r, σ_mul = A·(1 − r))
    train    noise on in training-mode passes (noisy training)
    eval     noise on in evaluation-mode passes (noisy inference: a walk)
    repeats  N >= 1: average N noisy executions (effective σ / √N), where repeat_at says
    order    combined only: "mul-add" (x·f + a, default) or "add-mul" ((x + a)·f)
    repeat_at     "network" (rerun the network, average the scores; evaluation only) or
                  "site" (average N draws at each noisy site, the authors' way)
    site_repeats  None, or one N >= 1 per site (site order; repeat_at="site" only): the
                  authors' N per layer. Its length is checked against the model's sites
                  by ``NoisyModel.set_noise``.
    """

    kind: str
    sigma: float
    ratio: float = 0.5
    train: bool = False
    eval: bool = True
    repeats: int = 1
    order: str = "mul-add"
    repeat_at: str = "network"
    site_repeats: tuple | None = None

    def __post_init__(self):
        set_ = object.__setattr__       # frozen: normalize the fields once, here
        set_(self, "kind", _kind(self.kind))
        sigma = _number(self.sigma, "the noise sigma")
        if sigma < 0:
            raise ValueError(f"the noise sigma must be >= 0 (a standard deviation), got {sigma}")
        set_(self, "sigma", sigma)
        ratio = _number(self.ratio, "the combined-noise ratio")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"the combined-noise ratio r must be in [0, 1] (the additive "
                             f"share: σ_add = A·r, σ_mul = A·(1 − r)), got {ratio}")
        set_(self, "ratio", ratio)
        for flag in ("train", "eval"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"NoiseSpec.{flag} must be True or False, got "
                                 f"{getattr(self, flag)!r}")
        if (not isinstance(self.repeats, int) or isinstance(self.repeats, bool)
                or self.repeats < 1):
            raise ValueError(f"repeats must be an integer >= 1 (noisy passes averaged), got "
                             f"{self.repeats!r}")
        order = str(self.order).strip().lower().replace("_", "-")
        if order not in ORDERS:
            raise ValueError(f"the combined-noise order must be one of {', '.join(ORDERS)} "
                             f"(multiply then add, or add then multiply), got {self.order!r}")
        set_(self, "order", order)
        at = str(self.repeat_at).strip().lower()
        if at not in REPEAT_AT:
            raise ValueError(f"repeat_at must be 'network' (rerun the whole network) or 'site' "
                             f"(average N draws at each site), got {self.repeat_at!r}")
        set_(self, "repeat_at", at)
        if self.site_repeats is not None:
            values = tuple(self.site_repeats)
            if not values or any(not isinstance(n, int) or isinstance(n, bool) or n < 1
                                 for n in values):
                raise ValueError(f"site_repeats must be integers >= 1, one per site; got "
                                 f"{self.site_repeats!r}")
            if at != "site":
                raise ValueError("site_repeats (N per site) needs repeat_at='site'")
            set_(self, "site_repeats", values)

    @property
    def sigma_add(self) -> float:
        """σ of the additive part (σ, 0, or A·r)."""
        if self.kind == "additive":
            return self.sigma
        return self.sigma * self.ratio if self.kind == "combined" else 0.0

    @property
    def sigma_mul(self) -> float:
        """σ of the multiplicative part (0, σ, or A·(1 − r))."""
        if self.kind == "multiplicative":
            return self.sigma
        return self.sigma * (1.0 - self.ratio) if self.kind == "combined" else 0.0

    @property
    def is_zero(self) -> bool:
        """True when the spec changes nothing (σ = 0)."""
        return self.sigma_add == 0.0 and self.sigma_mul == 0.0

    def with_sigma(self, sigma) -> "NoiseSpec":
        """The same spec at another σ."""
        return dataclasses.replace(self, sigma=sigma)

    def replace(self, **changes) -> "NoiseSpec":
        """A copy with some fields changed (``spec.replace(train=True, eval=False)``)."""
        return dataclasses.replace(self, **changes)

    def repeats_at(self, site: int) -> int:
        """N at site index ``site`` under repeat_at="site" (site_repeats, else repeats)."""
        if self.site_repeats is not None:
            return self.site_repeats[site]
        return self.repeats

    @property
    def label(self) -> str:
        """``"additive"``, ``"multiplicative"`` or ``"combined:ratio=0.3"`` (no σ); the
        add-then-multiply order is named (``"combined:ratio=0.3,order=add-mul"``)."""
        if self.kind != "combined":
            return self.kind
        order = "" if self.order == "mul-add" else f",order={self.order}"
        return f"combined:ratio={self.ratio:g}{order}"

    def __str__(self):
        return f"{self.label}{',' if ':' in self.label else ':'}sigma={self.sigma:g}"


def parse_noise(text, sigma=None, **overrides) -> NoiseSpec:
    """A :class:`NoiseSpec` from text such as the command line's ``--noise``.

    ``"additive"``, ``"multiplicative"``, ``"combined"`` (ratio 0.5),
    ``"combined:ratio=0.3"``; options after ``:`` separated by commas: ``ratio``, ``sigma``,
    ``order`` (combined: mul-add | add-mul), ``repeats``, ``repeat_at`` (network | site),
    ``site_repeats`` (N per site separated by ``;``), ``train``/``eval`` (true/false).
    ``sigma`` (argument) wins over the text; without either σ is 0. A NoiseSpec passes
    through (with ``sigma`` and overrides applied).
    """
    if isinstance(text, NoiseSpec):
        spec = text if sigma is None else text.with_sigma(sigma)
        return spec.replace(**overrides) if overrides else spec
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"noise: expected a kind such as 'additive', 'multiplicative' or "
                         f"'combined:ratio=0.3', got {text!r}")
    head, _, tail = text.strip().partition(":")
    kind = _kind(head)
    values = {}
    for part in (p.strip() for p in tail.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq:
            raise ValueError(f"noise {text!r}: option {part!r} needs the form key=value, e.g. "
                             "'combined:ratio=0.3'")
        value = value.strip()
        if key in ("ratio", "r"):
            if kind != "combined":
                raise ValueError(f"noise {text!r}: ratio applies to combined noise only "
                                 "('combined:ratio=0.3')")
            values["ratio"] = _number(value, f"noise {text!r}: ratio")
        elif key in ("sigma", "a", "amplitude"):
            values["sigma"] = _number(value, f"noise {text!r}: sigma")
        elif key in ("repeats", "n"):
            try:
                values["repeats"] = int(value)
            except ValueError:
                raise ValueError(f"noise {text!r}: repeats must be an integer") from None
        elif key == "order":
            if kind != "combined":
                raise ValueError(f"noise {text!r}: order applies to combined noise only "
                                 "('combined:order=add-mul')")
            values["order"] = value
        elif key in ("repeat_at", "repeat-at"):
            values["repeat_at"] = value
        elif key in ("site_repeats", "site-repeats"):
            try:
                values["site_repeats"] = tuple(int(v) for v in value.split(";") if v.strip())
            except ValueError:
                raise ValueError(f"noise {text!r}: site_repeats takes integers separated by "
                                 "';' (one N per site)") from None
        elif key in ("train", "eval"):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(f"noise {text!r}: {key} must be true or false")
            values[key] = value.lower() in ("true", "1", "yes", "on")
        else:
            raise ValueError(f"noise {text!r}: unknown option {key!r}; the options are ratio "
                             "and order (combined only), sigma, repeats, repeat_at, "
                             "site_repeats, train, eval")
    if sigma is not None:
        values["sigma"] = sigma
    values.setdefault("sigma", 0.0)
    values.update(overrides)
    return NoiseSpec(kind, **values)


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------
def _standard_normal(rng, shape, like):
    """N(0, 1) numbers of ``shape`` with the dtype and on the device of ``like``."""
    xp = backend.xp_of(like)
    dtype = like.dtype if like.dtype.kind == "f" else backend.default_float
    try:
        z = rng.standard_normal(tuple(shape), dtype=dtype)
    except TypeError:                       # a generator without the dtype argument
        z = rng.standard_normal(tuple(shape))
    if backend.is_gpu_array(like) != backend.is_gpu_array(z):
        z = backend.to_device(z, "gpu" if backend.is_gpu_array(like) else "cpu")
    return xp.asarray(z, dtype=dtype)


def draw_noise(x, spec: NoiseSpec, rng):
    """``(y, factor)``: the noisy array and the multiplicative factor (None when there is none).

    order "mul-add": y = x·factor + σ_add·z₂; "add-mul": y = (x + σ_add·z₂)·factor; with
    factor = 1 + σ_mul·z₁. The draws follow the order of the operations (mul-add: the factor
    first), so a draw is reproducible from the generator. A part whose σ is 0 draws nothing.
    """
    add_first = spec.order == "add-mul"
    if backend.is_gpu_array(x) and kernels.mode() != "reference":
        # on a device: one kernel with a counter-based generator (Philox) keyed from rng —
        # the same formulas, other random numbers than the host's stream (kernels/reference.py)
        return kernels.get("gaussian_noise", x)(x, kernels.random_key(rng, x), spec.sigma_add,
                                                spec.sigma_mul, add_first)
    factor = None
    y = x
    if add_first and spec.sigma_add > 0:
        y = y + spec.sigma_add * _standard_normal(rng, x.shape, x)
    if spec.sigma_mul > 0:
        factor = 1 + spec.sigma_mul * _standard_normal(rng, x.shape, x)
        y = y * factor
    if not add_first and spec.sigma_add > 0:
        y = y + spec.sigma_add * _standard_normal(rng, x.shape, x)
    if y is x:
        y = x.copy()
    return y, factor


def apply_noise(x, spec, rng):
    """``x`` with noise of ``spec`` (a NoiseSpec or text), fresh per element: an array.

    x: array (or Tensor: its data), any shape. rng: the generator to draw from (rule 5).
    """
    spec = parse_noise(spec) if not isinstance(spec, NoiseSpec) else spec
    data = x.data if isinstance(x, Tensor) else x
    return draw_noise(data, spec, rng)[0]


class Noise(Function):
    """y = x·(1 + σ_mul·z₁) + σ_add·z₂ (or (x + σ_add·z₂)·(1 + σ_mul·z₁)), z fresh per
    element; gradient through the drawn noise.

    Forward draws from ``rng`` (shapes and formulas: module docstring). Backward::

        dL/dx = dL/dy · (1 + σ_mul·z₁)        (= dL/dy for additive noise)

    The drawn factor is kept for backward (and dropped when no graph is recorded).
    """

    def __init__(self, spec: NoiseSpec, rng):
        self.spec = spec
        self.rng = rng

    def forward(self, x):
        y, self.factor = draw_noise(x, self.spec, self.rng)
        return y

    def backward(self, gy):
        return gy if self.factor is None else gy * self.factor


def noise_mean(x, spec, rng, n: int = 1) -> Tensor:
    """The mean of ``n`` independent noise draws of the same x (the authors' per-site
    repeated execution): differentiable, n = 1 is :func:`noise`::

        y = (1/n) · Σₖ noise_k(x)        Var[y] = Var[noise(x)] / n,  E[y] = E[noise(x)]

    dL/dx = dL/dy · mean of the n drawn factors (1 for additive noise).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"noise_mean: n must be an integer >= 1 (draws averaged), got {n!r}")
    out = noise(x, spec, rng)
    for _ in range(n - 1):
        out = out + noise(x, spec, rng)
    return out if n == 1 else out * (1.0 / n)


def noise(x, spec, rng) -> Tensor:
    """The differentiable noise op on a Tensor (or array): ``Noise(spec, rng)(x)``.

    With σ = 0 the input is returned as it is (no draw, no graph node).
    """
    spec = parse_noise(spec) if not isinstance(spec, NoiseSpec) else spec
    x = as_tensor(x)
    if spec.is_zero:
        return x
    return Noise(spec, rng)(x)
