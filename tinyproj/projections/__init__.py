"""Weight projections: Table 1 of Merolla et al. 2016, one small function per row.

A projection maps the full-precision weights ``W_k`` of one layer to the weights
``P_k = Proj(W_k, theta)`` that the forward and backward passes use (Algorithm 1,
lines 1-3). At test time the same functions are applied once as *distortions*.

Every function works element-wise on one whole weight tensor and uses the
per-layer scale::

    alpha = max_i |w_i|          (over the whole tensor, recomputed from the current w)

so ``w / alpha`` lies in [-1, 1]. All functions take an array and return a *new*
array of the same shape and dtype (float32 stays float32) on the same device
(NumPy or CuPy). An all-zero tensor (alpha = 0) gives an all-zero result, never NaN.

==============  ===============================================  ======================  ===========
row             definition                                       allowed states          paper uses
==============  ===============================================  ======================  ===========
sign            alpha * sign(w)                 (sign(0) = +1)   {-alpha, +alpha}        train, test
round           alpha * round(w / alpha)  (half away from zero)  {-alpha, 0, +alpha}     train, test
none            w                                                R                       train, test
power(beta)     alpha * |w/alpha|**beta * sign(w)                [-alpha, +alpha]        train, test
stoch           +alpha with p = (w/alpha + 1)/2, else -alpha     {-alpha, +alpha}        train
stochm(gamma)   |w| * U(gamma, 1/gamma), sign + with p, else -   [-alpha/g, +alpha/g]    train
stochm3(gamma)  stochm, then the half of the weights nearest     [-alpha/g, +alpha/g],   train
                zero set to 0 with probability 1/2 each          zero allowed            (ImageNet)
addnorm(sigma)  w + N(0, alpha * sigma)                          R                       test
multunif(gamma) w * U(gamma, 1/gamma)                            [-alpha/g, +alpha/g]    test
==============  ===============================================  ======================  ===========

StochM has three readings (lesson 03 compares them; ``stochm3`` is another thing, the
ImageNet variant of footnote 2 that also zeroes weights):

==================  =========================================  ==============================
spec                P = ... (+ with p = (w/alpha + 1)/2)        E[P]  (E[U] = (g + 1/g)/2)
==================  =========================================  ==============================
stochm (preset)     ±|w| * U(g, 1/g)    the magnitude reading   w*|w|/alpha * E[U]
stochm_literal      ±w * U(g, 1/g)      Table 1 as printed      w**2/alpha * E[U]  (>= 0!)
stochm_alpha        ±alpha * U(g, 1/g)  the alpha reading       w * E[U]  (= w only at g = 1)
==================  =========================================  ==============================

``stochm_literal`` cannot train (its docstring says why); ``stochm_alpha`` is the only
reading that fits the paper's remark that gamma = 0.5 makes the expectation differ from w.

Two ways to use them::

    from tinyproj import projections, backend
    rng = backend.make_rng(0)

    p = projections.sign(w)                        # the functions: arrays in, arrays out
    p = projections.stochm(w, 0.5, rng)

    proj = projections.parse("power:beta=U(0,2)")  # the objects, used by algorithm1 / robustness
    step_proj = proj.sample(rng)                   # draw beta once for this minibatch ...
    P = [step_proj(W_k, rng) for W_k in weights]   # ... and use it for every layer

Randomness is explicit (DESIGN rule 5): every stochastic function takes a generator
from ``backend.make_rng(seed)``. Passing ``rng=None`` falls back to
``backend.global_rng()``, the same fallback the layers use.
"""
from .spec import REGISTRY, Projection, Uniform, available, parse
from .table1 import (addnorm, multunif, none, power, round, sign, stoch, stochm, stochm3,
                     stochm_alpha, stochm_literal)

__all__ = [
    "sign", "round", "none", "power", "stoch", "stochm", "stochm_literal", "stochm_alpha",
    "stochm3",
    "addnorm", "multunif",
    "Uniform", "Projection", "REGISTRY", "available", "parse",
]
