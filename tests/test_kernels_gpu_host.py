"""The GPU kernels' per-element code, compiled for the CPU (kernels/host.py), against reference.py.

Each kernel in kernels/cuda/ is written once as ``__host__ __device__`` functions; the GPU
thread and the host loop tested here call the same function, so these tests check the GPU
arithmetic on a machine without a GPU (docs/design.md rule 9). Copies and gathers (im2col, col2im,
max pooling, Adam, Sign, clip) must give the reference's bits; the float32 batch-norm
reductions (float64 sums in a fixed block order) agree with the exact result — the reference
run in float64 — to 1e-6 relative.

Skips (with the reason) where no C++ compiler is found. The library is built once per session
and cached under a hash of the sources, so reruns start at once.
"""
import numpy as np
import pytest

import tinyproj as tp
from tinyproj import clipping
from tinyproj.kernels import reference as ref
from tinyproj.kernels.geometry import out_size, pool_padding_ok
from tinyproj.optim import SGD

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def host():
    from tinyproj.kernels import host
    if not host.available():
        pytest.skip(f"host build of the GPU kernels unavailable: {host.unavailable_reason()}")
    return host


# (N, C, H, W), (kh, kw), stride, pad
GEOMETRIES = [
    pytest.param((2, 3, 7, 9), (3, 3), (1, 1), (1, 1), id="3x3-s1-p1-nonsquare"),
    pytest.param((1, 1, 6, 5), (2, 3), (2, 2), (0, 0), id="2x3-s2-batch1-C1"),
    pytest.param((3, 2, 8, 8), (3, 3), (2, 2), (1, 1), id="3x3-s2-p1-overlap"),
    pytest.param((2, 2, 7, 7), (11, 11), (4, 4), (2, 2), id="11x11-s4-p2-kernel=padded-input"),
    pytest.param((2, 2, 13, 15), (11, 11), (4, 4), (2, 2), id="11x11-s4-p2-alexnet-like"),
    pytest.param((1, 1, 31, 27), (11, 11), (4, 4), (2, 2), id="11x11-s4-p2-batch1-C1-odd"),
    pytest.param((2, 3, 9, 10), (5, 1), (3, 1), (2, 0), id="5x1-s3x1-p2x0"),
    pytest.param((1, 4, 10, 7), (1, 4), (1, 3), (0, 2), id="1x4-s1x3-p0x2"),
    pytest.param((4, 2, 12, 11), (4, 2), (4, 3), (1, 1), id="4x2-s4x3-p1"),
    pytest.param((2, 3, 1, 1), (3, 3), (1, 1), (1, 1), id="1x1-image-p1"),
    pytest.param((3, 1, 5, 5), (5, 5), (1, 1), (0, 0), id="kernel=image-C1"),
]


