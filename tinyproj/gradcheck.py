"""Gradient checking: compare backward() with finite differences.

Every op's ``backward`` is a hand-written chain rule and can be wrong in ways
that still train "a bit". A gradient check catches that by computing the same
derivative a second, independent way — by nudging the input and watching the
output move::

    from tinyproj.gradcheck import gradcheck
    import tinyproj.functional as F

    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])

Central differences
    For a scalar function L and a small step ε,

        dL/dx_i ≈ (L(x + ε·e_i) − L(x − ε·e_i)) / (2ε)

    The error of this *central* difference is O(ε²) (the ε-terms of the two
    Taylor expansions cancel), against O(ε) for the one-sided
    (L(x + ε·e_i) − L(x)) / ε. For inputs with many elements one difference
    per element costs too many forward passes, so they are checked along
    random unit directions d instead: the analytic directional derivative
    ⟨∇L, d⟩ is compared with (L(x + ε·d) − L(x − ε·d)) / (2ε). A wrong gradient
    is caught by a random direction with probability 1.

Why float64
    The difference L(x+εd) − L(x−εd) is a small number computed as the
    difference of two large ones, so it loses the leading digits. In float32
    (about 7 significant digits) with ε = 1e-3 the result keeps about 3 correct
    digits, too few to tell a right gradient from a slightly wrong one; in
    float64 (about 16 digits) ε = 1e-6 leaves about 10 correct digits while the
    O(ε²) truncation error is about 1e-12. So the inputs are **cast to float64
    copies** here (your arrays are never modified), and ``fn`` should not cast
    them back to float32.

Making every output element count
    ``fn`` may return a tensor of any shape. It is reduced to the scalar
    L = Σ out · R with R a fixed random array of out's shape (drawn once per
    check), so a wrong gradient of any single output element changes ∇L. (A
    plain sum would miss, for example, an error that only permutes gradients
    between output elements.)

Requirements on ``fn``
    It must be deterministic (draw dropout masks from a generator seeded inside
    ``fn``), smooth near the inputs (keep inputs of relu/max/max-pool away from
    ties and kinks by much more than ε), and take one Tensor per entry of
    ``inputs``. Every entry of ``inputs`` is differentiated; anything that
    takes no gradient (integer labels, running statistics, hyper-parameters) is
    passed through a closure::

        gradcheck(lambda s: F.cross_entropy(s, labels), [scores])
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import backend
from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "numerical_grad", "GradcheckError", "GradcheckResult", "InputCheck"]


class GradcheckError(AssertionError):
    """The analytic and the numerical gradient of some input disagree."""


@dataclass
class InputCheck:
    """What the check found for one input.

    mode      : ``"elementwise"`` (one central difference per element) or
                ``"directional"`` (``n_directions`` random unit directions).
    analytic, numeric : the two gradients (elementwise, shape of the input) or
                the two vectors of directional derivatives (directional).
    max_abs_diff, max_rel_diff : max |analytic − numeric| and
                max |analytic − numeric| / max(|numeric|, tiny).
    worst_index : where |analytic − numeric| is largest (a tuple index into the
                input for elementwise mode, the direction number otherwise).
    ok        : every element satisfies |a − n| <= atol + rtol·|n|.
    """

    index: int
    shape: tuple
    mode: str
    analytic: object
    numeric: object
    max_abs_diff: float
    max_rel_diff: float
    worst_index: tuple
    ok: bool
    note: str = ""


@dataclass
class GradcheckResult:
    """The outcome of :func:`gradcheck`; truthy when every input passed."""

    ok: bool
    inputs: list = field(default_factory=list)
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-4

    def __bool__(self):
        return self.ok

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.inputs), default=0.0)

    @property
    def max_rel_diff(self) -> float:
        return max((c.max_rel_diff for c in self.inputs), default=0.0)

    def summary(self) -> str:
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'} (eps={self.eps:g}, "
                 f"atol={self.atol:g}, rtol={self.rtol:g})"]
        for c in self.inputs:
            lines.append(f"  input {c.index} shape {c.shape} [{c.mode}]: "
                         f"{'ok' if c.ok else 'MISMATCH'}  max abs diff {c.max_abs_diff:.3e}, "
                         f"max rel diff {c.max_rel_diff:.3e}{'  ' + c.note if c.note else ''}")
        return "\n".join(lines)

    __str__ = summary


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _as_float64_copies(inputs):
    """Each input as a fresh float64 array (Tensors, arrays and nested lists accepted)."""
    if isinstance(inputs, (Tensor,)) or hasattr(inputs, "shape"):
        raise TypeError("gradcheck: `inputs` must be a list of arrays or Tensors, e.g. [x] "
                        "rather than x")
    arrays = []
    for k, a in enumerate(inputs):
        if isinstance(a, Tensor):
            a = a.data
        if not hasattr(a, "dtype"):
            a = backend.asarray(a)
        if a.dtype.kind != "f":
            raise TypeError(
                f"gradcheck: input {k} has dtype {a.dtype}; only floating inputs can be "
                "differentiated. Pass integer arguments (labels, indices) through a closure: "
                "gradcheck(lambda s: F.cross_entropy(s, labels), [scores])")
        if backend.on_device() and not backend.is_gpu_array(a):
            a = backend.to_device(a, "gpu")          # check on the backend in use
        xp = backend.xp_of(a)
        arrays.append(a.astype(xp.float64, order="C", copy=True))  # contiguous: see numerical_grad
    return arrays


def _draw(rng, shape, like):
    """Standard normal numbers of ``shape`` as a float64 array on the device of ``like``."""
    xp = backend.xp_of(like)
    values = rng.standard_normal(tuple(shape))
    if not backend.is_gpu_array(like):
        values = backend.to_numpy(values)   # a CuPy generator with NumPy inputs
    return xp.asarray(values, dtype=xp.float64)


def _loss_value(fn, arrays, weights) -> float:
    """L = Σ fn(arrays) · weights, evaluated without recording a graph."""
    with no_grad():
        out = fn(*[Tensor(a) for a in arrays])
    data = out.data if isinstance(out, Tensor) else out
    xp = backend.xp_of(data)
    data = xp.asarray(data, dtype=xp.float64)
    if weights is None:
        return data.sum().item()                     # .item(): an explicit sync on a GPU
    return (data * weights).sum().item()


def numerical_grad(fn, inputs, i, eps: float = 1e-6, weights=None):
    """Central-difference gradient of L with respect to ``inputs[i]``, element by element.

    L = Σ fn(*inputs) · weights, or Σ fn(*inputs) (plain sum; just the value
    for a scalar output) when ``weights`` is None. Costs 2 forward passes per
    element of ``inputs[i]``. Returns a float64 array of ``inputs[i]``'s shape.
    """
    arrays = _as_float64_copies(inputs)
    x = arrays[i]
    xp = backend.xp_of(x)
    grad = xp.zeros_like(x)
    flat_x = x.reshape(-1)           # a view: writing it perturbs arrays[i]
    flat_g = grad.reshape(-1)
    for k in range(x.size):
        orig = flat_x[k].item()
        flat_x[k] = orig + eps
        lp = _loss_value(fn, arrays, weights)
        flat_x[k] = orig - eps
        lm = _loss_value(fn, arrays, weights)
        flat_x[k] = orig
        flat_g[k] = (lp - lm) / (2 * eps)
    return grad


def _unravel(flat: int, shape) -> tuple:
    """The multi-index of position ``flat`` in a C-ordered array of ``shape`` (plain ints)."""
    index = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        index.append(i)
    return tuple(reversed(index))


def _compare(analytic, numeric, atol, rtol):
    """max abs diff, max rel diff, index of the largest abs diff, all-close flag."""
    xp = backend.xp_of(analytic)
    diff = xp.abs(analytic - numeric)
    scale = xp.abs(numeric)
    rel = diff / xp.maximum(scale, 1e-300)
    worst = int(diff.argmax().item()) if diff.size else 0
    worst_index = _unravel(worst, diff.shape) if diff.size else ()
    ok = bool((diff <= atol + rtol * scale).all().item())
    max_abs = float(diff.max().item()) if diff.size else 0.0
    max_rel = float(rel.max().item()) if diff.size else 0.0
    return max_abs, max_rel, worst_index, ok


def _fmt(array) -> str:
    host = backend.to_numpy(array)
    return backend.xp_of(host).array2string(host, precision=6, threshold=60, edgeitems=4,
                                            max_line_width=100)


def _failure_message(fn, check: InputCheck, result: GradcheckResult) -> str:
    name = getattr(fn, "__name__", repr(fn))
    c = check
    lines = [f"gradcheck of {name}: the gradient of input {c.index} (shape {c.shape}) is wrong.",
             f"  compared {c.mode}" + (" (one central difference per element)"
                                       if c.mode == "elementwise" else
                                       f" ({len(c.analytic)} random unit directions d: "
                                       "⟨grad, d⟩ vs (L(x+εd) − L(x−εd))/2ε)"),
             f"  max abs diff {c.max_abs_diff:.6e}, max rel diff {c.max_rel_diff:.6e} "
             f"(allowed: atol {result.atol:g} + rtol {result.rtol:g}·|numeric|)"]
    if c.worst_index != ():
        a = backend.to_numpy(c.analytic)[c.worst_index]
        n = backend.to_numpy(c.numeric)[c.worst_index]
        where = f"index {c.worst_index}" if c.mode == "elementwise" else \
            f"direction {c.worst_index[0]}"
        lines.append(f"  largest difference at {where}: analytic {a.item():.9g}, "
                     f"numeric {n.item():.9g}")
    if c.note:
        lines.append(f"  note: {c.note}")
    label = "gradient" if c.mode == "elementwise" else "directional derivatives"
    lines += [f"  analytic {label} (from backward):", _indent(_fmt(c.analytic)),
              f"  numeric {label} (central differences, eps={result.eps:g}):",
              _indent(_fmt(c.numeric)),
              result.summary()]
    return "\n".join(lines)


def _indent(text, pad="    "):
    return "\n".join(pad + line for line in text.splitlines())


# ---------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------
def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              max_elementwise: int = 200, n_directions: int = 8, rng=None,
              raise_on_fail: bool = True) -> GradcheckResult:
    """Check ``backward`` of ``fn`` against float64 central differences.

    fn : callable taking one Tensor per entry of ``inputs`` and returning a
        Tensor of any shape (reduced to L = Σ out·R, R fixed and random).
    inputs : list of arrays or Tensors (floating). They are cast to float64
        *copies*; every one of them is differentiated. Pass non-differentiable
        arguments (integer labels, ...) through a closure.
    eps : the finite-difference step ε.
    atol, rtol : element ``k`` passes when |a_k − n_k| <= atol + rtol·|n_k|
        (a analytic, n numeric).
    max_elementwise : inputs with at most this many elements are checked
        element by element; larger ones along ``n_directions`` random unit
        directions.
    rng : random generator for R and the directions (default: seeded with 0,
        so a check is reproducible).
    raise_on_fail : raise :class:`GradcheckError` (an AssertionError, so
        pytest shows it) on a mismatch; with False just return the result.

    Returns a :class:`GradcheckResult` (truthy when all inputs passed).
    """
    rng = rng if rng is not None else backend.make_rng(0)
    arrays = _as_float64_copies(inputs)
    if not arrays:
        raise ValueError("gradcheck: `inputs` is empty; give at least one array to check")

    # analytic gradients: one backward pass with upstream gradient R = dL/dout
    leaves = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*leaves)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError("gradcheck: fn's output does not require grad — it does not depend "
                         "on any input, or fn ran under no_grad()")
    if out.dtype.kind != "f" or out.dtype.itemsize < 8:
        raise TypeError(f"gradcheck: fn returned dtype {out.dtype} for float64 inputs; keep "
                        "the computation in float64 (see the module docstring: why float64)")
    weights = _draw(rng, out.shape, arrays[0])
    out.backward(weights.astype(out.dtype))

    result = GradcheckResult(ok=True, eps=eps, atol=atol, rtol=rtol)
    for i, (x, leaf) in enumerate(zip(arrays, leaves)):
        xp = backend.xp_of(x)
        note = ""
        g = leaf.grad
        if g is None:
            g, note = xp.zeros_like(x), "backward gave no gradient (None); taken as zeros"
        elif tuple(g.shape) != tuple(x.shape):
            raise GradcheckError(f"gradcheck: backward gave input {i} (shape {tuple(x.shape)}) "
                                 f"a gradient of shape {tuple(g.shape)}")
        g = xp.asarray(g, dtype=xp.float64)
        if x.size <= max_elementwise:
            mode = "elementwise"
            analytic = g
            numeric = numerical_grad(fn, arrays, i, eps=eps, weights=weights)
        else:
            mode = "directional"
            analytic = xp.zeros(n_directions)
            numeric = xp.zeros(n_directions)
            for k in range(n_directions):
                d = _draw(rng, x.shape, x)
                d /= xp.sqrt((d * d).sum())
                shifted = list(arrays)
                shifted[i] = x + eps * d
                lp = _loss_value(fn, shifted, weights)
                shifted[i] = x - eps * d
                lm = _loss_value(fn, shifted, weights)
                numeric[k] = (lp - lm) / (2 * eps)
                analytic[k] = (g * d).sum()
        max_abs, max_rel, worst, ok = _compare(analytic, numeric, atol, rtol)
        check = InputCheck(i, tuple(x.shape), mode, analytic, numeric, max_abs, max_rel,
                           worst, ok, note)
        result.inputs.append(check)
        result.ok = result.ok and ok

    if not result.ok and raise_on_fail:
        first_bad = next(c for c in result.inputs if not c.ok)
        raise GradcheckError(_failure_message(fn, first_bad, result))
    return result
