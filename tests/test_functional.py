"""Every differentiable op: forward value against NumPy, backward against float64 central
differences (tinyproj.gradcheck), and the error messages a student will see."""
import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
from tinyproj.functional import conv_shifted
from tinyproj.gradcheck import GradcheckError, gradcheck, numerical_grad


def R(seed=0):
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return R(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return R(seed).uniform(0.5, 2.0, shape)


def away_from_zero(*shape, seed=0, gap=0.05):
    """Normal values with |v| >= gap (relu / maximum kinks stay far from the ε-step)."""
    v = normal(*shape, seed=seed)
    return np.where(np.abs(v) < gap, np.sign(v + 1e-12) * (gap + np.abs(v)), v)


def distinct(*shape, seed=0):
    """A shuffled set of well separated values: max / max-pool have no ties."""
    n = int(np.prod(shape))
    return (R(seed).permutation(n).reshape(shape) - n / 2) * 0.1


def check(fn, inputs, **kw):
    result = gradcheck(fn, inputs, **kw)
    assert result.ok and len(result.inputs) == len(inputs)
    return result


# ---------------------------------------------------------------------------
# the gradient checker itself must be able to fail
# ---------------------------------------------------------------------------
class _WrongCube(tp.Function):
    def __init__(self, everywhere=False):
        self.everywhere = everywhere

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, gy):
        g = gy * 3 * self.x ** 2
        if self.everywhere:
            return g * 1.01               # 1 % off everywhere
        g.reshape(-1)[1] *= 1.01          # one element 1 % off
        return g


def test_gradcheck_catches_wrong_gradient_elementwise():
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: _WrongCube()(x), [normal(3, 4)])
    msg = str(info.value)
    assert "input 0" in msg and "(0, 1)" in msg and "analytic" in msg and "numeric" in msg
    assert "max abs diff" in msg and "max rel diff" in msg
    res = gradcheck(lambda x: _WrongCube()(x), [normal(3, 4)], raise_on_fail=False)
    assert not res and res.inputs[0].worst_index == (0, 1)
    assert res.inputs[0].max_rel_diff == pytest.approx(0.01, rel=1e-3)


def test_gradcheck_catches_wrong_gradient_directional():
    with pytest.raises(GradcheckError, match="directional"):
        gradcheck(lambda x: _WrongCube(everywhere=True)(x), [normal(30, 40)], n_directions=4)


def test_gradcheck_catches_permuted_gradient():
    # a backward that swaps gradients between output elements passes a plain-sum check;
    # the random weighting R catches it
    class Swap(tp.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            return 2 * gy[::-1]
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: Swap()(x), [normal(5)])


def test_gradcheck_casts_float32_copies_and_leaves_inputs_alone():
    x32 = normal(3, 2).astype(np.float32)
    before = x32.copy()
    res = check(lambda x: x * x, [tp.tensor(x32)])
    assert res.inputs[0].analytic.dtype == np.float64
    np.testing.assert_array_equal(x32, before)


def test_gradcheck_rejects_integer_input():
    with pytest.raises(TypeError, match="closure"):
        gradcheck(lambda s, y: F.cross_entropy(s, y), [normal(2, 3), np.array([0, 1])])


def test_numerical_grad_matches_formula():
    x = normal(2, 3)
    g = numerical_grad(lambda t: (t * t * t).sum(), [x], 0)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-7, atol=1e-8)


