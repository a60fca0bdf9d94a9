"""Winograd F(2×2, 3×3) (kernels/winograd.py, functional/conv_winograd.py): the transforms
against their readable versions bit for bit, the convolution and its gradients against
im2col and finite differences, the max-pool fusion, and which layers take the path."""
import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
from tinyproj.functional import conv_winograd
from tinyproj.gradcheck import gradcheck
from tinyproj.kernels import shifted, winograd

pytestmark = pytest.mark.numpy_only("the Winograd path runs on NumPy arrays")
DTYPES = (np.float32, np.float64)


def R(seed=0):
    return np.random.default_rng(seed)


def _grid(x, pad=(1, 1)):
    b, c, h, w = x.shape
    h2, w2, _, _, m, tail = shifted.grid(x.shape, 3, 3, pad)
    rows = shifted.reference_pad_rows(x, pad, np.empty((m + tail, c), x.dtype))
    return rows[:m].reshape(b, h2, w2, c)


@pytest.fixture
def everywhere(monkeypatch):
    """Every 3×3 stride-1 layer with an even output takes the Winograd path (tests use few
    channels)."""
    monkeypatch.setattr(conv_winograd, "WINOGRAD", True)
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(F.conv, "DIRECT_MAX_K", 0)          # K ≤ 32 would go image by image
    calls = {"forward": 0, "backward": 0}                    # so a test can see the path ran
    for name in calls:
        def spy(*args, _real=getattr(conv_winograd, name), _name=name):
            calls[_name] += 1
            return _real(*args)
        monkeypatch.setattr(conv_winograd, name, spy)
    return calls


def _conv(x, w, padding=1, winograd_on=True, monkeypatch=None):
    monkeypatch.setattr(conv_winograd, "WINOGRAD", winograd_on)
    xt, wt = tp.Tensor(x, requires_grad=True), tp.Tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=padding)
    gy = R(9).standard_normal(y.shape).astype(x.dtype)
    y.backward(gy)
    return y.data, xt.grad, wt.grad


# ---------------------------------------------------------------------------
# the transforms: Numba copies = readable versions, bit for bit
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b, c, o, h, w", [(1, 1, 1, 2, 2), (3, 5, 7, 6, 10), (2, 17, 3, 8, 4)])
def test_numba_transforms_equal_the_readable_ones(dtype, b, c, o, h, w):
    pytest.importorskip("numba")
    from tinyproj.kernels import winograd_cpu as fast
    rng = R(1)
    grid = _grid(rng.standard_normal((b, c, h, w)).astype(dtype))
    t = b * (h // 2) * (w // 2)
    v_ref = winograd.reference_input_transform(grid, np.empty((t, 16, c), dtype))
    v = np.empty_like(v_ref)
    fast.input_transform(grid, v)
    assert np.array_equal(v, v_ref)

    m = rng.standard_normal((t, 16, o)).astype(dtype)
    y = np.empty((b, h, w, o), dtype)
    fast.output_transform(m, y)
    assert np.array_equal(y, winograd.reference_output_transform(m, np.empty_like(y)))

    gy = rng.standard_normal((b, h, w, o)).astype(dtype)
    gm = np.empty((t, 16, o), dtype)
    fast.output_transform_adjoint(gy, gm)
    assert np.array_equal(gm, winograd.reference_output_transform_adjoint(gy, np.empty_like(gm)))

    gv = rng.standard_normal((t, 16, c)).astype(dtype)
    dgrid = np.full_like(grid, np.nan)                 # overwritten whole, NaNs included
    fast.input_transform_adjoint(gv, dgrid)
    assert np.array_equal(dgrid, winograd.reference_input_transform_adjoint(gv, grid.copy()))

    wt = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    u = winograd.weight_transform(wt)
    assert u.dtype == dtype and u.shape == (16, o, c)
    assert np.array_equal(u, winograd.reference_weight_transform(wt))
    gu = rng.standard_normal((16, o, c)).astype(dtype)
    assert np.array_equal(winograd.weight_transform_adjoint(gu),
                          winograd.reference_weight_transform_adjoint(gu))


def test_one_tile_by_hand():
    """A 4×4 tile of ones with a kernel of ones: every output is the sum of a 3×3 window, 9."""
    grid = np.ones((1, 4, 4, 1))
    v = winograd.reference_input_transform(grid, np.empty((1, 16, 1)))
    u = winograd.reference_weight_transform(np.ones((1, 1, 3, 3)))
    m = (v.transpose(1, 0, 2) @ u.transpose(0, 2, 1)).transpose(1, 0, 2)
    y = winograd.reference_output_transform(m, np.empty((1, 2, 2, 1)))
    assert np.array_equal(y.ravel(), [9.0, 9.0, 9.0, 9.0])
    # Bᵀ d B of a constant tile: only the middle 2×2 of the 16 values is nonzero
    assert np.array_equal(v.reshape(4, 4), [[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0],
                                             [0, 0, 0, 0]])


# ---------------------------------------------------------------------------
# the convolution: the same numbers as im2col, the exact gradient
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("shape, padding", [((3, 4, 6, 8), 1), ((2, 3, 8, 6), 0),
                                            ((1, 5, 2, 2), 1), ((2, 3, 6, 8), (1, 0))])
def test_winograd_convolution_matches_im2col(everywhere, monkeypatch, dtype, tol, shape,
                                              padding):
    rng = R(2)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((6, shape[1], 3, 3)).astype(dtype)
    assert conv_winograd.uses(F.conv.Conv2d(1, padding), x, w)
    got = _conv(x, w, padding, True, monkeypatch)
    assert everywhere == {"forward": 1, "backward": 1}
    want = _conv(x, w, padding, False, monkeypatch)
    for g, e in zip(got, want):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=0, atol=tol * np.abs(e).max())


