"""The Numba kernels (kernels/cpu*.py) against the reference kernels (kernels/reference.py).

The reference kernels are checked against naive loops in test_kernels.py; here every fast
kernel must give the reference's result on the same input: exactly where no arithmetic is
involved (im2col, max-pool forward, Adam, Sign), to rounding where sums are reordered.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinyproj.functional as F
from tinyproj import backend, kernels, models
from tinyproj.kernels import reference as ref
from tinyproj.kernels import workspace

cpu = pytest.importorskip("tinyproj.kernels.cpu")
cpu_batchnorm = pytest.importorskip("tinyproj.kernels.cpu_batchnorm")
cpu_optim = pytest.importorskip("tinyproj.kernels.cpu_optim")
cpu_pool = pytest.importorskip("tinyproj.kernels.cpu_pool")

pytestmark = pytest.mark.skipif(backend.name() != "numpy",
                                reason="the Numba kernels work on NumPy arrays only")

DTYPES = [np.float32, np.float64]


def tol(dtype):
    """assert_allclose tolerances for results whose sums may be reordered."""
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)


def out_hw(h, w, kh, kw, stride, pad):
    return ref.out_size(h, kh, stride[0], pad[0]), ref.out_size(w, kw, stride[1], pad[1])


# (N, C, H, W), (kh, kw), stride, pad
GEOMETRIES = [
    pytest.param((2, 3, 7, 9), (3, 3), (1, 1), (1, 1), id="3x3-s1-p1"),
    pytest.param((1, 1, 6, 5), (2, 3), (2, 2), (0, 0), id="2x3-s2-batch1-chan1"),
    pytest.param((3, 2, 8, 8), (3, 3), (2, 2), (1, 1), id="3x3-s2-p1-overlap"),
    pytest.param((2, 2, 7, 7), (11, 11), (4, 4), (2, 2), id="11x11-s4-p2-kernel=padded-input"),
    pytest.param((2, 2, 13, 15), (11, 11), (4, 4), (2, 2), id="11x11-s4-p2-alexnet-like"),
    pytest.param((2, 3, 9, 10), (5, 1), (3, 1), (2, 0), id="5x1-s3x1-p2x0-asymmetric"),
    pytest.param((1, 4, 10, 7), (1, 4), (1, 3), (0, 2), id="1x4-s1x3-p0x2-asymmetric"),
    pytest.param((4, 2, 12, 11), (4, 2), (4, 3), (1, 1), id="4x2-s4x3-p1"),
    pytest.param((2, 3, 1, 1), (3, 3), (1, 1), (1, 1), id="1x1-image-p1"),
]


def random_x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------
# im2col / col2im, both layouts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_col2im_batch_of_transposed_rows_is_bitwise_the_column_layout(shape, k, stride, pad,
                                                                      dtype):
    # the conv's dcols when its products are taken transposed: (N·L, K) rows, passed as .T
    n, c, h, w = shape
    oh, ow = out_hw(h, w, *k, stride, pad)
    rows = random_x((n * oh * ow, c * k[0] * k[1]), dtype, seed=2)
    cols = np.ascontiguousarray(rows.T)
    got = cpu.col2im_batch(rows.T, shape, *k, stride, pad)
    np.testing.assert_array_equal(got, cpu.col2im_batch(cols, shape, *k, stride, pad))
    np.testing.assert_allclose(got, ref.col2im_batch(rows.T, shape, *k, stride, pad), **tol(dtype))
    gx = np.full(shape, np.nan, dtype=dtype)                # out= is overwritten everywhere
    assert cpu.col2im_batch(rows.T, shape, *k, stride, pad, out=gx) is gx
    np.testing.assert_array_equal(gx, got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_im2col_batch_equals_reference(shape, k, stride, pad, dtype):
    x = random_x(shape, dtype)
    got = cpu.im2col_batch(x, *k, stride, pad)
    want = ref.im2col_batch(x, *k, stride, pad)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_col2im_batch_equals_reference(shape, k, stride, pad, dtype):
    n, c, h, w = shape
    oh, ow = out_hw(h, w, *k, stride, pad)
    cols = random_x((c * k[0] * k[1], n * oh * ow), dtype, seed=1)
    got = cpu.col2im_batch(cols, shape, *k, stride, pad)
    want = ref.col2im_batch(cols, shape, *k, stride, pad)
    assert got.dtype == want.dtype and got.shape == tuple(shape)
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_im2col_col2im_per_image_layout_equal_reference(shape, k, stride, pad, dtype):
    n, c, h, w = shape
    x = random_x(shape, dtype)
    got = cpu.im2col(x, *k, stride, pad)
    want = ref.im2col(x, *k, stride, pad)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)

    oh, ow = out_hw(h, w, *k, stride, pad)
    cols = random_x((n, c * k[0] * k[1], oh * ow), dtype, seed=2)
    got = cpu.col2im(cols, shape, *k, stride, pad)
    want = ref.col2im(cols, shape, *k, stride, pad)
    assert got.shape == tuple(shape)
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("pad_value", [0.0, -np.inf, 7.5])
def test_im2col_batch_pad_value(pad_value):
    x = random_x((2, 2, 5, 4), np.float32)
    got = cpu.im2col_batch(x, 3, 2, (2, 1), (2, 1), pad_value=pad_value)
    want = ref.im2col_batch(x, 3, 2, (2, 1), (2, 1), pad_value=pad_value)
    np.testing.assert_array_equal(got, want)
    assert (got == np.float32(pad_value)).any()          # the padding really is in there


def test_im2col_batch_of_a_non_contiguous_input():
    base = random_x((3, 4, 9, 12), np.float64)
    for x in (base[:, ::2, 1:, ::3], base.transpose(0, 1, 3, 2)):
        assert not x.flags.c_contiguous
        np.testing.assert_array_equal(cpu.im2col_batch(x, 3, 3, (1, 2), (1, 0)),
                                      ref.im2col_batch(x, 3, 3, (1, 2), (1, 0)))


def test_col2im_batch_of_non_contiguous_columns():
    x_shape, k, stride, pad = (2, 3, 6, 6), (3, 3), (1, 1), (1, 1)
    cols = random_x((2 * 6 * 6, 27), np.float64).T        # (27, 72), Fortran order
    assert not cols.flags.c_contiguous
    np.testing.assert_allclose(cpu.col2im_batch(cols, x_shape, *k, stride, pad),
                               ref.col2im_batch(cols, x_shape, *k, stride, pad), rtol=1e-12)


# ---------------------------------------------------------------------------
# out= (filled in place) and its errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_arguments_are_filled_and_returned(dtype):
    shape, k, stride, pad = (2, 3, 6, 5), (3, 2), (2, 1), (1, 1)
    n, c, h, w = shape
    oh, ow = out_hw(h, w, *k, stride, pad)
    x = random_x(shape, dtype)

    out = np.full((c * k[0] * k[1], n * oh * ow), 99.0, dtype=dtype)
    got = cpu.im2col_batch(x, *k, stride, pad, out=out)
    assert got is out
    np.testing.assert_array_equal(out, ref.im2col_batch(x, *k, stride, pad))

    cols = random_x(out.shape, dtype, seed=3)
    gx = np.full(shape, 99.0, dtype=dtype)                # stale values must be overwritten
    got = cpu.col2im_batch(cols, shape, *k, stride, pad, out=gx)
    assert got is gx
    np.testing.assert_allclose(gx, ref.col2im_batch(cols, shape, *k, stride, pad), **tol(dtype))

    a = random_x((4, 3, 5), dtype)
    for src in (a, a[:, ::-1]):                           # also a non-contiguous input
        out = np.full((3, 4, 5), 99.0, dtype=dtype)
        assert cpu.swap01(src, out=out) is out
        np.testing.assert_array_equal(out, ref.swap01(src))


@pytest.mark.parametrize("dtype", DTYPES)
def test_swap01_without_out(dtype):
    a = random_x((5, 2, 7), dtype)
    got = cpu.swap01(a)
    assert got.shape == (2, 5, 7) and got.flags.c_contiguous and got.dtype == dtype
    np.testing.assert_array_equal(got, ref.swap01(a))
    np.testing.assert_array_equal(cpu.swap01(a[:, :, ::2]), ref.swap01(a[:, :, ::2]))


def test_out_of_wrong_shape_dtype_or_layout_raises_value_error():
    x = random_x((2, 3, 6, 6), np.float32)
    k, stride, pad = (3, 3), (1, 1), (1, 1)
    good = (27, 2 * 36)
    for bad in (np.empty((27, 71), np.float32), np.empty(good, np.float64),
                np.empty(good[::-1], np.float32).T):
        with pytest.raises(ValueError, match=r"out must be a C-contiguous float32 array of "
                                             r"shape \(27, 72\)"):
            cpu.im2col_batch(x, *k, stride, pad, out=bad)

    cols = random_x(good, np.float32)
    for bad in (np.empty((2, 3, 6, 5), np.float32), np.empty((2, 3, 6, 6), np.float64)):
        with pytest.raises(ValueError, match=r"shape \(2, 3, 6, 6\)"):
            cpu.col2im_batch(cols, x.shape, *k, stride, pad, out=bad)

    a = random_x((4, 3, 5), np.float64)
    for bad in (np.empty((4, 3, 5)), np.empty((3, 4, 5), np.float32)):
        with pytest.raises(ValueError, match=r"float64 array of shape \(3, 4, 5\)"):
            cpu.swap01(a, out=bad)


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------
def check_maxpool(x, k, stride, pad, gy_seed=5):
    """cpu forward == reference forward exactly; backward equal, families interchangeable."""
    y, am = cpu_pool.maxpool_forward(x, *k, stride, pad)
    y_ref, am_ref = ref.maxpool_forward(x, *k, stride, pad)
    assert y.dtype == x.dtype and y.shape == y_ref.shape and am.shape == am_ref.shape
    assert np.issubdtype(am.dtype, np.integer)
    np.testing.assert_array_equal(y, y_ref)               # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(am, am_ref)

    gy = random_x(y.shape, x.dtype, seed=gy_seed)
    want = ref.maxpool_backward(gy, am_ref, x.shape, *k, stride, pad)
    t = tol(x.dtype.type)
    np.testing.assert_allclose(cpu_pool.maxpool_backward(gy, am, x.shape, *k, stride, pad), want,
                               **t)
    np.testing.assert_allclose(ref.maxpool_backward(gy, am, x.shape, *k, stride, pad), want, **t)
    np.testing.assert_allclose(cpu_pool.maxpool_backward(gy, am_ref, x.shape, *k, stride, pad),
                               want, **t)
    check_maxpool_channels_last(x, k, stride, pad, gy)
    return y, am


def channels_last(shape, dtype):
    """An uninitialized (N, C, H, W) view of an (N, H, W, C) array (C on the fast axis)."""
    n, c, h, w = shape
    return np.empty((n, h, w, c), dtype).transpose(0, 3, 1, 2)


def check_maxpool_channels_last(x, k, stride, pad, gy):
    """The convolution fused with its max-pool (functional/conv_pool.py) hands the kernels
    channels-last views: read in place (forward) and written in place (backward, ``out=``),
    with the reference's results bit for bit (no sums: each pixel is in one window, or the
    overlapping case falls back to the plane kernel)."""
    x_cl = channels_last(x.shape, x.dtype)
    x_cl[...] = x
    y_ref, am_ref = ref.maxpool_forward(x, *k, stride, pad)
    taps = np.int8 if k[0] * k[1] <= 127 else np.intp
    out = (np.full(y_ref.shape, 7, x.dtype), np.full(y_ref.shape, 99, taps))
    y, am = cpu_pool.maxpool_forward(x_cl, *k, stride, pad, out=out)
    assert y is out[0] and am is out[1]
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gx = channels_last(x.shape, x.dtype)
    gx[...] = 7                                            # every element must be written
    got = cpu_pool.maxpool_backward(gy, am_ref, x.shape, *k, stride, pad, out=gx)
    assert got is gx
    want = ref.maxpool_backward(gy, am_ref, x.shape, *k, stride, pad)
    if stride[0] >= k[0] and stride[1] >= k[1]:           # no overlaps: no sums at all
        np.testing.assert_array_equal(gx, want)
    else:
        np.testing.assert_allclose(gx, want, **tol(x.dtype.type))
    ref_out = np.full(x.shape, 7, x.dtype)
    assert ref.maxpool_backward(gy, am_ref, x.shape, *k, stride, pad, out=ref_out) is ref_out
    np.testing.assert_array_equal(ref_out, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_maxpool_equals_reference(shape, k, stride, pad, dtype):
    check_maxpool(random_x(shape, dtype), k, stride, pad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_ties_pick_the_first_maximum(dtype):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=(3, 4, 9, 9)).astype(dtype)   # many equal values
    for k, stride, pad in (((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                           ((3, 2), (1, 2), (1, 1))):
        _, am = check_maxpool(x, k, stride, pad)
        assert len(np.unique(am)) > 1
    const = np.full((1, 2, 4, 4), 2.0, dtype=dtype)
    _, am = check_maxpool(const, (2, 2), (2, 2), (0, 0))
    assert (am == 0).all()                                 # all taps tie: tap 0 wins


def test_maxpool_padding_never_wins_over_negative_pixels():
    x = -1.0 - np.random.default_rng(8).random((2, 3, 5, 6))   # every pixel < 0 = pad of conv
    y, am = check_maxpool(x, (3, 3), (2, 2), (1, 1))
    assert np.isfinite(y).all() and (y < -1.0).all()
    # with a pad, tap 0 of the corner window is padding: the winner must be a real pixel
    assert (am[:, :, 0, 0] != 0).all()
    np.testing.assert_array_equal(y[:, :, 0, 0], x[:, :, :2, :2].max(axis=(2, 3)))
    x_inf = np.full((1, 1, 3, 3), -np.inf)                 # real −∞ pixels tie with padding
    check_maxpool(x_inf, (3, 3), (2, 2), (1, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_nan_inputs_like_numpy_argmax(dtype):
    x = random_x((2, 2, 6, 6), dtype, seed=9)
    x[0, 0, 0, 1] = np.nan                # second tap of window (0, 0): first NaN wins
    x[0, 0, 1, 0] = np.nan                # a later NaN in the same window loses to it
    x[0, 1, 3, 3] = np.nan                # the last tap of a window
    x[1, 0, 2:4, 2:4] = np.nan            # a window of NaNs only
    x[1, 1, 4, 4] = np.inf
    x[1, 1, 4, 5] = np.nan                # NaN beats +inf
    for k, stride, pad in (((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))):
        y, am = check_maxpool(x, k, stride, pad)
        assert np.isnan(y).sum() >= 4
    y, am = cpu_pool.maxpool_forward(x, 2, 2, (2, 2))
    assert np.isnan(y[0, 0, 0, 0]) and am[0, 0, 0, 0] == 1
    assert np.isnan(y[1, 1, 2, 2]) and am[1, 1, 2, 2] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_overlapping_winner_collects_the_sum(dtype):
    x = np.zeros((1, 1, 5, 5), dtype=dtype)
    x[0, 0, 2, 2] = 10.0                  # the centre lies in all four 3×3 stride-2 windows
    y, am = check_maxpool(x, (3, 3), (2, 2), (0, 0))
    assert (y == 10.0).all()
    gy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype)
    gx = cpu_pool.maxpool_backward(gy, am, x.shape, 3, 3, (2, 2))
    expected = np.zeros_like(x)
    expected[0, 0, 2, 2] = 10.0
    np.testing.assert_array_equal(gx, expected)


def test_maxpool_argmax_of_a_large_window():
    # 12×12 = 144 taps do not fit int8: the index type must be wide enough
    x = random_x((2, 2, 14, 13), np.float64, seed=10)
    _, am = check_maxpool(x, (12, 12), (1, 1), (0, 0))
    assert am.max() > 127                                  # tap numbers past int8's range


@st.composite
def geometry(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), dtype, seed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometry())
def test_property_cpu_equals_reference(geom):
    shape, k, stride, pad, dtype, seed = geom
    x = random_x(shape, dtype, seed)
    if seed % 3 == 0:                                       # with ties now and then
        x = np.round(x).astype(dtype)
    cols = cpu.im2col_batch(x, *k, stride, pad)
    np.testing.assert_array_equal(cols, ref.im2col_batch(x, *k, stride, pad))
    g = random_x(cols.shape, dtype, seed + 1)
    np.testing.assert_allclose(cpu.col2im_batch(g, shape, *k, stride, pad),
                               ref.col2im_batch(g, shape, *k, stride, pad), **tol(dtype))
    check_maxpool(x, k, stride, pad, gy_seed=seed + 2)


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------
BN_SHAPES = [pytest.param((16, 5), id="2d"), pytest.param((6, 4, 5, 3), id="4d")]


def bn_params(c, dtype, with_affine, seed=11):
    if not with_affine:
        return None, None
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, c).astype(dtype), rng.standard_normal(c).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("with_affine", [False, True], ids=["no-affine", "affine"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_forward_equals_reference(shape, with_affine, training, dtype):
    c = shape[1]
    x = (3.0 + 2.0 * random_x(shape, np.float64, seed=12)).astype(dtype)   # mean ≠ 0, var ≠ 1
    rng = np.random.default_rng(13)
    mean = rng.standard_normal(c).astype(dtype)
    var = rng.uniform(0.5, 2.0, c).astype(dtype)
    gamma, beta = bn_params(c, dtype, with_affine)
    got = cpu_batchnorm.batchnorm_forward(x, mean, var, 1e-5, gamma, beta, training=training)
    want = ref.batchnorm_forward(x, mean, var, 1e-5, gamma, beta, training=training)
    names = ("y", "mean", "var", "inv_std")
    for name, g, r in zip(names, got, want):
        assert g.shape == r.shape and g.dtype == r.dtype, name
        np.testing.assert_allclose(g, r, **tol(dtype), err_msg=name)
    if not training:
        np.testing.assert_array_equal(got[1], mean)
        np.testing.assert_array_equal(got[2], var)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("with_gamma", [False, True], ids=["no-gamma", "gamma"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_backward_equals_reference(shape, with_gamma, training, dtype):
    c = shape[1]
    x = random_x(shape, dtype, seed=14)
    gamma, _ = bn_params(c, dtype, with_gamma)
    _, mean, _, inv_std = ref.batchnorm_forward(x, None, None, 1e-5, training=True)
    gy = random_x(shape, dtype, seed=15)
    got = cpu_batchnorm.batchnorm_backward(gy, x, mean, inv_std, gamma, training=training)
    want = ref.batchnorm_backward(gy, x, mean, inv_std, gamma, training=training)
    for name, g, r in zip(("gx", "ggamma", "gbeta"), got, want):
        assert g.shape == r.shape and g.dtype == r.dtype, name
        np.testing.assert_allclose(g, r, **tol(dtype), err_msg=name)


# ---------------------------------------------------------------------------
# Adam and Sign
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hyper", [(1e-3, 0.9, 0.999, 1e-8), (0.0123, 0.8, 0.99, 1e-4)],
                         ids=["default", "odd"])
def test_adam_update_is_bitwise_the_reference(dtype, hyper):
    lr, beta1, beta2, eps = hyper
    rng = np.random.default_rng(16)
    w0 = rng.standard_normal((7, 3, 5)).astype(dtype)
    w_cpu, m_cpu, v_cpu = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    w_ref, m_ref, v_ref = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t in range(1, 6):
        g = (rng.standard_normal(w0.shape) * 10.0 ** rng.integers(-3, 2)).astype(dtype)
        cpu_optim.adam_update(w_cpu, g, m_cpu, v_cpu, lr, beta1, beta2, eps, t)
        ref.adam_update(w_ref, g, m_ref, v_ref, lr, beta1, beta2, eps, t)
        for a, b, name in ((w_cpu, w_ref, "w"), (m_cpu, m_ref, "m"), (v_cpu, v_ref, "v")):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{name} at step {t}")
    assert not np.array_equal(w_cpu, w0)                    # the weights did move


def test_adam_update_of_non_contiguous_arrays():
    rng = np.random.default_rng(17)
    big = rng.standard_normal((6, 8)).astype(np.float32)
    w_cpu, w_ref = big.copy()[:, ::2], big.copy()[:, ::2]
    m_cpu, v_cpu = np.zeros((6, 8), np.float32)[:, ::2], np.zeros((6, 8), np.float32)[:, ::2]
    m_ref, v_ref = np.zeros_like(w_ref), np.zeros_like(w_ref)
    for t in (1, 2, 3):
        g = rng.standard_normal((6, 4)).astype(np.float32)
        cpu_optim.adam_update(w_cpu, g, m_cpu, v_cpu, 1e-2, 0.9, 0.999, 1e-8, t)
        ref.adam_update(w_ref, g, m_ref, v_ref, 1e-2, 0.9, 0.999, 1e-8, t)
    np.testing.assert_array_equal(w_cpu, w_ref)
    np.testing.assert_array_equal(m_cpu, m_ref)
    np.testing.assert_array_equal(v_cpu, v_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sign_projection_equals_reference(dtype):
    w = random_x((5, 4, 3, 3), dtype, seed=18)
    w[0, 0, 0, 0] = 0.0
    w[1, 0, 0, 0] = -0.0
    got, want = cpu_optim.sign_projection(w), ref.sign_projection(w)
    assert got.dtype == dtype and got.shape == w.shape
    np.testing.assert_array_equal(got, want)
    alpha = np.abs(w).max()
    assert got[0, 0, 0, 0] == alpha and got[1, 0, 0, 0] == alpha and alpha > 0   # sign(0) = +1
    np.testing.assert_array_equal(np.abs(got), alpha)

    non_contiguous = w.transpose(3, 1, 2, 0)[::2]
    np.testing.assert_array_equal(cpu_optim.sign_projection(non_contiguous),
                                  ref.sign_projection(non_contiguous))

    zeros = np.zeros((3, 4), dtype=dtype)
    got = cpu_optim.sign_projection(zeros)
    np.testing.assert_array_equal(got, ref.sign_projection(zeros))
    assert (got == 0).all() and got.dtype == dtype

    with_nan = w.copy()
    with_nan[2, 1, 0, 2] = np.nan
    got, want = cpu_optim.sign_projection(with_nan), ref.sign_projection(with_nan)
    assert np.isnan(want).all()
    assert np.isnan(got).all()

    empty = np.zeros((0, 3), dtype=dtype)
    assert cpu_optim.sign_projection(empty).shape == (0, 3)


# ---------------------------------------------------------------------------
# results do not depend on the number of threads (each thread owns whole planes / channels)
# ---------------------------------------------------------------------------
def test_results_do_not_depend_on_the_number_of_threads():
    numba = pytest.importorskip("numba")
    pool = numba.config.NUMBA_NUM_THREADS      # the pool's size; the suite may use fewer
    if pool < 2:
        pytest.skip("one Numba thread only: nothing to compare")
    threads = numba.get_num_threads()
    shape, k, stride, pad = (3, 5, 9, 8), (3, 3), (2, 1), (1, 1)
    x = random_x(shape, np.float32, seed=20)
    cols = cpu.im2col_batch(x, *k, stride, pad)
    g = random_x(cols.shape, np.float32, seed=21)
    y, am = cpu_pool.maxpool_forward(x, 3, 3, (2, 2), (1, 1))
    gy = random_x(y.shape, np.float32, seed=22)
    g_bn = random_x(shape, np.float32, seed=24)
    w = random_x((40, 33), np.float32, seed=23)

    def run():
        _, mean, _, inv_std = bn = cpu_batchnorm.batchnorm_forward(x, None, None, 1e-5)
        ww, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
        cpu_optim.adam_update(ww, w[::-1].copy(), m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
        return (cpu.col2im_batch(g, shape, *k, stride, pad),
                cpu_pool.maxpool_backward(gy, am, shape, 3, 3, (2, 2), (1, 1)),
                *bn, *cpu_batchnorm.batchnorm_backward(g_bn, x, mean, inv_std),
                cpu_optim.sign_projection(w), ww, m, v)

    numba.set_num_threads(pool)
    try:
        many = run()
        numba.set_num_threads(1)
        one = run()
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(many, one):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# dispatch and the scratch buffers
# ---------------------------------------------------------------------------
def _cpu_module_of(name):
    """Where ``kernels.get`` finds a kernel for NumPy arrays: the fused ones in cpu_fused.py,
    the random ones in the reference (NumPy's Philox), the others in cpu.py, cpu_pool.py,
    cpu_batchnorm.py or cpu_optim.py."""
    from tinyproj.kernels import cpu_fused
    if name in kernels.FUSED_NAMES:
        return cpu_fused
    if name in getattr(kernels, "RANDOM_NAMES", ()):
        return ref
    return next(m for m in (cpu, cpu_pool, cpu_batchnorm, cpu_optim) if hasattr(m, name))


def test_dispatch_auto_reference_and_non_numpy(monkeypatch):
    monkeypatch.delenv("TINYPROJ_KERNELS", raising=False)
    x = np.zeros((1, 1, 2, 2), np.float32)
    assert kernels.get("im2col_batch", x) is cpu.im2col_batch
    for name in kernels.KERNEL_NAMES:
        assert kernels.get(name, x) is getattr(_cpu_module_of(name), name), name
    assert kernels.get("maxpool_forward") is cpu_pool.maxpool_forward     # like=None: numpy backend

    class NotAnArray:                                                  # e.g. a CuPy array
        shape, dtype = (1,), np.float32

    for like in (NotAnArray(), [1.0, 2.0]):
        assert kernels.get("im2col_batch", like) is ref.im2col_batch
        assert kernels.get("adam_update", like) is ref.adam_update

    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    for name in kernels.KERNEL_NAMES:
        assert kernels.get(name, x) is getattr(ref, name), name
    monkeypatch.setenv("TINYPROJ_KERNELS", " Auto ")                   # read at every call
    assert kernels.get("im2col_batch", x) is cpu.im2col_batch

    with pytest.raises(KeyError, match="unknown kernel 'maxpool'"):
        kernels.get("maxpool", x)


def test_workspace_scratch_reuses_grows_and_clears():
    like = np.zeros(3, np.float32)
    workspace.clear()
    try:
        assert workspace.nbytes() == 0
        a = workspace.scratch("test.a", (3, 4), np.float32, like)
        assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous
        assert workspace.nbytes() == 48
        b = workspace.scratch("test.a", (2, 5), np.float64, like)    # 80 bytes: grows
        assert b.shape == (2, 5) and b.dtype == np.float64
        assert workspace.nbytes() == 80 and not np.shares_memory(a, b)
        c = workspace.scratch("test.a", (6,), np.int32, like)         # smaller: a view of b's
        assert c.shape == (6,) and c.dtype == np.int32 and np.shares_memory(b, c)
        c[:] = 7
        d = workspace.scratch("test.a", (6,), np.int32, like)         # same request: same memory
        assert np.shares_memory(c, d) and (d == 7).all()
        other = workspace.scratch("test.b", (6,), np.int32, like)     # another name: other memory
        assert not np.shares_memory(d, other) and workspace.nbytes() == 80 + 24

        fresh = workspace.scratch("test.a", (2, 2), np.float32, [0.0])   # not a numpy array
        assert isinstance(fresh, np.ndarray) and fresh.shape == (2, 2)
        assert fresh.dtype == np.float32 and not np.shares_memory(fresh, d)
        assert workspace.nbytes() == 80 + 24                          # nothing kept for it

        workspace.clear()
        assert workspace.nbytes() == 0
        e = workspace.scratch("test.a", (6,), np.int32, like)
        assert not np.shares_memory(d, e)                             # a new buffer
    finally:
        workspace.clear()


# ---------------------------------------------------------------------------
# NUMBA_DISABLE_JIT: the kernels as plain Python
# ---------------------------------------------------------------------------
def test_numba_disable_jit_runs_the_kernels_as_python():
    assert type(cpu._im2col_batch).__name__ != "function"            # compiled in this process
    code = textwrap.dedent("""
        import numpy as np
        from tinyproj.kernels import cpu, cpu_pool, reference as ref
        assert type(cpu._im2col_batch).__name__ == "function", type(cpu._im2col_batch)
        assert type(cpu_pool._maxpool_forward).__name__ == "function"
        x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
        x[0, 1, 0, 0] = np.nan
        np.testing.assert_array_equal(cpu.im2col_batch(x, 3, 2, (1, 2), (1, 1)),
                                      ref.im2col_batch(x, 3, 2, (1, 2), (1, 1)))
        y, am = cpu_pool.maxpool_forward(x, 3, 3, (2, 2), (1, 1))
        y_ref, am_ref = ref.maxpool_forward(x, 3, 3, (2, 2), (1, 1))
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(am, am_ref)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    env.pop("TINYPROJ_KERNELS", None)
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ---------------------------------------------------------------------------
# a whole network: forward and backward with either kernel family
# ---------------------------------------------------------------------------
def test_bc_cifar10_step_same_with_cpu_and_reference_kernels(monkeypatch):
    rng = np.random.default_rng(19)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 4)

    calls = []
    for name in kernels.KERNEL_NAMES:                   # count the fast kernels' calls
        module = _cpu_module_of(name)
        if module is ref:
            continue
        fast = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=fast, _n=name, **k: (calls.append(_n),
                                                                              _f(*a, **k))[1])

    def step(dtype=np.float32):
        model = models.bc_cifar10(width=0.0625, rng=backend.make_rng(0))
        for p in model.parameters():
            p.data = p.data.astype(dtype)
        loss = F.square_hinge_loss(model(x.astype(dtype)), labels)
        loss.backward()
        return float(loss.data), {n: p.grad.copy() for n, p in model.named_parameters()}

    monkeypatch.delenv("TINYPROJ_KERNELS", raising=False)
    loss_cpu, grads_cpu = step()
    used = set(calls)
    assert {"im2col_batch", "col2im_batch", "maxpool_forward", "maxpool_backward"} <= used
    assert used & {"batchnorm_forward", "batchnorm_forward_fused"}     # BN→ReLU may be fused
    assert used & {"batchnorm_backward", "batchnorm_backward_fused"}
    calls.clear()
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    loss_ref, grads_ref = step()
    loss_ref64, grads_ref64 = step(np.float64)
    assert calls == []

    assert np.isfinite(loss_cpu)
    np.testing.assert_allclose(loss_cpu, loss_ref, rtol=1e-5)
    assert grads_cpu.keys() == grads_ref.keys() and len(grads_cpu) > 10
    for name in grads_ref:
        assert grads_cpu[name].dtype == np.float32
        scale = np.abs(grads_ref[name]).max()
        assert scale > 0, name
        # float32 rounding, amplified by six layers and batch norm over 4 images: the fast and
        # the reference kernels both lie ~1e-5·max|g| from the float64 gradient (measured)
        np.testing.assert_allclose(grads_cpu[name], grads_ref[name], rtol=0, atol=1e-4 * scale,
                                   err_msg=name)

    monkeypatch.delenv("TINYPROJ_KERNELS", raising=False)  # float64: the same to 1e-10
    loss_cpu64, grads_cpu64 = step(np.float64)
    np.testing.assert_allclose(loss_cpu64, loss_ref64, rtol=1e-12)
    for name in grads_ref64:
        np.testing.assert_allclose(grads_cpu64[name], grads_ref64[name], rtol=0,
                                   atol=1e-10 * np.abs(grads_ref64[name]).max(), err_msg=name)