# ---------------------------------------------------------------------------
# forward value + gradient check for every op
# ---------------------------------------------------------------------------
CASES = {
    # name: (tinyproj fn, inputs, numpy forward or None)
    "add": (lambda a, b: a + b, [normal(3, 1), normal(1, 4, seed=1)], lambda a, b: a + b),
    "add_lead": (F.add, [normal(4), normal(2, 3, 4, seed=1)], lambda a, b: a + b),
    "add_scalar_tensor": (F.add, [normal(), normal(2, 3, seed=1)], lambda a, b: a + b),
    "add_const": (lambda a: a + 2.5, [normal(3)], lambda a: a + 2.5),
    "sub": (F.sub, [normal(2, 3, 4), normal(3, 1, seed=1)], lambda a, b: a - b),
    "rsub_const": (lambda a: 1.0 - a, [normal(3)], lambda a: 1.0 - a),
    "mul": (F.mul, [normal(3, 1), normal(1, 4, seed=1)], lambda a, b: a * b),
    "mul_same": (lambda a: a * a, [normal(5)], lambda a: a * a),
    "div": (F.div, [normal(3, 4), positive(4, seed=1)], lambda a, b: a / b),
    "rdiv_const": (lambda a: 2.0 / a, [positive(3)], lambda a: 2.0 / a),
    "neg": (F.neg, [normal(2, 3)], lambda a: -a),
    "pow2": (lambda a: a ** 2, [normal(2, 3)], lambda a: a ** 2),
    "pow3": (lambda a: F.pow(a, 3), [normal(2, 3)], lambda a: a ** 3),
    "pow_half": (lambda a: a ** 0.5, [positive(2, 3)], lambda a: a ** 0.5),
    "pow_neg": (lambda a: a ** -1.5, [positive(2, 3)], lambda a: a ** -1.5),
    "exp": (F.exp, [normal(2, 3)], np.exp),
    "log": (F.log, [positive(2, 3)], np.log),
    "sqrt": (F.sqrt, [positive(2, 3)], np.sqrt),
    "maximum": (F.maximum, [normal(3, 4), normal(3, 4, seed=1)], np.maximum),
    "maximum_bcast": (F.maximum, [normal(3, 4), normal(4, seed=1)], np.maximum),
    "maximum_const": (lambda a: F.maximum(a, 0.3), [away_from_zero(3, 4) + 0.3],
                      lambda a: np.maximum(a, 0.3)),
    "relu": (F.relu, [away_from_zero(4, 5)], lambda a: np.maximum(a, 0)),
    "sum_all": (lambda a: F.sum(a), [normal(2, 3, 4)], lambda a: a.sum()),
    "sum_int": (lambda a: F.sum(a, 1), [normal(2, 3, 4)], lambda a: a.sum(1)),
    "sum_neg": (lambda a: a.sum(axis=-1), [normal(2, 3, 4)], lambda a: a.sum(-1)),
    "sum_tuple": (lambda a: F.sum(a, (0, 2)), [normal(2, 3, 4)], lambda a: a.sum((0, 2))),
    "sum_keep": (lambda a: F.sum(a, (0, 2), keepdims=True), [normal(2, 3, 4)],
                 lambda a: a.sum((0, 2), keepdims=True)),
    "mean_all": (lambda a: F.mean(a), [normal(2, 3, 4)], lambda a: a.mean()),
    "mean_int": (lambda a: F.mean(a, 0), [normal(2, 3, 4)], lambda a: a.mean(0)),
    "mean_tuple_keep": (lambda a: F.mean(a, (1, 2), keepdims=True), [normal(2, 3, 4)],
                        lambda a: a.mean((1, 2), keepdims=True)),
    "max_all": (lambda a: F.max(a), [distinct(2, 3, 4)], lambda a: a.max()),
    "max_int": (lambda a: F.max(a, 1), [distinct(2, 3, 4)], lambda a: a.max(1)),
    "max_tuple": (lambda a: F.max(a, (0, 2)), [distinct(2, 3, 4)], lambda a: a.max((0, 2))),
    "max_keep": (lambda a: F.max(a, -1, keepdims=True), [distinct(2, 3, 4)],
                 lambda a: a.max(-1, keepdims=True)),
    "matmul": (F.matmul, [normal(3, 4), normal(4, 5, seed=1)], lambda a, b: a @ b),
    "linear": (F.linear, [normal(5, 4), normal(3, 4, seed=1)], lambda x, w: x @ w.T),
    "linear_bias": (F.linear, [normal(5, 4), normal(3, 4, seed=1), normal(3, seed=2)],
                    lambda x, w, b: x @ w.T + b),
    "reshape": (lambda a: F.reshape(a, (4, -1)), [normal(2, 3, 4)], lambda a: a.reshape(4, -1)),
    "transpose": (lambda a: F.transpose(a), [normal(2, 3, 4)], lambda a: a.T),
    "transpose_axes": (lambda a: F.transpose(a, (1, 2, 0)), [normal(2, 3, 4)],
                       lambda a: a.transpose(1, 2, 0)),
    "transpose_neg_axes": (lambda a: a.transpose(-1, 0, 1), [normal(2, 3, 4)],
                           lambda a: a.transpose(2, 0, 1)),
    "getitem_int": (lambda a: a[1], [normal(3, 4)], lambda a: a[1]),
    "getitem_slices": (lambda a: a[1:, ::2, -1], [normal(3, 4, 5)], lambda a: a[1:, ::2, -1]),
    "getitem_neg_step": (lambda a: a[::-2], [normal(5, 2)], lambda a: a[::-2]),
    "getitem_repeats": (lambda a: a[np.array([0, 2, 0, 0, 1])], [normal(3, 4)],
                        lambda a: a[[0, 2, 0, 0, 1]]),
    "getitem_pairs": (lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 2])], [normal(3, 4)],
                      lambda a: a[[0, 1, 1], [2, 2, 2]]),
    "getitem_mixed": (lambda a: a[:, np.array([3, 3, 0])], [normal(3, 4)],
                      lambda a: a[:, [3, 3, 0]]),
    "getitem_mask": (lambda a: a[np.arange(12).reshape(3, 4) % 3 == 0], [normal(3, 4)],
                     lambda a: a[np.arange(12).reshape(3, 4) % 3 == 0]),
    "getitem_row_mask": (lambda a: a[np.array([True, False, True])], [normal(3, 4)],
                         lambda a: a[[True, False, True]]),
    "concatenate0": (lambda a, b, c: F.concatenate([a, b, c]),
                     [normal(2, 3), normal(1, 3, seed=1), normal(4, 3, seed=2)],
                     lambda a, b, c: np.concatenate([a, b, c])),
    "concatenate_last": (lambda a, b: F.concatenate([a, b], axis=-1),
                         [normal(2, 3, 2), normal(2, 3, 5, seed=1)],
                         lambda a, b: np.concatenate([a, b], axis=-1)),
    "flatten": (F.flatten, [normal(2, 3, 2, 2)], lambda a: a.reshape(2, -1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_op_forward_and_gradient(name):
    fn, inputs, ref = CASES[name]
    out = fn(*[tp.tensor(a) for a in inputs])
    expected = ref(*inputs)
    assert out.shape == np.shape(expected)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check(fn, inputs)


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------
def test_dropout_gradient_is_mask_times_scale():
    x = normal(20, 30)
    p = 0.3
    keep = np.random.default_rng(7).random(x.shape) >= p
    assert 0 < keep.mean() < 1
    xt = tp.tensor(x, requires_grad=True)
    y = F.dropout(xt, p, rng=np.random.default_rng(7))
    np.testing.assert_allclose(y.data, x * keep / (1 - p), rtol=1e-12)
    gy = normal(20, 30, seed=3)
    y.backward(gy)
    np.testing.assert_allclose(xt.grad, gy * keep / (1 - p), rtol=1e-12)
    check(lambda t: F.dropout(t, p, rng=np.random.default_rng(7)), [normal(4, 5)])


def test_dropout_eval_and_p0_are_identity():
    x = tp.tensor(normal(3, 4), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(x, 1.0)


def test_dropout_scale_keeps_mean_and_dtype():
    x = tp.tensor(np.ones((200, 200), np.float32))
    y = F.dropout(x, 0.5, rng=np.random.default_rng(0))
    assert y.dtype == np.float32
    assert set(np.unique(y.numpy())) <= {0.0, 2.0}
    assert abs(y.data.mean() - 1.0) < 0.02


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------
CONV_CASES = [
    # x shape, w shape, stride, padding
    ((2, 3, 6, 6), (4, 3, 3, 3), 1, 0),
    ((2, 3, 6, 6), (4, 3, 3, 3), 1, 1),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 0),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
    ((1, 2, 8, 8), (3, 2, 3, 3), 2, 2),
    ((1, 2, 8, 8), (3, 2, 3, 3), 3, 0),
    ((1, 2, 9, 9), (3, 2, 3, 3), 3, 1),
    ((1, 2, 8, 8), (2, 2, 3, 3), 3, 2),
    ((2, 2, 6, 7), (3, 2, 2, 3), 1, 0),          # non-square kernel
    ((2, 2, 6, 7), (3, 2, 2, 3), 2, 1),
    ((1, 2, 7, 6), (2, 2, 3, 2), (2, 1), (1, 0)),  # per-axis stride and padding
    ((2, 3, 5, 5), (4, 3, 1, 1), 1, 0),          # 1×1
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0),          # kernel = image
    ((1, 3, 23, 23), (2, 3, 11, 11), 4, 0),      # AlexNet's first layer, small
    ((1, 3, 23, 23), (2, 3, 11, 11), 4, 2),
]


def _conv_ref(x, w, stride, pad):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return y


@pytest.mark.parametrize("xs,ws,stride,pad", CONV_CASES)
def test_conv2d_gradient(xs, ws, stride, pad):
    x, w = normal(*xs, seed=1), normal(*ws, seed=2)
    fn = lambda x, w: F.conv2d(x, w, stride=stride, padding=pad)  # noqa: E731
    out = fn(tp.tensor(x), tp.tensor(w))
    np.testing.assert_allclose(out.data, _conv_ref(x, w, stride, pad), rtol=1e-10, atol=1e-10)
    check(fn, [x, w])


def test_conv2d_bias_gradient():
    x, w, b = normal(1, 3, 23, 23), normal(2, 3, 11, 11, seed=1), normal(2, seed=2)
    fn = lambda x, w, b: F.conv2d(x, w, stride=4, padding=1, bias=b)  # noqa: E731
    out = fn(tp.tensor(x), tp.tensor(w), tp.tensor(b))
    np.testing.assert_allclose(out.data, _conv_ref(x, w, 4, 1) + b[:, None, None], rtol=1e-10)
    check(fn, [x, w, b])


@pytest.fixture
def rows_path(monkeypatch):
    """Keep small test layers on the rows layout: with K = C·kh·kw ≤ conv.DIRECT_MAX_K they
    would go image by image (tested on its own), and the tests below are about the rows
    layout's machinery (transposed products, shifted products, the fused max-pool)."""
    from tinyproj.functional import conv
    monkeypatch.setattr(conv, "DIRECT_MAX_K", 0)


# The CPU takes the conv products transposed (conv.ROWS_OUT): output channels along the fast
# axis, dW as (K, O) when K >= O. The untransposed products stay (GPU arrays, ROWS_OUT off):
# both must agree, chunked or not, with either form of dW.
ROWS_CASES = [((5, 3, 9, 9), (8, 3, 3, 3), 1, 1),       # K = 27 > O = 8: dW as (K, O)
              ((4, 3, 8, 8), (32, 3, 3, 3), 1, 1),      # K = 27 < O = 32: dW as (O, K)
              ((5, 4, 9, 7), (6, 4, 2, 3), (2, 1), (1, 0)),
              ((3, 16, 6, 6), (16, 16, 3, 3), 1, 1),
              ((2, 4, 5, 5), (65, 4, 3, 3), 1, 1)]      # O > DX_ROWS_MAX_O: dcols as before


@pytest.mark.numpy_only("the transposed products are taken on NumPy arrays only")
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("xs,ws,stride,pad", ROWS_CASES)
@pytest.mark.usefixtures("rows_path")
def test_conv2d_transposed_products_match_the_plain_ones(xs, ws, stride, pad, chunked,
                                                          monkeypatch):
    from tinyproj.functional import conv
    if chunked:                                          # a few images per chunk, uneven
        monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)
        monkeypatch.setattr(conv, "SMALL_COLS", 0)
    x = normal(*xs, seed=3).astype(np.float32)
    w = normal(*ws, seed=4).astype(np.float32)
    gy_full = normal(xs[0], ws[0], 2 * xs[2], 2 * xs[3], seed=5).astype(np.float32)
    got = {}
    for rows in (False, True):
        monkeypatch.setattr(conv, "ROWS_OUT", rows)
        xt, wt = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=pad)
        gy = gy_full[:, :, ::2, ::2][:, :, :y.shape[2], :y.shape[3]]     # not contiguous
        y.backward(gy)
        got[rows] = (y.data, xt.grad, wt.grad)
    for plain, transposed in zip(got[False], got[True]):
        scale = np.abs(plain).max()
        assert np.abs(transposed - plain).max() <= 1e-6 * scale
    np.testing.assert_allclose(got[True][0], _conv_ref(x.astype(np.float64), w, stride, pad),
                               rtol=1e-4, atol=1e-4)


