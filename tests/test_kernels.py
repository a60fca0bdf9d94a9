"""The reference kernels against naive loop versions written out here, im2col/col2im
adjointness, and the memory bill of the columns."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinyproj as tp
import tinyproj.functional as F
from tinyproj import kernels
from tinyproj.kernels import reference as ref


# ---------------------------------------------------------------------------
# naive oracles: one loop per index, as a student would write them
# ---------------------------------------------------------------------------
def naive_im2col(x, kh, kw, stride, pad):
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, pad
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = np.zeros((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    row = (ch * kh + i) * kw + j
                    for oy in range(oh):
                        for ox in range(ow):
                            y, xx = oy * sh + i - ph, ox * sw + j - pw
                            if 0 <= y < h and 0 <= xx < w:
                                cols[b, row, oy * ow + ox] = x[b, ch, y, xx]
    return cols


def naive_conv2d(x, w, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, pad
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for b in range(n):
        for f in range(o):
            for oy in range(oh):
                for ox in range(ow):
                    acc = 0.0
                    for ch in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                yy, xx = oy * sh + i - ph, ox * sw + j - pw
                                if 0 <= yy < h and 0 <= xx < wd:
                                    acc += x[b, ch, yy, xx] * w[f, ch, i, j]
                    y[b, f, oy, ox] = acc
    return y


def naive_maxpool(x, kh, kw, stride, pad):
    """Forward values and, for the backward oracle, the (y, x) of each window's winner
    (the first maximum in raster order on ties; padding never wins)."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, pad
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.full((n, c, oh, ow), -np.inf)
    where = np.zeros((n, c, oh, ow, 2), dtype=int)
    for b in range(n):
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    for i in range(kh):
                        for j in range(kw):
                            yy, xx = oy * sh + i - ph, ox * sw + j - pw
                            if 0 <= yy < h and 0 <= xx < w and x[b, ch, yy, xx] > y[b, ch, oy, ox]:
                                y[b, ch, oy, ox] = x[b, ch, yy, xx]
                                where[b, ch, oy, ox] = (yy, xx)
    return y, where


def naive_maxpool_backward(gy, where, x_shape):
    gx = np.zeros(x_shape)
    n, c, oh, ow = gy.shape
    for b in range(n):
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    yy, xx = where[b, ch, oy, ox]
                    gx[b, ch, yy, xx] += gy[b, ch, oy, ox]
    return gx


# ---------------------------------------------------------------------------
# random geometries
# ---------------------------------------------------------------------------
@st.composite
def geometries(draw, max_hw=9, max_k=5, pool=False):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if pool:   # padding at most half the window, as max_pool2d requires
        pad = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    else:
        pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    assume(ref.out_size(h, kh, stride[0], pad[0]) >= 1)
    assume(ref.out_size(w, kw, stride[1], pad[1]) >= 1)
    seed = draw(st.integers(0, 2 ** 16))
    return (n, c, h, w), kh, kw, stride, pad, seed


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(geometries())
def test_im2col_col2im_adjoint(geom):
    shape, kh, kw, stride, pad, seed = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = ref.im2col(x, kh, kw, stride, pad)
    assert cols.nbytes == ref.cols_nbytes(shape, kh, kw, stride, pad, itemsize=8)
    y = rng.standard_normal(cols.shape)
    back = ref.col2im(y, shape, kh, kw, stride, pad)
    assert back.shape == shape
    # <col2im(y), x> = <y, im2col(x)>
    assert np.vdot(back, x) == pytest.approx(np.vdot(y, cols), rel=1e-10, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(geometries(max_hw=7))
def test_im2col_matches_naive_loops(geom):
    shape, kh, kw, stride, pad, seed = geom
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(ref.im2col(x, kh, kw, stride, pad),
                                  naive_im2col(x, kh, kw, stride, pad))


def test_im2col_column_order_matches_weight_reshape():
    # one column for output pixel (0, 0) is x[:, :, 0:kh, 0:kw] flattened in (c, i, j) order
    x = np.arange(2 * 4 * 5, dtype=np.float64).reshape(1, 2, 4, 5)
    cols = ref.im2col(x, 2, 3)
    np.testing.assert_array_equal(cols[0, :, 0], x[0, :, 0:2, 0:3].reshape(-1))
    np.testing.assert_array_equal(cols[0, :, 1], x[0, :, 0:2, 1:4].reshape(-1))
    assert cols.shape == (1, 2 * 2 * 3, 3 * 3)


def test_col2im_counts_overlaps():
    # col2im of all-ones counts how many windows cover each pixel
    cover = ref.col2im(np.ones((1, 9, 9)), (1, 1, 5, 5), 3, 3, (1, 1), (0, 0))
    expected = np.array([1, 2, 3, 2, 1])
    np.testing.assert_array_equal(cover[0, 0], np.outer(expected, expected))


def test_im2col_keeps_dtype_and_pad_value():
    x = np.ones((1, 1, 2, 2), np.float32)
    cols = ref.im2col(x, 3, 3, (1, 1), (1, 1), pad_value=-np.inf)
    assert cols.dtype == np.float32
    assert np.isinf(cols).sum() == 4 * 9 - 4 * 4  # every tap outside the 2×2 image


# ---------------------------------------------------------------------------
# conv2d forward against the direct convolution
# ---------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(geometries(max_hw=7, max_k=4), st.integers(1, 3))
def test_conv2d_matches_naive_direct_convolution(geom, out_channels):
    shape, kh, kw, stride, pad, seed = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, shape[1], kh, kw))
    y = F.conv2d(tp.tensor(x), tp.tensor(w), stride=stride, padding=pad)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, stride, pad), rtol=1e-10, atol=1e-12)


