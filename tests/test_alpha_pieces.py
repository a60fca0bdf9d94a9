"""α per tensor reduced in pieces (kernels/pieces.py's tables, the kernels' ``pieces``).

On a GPU one thread block per tensor reduced α = max|w| over all of it, so AlexNet's
37.7-million-weight layer was read by a single block (7.4 ms of a 181 ms step on an H200).
With ``pieces`` the reduction runs twice: one block per piece (≤ 65,536 weights), then one per
tensor over its pieces' maxima. A max is exact in any order, so the projections must be the
same bit for bit with and without pieces — checked here for the host twins (the stand-in's
kernels), for kernels/gpu.py's launches through a fake CuPy, for Algorithm 1's step, and on
a GPU (``-m gpu``).
"""
import numpy as np
import pytest

from tinyproj.kernels import pieces
from tinyproj.optim import flat

# the fixtures host and fake_gpu come from the host-build tests (pytest finds them by name)
from test_kernels_gpu_host import assert_same_bits, fake_gpu, flat_layers, host  # noqa: F401,F811,E402

SIZES = [[27 * 16, 0, 16, 9 * 16 * 32, 1, 10 * 32 * 4], [5], [0, 3, 0], [1000, 7, 130]]


@pytest.mark.parametrize("piece", [1, 7, 64, 10**6])
def test_the_tables_cut_each_tensor_into_pieces_of_at_most_piece(piece):
    """The offsets-table form of kernels/pieces.py's cut (its runs form is tested in
    tests/test_kernels_fused.py): the pieces tile the buffer in order, tensor s is pieces
    firsts[s] .. firsts[s+1] − 1, all of ``piece`` elements but its last, none when empty."""
    offsets = np.array([0, 0, 5, 105, 106, 1106, 1106], dtype=np.int64)   # empty tensors too
    fine, firsts = pieces.tables(offsets, piece)
    assert fine[0] == 0 and fine[-1] == offsets[-1] and (np.diff(fine) > 0).all()
    assert firsts[0] == 0 and firsts[-1] == fine.size - 1 and firsts.size == offsets.size
    for s in range(offsets.size - 1):
        n = offsets[s + 1] - offsets[s]
        bounds = fine[firsts[s]:firsts[s + 1] + 1]
        assert len(bounds) - 1 == -(-n // piece)
        if n:
            assert bounds[0] == offsets[s] and bounds[-1] == offsets[s + 1]   # the tensor, whole
            assert (np.diff(bounds)[:-1] == piece).all() and np.diff(bounds)[-1] <= piece


def _with_nan(flat_w, offsets):
    w = flat_w.copy()
    if w.size > 20:
        w[w.size // 2] = np.nan                        # NaN must reach α through both passes
    return w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", SIZES)
def test_host_twins_give_the_same_projections_with_pieces(host, sizes, dtype):
    w, offsets, _ = flat_layers(sizes, dtype)
    w = _with_nan(w, offsets)
    cut = pieces.tables(offsets, 7)
    key = np.array([5, 2], np.int64)
    pairs = [(host.get("sign_projection_segments"), (w, offsets)),
             (host.get("stoch_projection_segments"), (w, offsets, key)),
             (host.get("stochm_projection_segments"), (w, offsets, key, 0.5))]
    for kernel, args in pairs:
        assert_same_bits(kernel(*args, pieces=cut), kernel(*args))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", SIZES)
def test_gpu_py_launches_give_the_same_projections_with_pieces(fake_gpu, sizes, dtype):
    w, offsets, _ = flat_layers(sizes, dtype, seed=3)
    w = _with_nan(w, offsets)
    cut = pieces.tables(offsets, 5)
    key = np.array([7, 1], np.int64)
    assert_same_bits(fake_gpu.sign_projection_segments(w, offsets, pieces=cut),
                     fake_gpu.sign_projection_segments(w, offsets))
    assert_same_bits(fake_gpu.stoch_projection_segments(w, offsets, key, pieces=cut),
                     fake_gpu.stoch_projection_segments(w, offsets, key))
    assert_same_bits(fake_gpu.stochm_projection_segments(w, offsets, key, 0.25, pieces=cut),
                     fake_gpu.stochm_projection_segments(w, offsets, key, 0.25))


def test_pieces_for_other_tensors_are_refused(host, fake_gpu):
    w, offsets, _ = flat_layers(SIZES[0], np.float32)
    other = pieces.tables([0, 100, offsets[-1]], 7)        # two tensors, not six
    with pytest.raises(ValueError, match="pieces"):
        host.get("sign_projection_segments")(w, offsets, pieces=other)
    with pytest.raises(ValueError, match="pieces"):
        fake_gpu.sign_projection_segments(w, offsets, pieces=other)


def test_a_flat_group_makes_pieces_only_for_a_large_tensor(monkeypatch):
    import tinyproj as tp
    from tinyproj import backend
    lin = tp.nn.Linear(40, 30, rng=backend.make_rng(0))        # 1,200 weights, 30 biases
    assert flat.FlatParams(list(lin.parameters())).weight_pieces() is None
    monkeypatch.setattr(flat, "SPLIT_ABOVE", 1000)
    monkeypatch.setattr(flat, "PIECE", 256)
    fine, firsts = flat.FlatParams(list(lin.parameters())).weight_pieces()
    np.testing.assert_array_equal(fine, [0, 256, 512, 768, 1024, 1200])  # weights only
    np.testing.assert_array_equal(firsts, [0, 5])


@pytest.mark.parametrize("device", ["numpy", "standin"])
@pytest.mark.parametrize("projection", ["sign", "stoch", "stochm"])
def test_algorithm1_steps_are_the_same_with_pieces(monkeypatch, device, projection):
    """Three Algorithm-1 steps of a small network with every weight tensor split into
    pieces of 64 give the weights of steps without pieces, bit for bit (on the stand-in
    through the host twins' two passes; NumPy's kernels take the pieces and need none)."""
    from tinyproj import algorithm1, backend, clipping, models, optim, projections
    import tinyproj.functional as F
    previous = backend.name()
    backend.use(device)

    def three_steps():
        rng = backend.make_rng(0)
        model = models.mlp_tfc(in_features=48, hidden=40, num_classes=10, rng=rng)
        opt = optim.Adam(model.parameters(), lr=0.01)
        bounds = clipping.clip_bounds(model, 0.5)
        draws = np.random.default_rng(1)
        spec = projections.parse("stochm:gamma=0.5" if projection == "stochm" else projection)
        for _ in range(3):
            x = backend.asarray(draws.standard_normal((8, 48)).astype(np.float32))
            y = backend.asarray(draws.integers(0, 10, 8))
            algorithm1.train_step(model, x, y, F.cross_entropy, opt, spec, bounds, rng,
                                  sync=False)
        return [backend.to_numpy(p.data) for p in model.parameters()]

    given = []                                 # the pieces each projection kernel was given
    real_get = algorithm1.kernels.get

    def spying_get(name, like=None):
        kernel = real_get(name, like)
        if not name.endswith("_projection_segments"):
            return kernel
        return lambda *args, **kwargs: given.append(kwargs.get("pieces")) or kernel(*args,
                                                                                   **kwargs)
    monkeypatch.setattr(algorithm1.kernels, "get", spying_get)
    try:
        plain = three_steps()
        monkeypatch.setattr(flat, "SPLIT_ABOVE", 100)
        monkeypatch.setattr(flat, "PIECE", 64)
        first = len(given)
        pieced = three_steps()
    finally:
        backend.use(previous)
    if device == "numpy" and projection != "sign":         # NumPy: layer by layer, no kernel
        assert given == []
    else:
        assert len(given) == 2 * first == 6
        assert all(p is None for p in given[:first])       # no tensor above SPLIT_ABOVE
        for fine, firsts in given[first:]:                 # this time in pieces of 64
            assert int(backend.to_numpy(firsts)[-1]) == len(fine) - 1 > len(firsts) - 1
            assert np.diff(backend.to_numpy(fine)).max() <= 64
    for a, b in zip(plain, pieced):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_projections_are_the_same_with_pieces(on_cupy, dtype):
    import cupy
    w, offsets, _ = flat_layers(SIZES[0] + [300_000], dtype, seed=4)
    w = _with_nan(w, offsets)
    fine, firsts = pieces.tables(offsets, 1000)
    dw, doff = cupy.asarray(w), cupy.asarray(offsets)
    cut = (cupy.asarray(fine), cupy.asarray(firsts))
    key = cupy.asarray(np.array([3, 9], np.int64))
    from tinyproj.kernels import gpu
    for name, args in (("sign_projection_segments", (dw, doff)),
                       ("stoch_projection_segments", (dw, doff, key)),
                       ("stochm_projection_segments", (dw, doff, key, 0.5))):
        kernel = getattr(gpu, name)
        assert_same_bits(kernel(*args, pieces=cut).get(), kernel(*args).get())