def test_small_columns_are_one_chunk_and_large_ones_are_cut(monkeypatch):
    from tinyproj.functional import conv
    op = conv.Conv2d(1, 1)
    x, w = np.zeros((50, 3, 32, 32), np.float32), np.zeros((32, 3, 3, 3), np.float32)
    assert op._chunks(x, w) == [(0, 25), (25, 50)]       # (27 + 32) · 4 B a column: 2 chunks
    x, w = np.zeros((50, 32, 32, 32), np.float32), np.zeros((32, 32, 3, 3), np.float32)
    assert [b - a for a, b in op._chunks(x, w)] == [7, 7, 7, 7, 7, 7, 8]  # ≤ 8,192 columns


@pytest.mark.numpy_only("the transposed products are taken on NumPy arrays only")
@pytest.mark.parametrize("xs,ws,stride,pad", ROWS_CASES[1:3])
@pytest.mark.usefixtures("rows_path")
def test_conv2d_transposed_products_gradient_in_chunks(xs, ws, stride, pad, monkeypatch):
    from tinyproj.functional import conv
    monkeypatch.setattr(conv, "ROWS_OUT", True)
    monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)
    monkeypatch.setattr(conv, "SMALL_COLS", 0)
    x, w = normal(2, *xs[1:], seed=6), normal(*ws, seed=7)
    check(lambda x, w: F.conv2d(x, w, stride=stride, padding=pad), [x, w])