def test_a_training_step_stays_in_float32(monkeypatch):
    # "float32 everywhere": every kernel output, gradient and optimizer state of a step
    import tinyproj.functional as F
    from tinyproj import algorithm1, backend, clipping, models, optim
    seen = set()
    original = kernels.get

    def spying_get(name, like=None):
        fn = original(name, like)

        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            for a in out if isinstance(out, tuple) else (out,):
                if hasattr(a, "dtype") and a.dtype.kind == "f":
                    seen.add((name, a.dtype))
            return out
        return wrapped

    monkeypatch.setattr(kernels, "get", spying_get)
    rng = backend.make_rng(0)
    model = models.bc_cifar10(width=0.0625, rng=rng)
    model.train()
    opt = optim.Adam(model.parameters(), lr=0.003)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32), dtype=np.float32)
    algorithm1.train_step(model, x, np.arange(4), F.square_hinge_loss, opt, "sign",
                          clipping.clip_bounds(model, 0.5), rng)
    names = {name for name, _ in seen}
    assert {"im2col_batch", "col2im_batch", "maxpool_forward"} <= names
    assert names & {"batchnorm_forward", "batchnorm_forward_fused"}
    assert {dtype for _, dtype in seen} == {np.dtype(np.float32)}
    assert {p.grad.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert {v.dtype for s in opt.state for v in s.values() if hasattr(v, "dtype")} == {
        np.dtype(np.float32)}


# ---------------------------------------------------------------------------
# the shifted products of the convolution (kernels/shifted.py)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_gemm_adds_into_views_like_numpy(dtype):
    from tinyproj.kernels import shifted
    if not shifted.available():
        pytest.skip("no cblas gemm found in NumPy's BLAS: the convolution keeps im2col")
    rng = np.random.default_rng(0)
    big = rng.standard_normal((40, 9)).astype(dtype)
    a = big[3:3 + 30]                                      # a row block of a larger array
    w = rng.standard_normal((5, 9)).astype(dtype)
    for b in (w.T, np.ascontiguousarray(w.T)):             # transposed and plain operand
        out_big = rng.standard_normal((33, 7)).astype(dtype)
        out = out_big[2:32, 1:6]                           # rows of a wider array
        start = out.copy()
        shifted.gemm(a, b, out, accumulate=True)
        np.testing.assert_allclose(out, start + a @ b, **tol(dtype))
        shifted.gemm(a, b, out, accumulate=False)
        np.testing.assert_allclose(out, a @ b, **tol(dtype))
        assert (out_big[:, 0] == out_big[:, 0]).all() and out_big[0].sum() == out_big[0].sum()
        ref_out = start.copy()
        shifted.reference_gemm(a, b, ref_out, True)
        np.testing.assert_allclose(ref_out, start + a @ b, **tol(dtype))


def test_shifted_gemm_leaves_the_rest_of_its_output_alone():
    from tinyproj.kernels import shifted
    rng = np.random.default_rng(1)
    out_big = rng.standard_normal((10, 6)).astype(np.float32)
    before = out_big.copy()
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(
        np.float32)
    shifted.gemm(a, b, out_big[3:7, 2:4], accumulate=True)
    outside = np.ones(out_big.shape, bool)
    outside[3:7, 2:4] = False
    np.testing.assert_array_equal(out_big[outside], before[outside])
    np.testing.assert_allclose(out_big[3:7, 2:4], before[3:7, 2:4] + a @ b, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, pad", [((3, 4, 5, 6), (3, 3), (1, 1)),
                                           ((2, 1, 4, 4), (2, 3), (0, 1)),
                                           ((1, 17, 3, 7), (3, 1), (2, 0))])
