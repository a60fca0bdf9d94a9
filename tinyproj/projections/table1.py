"""Table 1 of Merolla et al. 2016 as functions: arrays in, arrays out (see the package docstring)."""
from __future__ import annotations

import math

from tinyproj import backend, kernels

__all__ = ["sign", "round", "none", "power", "stoch", "stochm", "stochm_literal", "stochm_alpha",
           "stochm3",
           "addnorm", "multunif"]


# ---------------------------------------------------------------------------
# Small helpers shared by the rows of the table.
# ---------------------------------------------------------------------------
def _check_weights(w, who: str):
    """The array module of ``w``; stops with a clear message for non-float input."""
    xp = backend.xp_of(w)
    if not hasattr(w, "dtype") or w.dtype.kind != "f":
        raise TypeError(
            f"projections.{who} expects a floating-point weight array (float32 or float64), "
            f"got {type(w).__name__} with dtype {getattr(w, 'dtype', None)}. "
            "Pass the array itself (for a Parameter p that is p.data)."
        )
    return xp


def _alpha(xp, w):
    """``(alpha, safe_alpha)`` as 0-d arrays of w's dtype.

    alpha = max|w| over the whole tensor. ``safe_alpha`` equals alpha except that it is
    1 for an all-zero tensor, so that ``w / safe_alpha`` never divides 0 by 0. Every
    output is multiplied by alpha (or built from w itself), so an all-zero tensor still
    projects to all zeros.
    """
    if w.size == 0:
        zero = xp.zeros((), dtype=w.dtype)
        return zero, zero + 1
    alpha = xp.max(xp.abs(w))
    safe_alpha = xp.where(alpha > 0, alpha, xp.ones((), dtype=w.dtype))
    return alpha, safe_alpha


def rng_or_global(rng):
    """The generator to draw from: ``rng`` itself, or the backend's global one for None."""
    return backend.global_rng() if rng is None else rng


def _uniform01(xp, rng, shape, dtype):
    """Uniform draws in [0, 1) of ``shape`` and ``dtype``, as an array of module ``xp``.

    ``rng.random(shape, dtype=...)`` exists on both NumPy and CuPy generators, for
    float32 and float64. A generator of the other backend still works: its draws are
    moved to where the weights live.
    """
    draw_dtype = dtype if dtype in ("float32", "float64") else "float64"
    u = rng.random(shape, dtype=draw_dtype)
    return _to_module(xp, u).astype(dtype, copy=False)


def _normal(xp, rng, shape, dtype):
    """Standard normal draws of ``shape`` and ``dtype``, as an array of module ``xp``."""
    draw_dtype = dtype if dtype in ("float32", "float64") else "float64"
    z = rng.standard_normal(shape, dtype=draw_dtype)
    return _to_module(xp, z).astype(dtype, copy=False)


def _to_module(xp, array):
    """``array`` as an array of module ``xp`` (a no-op when it already is one)."""
    if xp.__name__ == "numpy":
        return backend.to_numpy(array)
    return xp.asarray(array)


def _check_gamma(gamma, who: str) -> float:
    gamma = float(gamma)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"projections.{who}: gamma must lie in (0, 1] so that "
                         f"U(gamma, 1/gamma) is a valid range; got gamma={gamma}.")
    return gamma


def _uniform_gamma(xp, rng, shape, dtype, gamma):
    """Draws from U(gamma, 1/gamma): gamma + (1/gamma - gamma) * U(0, 1)."""
    u = _uniform01(xp, rng, shape, dtype)
    return (gamma + (1.0 / gamma - gamma) * u).astype(dtype, copy=False)


def _random_sign(xp, rng, w, safe_alpha):
    """+1 with probability p = (w/alpha + 1)/2, else -1 (per element, dtype of w).

    With u ~ U[0, 1): P(u < p) = p exactly, so w = +alpha always gives +1 and
    w = -alpha always gives -1.
    """
    p = (w / safe_alpha + 1) / 2
    u = _uniform01(xp, rng, w.shape, w.dtype)
    one = xp.ones((), dtype=w.dtype)
    return xp.where(u < p, one, -one)