def _random_geometries(count, seed=11):
    """Random shapes (odd sizes, batch 1, C = 1, non-square, strides beyond the kernel)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
        if out_size(h, kh, sh, ph) < 1 or out_size(w, kw, sw, pw) < 1:
            continue
        cases.append(pytest.param((n, c, h, w), (kh, kw), (sh, sw), (ph, pw),
                                  id=f"random{len(cases)}-{n}x{c}x{h}x{w}-k{kh}x{kw}"
                                     f"-s{sh}x{sw}-p{ph}x{pw}"))
    return cases


ALL_GEOMETRIES = GEOMETRIES + _random_geometries(24)
POOL_GEOMETRIES = [p for p in ALL_GEOMETRIES
                   if pool_padding_ok(p.values[1][0], p.values[3][0])
                   and pool_padding_ok(p.values[1][1], p.values[3][1])]


def random_x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# im2col / col2im: copies and gathers, bit-exact
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", ALL_GEOMETRIES)
def test_im2col_batch_bit_exact(host, shape, k, stride, pad, dtype):
    x = random_x(shape, dtype)
    assert_same_bits(host.get("im2col_batch")(x, *k, stride, pad),
                     ref.im2col_batch(x, *k, stride, pad))


@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_im2col_batch_pad_value_bit_exact(host, shape, k, stride, pad):
    x = random_x(shape, np.float32)
    assert_same_bits(host.get("im2col_batch")(x, *k, stride, pad, pad_value=-np.inf),
                     ref.im2col_batch(x, *k, stride, pad, pad_value=-np.inf))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", ALL_GEOMETRIES)
def test_col2im_batch_bit_exact(host, shape, k, stride, pad, dtype):
    n, c, h, w = shape
    oh, ow = out_size(h, k[0], stride[0], pad[0]), out_size(w, k[1], stride[1], pad[1])
    cols = random_x((c * k[0] * k[1], n * oh * ow), dtype, seed=1)
    assert_same_bits(host.get("col2im_batch")(cols, shape, *k, stride, pad),
                     ref.col2im_batch(cols, shape, *k, stride, pad))


@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_per_image_layout_bit_exact(host, shape, k, stride, pad):
    x = random_x(shape, np.float32)
    cols = host.get("im2col")(x, *k, stride, pad)
    assert_same_bits(cols, ref.im2col(x, *k, stride, pad))
    assert_same_bits(host.get("col2im")(cols, shape, *k, stride, pad),
                     ref.col2im(cols, shape, *k, stride, pad))


def test_out_argument_is_filled(host):
    x = random_x((2, 3, 6, 6), np.float32)
    cols = np.empty((27, 2 * 36), dtype=np.float32)
    assert host.get("im2col_batch")(x, 3, 3, (1, 1), (1, 1), out=cols) is cols
    gx = np.empty_like(x)
    assert host.get("col2im_batch")(cols, x.shape, 3, 3, (1, 1), (1, 1), out=gx) is gx
    assert_same_bits(gx, ref.col2im_batch(cols, x.shape, 3, 3, (1, 1), (1, 1)))


# ---------------------------------------------------------------------------
# Max pooling: values, argmax (ties, NaN, padding) and the gather-style backward, bit-exact
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", POOL_GEOMETRIES)
def test_maxpool_forward_bit_exact(host, shape, k, stride, pad, dtype):
    x = random_x(shape, dtype)
    y, argmax = host.get("maxpool_forward")(x, *k, stride, pad)
    y_ref, argmax_ref = ref.maxpool_forward(x, *k, stride, pad)
    assert_same_bits(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


@pytest.mark.parametrize("shape, k, stride, pad", POOL_GEOMETRIES[:12])
def test_maxpool_forward_ties_nan_inf(host, shape, k, stride, pad):
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 2, size=shape).astype(np.float32)     # many ties
    x[rng.random(shape) < 0.05] = np.nan
    x[rng.random(shape) < 0.05] = -np.inf
    y, argmax = host.get("maxpool_forward")(x, *k, stride, pad)
    y_ref, argmax_ref = ref.maxpool_forward(x, *k, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", POOL_GEOMETRIES)
def test_maxpool_backward_bit_exact(host, shape, k, stride, pad, dtype):
    x = random_x(shape, dtype)
    _, argmax = ref.maxpool_forward(x, *k, stride, pad)
    gy = random_x(argmax.shape, dtype, seed=2)
    assert_same_bits(host.get("maxpool_backward")(gy, argmax, shape, *k, stride, pad),
                     ref.maxpool_backward(gy, argmax, shape, *k, stride, pad))


def test_maxpool_backward_accepts_int8_argmax(host):
    x = random_x((2, 3, 9, 9), np.float32)
    _, argmax = ref.maxpool_forward(x, 3, 3, (2, 2))
    gy = random_x(argmax.shape, np.float32, seed=3)
    assert_same_bits(host.get("maxpool_backward")(gy, argmax.astype(np.int8), x.shape, 3, 3, (2, 2)),
                     ref.maxpool_backward(gy, argmax, x.shape, 3, 3, (2, 2)))


# ---------------------------------------------------------------------------
# Batch norm: fixed-order float64 block sums, ≤ 1e-6 relative to the exact result
# ---------------------------------------------------------------------------
BN_SHAPES = [(50, 8, 6, 6), (1, 1, 3, 5), (3, 5, 1, 1), (7, 4), (1, 3), (2, 3, 17, 13),
             (64, 2, 9, 9)]


def close_to_exact(got, exact, dtype):
    """float32: within 1e-6 of the float64 result (relative, and relative to its scale)."""
    exact = np.asarray(exact, dtype=np.float64)
    if dtype == np.float64:
        np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-12 * max(1, abs(exact).max()))
    else:
        scale = float(np.abs(exact).max()) if exact.size else 1.0
        np.testing.assert_allclose(got.astype(np.float64), exact, rtol=1e-6, atol=1e-6 * scale)


def bn_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)     # an offset: cancellation
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    return x, gamma, beta


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_forward_training(host, shape, affine, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    g, b = (gamma, beta) if affine else (None, None)
    y, mean, var, inv_std = host.get("batchnorm_forward")(x, None, None, 1e-5, g, b, True)
    x64 = x.astype(np.float64)
    want = ref.batchnorm_forward(x64, None, None, 1e-5, None if g is None else g.astype(np.float64),
                                 None if b is None else b.astype(np.float64), True)
    for got, exact in zip((y, mean, var, inv_std), want):
        assert got.dtype == dtype
        close_to_exact(got, exact, dtype)
    # and against the float32 reference itself, whose own sums are less exact
    for got, other in zip((y, mean, var, inv_std), ref.batchnorm_forward(x, None, None, 1e-5, g, b)):
        np.testing.assert_allclose(got, other, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES[:4])
def test_batchnorm_forward_eval_bit_exact(host, shape, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    rng = np.random.default_rng(1)
    mean = rng.standard_normal(shape[1]).astype(dtype)
    var = rng.uniform(0.1, 2.0, shape[1]).astype(dtype)
    got = host.get("batchnorm_forward")(x, mean, var, 1e-5, gamma, beta, False)
    want = ref.batchnorm_forward(x, mean, var, 1e-5, gamma, beta, False)
    for a, b in zip(got, want):
        assert_same_bits(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_backward(host, shape, affine, training, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    g = gamma if affine else None
    _, mean, _, inv_std = ref.batchnorm_forward(x, None, None, 1e-5, g, beta)
    gy = random_x(shape, dtype, seed=4)
    got = host.get("batchnorm_backward")(gy, x, mean, inv_std, g, training)
    f64 = [a.astype(np.float64) for a in (gy, x, mean, inv_std)]
    want = ref.batchnorm_backward(*f64, None if g is None else g.astype(np.float64), training)
    for a, exact in zip(got, want):
        assert a.dtype == dtype
        close_to_exact(a, exact, dtype)


# ---------------------------------------------------------------------------
# Adam and SGD: element-wise, bit-exact (no fused multiply-adds on either side)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 1000, 4099])
def test_adam_update_bit_exact_over_steps(host, size, dtype):
    rng = np.random.default_rng(size)
    w = rng.standard_normal(size).astype(dtype)
    m, v = np.zeros_like(w), np.zeros_like(w)
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    for t in range(1, 6):
        g = rng.standard_normal(size).astype(dtype)
        host.get("adam_update")(w, g, m, v, 3e-3, 0.9, 0.999, 1e-8, t)
        ref.adam_update(w_ref, g, m_ref, v_ref, 3e-3, 0.9, 0.999, 1e-8, t)
        for a, b in ((w, w_ref), (m, m_ref), (v, v_ref)):
            assert_same_bits(a, b)


def test_adam_update_flat_buffer_is_all_parameters_at_once(host):
    """Parameters side by side in one flat buffer: one call updates each as its own call would."""
    rng = np.random.default_rng(0)
    sizes = [27, 1, 300, 8]
    flat_w = rng.standard_normal(sum(sizes)).astype(np.float32)
    flat_g = rng.standard_normal(sum(sizes)).astype(np.float32)
    flat_m, flat_v = np.zeros_like(flat_w), np.zeros_like(flat_w)
    pieces = np.split(flat_w.copy(), np.cumsum(sizes)[:-1])
    grads = np.split(flat_g, np.cumsum(sizes)[:-1])
    host.get("adam_update")(flat_w, flat_g, flat_m, flat_v, 1e-3, 0.9, 0.999, 1e-8, 1)
    for piece, g in zip(pieces, grads):
        ref.adam_update(piece, g, np.zeros_like(piece), np.zeros_like(piece), 1e-3, 0.9, 0.999,
                        1e-8, 1)
    assert_same_bits(flat_w, np.concatenate(pieces))


@pytest.mark.parametrize("momentum, weight_decay, nesterov",
                         [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 5e-4, False),
                          (0.5, 1e-3, True), (0.0, 1e-2, False)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_bit_exact_with_the_optimizer(host, momentum, weight_decay, nesterov, dtype):
    rng = np.random.default_rng(3)
    w = rng.standard_normal(257).astype(dtype)
    w_ref = w.copy()                      # updated by the optimizer's own code, on the host
    p = tp.Tensor(np.zeros(1, dtype), requires_grad=True)      # only to build the optimizer
    opt = SGD([p], lr=0.05, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    state = {}
    buf = np.zeros_like(w) if momentum else None
    for step in range(4):
        g = rng.standard_normal(w.shape).astype(dtype)
        opt.update(w_ref, g, state)
        host.get("sgd_update")(w, g, buf, 0.05, momentum, weight_decay, nesterov, first=step == 0)
        assert_same_bits(w, w_ref)
        if momentum:
            assert_same_bits(buf, state["momentum_buffer"])


# ---------------------------------------------------------------------------
# Sign, Round (Table 1) and the clip: bit-exact, edge cases included
# ---------------------------------------------------------------------------
def weights(dtype, kind):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((16, 3, 3, 3)).astype(dtype)
    if kind == "zeros-inside":
        w.flat[::7] = 0.0
        w.flat[::11] = -0.0
    elif kind == "all-zero":
        w[...] = 0.0
    elif kind == "ties":                      # weights exactly at ±α/2 and ±α
        w.flat[0] = 4.0
        w.flat[1:6] = [2.0, -2.0, -4.0, 1.0, -1.0]
    elif kind == "large":
        w = rng.standard_normal(100_003).astype(dtype)
    elif kind == "empty":
        w = np.zeros((0, 3), dtype=dtype)
    elif kind == "nan":
        w.flat[5] = np.nan
    return w


KINDS = ["plain", "zeros-inside", "all-zero", "ties", "large", "empty", "nan"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_sign_projection_bit_exact(host, kind, dtype):
    w = weights(dtype, kind)
    assert_same_bits(host.get("sign_projection")(w), ref.sign_projection(w))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [0.0, 0.05, 0.7, 10.0, np.inf])
def test_clip_bit_exact(host, c, dtype):
    v = weights(dtype, "zeros-inside")
    v.flat[3] = np.nan
    v.flat[4], v.flat[8] = np.inf, -np.inf
    offsets = np.array([0, v.size], np.int64)         # one tensor: the clip of every layer
    bounds = np.array([c], dtype)
    assert_same_bits(host.get("clip_segments")(v.reshape(-1), offsets, bounds).reshape(v.shape),
                     clipping.prox_linf(v, c))


def test_unknown_name_is_refused(host):
    with pytest.raises(KeyError, match="known"):
        host.get("im2colbatch")


def test_cached_library_is_reused(host):
    path = host.library_path()
    assert path.exists() and host.build() == path


# ---------------------------------------------------------------------------
# Batch norm with the following ReLU fused (forward: y·[y > 0]; backward: gy·[y > 0] first)
# ---------------------------------------------------------------------------
def relu(a):
    return a * (a > 0)                        # functional ReLU's own formula


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES[:4])
def test_batchnorm_relu_fused_forward_eval_bit_exact(host, shape, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    mean = x.mean(axis=tuple(i for i in range(x.ndim) if i != 1)).astype(dtype)
    var = np.ones(shape[1], dtype=dtype)
    y, *_ = host.get("batchnorm_forward")(x, mean, var, 1e-5, gamma, beta, False, relu=True)
    y_ref, *_ = ref.batchnorm_forward(x, mean, var, 1e-5, gamma, beta, False)
    assert (y == 0).any() and (y > 0).any()
    assert_same_bits(y, relu(y_ref))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_relu_fused_training(host, shape, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    y, mean, var, inv_std = host.get("batchnorm_forward")(x, None, None, 1e-5, gamma, beta,
                                                          relu=True)
    plain, *_ = host.get("batchnorm_forward")(x, None, None, 1e-5, gamma, beta)
    assert_same_bits(y, relu(plain))
    gy = random_x(shape, dtype, seed=6)
    got = host.get("batchnorm_backward")(gy, x, mean, inv_std, gamma, True, relu_out=y)
    want = host.get("batchnorm_backward")(gy * (plain > 0), x, mean, inv_std, gamma, True)
    for a, b in zip(got, want):
        assert_same_bits(a, b)
    f64 = [a.astype(np.float64) for a in (gy * (plain > 0), x, mean, inv_std, gamma)]
    for a, exact in zip(got, ref.batchnorm_backward(*f64, True)):
        close_to_exact(a, exact, dtype)


# ---------------------------------------------------------------------------
# Every layer at once over a flat buffer with an offsets table (Sign, Round, clip)
# ---------------------------------------------------------------------------
LAYER_SIZES = [[27 * 16, 0, 16, 9 * 16 * 32, 1, 10 * 32 * 4], [5], [0, 3, 0]]


def flat_layers(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    tensors = [rng.standard_normal(n).astype(dtype) * rng.uniform(0.01, 3) for n in sizes]
    if len(tensors) > 3:
        tensors[3][::5] = 0.0
        tensors[4][:] = 0.0                            # an all-zero tensor: α = 0
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = np.concatenate(tensors) if tensors else np.zeros(0, dtype)
    return flat.astype(dtype), offsets, tensors


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", LAYER_SIZES, ids=["6-layers", "1-layer", "with-empties"])
def test_sign_projection_segments_equal_each_tensor_alone(host, sizes, dtype):
    flat, offsets, tensors = flat_layers(sizes, dtype)
    got = host.get("sign_projection_segments")(flat, offsets)
    assert_same_bits(got, np.concatenate([ref.sign_projection(t) for t in tensors]).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", LAYER_SIZES, ids=["6-layers", "1-layer", "with-empties"])
def test_clip_segments_in_place_equal_each_tensor_alone(host, sizes, dtype):
    flat, offsets, tensors = flat_layers(sizes, dtype, seed=1)
    bounds = np.array([0.5, 1.0, np.inf, 0.05, 0.0, 2.0][:len(sizes)], dtype=dtype)
    want = np.concatenate([clipping.prox_linf(t, float(c)) for t, c in zip(tensors, bounds)])
    assert host.get("clip_segments")(flat, offsets, bounds, out=flat) is flat
    assert_same_bits(flat, want.astype(dtype))


def test_segments_refuse_offsets_that_do_not_cover_the_buffer(host):
    with pytest.raises(ValueError, match="offsets"):
        host.get("sign_projection_segments")(np.ones(10, np.float32), np.array([0, 4, 9]))


# ---------------------------------------------------------------------------
# gpu.py's own Python (shapes, argument order and types, grid and block), run without a GPU:
# a fake ``cupy`` whose RawModule runs each requested kernel through the host build
# ---------------------------------------------------------------------------
class _FakeKernel:
    def __init__(self, module, expr):
        self.module, self.expr = module, expr
        self.name, targs = expr[:-1].split("<")
        self.targs = [t.strip() for t in targs.split(",")]

    def __call__(self, grid, block, args):
        from tinyproj.kernels import cuda, host_build
        family, kinds = cuda.KERNELS[self.name]
        assert len(args) == len(kinds), f"{self.expr}: {len(args)} arguments for {kinds}"
        scalar = np.float32 if self.targs[0] == "float" else np.float64
        assert block[0] in (256, cuda.BLOCK) and grid[0] >= 1
        if self.name in ("maxabs", "maxabs_segments") or self.name.startswith("batchnorm"):
            assert block[0] == cuda.BLOCK, f"{self.name} needs blocks of TP_BLOCK threads"
        converted, write_back = [], []
        for kind, arg in zip(kinds, args):
            if kind == "i":
                assert type(arg) is np.int64, f"{self.expr}: an int64 expected, got {type(arg)}"
            elif kind == "t":
                assert type(arg) is scalar, f"{self.expr}: {scalar} expected, got {type(arg)}"
            else:
                assert isinstance(arg, np.ndarray) and arg.flags.c_contiguous, self.expr
                if arg.dtype == np.int8:                  # the host build's argmax is int64
                    assert self.targs[1] == "signed char"
                    wide = arg.astype(np.int64)
                    write_back.append((arg, wide))
                    arg = wide
                elif arg.dtype.kind == "f":
                    assert arg.dtype == scalar, f"{self.expr}: a {arg.dtype} array"
            converted.append(arg)
        if self.name == "maxabs_segments":               # a block per tensor
            assert grid[0] == int(args[2])
        elif self.name.startswith("batchnorm"):          # a block per channel
            assert grid[0] == int(args[kinds.index("i") + 1])   # (the arrays, then n, c, l)
        elif self.name != "maxabs":                       # element-wise: every element covered
            total = {"im2col_batch": converted[1].size, "col2im_batch": converted[1].size,
                     "maxpool_forward": converted[1].size, "maxpool_backward": converted[2].size}
            total = total.get(self.name, int(args[kinds.index("i")]) if "i" in kinds else 0)
            assert grid[0] * block[0] >= min(total, 65535 * 256)
        host_build.call(self.name, scalar, *converted)
        for narrow, wide in write_back:
            narrow[...] = wide


class _FakeRawModule:
    def __init__(self, code, options, name_expressions):
        assert "#include \"" not in code, "gpu.py must hand CuPy the expanded source"
        assert "--fmad=false" in options
        self.names = list(name_expressions)

    def get_function(self, expr):
        assert expr in self.names, f"{expr} was not among the name expressions {self.names}"
        return _FakeKernel(self, expr)


@pytest.fixture
def fake_gpu(host, monkeypatch):
    """kernels.gpu with ``import cupy`` answered by NumPy and the host build."""
    import types

    from tinyproj.kernels import gpu
    fake = types.ModuleType("cupy")
    fake.ascontiguousarray = lambda a, dtype=None: np.ascontiguousarray(a, dtype=dtype)
    fake.empty, fake.empty_like = np.empty, np.empty_like
    fake.RawModule = lambda code, options, name_expressions: _FakeRawModule(
        code, options, name_expressions)
    monkeypatch.setitem(__import__("sys").modules, "cupy", fake)
    monkeypatch.setattr(gpu, "_modules", {})
    return gpu


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_gpu_py_conv_and_pool_through_the_fake_cupy(fake_gpu, shape, k, stride, pad, dtype):
    x = random_x(shape, dtype)
    cols = fake_gpu.im2col_batch(x, *k, stride, pad)
    assert_same_bits(cols, ref.im2col_batch(x, *k, stride, pad))
    assert_same_bits(fake_gpu.col2im_batch(cols, shape, *k, stride, pad),
                     ref.col2im_batch(cols, shape, *k, stride, pad))
    assert_same_bits(fake_gpu.im2col(x, *k, stride, pad), ref.im2col(x, *k, stride, pad))
    if pool_padding_ok(k[0], pad[0]) and pool_padding_ok(k[1], pad[1]):
        y, argmax = fake_gpu.maxpool_forward(x, *k, stride, pad)
        y_ref, argmax_ref = ref.maxpool_forward(x, *k, stride, pad)
        assert_same_bits(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)
        assert argmax.dtype == (np.int8 if k[0] * k[1] <= 127 else np.int64)
        gy = random_x(y.shape, dtype, seed=2)
        assert_same_bits(fake_gpu.maxpool_backward(gy, argmax, shape, *k, stride, pad),
                         ref.maxpool_backward(gy, argmax_ref, shape, *k, stride, pad))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_gpu_py_batchnorm_through_the_fake_cupy(fake_gpu, host, shape, dtype):
    x, gamma, beta = bn_inputs(shape, dtype)
    for relu in (False, True):
        got = fake_gpu.batchnorm_forward(x, None, None, 1e-5, gamma, beta, True, relu=relu)
        want = host.batchnorm_forward(x, None, None, 1e-5, gamma, beta, True, relu=relu)
        for a, b in zip(got, want):
            assert_same_bits(a, b)
    y, mean, var, inv_std = got
    assert_same_bits(fake_gpu.batchnorm_forward(x, mean, var, 1e-5, None, None, False)[0],
                     ref.batchnorm_forward(x, mean, var, 1e-5, None, None, False)[0])
    gy = random_x(shape, dtype, seed=4)
    for kwargs in ({}, {"relu_out": y}):
        for a, b in zip(fake_gpu.batchnorm_backward(gy, x, mean, inv_std, gamma, True, **kwargs),
                        host.batchnorm_backward(gy, x, mean, inv_std, gamma, True, **kwargs)):
            assert_same_bits(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_py_optimizers_and_projections_through_the_fake_cupy(fake_gpu, dtype):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    m, v = np.zeros_like(w), np.zeros_like(w)
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    fake_gpu.adam_update(w, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
    ref.adam_update(w_ref, g, m_ref, v_ref, 1e-3, 0.9, 0.999, 1e-8, 1)
    assert_same_bits(w, w_ref)
    w2 = w.copy()
    fake_gpu.sgd_update(w2, g, None, 0.1)
    assert_same_bits(w2, w - dtype(0.1) * g)
    for kind in ("plain", "zeros-inside", "all-zero", "empty", "nan"):
        wk = weights(dtype, kind)
        assert_same_bits(fake_gpu.sign_projection(wk), ref.sign_projection(wk))
    flat, offsets, tensors = flat_layers(LAYER_SIZES[0], dtype)
    assert_same_bits(fake_gpu.sign_projection_segments(flat, offsets),
                     np.concatenate([ref.sign_projection(t) for t in tensors]))
    bounds = np.array([0.5, 1.0, np.inf, 0.05, 0.0, 2.0], dtype=dtype)
    assert_same_bits(fake_gpu.clip_segments(flat, offsets, bounds),
                     np.concatenate([clipping.prox_linf(t, float(c)) for t, c in zip(tensors, bounds)]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_py_fused_and_random_kernels_through_the_fake_cupy(fake_gpu, host, dtype):
    """The launches of gpu.py for the fused batch norm (running statistics, batch counter,
    gradient slots) and the random kernels give the host build's bits."""
    x, gamma, beta = bn_inputs(BN_SHAPES[0], dtype)
    c = x.shape[1]
    results = []
    for mod in (fake_gpu, host):
        rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
        tracked = np.zeros((), np.int64)
        out = mod.batchnorm_forward(x, None, None, 1e-5, gamma, beta, True, relu=True,
                                    running_mean=rm, running_var=rv, momentum=0.1,
                                    tracked=tracked)
        slots = (np.empty(c, dtype), np.empty(c, dtype))
        back = mod.batchnorm_backward(random_x(x.shape, dtype, seed=5), x, out[1], out[3], gamma,
                                      True, relu_out=out[0], out=slots)
        assert back[1] is slots[0] and back[2] is slots[1]
        results.append((*out, rm, rv, *back))
        assert int(tracked) == 1
    for a, b in zip(*results):
        assert_same_bits(a, b)
    flat, offsets, _ = flat_layers(LAYER_SIZES[0], dtype)
    key = np.array([99, 1], np.int64)
    assert_same_bits(fake_gpu.stoch_projection_segments(flat, offsets, key),
                     ref.stoch_projection_segments(flat, offsets, key))
    assert_same_bits(fake_gpu.stochm_projection_segments(flat, offsets, key, 0.5),
                     ref.stochm_projection_segments(flat, offsets, key, 0.5))
    for a, b in zip(fake_gpu.gaussian_noise(x, key, 0.1, 0.2), host.gaussian_noise(x, key, 0.1, 0.2)):
        assert_same_bits(a, b)