def test_conv2d_input_only_or_weight_only():
    x, w = normal(2, 2, 5, 5), normal(3, 2, 3, 3, seed=1)
    check(lambda x: F.conv2d(x, tp.tensor(w), padding=1), [x])
    check(lambda w: F.conv2d(tp.tensor(x), w, stride=2), [w])


# Thin stride-1 layers take shifted products with no column matrix (conv_shifted.SHIFTED,
# kernels/shifted.py): the same function as im2col to float32 rounding, chunked or not, fused
# with a max-pool or not; its own float64 gradient check. SHIFT_MIN_C is lowered so that small
# layers take that path.
SHIFT_CASES = [((5, 3, 9, 9), (8, 3, 3, 3), 1),
               ((4, 5, 8, 7), (6, 5, 3, 2), (1, 0)),
               ((3, 16, 6, 6), (16, 16, 3, 3), 1),
               ((2, 4, 5, 5), (64, 4, 3, 3), 2)]              # padding 2: OH > H


@pytest.mark.numpy_only("the per-image products run on NumPy arrays")
@pytest.mark.parametrize("need_x", [True, False])
@pytest.mark.parametrize("xs,ws,stride,pad", [((5, 3, 8, 8), (6, 3, 3, 3), 1, 1),
                                              ((3, 2, 9, 7), (4, 2, 3, 2), (2, 1), (1, 0))])