# ---------------------------------------------------------------------------
# Table 1, one function per row.
# ---------------------------------------------------------------------------
def sign(w):
    """Sign(w) = alpha * sign(w), alpha = max|w| of the whole tensor.

    Allowed states: {-alpha, +alpha}. The paper uses it for training and testing
    (Tr-Sign-C, Te-Sign).

    sign(0) is taken as **+1** (NumPy's ``sign(0)`` is 0) so the projection stays
    two-valued, as in BinaryConnect. An all-zero tensor (alpha = 0) maps to zeros.

    w: float array of any shape. Returns a new array, same shape and dtype.
    """
    _check_weights(w, "sign")
    # alpha = max|w|, then where(w >= 0, alpha, -alpha): written out as plain array code in
    # kernels/reference.py (sign_projection), and as one parallel pass for the CPU in cpu_optim.py
    return kernels.get("sign_projection", w)(w)


def round(w):  # noqa: A001 - the paper's name for the row; use builtins.round for numbers
    """Round(w) = alpha * round(w / alpha), alpha = max|w| of the whole tensor.

    Allowed states: {-alpha, 0, +alpha} (ternary weights; w/alpha lies in [-1, 1]).
    The paper uses it for training and testing (Te-Round).

    Ties: NumPy's ``round`` goes half-to-even, which would send w/alpha = +-0.5 to 0
    (and 1.5 to 2). Here ties go **half away from zero** (+-0.5 -> +-1), the rule of
    MATLAB/MatConvNet (the paper's ImageNet code) and of Theano's default round.
    It only matters for weights exactly at alpha/2.

    w: float array of any shape. Returns a new array, same shape and dtype.
    """
    xp = _check_weights(w, "round")
    alpha, safe_alpha = _alpha(xp, w)
    x = w / safe_alpha                                       # in [-1, 1]
    rounded = xp.where(x >= 0, xp.floor(x + 0.5), -xp.floor(-x + 0.5))  # half away from zero
    return (alpha * rounded).astype(w.dtype, copy=False)


def none(w):
    """None(w) = w: no projection (standard backprop when also c_k = inf).

    Allowed states: all of R. The paper uses it for training and testing (Tr-None,
    Te-None).

    Returns a **copy** of w, never w itself, so that like every other projection the
    result P is a separate array: updating or clipping W in place never changes P
    behind the back of the autograd graph, and vice versa.
    """
    _check_weights(w, "none")
    return w.copy()


def power(w, beta):
    """Power(w, beta) = alpha * |w/alpha|**beta * sign(w), alpha = max|w|.

    Allowed states: [-alpha, +alpha]. The paper uses it for training (Tr-Power-C with a
    fresh beta ~ U[0, 2] each minibatch) and testing (Te-Power, Figure 2C).

    beta < 1 pushes weights out towards +-alpha, beta > 1 pulls them in towards 0.
    The two special cases from the paper hold exactly (not just to rounding error):

    * Power(w, 0) == Sign(w): |x|**0 = 1 even for x = 0 (0**0 = 1), and sign(0) = +1
      as in :func:`sign`, so a zero weight goes to +alpha.
    * Power(w, 1) == None(w): returns a copy of w.

    beta must be >= 0 (a negative power would blow up near w = 0).
    """
    xp = _check_weights(w, "power")
    beta = float(beta)
    if not (beta >= 0.0 and math.isfinite(beta)):
        raise ValueError(f"projections.power: beta must be a finite number >= 0; got {beta}.")
    if beta == 0.0:
        return sign(w)
    if beta == 1.0:
        return none(w)
    alpha, safe_alpha = _alpha(xp, w)
    magnitude = xp.abs(w / safe_alpha) ** xp.asarray(beta, dtype=w.dtype)  # in [0, 1]
    signs = xp.where(w >= 0, 1, -1).astype(w.dtype)
    return (alpha * magnitude * signs).astype(w.dtype, copy=False)


def stoch(w, rng):
    """Stoch(w) = +alpha with probability p = (w/alpha + 1)/2, else -alpha.

    Allowed states: {-alpha, +alpha}. The paper uses it for training (Tr-Stoch-C; the
    stochastic binarization of BinaryConnect).

    Unbiased: E[Stoch(w)] = alpha*p - alpha*(1 - p) = alpha*(2p - 1) = w.
    A fresh draw for every weight on every call; rng is a backend generator.
    """
    xp = _check_weights(w, "stoch")
    alpha, safe_alpha = _alpha(xp, w)
    return (alpha * _random_sign(xp, rng_or_global(rng), w, safe_alpha)).astype(w.dtype, copy=False)


