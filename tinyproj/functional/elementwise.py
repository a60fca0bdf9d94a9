"""Element-wise ops with NumPy broadcasting, and their gradients.

When an operand was broadcast in the forward pass (shape (3,1) added to (3,4),
say), its gradient must be summed back to the operand's own shape: every copy
made by broadcasting received a share of the upstream gradient. ``sum_to``
does that reduction.
"""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor, as_array, as_tensor

__all__ = ["sum_to", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt",
           "maximum", "relu", "dropout"]


def sum_to(g, shape):
    """Sum array ``g`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``g.shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)                      # axes broadcasting added in front
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if lead else g


def _pair(a, b):
    """Two operands as Tensors; a Python number takes the other operand's dtype."""
    if not isinstance(a, Tensor) and not hasattr(a, "dtype"):
        a = as_tensor(a, like=as_array(b))
    if not isinstance(b, Tensor) and not hasattr(b, "dtype"):
        b = as_tensor(b, like=as_array(a))
    return a, b


def _check_broadcast(op, a, b):
    """Broadcasting rule: aligned from the right, each pair of sizes is equal or has a 1."""
    for m, n in zip(reversed(a.shape), reversed(b.shape)):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                             "broadcast together (trailing dimensions must match or be 1)")


class Add(Function):
    """y = a + b;  dy/da = 1, dy/db = 1 (then reduced to each operand's shape)."""

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    """y = a - b;  dy/da = 1, dy/db = -1."""

    def forward(self, a, b):
        _check_broadcast("sub", a, b)
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    """y = a * b;  dy/da = b, dy/db = a."""

    def forward(self, a, b):
        _check_broadcast("mul", a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  dy/da = 1/b, dy/db = -a/b²."""

    def forward(self, a, b):
        _check_broadcast("div", a, b)
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = -x."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x**p for a constant exponent p;  dy/dx = p·x**(p-1)."""

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        self.x = x
        return x ** self.p

    def backward(self, gy):
        return gy * self.p * self.x ** (self.p - 1)


class Exp(Function):
    """y = exp(x);  dy/dx = y."""

    def forward(self, x):
        self.y = backend.xp_of(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = log(x);  dy/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return backend.xp_of(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1/(2·y)."""

    def forward(self, x):
        self.y = backend.xp_of(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Maximum(Function):
    """y = max(a, b) element-wise; the gradient goes to the larger operand (to ``a`` on ties)."""

    def forward(self, a, b):
        _check_broadcast("maximum", a, b)
        self.shapes = (a.shape, b.shape)
        self.a_wins = a >= b
        return backend.xp_of(a).maximum(a, b)

    def backward(self, gy):
        ga = sum_to(gy * self.a_wins, self.shapes[0]) if self.needs_grad[0] else None
        gb = sum_to(gy * ~self.a_wins, self.shapes[1]) if self.needs_grad[1] else None
        return ga, gb


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (0 at x = 0)."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def add(a, b):
    return Add()(*_pair(a, b))


def sub(a, b):
    return Sub()(*_pair(a, b))


def mul(a, b):
    return Mul()(*_pair(a, b))


def div(a, b):
    return Div()(*_pair(a, b))


def neg(x):
    return Neg()(x)


def pow(x, p):  # noqa: A001 - mirrors the operator's name
    """x**p for a constant Python number p (a tensor exponent is not supported)."""
    if isinstance(p, Tensor) or hasattr(p, "shape"):
        raise TypeError("pow: the exponent must be a Python number, not a tensor")
    return Pow(p)(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def maximum(a, b):
    return Maximum()(*_pair(a, b))


def relu(x):
    return ReLU()(x)


def dropout(x, p: float = 0.5, training: bool = True, rng=None):
    """Inverted dropout: zero each element with probability p, scale survivors by 1/(1-p).

    x : Tensor of any shape.  rng : the run's generator (backend.global_rng() if None).
    In evaluation (``training=False``) or with p == 0 it returns x unchanged, so the
    expected activation is the same in both modes.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    x = as_tensor(x)
    rng = rng if rng is not None else backend.global_rng()
    keep = rng.random(x.shape) >= p
    scale = keep.astype(x.dtype) / x.dtype.type(1.0 - p)
    return mul(x, scale)