def test_conv2d_per_image_products_match_the_rows_path(xs, ws, stride, pad, need_x,
                                                        monkeypatch):
    """Layers with K = C·kh·kw ≤ DIRECT_MAX_K take one product per image straight into y
    (conv.py): the same y, dx and dW as the rows layout (chunked too), to float32 rounding."""
    from tinyproj.functional import conv
    assert conv.Conv2d(stride, pad)._direct(np.zeros(ws))
    x = normal(*xs, seed=3).astype(np.float32)
    w = normal(*ws, seed=4).astype(np.float32)
    got = []
    for max_k in (conv.DIRECT_MAX_K, 0):
        monkeypatch.setattr(conv, "DIRECT_MAX_K", max_k)
        monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)               # several chunks
        monkeypatch.setattr(conv, "SMALL_COLS", 0)
        xt, wt = tp.tensor(x, requires_grad=need_x), tp.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=pad)
        y.backward(normal(*y.shape, seed=5).astype(np.float32))
        got.append((y.numpy(), xt.grad, wt.grad))
    for direct, rows in zip(*got):
        if rows is None:
            assert direct is None
            continue
        np.testing.assert_allclose(direct, rows, rtol=0, atol=1e-6 * np.abs(rows).max())


@pytest.mark.numpy_only("the shifted products run on NumPy arrays")
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("xs,ws,pad", SHIFT_CASES)
@pytest.mark.usefixtures("rows_path")
def test_conv2d_shifted_products_match_im2col(xs, ws, pad, chunked, monkeypatch):
    from tinyproj.functional import conv
    from tinyproj.functional.conv_pool import conv2d_maxpool
    monkeypatch.setattr(conv_shifted, "SHIFT_MIN_C", 1)
    if chunked:
        monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)
        monkeypatch.setattr(conv, "SMALL_COLS", 0)
        monkeypatch.setattr(conv_shifted, "SHIFT_CHUNK_BYTES", 1)  # forward: one image a chunk
    x = normal(*xs, seed=3).astype(np.float32)
    w = normal(*ws, seed=4).astype(np.float32)
    for pool in (False, True):
        got = {}
        for shift in (False, True):
            monkeypatch.setattr(conv_shifted, "SHIFTED", shift)
            xt, wt = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
            y = conv2d_maxpool(xt, wt, 1, pad) if pool else F.conv2d(xt, wt, padding=pad)
            y.backward(normal(*y.shape, seed=5).astype(np.float32))
            got[shift] = (y.data, xt.grad, wt.grad)
        for plain, shifted in zip(got[False], got[True]):
            assert np.abs(shifted - plain).max() <= 1e-6 * np.abs(plain).max()


@pytest.mark.numpy_only("the shifted products run on NumPy arrays")
def test_conv2d_shifted_products_are_used_for_thin_stride_1_layers_only(monkeypatch):
    from tinyproj.functional import conv
    from tinyproj.kernels import shifted
    if not shifted.available():
        pytest.skip("no cblas gemm in NumPy's BLAS: im2col everywhere")
    x32, w = np.zeros((2, 32, 8, 8), np.float32), np.zeros((64, 32, 3, 3), np.float32)
    taps = conv_shifted.taps
    assert taps(conv.Conv2d(1, 1), x32, w).shape == (3, 3, 32, 64)         # (kh, kw, C, O)
    assert taps(conv.Conv2d(2, 1), x32, w) is None                          # stride 2
    assert taps(conv.Conv2d(1, 1), x32[:, :3], w[:, :3]) is None            # C = 3 < 16
    assert taps(conv.Conv2d(1, 1), x32, np.zeros((128, 32, 3, 3), np.float32)) is None
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")                     # readable path
    assert taps(conv.Conv2d(1, 1), x32, w) is None


def test_shifted_forward_chunks_fit_their_budget():
    from tinyproj.functional import conv
    op = conv.Conv2d(1, 1)
    taps = np.zeros((3, 3, 32, 32), np.float32)             # 34·34·64·4 B an image: 296 KB
    assert conv_shifted.chunks(op, np.zeros((50, 32, 32, 32), np.float32), taps) == [(0, 25),
                                                                                    (25, 50)]
    taps = np.zeros((3, 3, 32, 64), np.float32)             # 18·18·96·4 B: all 50 in 8 MB
    assert conv_shifted.chunks(op, np.zeros((50, 32, 16, 16), np.float32), taps) == [(0, 50)]


@pytest.mark.numpy_only("the shifted products run on NumPy arrays")
@pytest.mark.parametrize("xs,ws,pad", SHIFT_CASES[:2])
@pytest.mark.usefixtures("rows_path")
def test_conv2d_shifted_products_gradient(xs, ws, pad, monkeypatch):
    from tinyproj.functional import conv
    monkeypatch.setattr(conv_shifted, "SHIFT_MIN_C", 1)
    monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)
    monkeypatch.setattr(conv, "SMALL_COLS", 0)
    monkeypatch.setattr(conv_shifted, "SHIFT_CHUNK_BYTES", 1)
    x, w = normal(2, *xs[1:], seed=6), normal(*ws, seed=7)
    check(lambda x, w: F.conv2d(x, w, padding=pad), [x, w])