def _stochm_draws(w, gamma, rng, who: str):
    """What the three StochM readings draw alike: ``(xp, alpha, signs, scale)`` for ``w``.

    signs = +1 with probability p = (w/alpha + 1)/2, else -1 (drawn first); scale ~
    U(gamma, 1/gamma) per weight (drawn second). Each reading multiplies them into its own
    formula; ``who`` names it in the error messages.
    """
    xp = _check_weights(w, who)
    gamma = _check_gamma(gamma, who)
    rng = rng_or_global(rng)
    alpha, safe_alpha = _alpha(xp, w)
    signs = _random_sign(xp, rng, w, safe_alpha)
    scale = _uniform_gamma(xp, rng, w.shape, w.dtype, gamma)
    return xp, alpha, signs, scale


def stochm(w, gamma, rng):
    """StochM(w, gamma): magnitude |w| * U(gamma, 1/gamma), sign + with p, else -.

    With p = (w/alpha + 1)/2 and u ~ U(gamma, 1/gamma)::

        StochM(w) = +|w| * u   with probability p
                    -|w| * u   with probability 1 - p

    Allowed states: [-alpha/gamma, +alpha/gamma]. The paper uses it for training
    (Tr-StochM-C, gamma = 0.5, the best CIFAR-10 network, 7.64 %).

    This is the *magnitude reading* of Table 1 (docs/papers.md §1.2): the sign is
    drawn like Stoch, the size is |w| scaled by a random factor, so the projection
    samples the interval [gamma*|w|, |w|/gamma] on either side of zero, as the text
    of section 4.1.4 describes. Moments:

        E|StochM(w)| = |w| * (gamma + 1/gamma) / 2
        E[StochM(w)] = (w/alpha) * |w| * (gamma + 1/gamma) / 2   (not w: the paper notes
                                                                  it is biased)

    The formula as printed (+w*U / -w*U) is :func:`stochm_literal`.
    gamma in (0, 1]; gamma = 1 gives |w| with a Stoch-like random sign.
    """
    xp, _, signs, scale = _stochm_draws(w, gamma, rng, "stochm")
    return (signs * xp.abs(w) * scale).astype(w.dtype, copy=False)


def stochm_literal(w, gamma, rng):
    """StochM exactly as printed in Table 1: +w*U with probability p, -w*U with 1 - p.

    p = (w/alpha + 1)/2 and U ~ U(gamma, 1/gamma). Kept for the lesson on why it fails;
    do not train with it.

    Why it fails: the sign is drawn from the sign of w *and then multiplied by w
    again*. A strongly negative weight has p near 0, so it is almost always given the
    branch -w*U, which is **positive**. On average::

        E[literal(w)] = (2p - 1) * w * E[U] = (w/alpha) * w * E[U] = w**2/alpha * E[U] >= 0

    for every w: negative weights are, in expectation, projected to positive ones, so
    the network can never use an inhibitory connection and training diverges. The
    magnitude reading :func:`stochm` uses |w| instead of w, and keeps the sign of w in
    expectation: E[stochm(w)] = w*|w|/alpha * E[U].

    Allowed states: [-alpha/gamma, +alpha/gamma]. Not used by the paper's results.
    """
    _, _, signs, scale = _stochm_draws(w, gamma, rng, "stochm_literal")
    return (signs * w * scale).astype(w.dtype, copy=False)


