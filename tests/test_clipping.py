"""Clip bounds c_k, the in-place clip step, its proximal reading (section 5), schedules."""
import math

import numpy as np
import pytest

from tinyproj import backend, clipping


class FakeParam:
    def __init__(self, data):
        self.data = data


class FakeModel:
    """The duck-typed model interface: named_parameters() -> (name, param with .data)."""

    def __init__(self, arrays):
        self._params = [(name, FakeParam(a)) for name, a in arrays.items()]

    def named_parameters(self):
        return iter(self._params)


def fake_model(to=np.asarray, scale=1.0):
    rng = np.random.default_rng(0)
    return FakeModel({
        "conv1.weight": to((rng.normal(0, scale, (128, 3, 3, 3))).astype(np.float32)),
        "bn1.gamma": to((rng.normal(0, scale, 128)).astype(np.float32)),
        "fc.weight": to((rng.normal(0, scale, (10, 1024))).astype(np.float32)),
        "fc.bias": to((rng.normal(0, scale, 10)).astype(np.float32)),
    })


# ---------------------------------------------------------------------------
# c_k
# ---------------------------------------------------------------------------
def test_glorot_std():
    assert clipping.glorot_std((10, 1024)) == pytest.approx(math.sqrt(2 / (1024 + 10)))
    assert clipping.glorot_std((128, 3, 3, 3)) == pytest.approx(math.sqrt(2 / (27 + 1152)))
    # it is the std of U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    a = math.sqrt(6 / (27 + 1152))
    draws = np.random.default_rng(0).uniform(-a, a, 400_000)
    assert draws.std() == pytest.approx(clipping.glorot_std((128, 3, 3, 3)), rel=5e-3)
    with pytest.raises(ValueError, match="at least 2"):
        clipping.glorot_std((10,))


def test_clip_bounds_values_and_no_1d_params():
    bounds = clipping.clip_bounds(fake_model(), f=0.5)
    assert list(bounds) == ["conv1.weight", "fc.weight"]
    assert bounds["conv1.weight"] == pytest.approx(0.5 * math.sqrt(2 / (3 * 9 + 128 * 9)))
    assert bounds["fc.weight"] == pytest.approx(0.5 * math.sqrt(2 / (1024 + 10)))
    assert clipping.clip_bounds(fake_model(), f=2)["fc.weight"] == pytest.approx(
        4 * bounds["fc.weight"])
    assert clipping.clip_bounds(fake_model())["fc.weight"] == bounds["fc.weight"]   # f = 0.5


def test_clip_bounds_follow_the_initialisation_each_layer_drew_with():
    # c_k = f · std of the initial weights: PyTorch's default init draws U(±1/√fan_in), std
    # 1/√(3·fan_in), 2.4x narrower than Glorot for fc1 of mlp_tfc (784 → 64)
    from tinyproj import nn
    model = nn.Sequential(nn.Linear(784, 64, init="torch"), nn.ReLU(),
                          nn.Conv2d(4, 8, 3, init="torch"), nn.Linear(64, 10))
    bounds = clipping.clip_bounds(model, f=0.5)
    assert bounds["0.weight"] == pytest.approx(0.5 / math.sqrt(3 * 784))
    assert bounds["2.weight"] == pytest.approx(0.5 / math.sqrt(3 * 4 * 9))
    assert bounds["3.weight"] == pytest.approx(0.5 * math.sqrt(2 / (64 + 10)))   # Glorot
    # the recorded std is the one the weights were drawn with (400 x 784 draws)
    wide = nn.Linear(784, 400, init="torch", rng=np.random.default_rng(0))
    drawn = float(np.std(backend.to_numpy(wide.weight.data)))
    assert drawn == pytest.approx(clipping.clip_bounds(wide, f=1.0)["weight"], rel=5e-3)
    # loading other weights keeps the layer's rule (the arrays are copied in place)
    other = nn.Linear(784, 400, init="torch")
    other.load_state_dict(wide.state_dict())
    assert clipping.clip_bounds(other, 0.5) == clipping.clip_bounds(wide, 0.5)


@pytest.mark.parametrize("f", ["NC", "nc", None, math.inf, "inf"])
def test_no_clipping_gives_empty_bounds(f):
    assert clipping.clip_bounds(fake_model(), f=f) == {}


@pytest.mark.parametrize("f", [0, -0.5, "abc", math.nan, -math.inf])
def test_bad_clip_factor_is_explained(f):
    with pytest.raises(ValueError, match="NC"):
        clipping.clip_bounds(fake_model(), f=f)


# ---------------------------------------------------------------------------
# The clip step, in place.
# ---------------------------------------------------------------------------
def test_clip_weights_in_place_changes_only_out_of_bound_entries(on):
    model = fake_model(on, scale=0.05)
    before = {n: backend.to_numpy(p.data).copy() for n, p in model.named_parameters()}
    arrays = {n: p.data for n, p in model.named_parameters()}
    bounds = clipping.clip_bounds(model, f=0.5)
    clipping.clip_weights(model, bounds)
    for name, param in model.named_parameters():
        assert param.data is arrays[name]                    # same array, changed in place
        assert param.data.dtype == np.float32
        new, old = backend.to_numpy(param.data), before[name]
        if name not in bounds:                               # bias, batch norm: untouched
            np.testing.assert_array_equal(new, old)
            continue
        c = np.float32(bounds[name])
        inside = np.abs(old) <= c
        assert 0 < inside.sum() < old.size                   # the test clips something
        np.testing.assert_array_equal(new[inside], old[inside])
        np.testing.assert_array_equal(new[~inside], np.sign(old[~inside]) * c)
        assert np.abs(new).max() <= c