# conv2d fused with the max-pool after it (functional/conv_pool.py): the same numbers as the
# two ops, bit for bit, in either product layout, chunked or not; its own gradient check.
CONV_POOL_CASES = [((5, 3, 8, 8), (6, 3, 3, 3), 1, 1, 2, 2, 0),
                   ((4, 2, 9, 9), (5, 2, 3, 3), 1, 1, 3, 2, 1),     # overlapping windows
                   ((3, 4, 9, 7), (3, 4, 2, 3), (2, 1), (1, 0), 2, 2, 1),
                   ((2, 16, 6, 6), (70, 16, 3, 3), 1, 1, 2, 2, 0)]  # dcols, not drows


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("xs,ws,stride,pad,k,ps,pp", CONV_POOL_CASES)
@pytest.mark.usefixtures("rows_path")
def test_conv2d_maxpool_equals_the_two_ops(xs, ws, stride, pad, k, ps, pp, rows, chunked,
                                           monkeypatch):
    from tinyproj.functional import conv
    from tinyproj.functional.conv_pool import conv2d_maxpool
    monkeypatch.setattr(conv, "ROWS_OUT", rows)
    if chunked:
        monkeypatch.setattr(conv, "MAX_COLUMNS", 2 * 81)
        monkeypatch.setattr(conv, "SMALL_COLS", 0)
    x = normal(*xs, seed=3).astype(np.float32)
    w = normal(*ws, seed=4).astype(np.float32)
    got = []
    for fused in (False, True):
        xt, wt = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        if fused:
            y = conv2d_maxpool(xt, wt, stride, pad, pool=k, pool_stride=ps, pool_padding=pp)
        else:
            y = F.max_pool2d(F.conv2d(xt, wt, stride=stride, padding=pad), k, ps, padding=pp)
        y.backward(normal(*y.shape, seed=5).astype(np.float32))
        got.append((y.numpy(), xt.grad, wt.grad))
    for plain, fused in zip(*got):
        np.testing.assert_array_equal(fused, plain)


@pytest.mark.parametrize("xs,ws,stride,pad,k,ps,pp", CONV_POOL_CASES[:3])
@pytest.mark.usefixtures("rows_path")
def test_conv2d_maxpool_gradient(xs, ws, stride, pad, k, ps, pp):
    from tinyproj.functional.conv_pool import conv2d_maxpool
    x, w = normal(2, *xs[1:], seed=6), normal(*ws, seed=7)
    check(lambda x, w: conv2d_maxpool(x, w, stride, pad, pool=k, pool_stride=ps,
                                      pool_padding=pp), [x, w])


def test_conv2d_maxpool_refuses_a_window_that_does_not_fit():
    from tinyproj.functional.conv_pool import conv2d_maxpool
    x, w = tp.tensor(normal(1, 2, 4, 4)), tp.tensor(normal(3, 2, 3, 3))
    with pytest.raises(ValueError, match="does not fit the convolution's output"):
        conv2d_maxpool(x, w, pool=3)                       # conv output 2×2 < window 3×3
    with pytest.raises(ValueError, match="at most half the window"):
        conv2d_maxpool(x, w, padding=1, pool=2, pool_padding=2)


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------
POOL_CASES = [((2, 2, 6, 6), 2, 2, 0), ((2, 2, 7, 7), 3, 2, 0), ((2, 2, 7, 7), 3, 2, 1),
              ((1, 2, 6, 8), 2, 2, 1), ((1, 3, 5, 5), 2, 1, 0), ((1, 2, 11, 11), 3, 3, 1)]


@pytest.mark.parametrize("xs,k,s,p", POOL_CASES)
def test_max_pool2d_gradient(xs, k, s, p):
    check(lambda x: F.max_pool2d(x, k, s, padding=p), [distinct(*xs)])


def test_max_pool2d_default_stride_is_kernel():
    x = distinct(1, 1, 4, 4)
    y = F.max_pool2d(tp.tensor(x), 2)
    np.testing.assert_array_equal(y.data, x.reshape(1, 1, 2, 2, 2, 2).max(axis=(3, 5)))


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
def test_batch_norm_training_gradient(shape, affine):
    c = shape[1]
    inputs = [normal(*shape) * 2 + 1]
    if affine in ("both", "gamma"):
        inputs.append(positive(c, seed=1))
    if affine in ("both", "beta"):
        inputs.append(normal(c, seed=2))

    def fn(x, *params):
        params = list(params)
        g = params.pop(0) if affine in ("both", "gamma") else None
        b = params.pop(0) if affine in ("both", "beta") else None
        return F.batch_norm(x, None, None, g, b, training=True)
    check(fn, inputs)

    # forward: per channel zero mean, unit variance (before γ, β)
    x = inputs[0]
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    y = F.batch_norm(tp.tensor(x), training=True).data
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), x.var(axis=axes) / (x.var(axis=axes) + 1e-5),
                               rtol=1e-10)


