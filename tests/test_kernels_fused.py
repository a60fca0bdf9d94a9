"""The fused kernels (issues 11 and 15) against their reference compositions.

Every fused kernel has a plain-array definition in kernels/reference.py (the ops it fuses,
one after the other); the Numba version (kernels/cpu_fused.py) and the GPU kernel's
host-compiled twin (kernels/host.py) must match it: bit for bit for element-wise work (SGD,
Sign, the clip, the running statistics), ≤ 1e-6 relative where float32 sums are involved.
"""
import numpy as np
import pytest

from tinyproj import kernels
from tinyproj.kernels import cpu_fused, host, pieces, reference

IMPLS = [pytest.param(cpu_fused, id="numba")]
if host.available():
    IMPLS.append(pytest.param(host, id="host-cuda"))


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


SHAPES = [(5, 3), (4, 3, 5, 7), (1, 2, 1, 3), (7, 1, 2, 2)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batchnorm_forward_fused_matches_the_reference(impl, shape, relu, affine):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(np.float32) if affine else None
    beta = rng.standard_normal(c).astype(np.float32) if affine else None
    runs = {}
    for name, mod in (("ref", reference), ("impl", impl)):
        rm, rv = np.linspace(-1, 1, c).astype(np.float32), np.linspace(0.5, 2, c).astype(np.float32)
        tracked = np.array(3, dtype=np.int64)
        out = mod.batchnorm_forward_fused(x, None, None, 1e-5, gamma, beta, True, relu=relu,
                                          running_mean=rm, running_var=rv, momentum=0.1,
                                          tracked=tracked)
        runs[name] = (out, rm, rv, tracked)
    (y0, m0, v0, i0), rm0, rv0, t0 = runs["ref"]
    (y1, m1, v1, i1), rm1, rv1, t1 = runs["impl"]
    assert y1.shape == y0.shape and y1.dtype == np.float32
    assert rel(m1, m0) <= 1e-6 and rel(v1, v0) <= 1e-6 and rel(i1, i0) <= 1e-6
    assert rel(y1, y0) <= 1e-5
    if relu:
        assert (y1 >= 0).all()
    # the running statistics: the reference's formula applied to the kernel's own μ, σ²
    m = x.size // c
    rm_expect = np.linspace(-1, 1, c).astype(np.float32)
    rv_expect = np.linspace(0.5, 2, c).astype(np.float32)
    rm_expect *= 1 - 0.1
    rm_expect += 0.1 * m1
    rv_expect *= 1 - 0.1
    rv_expect += 0.1 * v1 * (m / (m - 1))
    np.testing.assert_array_equal(rm1, rm_expect)
    np.testing.assert_array_equal(rv1, rv_expect)
    assert int(t0) == int(t1) == 4


@pytest.mark.parametrize("impl", IMPLS)
def test_batchnorm_forward_fused_in_evaluation_mode_is_exact_and_leaves_the_statistics(impl):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2, 5)).astype(np.float32)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.random(4).astype(np.float32) + .5
    g, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    y0 = reference.batchnorm_forward_fused(x, mean, var, 1e-5, g, b, False, relu=True)[0]
    keep = mean.copy(), var.copy()
    y1 = impl.batchnorm_forward_fused(x, mean, var, 1e-5, g, b, False, relu=True,
                                      running_mean=mean, running_var=var, momentum=0.5)[0]
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(mean, keep[0])
    np.testing.assert_array_equal(var, keep[1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_fused_matches_the_reference(impl, shape, relu, training):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(np.float32)
    y, mean, var, inv_std = reference.batchnorm_forward_fused(x, None, None, 1e-5, gamma, None,
                                                             True, relu=relu)
    relu_out = y if relu else None
    gx0, gg0, gb0 = reference.batchnorm_backward_fused(gy, x, mean, inv_std, gamma, training,
                                                       relu_out)
    gx1, gg1, gb1 = impl.batchnorm_backward_fused(gy, x, mean, inv_std, gamma, training,
                                                  relu_out=relu_out)
    assert rel(gg1, gg0) <= 1e-5 and rel(gb1, gb0) <= 1e-5
    assert rel(gx1, gx0) <= 1e-5
    if relu:    # the ReLU's mask was applied: the same as the plain kernel on gy·[y > 0]
        plain = reference.batchnorm_backward(gy * (y > 0), x, mean, inv_std, gamma, training)
        assert rel(gx1, plain[0]) <= 1e-5


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("momentum,wd,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                  (0.9, 1e-3, True), (0.0, 5e-4, False)])
def test_sgd_update_is_the_reference_bit_for_bit(impl, momentum, wd, nesterov):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(1001).astype(np.float32)
    results = []
    for mod in (reference, impl):
        w, buf = w0.copy(), np.zeros_like(w0)
        for step in range(3):
            g = np.random.default_rng(step).standard_normal(1001).astype(np.float32)
            mod.sgd_update(w, g, buf if momentum else None, 0.01, momentum, wd, nesterov,
                           first=step == 0)
        results.append((w, buf))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])


def _flat(rng):
    sizes = [6, 0, 27, 1, 40]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    w = rng.standard_normal(int(offsets[-1])).astype(np.float32)
    w[3] = 0.0                                   # sign(0) = +1
    return w, offsets


@pytest.mark.parametrize("impl", IMPLS)
def test_sign_of_every_segment_is_each_tensors_own_sign(impl):
    w, offsets = _flat(np.random.default_rng(3))
    out = impl.sign_projection_segments(w, offsets)
    np.testing.assert_array_equal(out, reference.sign_projection_segments(w, offsets))
    for a, b in zip(offsets[:-1], offsets[1:]):
        if b > a:
            np.testing.assert_array_equal(out[a:b], reference.sign_projection(w[a:b]))
    # a NaN makes its own tensor's α NaN, and only its own
    w[10] = np.nan
    out = impl.sign_projection_segments(w, offsets)
    assert np.isnan(out[6:33]).all() and np.isfinite(out[33:]).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_clip_of_every_segment_uses_its_own_bound_in_place(impl):
    w, offsets = _flat(np.random.default_rng(4))
    w *= 3
    w[40] = np.nan
    bounds = np.array([0.5, 1.0, np.inf, 0.0, 1.5], dtype=np.float32)
    expect = reference.clip_segments(w, offsets, bounds)
    out = impl.clip_segments(w.copy(), offsets, bounds)
    np.testing.assert_array_equal(out, expect)
    assert np.isnan(out[40]) and (np.abs(out[6:33]) == np.abs(w[6:33])).all()
    v = w.copy()
    impl.clip_segments(v, offsets, bounds, out=v)            # in place
    np.testing.assert_array_equal(v, expect)


# The Numba kernels share out a flat buffer in pieces of at most cpu_fused._PIECE elements
# that never cross a tensor's edge, α = max|w_s| reduced over the pieces of tensor s. The
# tensors below sit on and around those edges: empty, one element, a piece ± 1, several
# pieces with the maximum (or a NaN) in the last, short piece or the first of a later one.
def _piece_sizes():
    q = cpu_fused._PIECE
    return [0, 1, q - 1, q, q + 1, 3 * q + 5, 0, 2, 1, 2 * q]


def _same_bits(got, want):
    """Equal bit patterns (NaN's sign and payload, ±0), not just equal values."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    u = np.uint32 if got.itemsize == 4 else np.uint64
    np.testing.assert_array_equal(got.view(u), want.view(u))


def _pieced(case, dtype):
    sizes = _piece_sizes()
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    w = np.random.default_rng(5).standard_normal(int(offsets[-1])).astype(dtype)
    start, stop = offsets[:-1], offsets[1:]
    q = cpu_fused._PIECE
    w[start[2] + 7::1013] = -0.0                             # sign(−0) = +1
    if case == "max_in_last_piece":
        w[stop[5] - 1] = 40.0                                # the last of 5 in the last piece
        w[stop[4] - 1] = -30.0                               # a last piece of one element
        w[start[9] + q] = -20.0                              # the first of the second piece
        w[stop[3] - 1] = 10.0                                # the last of exactly one piece
    elif case == "nan_in_last_piece":
        w[stop[5] - 1] = np.nan
        w[start[4] + q] = np.nan                             # the one-element last piece
        w[start[1]] = np.nan                                 # a tensor of one element
    elif case == "zeros_and_inf":
        w[start[2]:stop[2]] = -0.0                           # α = +0: every sign +0
        w[start[7]:stop[7]] = [-0.0, 0.0]
        w[start[9] + q + 3] = -np.inf                        # α = inf
        w[start[3]] = np.inf
    return w, offsets


def test_pieces_cover_every_tensor_in_order_without_crossing_an_edge():
    for sizes, piece in [(_piece_sizes(), None), ([0, 5, 0, 0, 1, 7, 6], 3), ([4, 0], 1),
                         ([0], 4)]:
        piece_ = cpu_fused._PIECE if piece is None else piece
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        start, stop, segment = pieces.runs(offsets, piece_)
        covered = np.concatenate([np.arange(a, b) for a, b in zip(start, stop)] + [[]])
        np.testing.assert_array_equal(covered, np.arange(offsets[-1]))
        assert ((stop > start) & (stop - start <= piece_)).all()
        assert ((offsets[segment] <= start) & (stop <= offsets[segment + 1])).all()
        np.testing.assert_array_equal(np.bincount(segment, minlength=len(sizes)),
                                      -(-np.asarray(sizes) // piece_))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["random", "max_in_last_piece", "nan_in_last_piece",
                                  "zeros_and_inf"])
def test_sign_across_pieces_is_the_reference_bit_for_bit(impl, dtype, case):
    w, offsets = _pieced(case, dtype)
    kept = w.copy()
    out = impl.sign_projection_segments(w, offsets)
    _same_bits(out, reference.sign_projection_segments(w, offsets))
    _same_bits(w, kept)                                      # the input untouched
    nan_tensors = {s for s in range(offsets.size - 1)
                   if np.isnan(w[offsets[s]:offsets[s + 1]]).any()}
    assert nan_tensors == ({1, 4, 5} if case == "nan_in_last_piece" else set())
    for s in range(offsets.size - 1):                        # a NaN stays in its own tensor
        a, b = offsets[s], offsets[s + 1]
        assert np.isnan(out[a:b]).all() if s in nan_tensors else not np.isnan(out[a:b]).any()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["random", "nan_in_last_piece", "zeros_and_inf"])
def test_clip_across_pieces_is_the_reference_bit_for_bit(impl, dtype, case):
    w, offsets = _pieced(case, dtype)
    w *= 3
    bounds = np.array([0.5, 1.0, np.inf, 2.0, 0.25, 1.5, 7.0, 0.75, np.inf, 1.25], dtype=dtype)
    expect = reference.clip_segments(w, offsets, bounds)
    _same_bits(impl.clip_segments(w, offsets, bounds), expect)
    out = np.full_like(w, 9.0)
    assert impl.clip_segments(w, offsets, bounds, out=out) is out
    _same_bits(out, expect)
    v = w.copy()
    impl.clip_segments(v, offsets, bounds, out=v)            # in place
    _same_bits(v, expect)


def test_kernels_get_hands_out_the_fused_numba_kernels_on_numpy(monkeypatch):
    x = np.zeros((2, 2), np.float32)
    for name in kernels.FUSED_NAMES:
        assert kernels.get(name, x) is getattr(cpu_fused, name)
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    for name in kernels.FUSED_NAMES:
        assert kernels.get(name, x) is getattr(reference, name)