def test_out_must_be_contiguous_of_the_right_shape(host):
    x = random_x((2, 3, 6, 6), np.float32)
    wrong = np.empty((27, 2 * 36 * 2), dtype=np.float32)[:, ::2]          # strided
    with pytest.raises(ValueError, match="C-contiguous"):
        host.get("im2col_batch")(x, 3, 3, (1, 1), (1, 1), out=wrong)
    with pytest.raises(ValueError, match="shape"):
        host.get("col2im_batch")(np.zeros((27, 72), np.float32), x.shape, 3, 3, (1, 1), (1, 1),
                                 out=np.empty((2, 3, 6, 5), np.float32))


# ---------------------------------------------------------------------------
# On a GPU (``pytest -m gpu``; skipped without CuPy and a GPU): the CUDA build of every kernel
# gives the host build's bits — the same functions, the same block order, no FMA on either
# side — and so the reference's wherever the host tests above ask for bits.
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cp(host):
    from tinyproj import backend
    if not backend.cupy_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    import cupy
    return cupy


def same_bits_on_host(got, want):
    got = got.get() if hasattr(got, "get") else got
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, stride, pad", GEOMETRIES)
def test_cuda_conv_and_pool_equal_the_host_build(cp, host, shape, k, stride, pad, dtype):
    from tinyproj.kernels import gpu
    x = random_x(shape, dtype)
    cols = host.im2col_batch(x, *k, stride, pad)
    same_bits_on_host(gpu.im2col_batch(cp.asarray(x), *k, stride, pad), cols)
    same_bits_on_host(gpu.col2im_batch(cp.asarray(cols), shape, *k, stride, pad),
                      host.col2im_batch(cols, shape, *k, stride, pad))
    if pool_padding_ok(k[0], pad[0]) and pool_padding_ok(k[1], pad[1]):
        y, argmax = host.maxpool_forward(x, *k, stride, pad)
        y_d, argmax_d = gpu.maxpool_forward(cp.asarray(x), *k, stride, pad)
        same_bits_on_host(y_d, y)
        np.testing.assert_array_equal(argmax_d.get() if hasattr(argmax_d, "get") else argmax_d,
                                      argmax)
        gy = random_x(y.shape, dtype, seed=2)
        same_bits_on_host(gpu.maxpool_backward(cp.asarray(gy), argmax_d, shape, *k, stride, pad),
                          host.maxpool_backward(gy, argmax, shape, *k, stride, pad))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES + [(50, 128, 32, 32)])