HOST_STATS = ("passes NumPy arrays as the running statistics, which batch norm updates in "
              "place: on a device they must be device arrays (nn.BatchNorm keeps them there)")


@pytest.mark.numpy_only(HOST_STATS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
def test_batch_norm_eval_gradient_and_value(shape):
    c = shape[1]
    rm, rv = normal(c, seed=3), positive(c, seed=4)
    x, g, b = normal(*shape), positive(c, seed=1), normal(c, seed=2)
    fn = lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False)  # noqa: E731
    check(fn, [x, g, b])
    bshape = (1, c) + (1,) * (len(shape) - 2)
    expected = (x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + 1e-5) * \
        g.reshape(bshape) + b.reshape(bshape)
    np.testing.assert_allclose(fn(tp.tensor(x), tp.tensor(g), tp.tensor(b)).data, expected,
                               rtol=1e-12)
    rm_before = rm.copy()
    fn(tp.tensor(x), tp.tensor(g), tp.tensor(b))
    np.testing.assert_array_equal(rm, rm_before)  # evaluation does not touch running stats


@pytest.mark.numpy_only(HOST_STATS)
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
def test_batch_norm_running_stats_update(shape):
    c = shape[1]
    rm, rv = np.zeros(c), np.ones(c)
    x1, x2 = normal(*shape) * 3 + 2, normal(*shape, seed=1) - 1
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    F.batch_norm(tp.tensor(x1), rm, rv, training=True, momentum=0.1)
    np.testing.assert_allclose(rm, 0.1 * x1.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x1.var(axis=axes, ddof=1), rtol=1e-12)
    exp_m = 0.9 * rm + 0.1 * x2.mean(axis=axes)
    exp_v = 0.9 * rv + 0.1 * x2.var(axis=axes, ddof=1)
    F.batch_norm(tp.tensor(x2), rm, rv, training=True, momentum=0.1)
    np.testing.assert_allclose(rm, exp_m, rtol=1e-12)
    np.testing.assert_allclose(rv, exp_v, rtol=1e-12)