def stochm_alpha(w, gamma, rng):
    """StochM, the alpha reading: +alpha*U with probability p, -alpha*U with 1 - p.

    p = (w/alpha + 1)/2 and u ~ U(gamma, 1/gamma)::

        StochM_alpha(w) = +alpha * u   with probability p
                          -alpha * u   with probability 1 - p

    Stoch (±alpha) with each state smeared over [gamma*alpha, alpha/gamma]: "there is
    nothing special about projecting to two values, so why not sample the weight space more
    densely?" (section 4.1.4). Allowed states: [-alpha/gamma, -gamma*alpha] and
    [gamma*alpha, alpha/gamma] (inside Table 1's [-alpha/gamma, +alpha/gamma]). Moments::

        E[StochM_alpha(w)] = alpha*(2p - 1)*E[u] = w * (gamma + 1/gamma)/2
        E|StochM_alpha(w)| = alpha * (gamma + 1/gamma)/2

    The only one of the three readings whose expectation is w at gamma = 1 (there it *is*
    Stoch) and not w at gamma = 0.5 (1.25 w) -- the paper's remark after Table 2: "using
    gamma = 0.5 during training, the expected value of the projected weight is no longer"
    w. The magnitude reading :func:`stochm` (E = w*|w|/alpha * E[u]) and the literal one
    :func:`stochm_literal` (E = w**2/alpha * E[u]) differ from w at every gamma, so the
    remark would not single out gamma = 0.5 for them. The text of section 4.1.4 ("projects
    each weight to the interval [gamma*w, w/gamma]") fits the magnitude reading instead,
    which is why the Tr-StochM-C preset keeps :func:`stochm` (docs/papers.md §1.2; lesson 03
    shows the three side by side).
    """
    _, alpha, signs, scale = _stochm_draws(w, gamma, rng, "stochm_alpha")
    return (alpha * signs * scale).astype(w.dtype, copy=False)


def stochm3(w, gamma, rng):
    """StochM3(w, gamma): StochM, then the half of the weights nearest zero dropped.

    1. P = StochM(w, gamma)  (see :func:`stochm`).
    2. Rank the weights of the tensor by |w| (the input weights, not the draws). The
       floor(n/2) smallest -- "the middle 50 %" of the weight distribution, the half
       nearest zero -- are each set to 0 independently with probability 0.5.

    So about a quarter of all weights become 0 and the large half is never zeroed
    (unless a weight was 0 already). Allowed states: [-alpha/gamma, +alpha/gamma],
    including 0 ("three-valued in sign": -, 0, +). The paper uses it for training
    (Tr-StochM3-C, the ImageNet AlexNet benchmark, footnote 2).

    Ties in |w| are broken by ``argsort`` so exactly floor(n/2) weights are eligible.
    """
    xp = _check_weights(w, "stochm3")
    gamma = _check_gamma(gamma, "stochm3")
    rng = rng_or_global(rng)
    projected = stochm(w, gamma, rng)

    flat_abs = xp.abs(w).ravel()
    n_small = flat_abs.size // 2
    small_half = xp.zeros(flat_abs.size, dtype=bool)
    small_half[xp.argsort(flat_abs)[:n_small]] = True     # the half nearest zero
    small_half = small_half.reshape(w.shape)

    coin = _uniform01(xp, rng, w.shape, w.dtype) < 0.5      # probability 0.5 each
    zero = xp.zeros((), dtype=w.dtype)
    return xp.where(small_half & coin, zero, projected).astype(w.dtype, copy=False)


def addnorm(w, sigma, rng):
    """AddNorm(w, sigma) = w + N(0, alpha * sigma): additive Gaussian noise.

    sigma is relative to alpha = max|w|, so the noise standard deviation is alpha*sigma.
    Allowed states: all of R. The paper uses it for testing (Te-AddNorm, Figure 2A;
    Tr-Stoch-C keeps 11 % error at sigma = 0.55). sigma >= 0; sigma = 0 returns a copy.
    """
    xp = _check_weights(w, "addnorm")
    sigma = float(sigma)
    if not (sigma >= 0.0 and math.isfinite(sigma)):
        raise ValueError(f"projections.addnorm: sigma must be a finite number >= 0; got {sigma}.")
    alpha, _ = _alpha(xp, w)
    noise = _normal(xp, rng_or_global(rng), w.shape, w.dtype)
    return (w + (alpha * sigma) * noise).astype(w.dtype, copy=False)


def multunif(w, gamma, rng):
    """MultUnif(w, gamma) = w * U(gamma, 1/gamma): multiplicative uniform noise.

    Each weight is scaled by its own factor drawn from U(gamma, 1/gamma); the sign never
    changes. Allowed states: [-alpha/gamma, +alpha/gamma]. The paper uses it for testing
    (Te-MultUnif, Figure 2B). E[MultUnif(w)] = w * (gamma + 1/gamma)/2.
    gamma in (0, 1]; gamma = 1 returns a copy of w.
    """
    xp = _check_weights(w, "multunif")
    gamma = _check_gamma(gamma, "multunif")
    scale = _uniform_gamma(xp, rng_or_global(rng), w.shape, w.dtype, gamma)
    return (w * scale).astype(w.dtype, copy=False)