def test_shifted_pad_and_unpad_rows_equal_the_reference(shape, k, pad, dtype):
    from tinyproj.kernels import shifted
    x = random_x(shape, dtype)
    h2, w2, oh, ow, m, tail = shifted.grid(shape, *k, pad)
    assert (h2, w2) == (shape[2] + 2 * pad[0], shape[3] + 2 * pad[1]) and m == shape[0] * h2 * w2
    want = shifted.reference_pad_rows(x, pad, np.empty((m + tail, shape[1]), dtype))
    got = np.full((m + tail, shape[1]), 7, dtype)          # every element must be written
    assert shifted.pad_rows(x, pad, got) is got
    np.testing.assert_array_equal(got, want)
    grid4 = want[:m].reshape(shape[0], h2, w2, shape[1])
    np.testing.assert_array_equal(grid4[:, pad[0]:pad[0] + shape[2], pad[1]:pad[1] + shape[3]],
                                  x.transpose(0, 2, 3, 1))
    border = grid4.copy()
    border[:, pad[0]:pad[0] + shape[2], pad[1]:pad[1] + shape[3]] = 0
    assert not border.any() and not want[m:].any()         # zero border and tail
    back = np.empty(shape, dtype)
    assert shifted.unpad_rows(got, shape, pad, back) is back
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(shifted.reference_unpad_rows(got, shape, pad,
                                                               np.empty(shape, dtype)), x)