def test_conv2d_float32_matches_float64_naive():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(tp.tensor(x.astype(np.float32)), tp.tensor(w.astype(np.float32)),
                 stride=2, padding=1)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, (2, 2), (1, 1)), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(geometries(max_hw=8, max_k=4, pool=True), st.booleans())
def test_maxpool_forward_backward_match_naive(geom, with_ties):
    shape, kh, kw, stride, pad, seed = geom
    rng = np.random.default_rng(seed)
    # small integers make many ties: the first maximum in raster order must win
    x = rng.integers(0, 3, shape).astype(np.float64) if with_ties else rng.standard_normal(shape)
    y, argmax = ref.maxpool_forward(x, kh, kw, stride, pad)
    y_ref, where = naive_maxpool(x, kh, kw, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    gy = rng.standard_normal(y.shape)
    gx = ref.maxpool_backward(gy, argmax, shape, kh, kw, stride, pad)
    np.testing.assert_allclose(gx, naive_maxpool_backward(gy, where, shape), rtol=1e-12,
                               atol=1e-12)
    # through the autograd op too
    xt = tp.tensor(x, requires_grad=True)
    out = F.max_pool2d(xt, (kh, kw), stride, padding=pad)
    np.testing.assert_array_equal(out.data, y_ref)
    out.backward(gy)
    np.testing.assert_allclose(xt.grad, gx, rtol=1e-12, atol=1e-12)


def test_maxpool_overlapping_winner_collects_all_windows():
    # 3×3 stride 2 on a 5×5 image whose maximum sits at the centre of all four windows
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    xt = tp.tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, 3, 2)
    np.testing.assert_array_equal(y.data, np.ones((1, 1, 2, 2)))
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert xt.grad[0, 0, 2, 2] == 10.0 and xt.grad.sum() == 10.0


def test_maxpool_padding_never_wins():
    x = -np.ones((1, 1, 3, 3)) * np.arange(1, 10).reshape(1, 1, 3, 3)  # all negative
    y, _ = ref.maxpool_forward(x, 3, 3, (2, 2), (1, 1))
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-4, -5]])  # zero padding would give 0


# ---------------------------------------------------------------------------
# the memory bill of im2col
# ---------------------------------------------------------------------------
def test_cols_memory_statement_for_binaryconnect_layer():
    # 128→128 3×3 at 32×32, padding 1, batch 50, float32
    assert ref.cols_nbytes((50, 128, 32, 32), 3, 3, 1, 1, itemsize=4) == 235_929_600
    assert 50 * 1152 * 1024 * 4 == 235_929_600
    # measured on a batch of 2 and scaled, instead of allocating 236 MB
    x = np.zeros((2, 128, 32, 32), np.float32)
    cols = ref.im2col(x, 3, 3, (1, 1), (1, 1))
    assert cols.shape == (2, 1152, 1024)
    assert cols.nbytes * 25 == 235_929_600
    assert cols.nbytes == 9 * x.nbytes            # kh·kw times the input at stride 1, "same" pad


def test_conv_keeps_no_columns_between_the_passes():
    # forward saves x and w only; backward unfolds x again (see functional/conv.py)
    rng = np.random.default_rng(0)
    x = tp.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w = tp.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    fn = F.conv2d(x, w, padding=1).creator
    saved = [v for v in vars(fn).values() if hasattr(v, "shape")]
    assert sorted(a.size for a in saved) == sorted([w.size, x.size])


@pytest.mark.parametrize("budget", [1, 600, 10**9])     # one image per chunk ... one chunk
def test_conv_in_chunks_of_images_equals_one_chunk(monkeypatch, budget):
    from tinyproj.functional import conv as conv_module
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 2))
    gy = rng.standard_normal((5, 4, 3, 4))

    def run():
        xt, wt = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=(2, 2), padding=1)
        y.backward(gy)
        return y.data, xt.grad, wt.grad

    expected = run()
    monkeypatch.setattr(conv_module, "COLS_BUDGET", budget)
    for got, want in zip(run(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------
def test_kernel_dispatch(monkeypatch):
    for name in kernels.KERNEL_NAMES:
        assert callable(kernels.get(name))
    with pytest.raises(KeyError, match="im2col"):
        kernels.get("im2row")
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    assert kernels.mode() == "reference" and kernels.get("im2col") is ref.im2col
    monkeypatch.setenv("TINYPROJ_KERNELS", "fastest")
    with pytest.raises(ValueError, match="reference"):
        kernels.mode()