@pytest.mark.numpy_only(HOST_STATS)
def test_batch_norm_cumulative_average_with_momentum_1_over_k():
    rm, rv = np.zeros(2), np.zeros(2)
    batches = [normal(5, 2, seed=s) + s for s in range(4)]
    for k, xb in enumerate(batches):
        F.batch_norm(tp.tensor(xb), rm, rv, training=True, momentum=1.0 / (k + 1))
    np.testing.assert_allclose(rm, np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------
def _scores_off_hinge(n, k, seed=0):
    s = normal(n, k, seed=seed) * 1.5
    close = np.abs(np.abs(s) - 1) < 0.05           # keep clear of the kink at t·s = 1
    return np.where(close, s * 1.2, s)


def test_square_hinge_gradient():
    labels = np.array([0, 2, 1, 2, 3])
    check(lambda s: F.square_hinge_loss(s, labels), [_scores_off_hinge(5, 4)])


def test_square_hinge_value_by_hand():
    s = np.array([[0.5, -2.0, 0.3], [0.0, 1.5, 0.2]])
    y = np.array([0, 1])
    # row 0, t = (+1, −1, −1): max(0, 1 − t·s) = 0.5, 0, 1.3
    # row 1, t = (−1, +1, −1): 1.0, 0, 1.2
    expected = (0.25 + 0 + 1.69 + 1.0 + 0 + 1.44) / 6
    loss = F.square_hinge_loss(tp.tensor(s), y)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    # the same via one_vs_all_targets and the formula
    t = F.one_vs_all_targets(y, 3, np.float64)
    np.testing.assert_array_equal(t, [[1, -1, -1], [-1, 1, -1]])
    assert loss.item() == pytest.approx(np.mean(np.maximum(0, 1 - t * s) ** 2), rel=1e-12)


def test_cross_entropy_gradient_and_value():
    s, labels = normal(5, 4), np.array([0, 3, 1, 1, 2])
    check(lambda s: F.cross_entropy(s, labels), [s])
    logp = s - np.log(np.exp(s).sum(1, keepdims=True))
    assert F.cross_entropy(tp.tensor(s), labels).item() == pytest.approx(
        -logp[np.arange(5), labels].mean(), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stable_for_huge_scores(dtype):
    s = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 + 1, 0.0]], dtype=dtype)
    x = tp.tensor(s, requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, 2]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(x.grad))
    # row 0: log(1 + e^-1e4 + e^-2e4) ≈ 0; row 1: 1e4 + 1 + log(1 + e^-1) − 0
    expected = (0.0 + 1e4 + 1 + np.log1p(np.exp(-1.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(x.grad.sum(axis=1), 0, atol=1e-6)
    assert float(x.grad[1, 2]) == pytest.approx(-0.5, rel=1e-6)


@pytest.mark.parametrize("loss", [F.square_hinge_loss, F.cross_entropy])
def test_loss_label_errors(loss):
    s = tp.tensor(normal(4, 3))
    with pytest.raises(ValueError, match=r"labels of shape \(4, 1\).*\(4, 3\).*expected labels \(4,\)"):
        loss(s, np.zeros((4, 1), int))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\)"):
        loss(s, np.zeros(3, int))
    with pytest.raises(ValueError, match="integer"):
        loss(s, np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        loss(s, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="2-D"):
        loss(tp.tensor(normal(4)), np.zeros(4, int))


# ---------------------------------------------------------------------------
# errors that speak to a student
# ---------------------------------------------------------------------------
def test_conv_channel_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        F.conv2d(tp.tensor(normal(2, 3, 8, 8)), tp.tensor(normal(4, 5, 3, 3)))
    msg = str(info.value)
    assert "(2, 3, 8, 8)" in msg and "(4, 5, 3, 3)" in msg and "channels" in msg


def test_conv_shape_errors():
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(tp.tensor(normal(3, 8, 8)), tp.tensor(normal(4, 3, 3, 3)))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv2d(tp.tensor(normal(1, 3, 8, 8)), tp.tensor(normal(4, 3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d(tp.tensor(normal(1, 3, 4, 4)), tp.tensor(normal(4, 3, 5, 5)))


@pytest.mark.numpy_only("the transposed products are taken on NumPy arrays only")
def test_linear_transposed_products_match_the_plain_ones(monkeypatch):
    from tinyproj.functional import linalg
    x = normal(7, 33, seed=8).astype(np.float32)
    w = normal(5, 33, seed=9).astype(np.float32)
    gy = normal(7, 5, seed=10).astype(np.float32)
    got = {}
    for transposed in (False, True):
        monkeypatch.setattr(linalg, "TRANSPOSED", transposed)
        xt, wt = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        y = F.linear(xt, wt)
        y.backward(gy)
        assert y.data.flags.c_contiguous and xt.grad.flags.c_contiguous
        got[transposed] = (y.data, xt.grad, wt.grad)
    for plain, transposed in zip(got[False], got[True]):
        assert np.abs(transposed - plain).max() <= 1e-6 * np.abs(plain).max()
    check(lambda x, w: F.linear(x, w), [normal(4, 6, seed=11), normal(3, 6, seed=12)])


def test_linear_and_matmul_mismatch():
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(3, 6\).*\(N, 6\)"):
        F.linear(tp.tensor(normal(5, 4)), tp.tensor(normal(3, 6)))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.linear(tp.tensor(normal(5, 4)), tp.tensor(normal(4)))
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\).*4.*5"):
        F.matmul(tp.tensor(normal(3, 4)), tp.tensor(normal(5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        F.matmul(tp.tensor(normal(3)), tp.tensor(normal(3, 2)))


def test_batch_norm_channel_mismatch():
    x = tp.tensor(normal(4, 3, 2, 2))
    with pytest.raises(ValueError, match=r"gamma has shape \(5,\).*\(4, 3, 2, 2\).*\(3,\)"):
        F.batch_norm(x, None, None, tp.tensor(np.ones(5)), tp.tensor(np.zeros(5)))
    with pytest.raises(ValueError, match=r"running_mean has shape \(4,\)"):
        F.batch_norm(x, np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(x, training=False)
    with pytest.raises(ValueError, match="more than one value"):
        F.batch_norm(tp.tensor(normal(1, 3)))


def test_max_pool_errors():
    with pytest.raises(ValueError, match="4-D"):
        F.max_pool2d(tp.tensor(normal(3, 4, 4)), 2)
    with pytest.raises(ValueError, match="does not fit"):
        F.max_pool2d(tp.tensor(normal(1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(tp.tensor(normal(1, 1, 6, 6)), 2, padding=2)


def test_reshape_and_pow_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*6 elements.*\(4, 2\)"):
        F.reshape(tp.tensor(normal(2, 3)), (4, 2))
    with pytest.raises(TypeError, match="Python number"):
        F.pow(tp.tensor(normal(2)), tp.tensor(normal(2)))


def test_max_ties_share_the_gradient():
    x = tp.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    F.max(x, axis=1).backward(np.array([1.0, 3.0]))
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5], [1.0, 1.0, 1.0]])


def test_small_network_end_to_end_gradient():
    # conv → batch norm → relu → max-pool → flatten → linear → cross-entropy, all at once
    rng = R(5)
    labels = np.array([0, 2, 1])

    def net(x, w1, g, b, w2):
        h = F.conv2d(x, w1, padding=1)
        h = F.relu(F.batch_norm(h, None, None, g, b, training=True))
        h = F.max_pool2d(h, 2, 2)
        return F.cross_entropy(F.linear(F.flatten(h), w2), labels)
    check(net, [rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3)),
                rng.uniform(0.5, 1.5, 3), rng.standard_normal(3),
                rng.standard_normal((3, 12))])