def test_clip_weights_with_empty_or_infinite_bounds_changes_nothing():
    model = fake_model(scale=10.0)
    before = [p.data.copy() for _, p in model.named_parameters()]
    clipping.clip_weights(model, {})
    clipping.clip_weights(model, {"fc.weight": math.inf})
    for (_, p), old in zip(model.named_parameters(), before):
        np.testing.assert_array_equal(p.data, old)


def test_clip_weights_rejects_bounds_of_another_model():
    with pytest.raises(ValueError, match="does not have"):
        clipping.clip_weights(fake_model(), {"conv9.weight": 0.1})


def test_clip_arrays_pairs():
    a = np.array([-3.0, -0.5, 0.2, 4.0], dtype=np.float32)
    b = np.array([5.0, -5.0])
    clipping.clip_([(a, 1.0), (b, None)])
    np.testing.assert_array_equal(a, np.array([-1.0, -0.5, 0.2, 1.0], dtype=np.float32))
    np.testing.assert_array_equal(b, [5.0, -5.0])
    with pytest.raises(ValueError):
        clipping.clip_([(a, -1.0)])


# ---------------------------------------------------------------------------
# Section 5: clipping == prox of the l-inf indicator, for every step size lambda.
# ---------------------------------------------------------------------------
def numerical_prox(v, c, lam):
    """argmin_x G(x) + (x - v)^2 / (2 lam) per element, by brute force.

    A dense grid over [-3c, 3c] (where G is +inf outside the box, so the grid argmin
    lands inside), then golden-section refinement on the bracket around the best point.
    """
    def objective(x, vi):
        return clipping.indicator_linf(x, c) + (x - vi) ** 2 / (2 * lam)

    grid = np.linspace(-3 * c, 3 * c, 6001)
    step = grid[1] - grid[0]
    result = np.empty_like(v)
    golden = (math.sqrt(5) - 1) / 2
    for i, vi in enumerate(v):
        k = int(np.argmin(objective(grid, vi)))
        lo, hi = max(grid[k] - step, -c), min(grid[k] + step, c)
        for _ in range(80):                       # golden section on a convex function
            x1, x2 = hi - golden * (hi - lo), lo + golden * (hi - lo)
            if objective(np.array(x1), vi) <= objective(np.array(x2), vi):
                hi = x2
            else:
                lo = x1
        result[i] = (lo + hi) / 2
    return result


@pytest.mark.parametrize("lam", [1e-3, 0.1, 1.0, 100.0])
@pytest.mark.parametrize("c", [0.05, 1.0])
def test_prox_linf_equals_numerical_argmin(lam, c):
    v = np.concatenate([np.random.default_rng(1).normal(0, 2 * c, 25), [-c, c, 0.0, 3 * c, -2.9 * c]])
    expected = numerical_prox(v, c, lam)
    np.testing.assert_allclose(clipping.prox_linf(v, c), expected, atol=1e-6 * c)
    np.testing.assert_array_equal(clipping.prox_linf(v, c), np.clip(v, -c, c))


def test_prox_linf_properties(on):
    v = on(np.array([-2.0, -1.0, 0.3, 1.0, 7.0], dtype=np.float32))
    out = clipping.prox_linf(v, 1.0)
    assert out.dtype == np.float32 and out is not v
    np.testing.assert_array_equal(backend.to_numpy(out),
                                  np.array([-1.0, -1.0, 0.3, 1.0, 1.0], dtype=np.float32))
    np.testing.assert_array_equal(backend.to_numpy(clipping.prox_linf(v, math.inf)),
                                  backend.to_numpy(v))
    assert np.all(backend.to_numpy(clipping.indicator_linf(out, 1.0)) == 0)


def test_clip_step_is_a_proximal_gradient_step():
    """SGD update then clip == prox_G(w - lam * grad)."""
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.05, (10, 1024)).astype(np.float32)
    grad = rng.normal(0, 1, w.shape).astype(np.float32)
    lam = 0.01
    model = FakeModel({"fc.weight": w.copy()})
    bounds = clipping.clip_bounds(model, 0.5)
    param = dict(model.named_parameters())["fc.weight"]
    param.data -= lam * grad                                   # Algorithm 1, line 9 (SGD)
    clipping.clip_weights(model, bounds)                       # line 12
    np.testing.assert_array_equal(param.data,
                                  clipping.prox_linf(w - lam * grad, bounds["fc.weight"]))


# ---------------------------------------------------------------------------
# Schedules.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("t, f", [(0, 4.5), (4999, 4.5), (5000, 4.5 * 1.4), (9999, 4.5 * 1.4),
                                  (10000, 4.5 * 1.4 ** 2), (15000, 4.5 * 1.4 ** 3),
                                  (20000, 4.5 * 1.4 ** 3), (150000, 4.5 * 1.4 ** 3)])
def test_alexnet_schedule(t, f):
    schedule = clipping.ClipSchedule.alexnet()
    assert schedule.f_at(t) == pytest.approx(f)
    model = fake_model()
    bounds = schedule.bounds_at(model, t)
    assert bounds == pytest.approx(clipping.clip_bounds(model, f))
    assert bounds["fc.weight"] == pytest.approx(f * clipping.glorot_std((10, 1024)))


def test_constant_and_nc_schedules():
    assert clipping.ClipSchedule.constant(0.5).f_at(123456) == 0.5
    nc = clipping.ClipSchedule.constant("NC")
    assert nc.f_at(0) == math.inf and nc.bounds_at(fake_model(), 10) == {}
    s = clipping.ClipSchedule(4.5, 1.4, [15000, 5000, 10000])   # milestones sorted
    assert clipping.ClipSchedule.from_dict(s.as_dict()).f_at(12000) == pytest.approx(4.5 * 1.96)
    assert clipping.ClipSchedule.from_dict(nc.as_dict()).no_clip