def test_winograd_gradients_pass_finite_differences(everywhere):
    rng = R(3)
    x = rng.standard_normal((2, 3, 4, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    assert gradcheck(lambda a, b: F.conv2d(a, b, padding=1), [x, w]).ok
    assert everywhere["forward"] and everywhere["backward"]


def test_gradcheck_catches_a_wrong_winograd_gradient(everywhere, monkeypatch):
    """The check above can fail: a transposed G in dW's last step is caught."""
    wrong = winograd.reference_weight_transform_adjoint
    monkeypatch.setattr(winograd, "weight_transform_adjoint",
                        lambda gu: wrong(gu).transpose(0, 1, 3, 2).copy())
    rng = R(3)
    res = gradcheck(lambda a, b: F.conv2d(a, b, padding=1),
                    [rng.standard_normal((2, 3, 4, 6)), rng.standard_normal((2, 3, 3, 3))],
                    raise_on_fail=False)
    assert not res.ok and everywhere["backward"]


def test_chunks_accumulate_dw_and_split_the_batch(everywhere, monkeypatch):
    rng = R(4)
    x = rng.standard_normal((7, 4, 8, 8))
    w = rng.standard_normal((5, 4, 3, 3))
    whole = _conv(x, w, 1, True, monkeypatch)
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 1)            # one image a chunk
    assert conv_winograd.chunks(x, w) == [(i, i + 1) for i in range(7)]
    split = _conv(x, w, 1, True, monkeypatch)
    assert np.array_equal(whole[0], split[0]) and np.array_equal(whole[1], split[1])
    np.testing.assert_allclose(split[2], whole[2], rtol=1e-12)     # dW: other sum order


def test_only_the_gradients_asked_for(everywhere):
    rng = R(5)
    x = tp.Tensor(rng.standard_normal((2, 3, 4, 4)))                   # no grad for x
    w = tp.Tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (2, 3, 3, 3) and everywhere["backward"] == 1


def test_reference_mode_keeps_im2col(everywhere, monkeypatch):
    """Under TINYPROJ_KERNELS=reference the layer is the readable im2col convolution (the
    definition every fast path is tested against), as for the shifted products."""
    from tinyproj.functional.conv import Conv2d
    rng = R(6)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    assert conv_winograd.uses(Conv2d(1, 1), x, w)
    im2col = _conv(x, w, 1, False, monkeypatch)
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    assert not conv_winograd.uses(Conv2d(1, 1), x, w)
    readable = _conv(x, w, 1, True, monkeypatch)
    for a, b in zip(readable, im2col):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())


def test_fused_max_pool_takes_the_winograd_rows(everywhere):
    rng = R(7)
    x = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    w = tp.Tensor(rng.standard_normal((5, 4, 3, 3)).astype(np.float32), requires_grad=True)
    from tinyproj.functional.conv_pool import conv2d_maxpool
    fused = conv2d_maxpool(tp.Tensor(x), w, padding=1)
    gy = rng.standard_normal(fused.shape).astype(np.float32)
    fused.backward(gy)
    assert everywhere == {"forward": 1, "backward": 1}
    g_fused = w.grad
    w.grad = None
    plain = F.max_pool2d(F.conv2d(tp.Tensor(x), w, padding=1), 2)
    plain.backward(gy)
    assert np.array_equal(fused.data, plain.data) and np.array_equal(g_fused, w.grad)


# ---------------------------------------------------------------------------
# which layers
# ---------------------------------------------------------------------------
def test_which_layers_take_the_path(monkeypatch):
    from tinyproj.functional.conv import Conv2d
    x = np.zeros((2, 128, 8, 8), np.float32)
    w = np.zeros((64, 128, 3, 3), np.float32)
    assert conv_winograd.uses(Conv2d(1, 1), x, w)
    assert not conv_winograd.uses(Conv2d(2, 1), x, w)                          # stride 2
    assert not conv_winograd.uses(Conv2d(1, 0), x[:, :, :7, :7], w)            # odd output
    assert not conv_winograd.uses(Conv2d(1, 2), x, np.zeros((64, 128, 5, 5), np.float32))
    assert not conv_winograd.uses(Conv2d(1, 1), x[:, :3], w[:, :3])            # C < MIN
    assert not conv_winograd.uses(Conv2d(1, 1), x.astype(np.float16), w.astype(np.float16))
    monkeypatch.setattr(conv_winograd, "WINOGRAD", False)
    assert not conv_winograd.uses(Conv2d(1, 1), x, w)
