"""Layers: Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout.

Each layer is a thin :class:`~tinyproj.nn.Module` around one op of
``tinyproj.functional``; the arithmetic (and its backward) lives there. What the
layer adds: its Parameters (float32; Glorot-uniform weights and zero biases by default, or
PyTorch's default U(±1/√fan_in) for both with ``init="torch"``, see ``nn.init``), its mode
(training/evaluation) and shape checks whose message names the layer, e.g.

    ValueError: Linear 'classifier.2' (in_features=10, out_features=5, bias=False):
    expected input of shape (N, 10), got (32, 7)

The paper's networks have no neuron biases, so ``bias=False`` is the default.
"""
from __future__ import annotations

from .. import functional as F
from ..functional.conv_pool import conv2d_maxpool
from ..kernels.geometry import pair as _pair
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Dropout"]


def _init_parameters(module, shape, bias: bool, rng, how: str) -> None:
    """Set ``module.weight`` (of ``shape``) and ``module.bias`` (or None).

    glorot: W ~ U(±√(6/(fan_in + fan_out))), b = 0.
    torch:  W ~ U(±1/√fan_in), then b ~ U(±1/√fan_in) (PyTorch's order: weight first).
    """
    how = init.check_init(how)
    if how == "torch":
        module.weight = Parameter(init.torch_uniform(shape, rng=rng))
    else:
        module.weight = Parameter(init.glorot_uniform(shape, rng))
    # the std the weights were drawn with: the paper's clip bound is c_k = f · this std
    module.weight.init_std = init.init_std(shape, how)
    if not bias:
        module.register_parameter("bias", None)
    elif how == "torch":
        module.bias = Parameter(init.torch_uniform(shape[0], init.fans(shape)[0], rng=rng))
    else:
        module.bias = Parameter(init.zeros(shape[0]))


def _positive_int(value, what, owner):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return value


def _shape(x):
    return tuple(x.shape)


class Linear(Module):
    """Fully connected layer: y = x Wᵀ (+ b).

    Shapes: x (N, in_features) → y (N, out_features);
    weight W (out_features, in_features), bias b (out_features,).
    Init (``init=``): "glorot" W ~ U(−a, a), a = sqrt(6 / (in_features + out_features)),
    b = 0; "torch" (PyTorch's default) W, b ~ U(−1/√in_features, 1/√in_features).
    rng: the generator for the initial weights (default ``backend.global_rng()``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, rng=None,
                 init: str = "glorot"):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        _init_parameters(self, (out_features, in_features), bias, rng, init)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = (" — flatten it first (nn.Flatten())" if x.ndim > 2 and
                    _prod(x.shape[1:]) == self.in_features else "")
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_features}), got {_shape(x)}{hint}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


class Conv2d(Module):
    """2-D convolution (cross-correlation) over x (N, C_in, H, W) → y (N, C_out, OH, OW).

    OH = (H + 2·padding − kh) // stride + 1 (same for OW).
    weight W (C_out, C_in, kh, kw), bias b (C_out,).
    Init (``init=``): "glorot" with fan_in = C_in·kh·kw, fan_out = C_out·kh·kw, b = 0;
    "torch" (PyTorch's default) W, b ~ U(−1/√fan_in, 1/√fan_in).
    kernel_size, stride and padding are ints or (vertical, horizontal) pairs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = False, rng=None, init: str = "glorot"):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.padding = _pair(padding, "padding", "Conv2d")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"padding={self.padding}")
        _init_parameters(self, (out_channels, in_channels) + self.kernel_size, bias, rng, init)

    def forward(self, x, pool=None):
        """y = conv2d(x, W) (+ b); with ``pool`` (a MaxPool2d module) max_pool2d of it, computed
        as one op (functional/conv_pool.py; ``nn.Sequential`` asks for it when a max-pool
        follows this layer). A layer with a bias is not fused (the bias comes in between)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_channels}, H, W), got {_shape(x)}")
        kh, kw = self.kernel_size
        (sh, sw), (ph, pw) = self.stride, self.padding
        h, w = x.shape[2], x.shape[3]
        if (h + 2 * ph - kh) // sh + 1 < 1 or (w + 2 * pw - kw) // sw + 1 < 1:
            raise ValueError(f"{self.describe()}: a {kh}×{kw} kernel does not fit the input of "
                             f"shape {_shape(x)} (spatial size {h}×{w} with padding {ph, pw})")
        if pool is not None and self.bias is None:
            pool.check_input(((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1), x)
            return conv2d_maxpool(x, self.weight, stride=self.stride, padding=self.padding,
                                  pool=pool.kernel_size, pool_stride=pool.stride,
                                  pool_padding=pool.padding)
        y = F.conv2d(x, self.weight, stride=self.stride, padding=self.padding, bias=self.bias)
        return y if pool is None else pool(y)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        return s + f", bias={self.bias is not None}"


class ReLU(Module):
    """y = max(x, 0), element-wise; any shape."""

    def forward(self, x):
        return F.relu(x)


class MaxPool2d(Module):
    """Max over kernel_size windows: x (N, C, H, W) → (N, C, OH, OW).

    OH = (H + 2·padding − k) // stride + 1; stride defaults to kernel_size (no overlap);
    stride < kernel_size gives overlapping windows (AlexNet: 3×3, stride 2).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", "MaxPool2d")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride", "MaxPool2d")
        self.padding = _pair(padding, "padding", "MaxPool2d")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"MaxPool2d: kernel_size and stride must be >= 1 and padding >= 0, "
                             f"got kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"padding={self.padding}")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size}")

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected input of shape (N, C, H, W), "
                             f"got {_shape(x)}")
        self.check_input(x.shape[2:], x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def check_input(self, hw, x):
        """Refuse an input of spatial size ``hw`` that the window does not fit (x: for the
        message; a fused Conv2d passes its output's size and its own input)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if (hw[0] + 2 * ph - kh) // sh + 1 < 1 or (hw[1] + 2 * pw - kw) // sw + 1 < 1:
            raise ValueError(f"{self.describe()}: a {kh}×{kw} window does not fit the input of "
                             f"shape {_shape(x)}" + ("" if tuple(x.shape[2:]) == tuple(hw) else
                                                     f" (spatial size {hw[0]}×{hw[1]})"))

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return s + (f", padding={self.padding}" if self.padding != (0, 0) else "")


class Flatten(Module):
    """(N, d1, d2, ...) → (N, d1·d2·...): keep the batch axis, flatten the rest."""

    def forward(self, x):
        if x.ndim < 1:
            raise ValueError(f"{self.describe()}: expected an input with a batch axis, got a "
                             "scalar")
        return F.flatten(x)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the
    survivors by 1/(1 − p), so E[y] = x; in evaluation, y = x.

    rng: the generator for the masks (default ``backend.global_rng()`` at call time).
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p is the probability of zeroing an element and must be "
                             f"in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self):
        return f"p={self.p}"
