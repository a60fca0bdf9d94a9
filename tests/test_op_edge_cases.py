"""Edge cases of ops that the main op tests miss, each one a rule a fast path or a shortcut
can break without the usual tests noticing.

* Conv2d's CPU fast paths are taken only where they are exact. Winograd F(2×2, 3×3)
  (functional/conv_winograd.py) needs an even output height *and* width; the shifted products
  (functional/conv_shifted.py) need stride (1, 1) in both directions. Forward, dx and dW on the
  default (``auto``) kernels equal those of ``TINYPROJ_KERNELS=reference`` (plain im2col) for
  odd / even output sizes at channel counts that select Winograd, and for non-square strides
  at channel counts that select the shifted products; a spy checks which path really ran.
* ReLU's gradient at exactly 0 is 0 (as in PyTorch); ``maximum`` sends the gradient of a tie
  to its first operand, whole, as its docstring says.
* A leaf's ``.grad`` never aliases an upstream gradient the caller passed to ``backward``,
  whether an op hands it on as a view (reshape, transpose), as it is (Add), or the root is the
  leaf itself: writing into that array afterwards leaves ``.grad`` alone, and vice versa.
"""
from collections import Counter

import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
from tinyproj import backend
from tinyproj.functional import conv_shifted, conv_winograd
from tinyproj.kernels import shifted, winograd


def R(seed=0):
    return np.random.default_rng(seed)


def host(a):
    return backend.to_numpy(a) if backend.is_gpu_array(a) else np.asarray(a)


# ---------------------------------------------------------------------------
# Conv2d's fast CPU paths against the reference kernels
# ---------------------------------------------------------------------------
@pytest.fixture
def paths(monkeypatch):
    """The default fast paths switched on, with a count of the calls into each (so a test
    can see which one ran)."""
    monkeypatch.setattr(conv_winograd, "WINOGRAD", True)
    monkeypatch.setattr(conv_shifted, "SHIFTED", True)
    calls = Counter()
    for module, names in ((conv_winograd, ("forward", "backward")),
                          (conv_shifted, ("forward", "dx"))):
        for name in names:
            key = f"{module.__name__.rsplit('.', 1)[1]}.{name}"

            def spy(*args, _real=getattr(module, name), _key=key, **kwargs):
                calls[_key] += 1
                return _real(*args, **kwargs)
            monkeypatch.setattr(module, name, spy)
    return calls


def _conv_both_ways(monkeypatch, x, w, stride, padding, seed=9, x_grad=True):
    """(y, dx, dW) of conv2d on the reference kernels, then on the default (auto) ones
    (dx None when ``x_grad`` is False, as for a network's first layer)."""
    def run(mode, gy=None):
        monkeypatch.setenv("TINYPROJ_KERNELS", mode)
        xt = tp.Tensor(x.copy(), requires_grad=x_grad)
        wt = tp.Tensor(w.copy(), requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=padding)
        if gy is None:
            gy = R(seed).standard_normal(y.shape).astype(x.dtype)
        y.backward(gy)
        return gy, (y.data.copy(), None if xt.grad is None else xt.grad.copy(),
                    wt.grad.copy())

    gy, want = run("reference")
    _, got = run("auto", gy)
    return got, want