def test_cuda_batchnorm_equals_the_host_build(cp, host, shape, dtype):
    from tinyproj.kernels import gpu
    x, gamma, beta = bn_inputs(shape, dtype)
    xd, gd, bd = cp.asarray(x), cp.asarray(gamma), cp.asarray(beta)
    for relu in (False, True):
        want = host.batchnorm_forward(x, None, None, 1e-5, gamma, beta, True, relu=relu)
        for a, b in zip(gpu.batchnorm_forward(xd, None, None, 1e-5, gd, bd, True, relu=relu), want):
            same_bits_on_host(a, b)
    y, mean, var, inv_std = want
    gy = random_x(shape, dtype, seed=4)
    for training in (True, False):
        for relu_out in (None, y):
            got = gpu.batchnorm_backward(cp.asarray(gy), xd, cp.asarray(mean), cp.asarray(inv_std),
                                         gd, training,
                                         relu_out=None if relu_out is None else cp.asarray(relu_out))
            for a, b in zip(got, host.batchnorm_backward(gy, x, mean, inv_std, gamma, training,
                                                         relu_out=relu_out)):
                same_bits_on_host(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_optimizers_and_projections_equal_the_host_build(cp, host, dtype):
    from tinyproj.kernels import gpu
    rng = np.random.default_rng(0)
    w = rng.standard_normal(300_001).astype(dtype)
    g = rng.standard_normal(w.size).astype(dtype)
    arrays = [w.copy(), g, np.zeros_like(w), np.zeros_like(w)]
    device = [cp.asarray(a) for a in arrays]
    for t in (1, 2, 3):
        host.adam_update(*arrays, 1e-3, 0.9, 0.999, 1e-8, t)
        gpu.adam_update(*device, 1e-3, 0.9, 0.999, 1e-8, t)
    for a, b in zip(device, arrays):
        same_bits_on_host(a, b)
    buf, buf_d, w2, w2_d = np.zeros_like(w), cp.zeros(w.size, dtype), w.copy(), cp.asarray(w)
    for step in range(3):
        host.sgd_update(w2, g, buf, 0.1, 0.9, 5e-4, True, first=step == 0)
        gpu.sgd_update(w2_d, cp.asarray(g), buf_d, 0.1, 0.9, 5e-4, True, first=step == 0)
    same_bits_on_host(w2_d, w2)
    for kind in KINDS:
        wk = weights(dtype, kind)
        same_bits_on_host(gpu.sign_projection(cp.asarray(wk)), host.sign_projection(wk))
    flat, offsets, _ = flat_layers(LAYER_SIZES[0], dtype)
    bounds = np.array([0.5, 1.0, np.inf, 0.05, 0.0, 2.0], dtype=dtype)
    fd, od = cp.asarray(flat), cp.asarray(offsets)
    same_bits_on_host(gpu.sign_projection_segments(fd, od),
                      host.sign_projection_segments(flat, offsets))
    same_bits_on_host(gpu.clip_segments(fd, od, cp.asarray(bounds), out=fd),
                      host.clip_segments(flat, offsets, bounds))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_fused_and_random_kernels_equal_the_host_build(cp, host, dtype):
    """Batch norm with its running statistics and counter; Stoch, StochM (bits: the same
    Philox words) and the noise (log/cos/sin of two math libraries: to the last bits)."""
    from tinyproj.kernels import gpu
    x, gamma, beta = bn_inputs((50, 16, 8, 8), dtype)
    c = x.shape[1]
    rm, rv, t = np.zeros(c, dtype), np.ones(c, dtype), np.zeros((), np.int64)
    rm_d, rv_d, t_d = cp.asarray(rm), cp.asarray(rv), cp.asarray(t)
    want = host.batchnorm_forward(x, None, None, 1e-5, gamma, beta, True, relu=True,
                                  running_mean=rm, running_var=rv, momentum=0.1, tracked=t)
    got = gpu.batchnorm_forward(cp.asarray(x), None, None, 1e-5, cp.asarray(gamma),
                                cp.asarray(beta), True, relu=True, running_mean=rm_d,
                                running_var=rv_d, momentum=0.1, tracked=t_d)
    for a, b in zip((*got, rm_d, rv_d), (*want, rm, rv)):
        same_bits_on_host(a, b)
    assert int(t_d.get()) == int(t) == 1
    flat, offsets, _ = flat_layers(LAYER_SIZES[0], dtype)
    key = np.array([2 ** 40 + 7, 5], np.int64)
    fd, od, kd = cp.asarray(flat), cp.asarray(offsets), cp.asarray(key)
    same_bits_on_host(gpu.stoch_projection_segments(fd, od, kd),
                      host.stoch_projection_segments(flat, offsets, key))
    same_bits_on_host(gpu.stochm_projection_segments(fd, od, kd, 0.5),
                      host.stochm_projection_segments(flat, offsets, key, 0.5))
    y_d, f_d = gpu.gaussian_noise(cp.asarray(x), kd, 0.1, 0.2)
    y, f = host.gaussian_noise(x, key, 0.1, 0.2)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y_d.get(), y, rtol=tol, atol=tol)
    np.testing.assert_allclose(f_d.get(), f, rtol=tol, atol=tol)


@pytest.mark.gpu
def test_cupy_arrays_get_the_cuda_kernels(cp, monkeypatch):
    from tinyproj import kernels
    from tinyproj.kernels import gpu
    monkeypatch.setenv("TINYPROJ_KERNELS", "auto")
    x = cp.zeros((1, 1, 4, 4), cp.float32)
    for name in kernels.KERNEL_NAMES:
        assert kernels.get(name, x) is getattr(gpu, name)
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    assert kernels.get("im2col_batch", x) is ref.im2col_batch