def _naive_forward(x, w, stride, pad):
    """The cross-correlation by sliding windows (float64), independent of every kernel."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1]]
    return np.einsum("nchwij,ocij->nohw", win, w)


def _assert_same(got, want, tol=1e-10):
    for name, g, v in zip(("y", "dx", "dW"), got, want):
        if v is None:
            assert g is None, name
            continue
        assert g.shape == v.shape, name
        np.testing.assert_allclose(g, v, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.numpy_only("the Winograd path runs on NumPy arrays")
@pytest.mark.parametrize("hw, pad", [
    ((8, 8), (1, 1)),      # output 8×8: Winograd
    ((8, 10), (1, 0)),     # output 8×8 from a non-square padding: Winograd
    ((8, 7), (0, 0)),      # output 6×5: even height, odd width
    ((8, 7), (1, 1)),      # output 8×7
    ((7, 8), (1, 1)),      # output 7×8: odd height, even width
    ((9, 6), (0, 0)),      # output 7×4
    ((7, 7), (1, 1)),      # output 7×7: both odd
])
def test_conv_winograd_only_for_even_outputs_and_matches_reference(monkeypatch, paths, hw, pad):
    c = conv_winograd.MIN_CHANNELS                    # channels that select Winograd
    assert c >= 16                                    # (K = 9·C, far above DIRECT_MAX_K)
    rng = R(1)
    x = rng.standard_normal((2, c, *hw))
    w = rng.standard_normal((8, c, 3, 3)) / np.sqrt(9 * c)
    got, want = _conv_both_ways(monkeypatch, x, w, (1, 1), pad)

    oh, ow = hw[0] + 2 * pad[0] - 2, hw[1] + 2 * pad[1] - 2
    expect_winograd = oh % 2 == 0 and ow % 2 == 0
    assert want[0].shape == (2, 8, oh, ow)
    assert winograd.applies(x.shape, w.shape, (1, 1), pad) == expect_winograd
    assert paths["conv_winograd.forward"] == int(expect_winograd)
    assert paths["conv_winograd.backward"] == int(expect_winograd)
    np.testing.assert_allclose(want[0], _naive_forward(x, w, (1, 1), pad), rtol=1e-10,
                               atol=1e-10)
    _assert_same(got, want)


@pytest.mark.numpy_only("the shifted products run on NumPy arrays")
@pytest.mark.parametrize("stride", [(1, 2), (2, 1), (1, 1)])
@pytest.mark.parametrize("kernel, pad", [((3, 3), (1, 1)), ((3, 2), (1, 0))])
@pytest.mark.parametrize("x_grad", [True, False], ids=["with_dx", "no_dx"])
def test_conv_shifted_products_only_for_stride_one_both_ways_and_match_reference(
        monkeypatch, paths, stride, kernel, pad, x_grad):
    c = o = 32                                        # 16 ≤ C, O ≤ 64: the shifted range
    assert conv_shifted.SHIFT_MIN_C <= c and o <= conv_shifted.SHIFT_MAX_O
    assert c < conv_winograd.MIN_CHANNELS             # not the Winograd path
    rng = R(2)
    x = rng.standard_normal((2, c, 9, 10))
    w = rng.standard_normal((o, c, *kernel)) / np.sqrt(c * kernel[0] * kernel[1])
    got, want = _conv_both_ways(monkeypatch, x, w, stride, pad, x_grad=x_grad)

    expect_shifted = stride == (1, 1) and shifted.available()
    assert paths["conv_shifted.forward"] == int(expect_shifted)
    assert paths["conv_shifted.dx"] == int(expect_shifted and x_grad)
    assert paths["conv_winograd.forward"] == 0
    np.testing.assert_allclose(want[0], _naive_forward(x, w, stride, pad), rtol=1e-10,
                               atol=1e-10)
    _assert_same(got, want)


# ---------------------------------------------------------------------------
# ReLU and maximum at their kinks
# ---------------------------------------------------------------------------
def test_relu_gradient_at_exact_zero_is_zero():
    x = tp.tensor(np.array([-1.5, 0.0, -0.0, 2.0, 0.0, 1e-30]), requires_grad=True,
                  dtype=np.float64)
    gy = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y = F.relu(x)
    y.backward(gy)
    np.testing.assert_array_equal(host(y.data), [0.0, 0.0, 0.0, 2.0, 0.0, 1e-30])
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0, 0.0, 4.0, 0.0, 6.0])


def test_relu_gradient_at_zero_is_zero_in_float32_too():
    x = tp.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    F.relu(x).sum().backward()
    assert host(x.grad).dtype == np.float32
    np.testing.assert_array_equal(host(x.grad), np.zeros((2, 3), np.float32))


def test_maximum_sends_a_tie_wholly_to_the_first_operand():
    """Docstring of Maximum: the gradient goes to the larger operand, to ``a`` on ties;
    each element's gradient goes to exactly one operand."""
    a = tp.tensor(np.array([1.0, 2.0, 3.0, -0.0, 7.0]), requires_grad=True, dtype=np.float64)
    b = tp.tensor(np.array([1.0, 5.0, 3.0, 0.0, -7.0]), requires_grad=True, dtype=np.float64)
    gy = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    y = F.maximum(a, b)
    y.backward(gy)
    np.testing.assert_array_equal(host(y.data), [1.0, 5.0, 3.0, 0.0, 7.0])
    np.testing.assert_array_equal(host(a.grad), [10.0, 0.0, 30.0, 40.0, 50.0])
    np.testing.assert_array_equal(host(b.grad), [0.0, 20.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(host(a.grad) + host(b.grad), gy)


def test_maximum_ties_with_a_broadcast_operand_go_to_the_first_operand():
    a = tp.tensor(np.array([[0.0, 1.0, -2.0], [3.0, 0.0, 0.5]]), requires_grad=True,
                  dtype=np.float64)
    b = tp.tensor(np.array([0.0, 1.0, 0.5]), requires_grad=True, dtype=np.float64)  # (3,)
    F.maximum(a, b).sum().backward()
    # ties at (0,0), (0,1), (1,2); b wins at (0,2) and (1,1); b.grad sums over the rows
    np.testing.assert_array_equal(host(a.grad), [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(host(b.grad), [0.0, 1.0, 1.0])
    # and against a scalar operand: max(x, 0) passes the gradient on at x = 0 (unlike relu)
    x = tp.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True, dtype=np.float64)
    zero = tp.tensor(np.array(0.0), requires_grad=True, dtype=np.float64)
    F.maximum(x, zero).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(host(x.grad), [0.0, 2.0, 3.0])
    assert host(zero.grad) == 1.0


# ---------------------------------------------------------------------------
# a leaf's .grad never aliases the caller's upstream gradient
# ---------------------------------------------------------------------------
UPSTREAM = {
    "leaf itself": (lambda x: x, (2, 3)),
    "reshape (a view of gy)": (lambda x: x.reshape(6), (6,)),
    "reshape to the same shape": (lambda x: x.reshape(2, 3), (2, 3)),
    "transpose (a view of gy)": (lambda x: x.T, (3, 2)),
    "add (hands gy on)": (lambda x: x + 0.0, (2, 3)),
}


@pytest.mark.numpy_only("checks the memory of host arrays with np.shares_memory")
@pytest.mark.parametrize("name", list(UPSTREAM))
def test_leaf_grad_never_aliases_a_user_supplied_upstream_gradient(name):
    fn, shape = UPSTREAM[name]
    x = tp.tensor(R(3).standard_normal((2, 3)), requires_grad=True, dtype=np.float64)
    G = np.arange(1.0, 7.0).reshape(shape)
    fn(x).backward(G)
    expected = np.arange(1.0, 7.0).reshape(shape)
    expected = expected.T if name.startswith("transpose") else expected.reshape(2, 3)
    np.testing.assert_array_equal(x.grad, expected)
    assert not np.shares_memory(x.grad, G)
    G[...] = -1                                       # the caller reuses its array
    np.testing.assert_array_equal(x.grad, expected)
    x.grad += 100                                     # and the leaf's grad is written to
    np.testing.assert_array_equal(G, np.full(shape, -1.0))


@pytest.mark.numpy_only("checks the memory of host arrays with np.shares_memory")
def test_accumulated_grad_never_aliases_either_upstream_gradient():
    x = tp.tensor(np.zeros((2, 3)), requires_grad=True, dtype=np.float64)
    G1, G2 = np.ones(6), np.full(6, 2.0)
    x.reshape(6).backward(G1)
    x.reshape(6).backward(G2)
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 3.0))
    assert not np.shares_memory(x.grad, G1) and not np.shares_memory(x.grad, G2)
    G1[...] = G2[...] = 0
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 3.0))
