"""optim: SGD and Adam against independent references and torch.optim, in-place float32
updates, exact resume from state_dict, schedules, and a tiny model that learns."""
import math

import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
import tinyproj.nn as nn
from tinyproj import backend, optim

SHAPES = [(4, 3), (5,), (2, 3, 3, 3)]


def rel_err(a, b):
    a, b = (np.asarray(backend.to_numpy(v), dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def make_problem(seed=0, steps=5):
    """Random float32 initial params and a gradient sequence for each step."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * 10 ** rng.uniform(-3, 1)).astype(np.float32)
              for s in SHAPES] for _ in range(steps)]
    return init, grads


def run_ours(make_opt, init, grads):
    params = [nn.Parameter(w.copy()) for w in init]
    opt = make_opt(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.copy()
        opt.step()
    return params, opt


def run_torch(torch, make_opt, init, grads):
    params = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    opt = make_opt(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


def adam_reference(init, grads, lr, b1, b2, eps):
    """Kingma & Ba, Algorithm 1, in float64."""
    out = []
    for i, w0 in enumerate(init):
        w = w0.astype(np.float64)
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        for t, gs in enumerate(grads, start=1):
            g = gs[i].astype(np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mhat = m / (1 - b1 ** t)
            vhat = v / (1 - b2 ** t)
            w = w - lr * mhat / (np.sqrt(vhat) + eps)
        out.append(w)
    return out


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("lr, betas, eps", [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.8, 0.99), 1e-6)])
def test_adam_matches_numpy_reference(lr, betas, eps):
    init, grads = make_problem()
    params, _ = run_ours(lambda ps: optim.Adam(ps, lr=lr, betas=betas, eps=eps), init, grads)
    expected = adam_reference(init, grads, lr, *betas, eps)
    for p, w in zip(params, expected):
        assert p.data.dtype == np.float32
        assert rel_err(p.data, w) <= 1e-4
        # the updates themselves agree too (up to the float32 rounding of w, ~1e-7·|w|)
        assert rel_err(backend.to_numpy(p.data) - init[params.index(p)], w - init[params.index(p)]) <= 5e-4


@pytest.mark.parametrize("lr, betas, eps", [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.8, 0.99), 1e-6)])
def test_adam_matches_torch(lr, betas, eps):
    torch = pytest.importorskip("torch")
    init, grads = make_problem(seed=1)
    params, _ = run_ours(lambda ps: optim.Adam(ps, lr=lr, betas=betas, eps=eps), init, grads)
    theirs = run_torch(torch, lambda ps: torch.optim.Adam(ps, lr=lr, betas=betas, eps=eps),
                       init, grads)
    for p, w, w0 in zip(params, theirs, init):
        assert rel_err(p.data, w) <= 1e-4
        assert rel_err(backend.to_numpy(p.data) - w0, w - w0) <= 5e-4


def test_adam_first_step_is_lr_times_sign():
    p = nn.Parameter(np.zeros(4, np.float32))
    p.grad = np.array([3.0, -0.01, 100.0, -2.0], np.float32)
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, -0.01 * np.sign(p.grad), rtol=1e-5)


# ---------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("momentum, weight_decay, nesterov", [
    (0.0, 0.0, False), (0.9, 0.0, False), (0.9, 1e-2, False), (0.5, 0.0, True)])
def test_sgd_matches_torch(momentum, weight_decay, nesterov):
    torch = pytest.importorskip("torch")
    init, grads = make_problem(seed=2)
    kw = dict(lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    params, _ = run_ours(lambda ps: optim.SGD(ps, **kw), init, grads)
    theirs = run_torch(torch, lambda ps: torch.optim.SGD(ps, **kw), init, grads)
    for p, w, w0 in zip(params, theirs, init):
        assert p.data.dtype == np.float32
        assert rel_err(p.data, w) <= 1e-5
        assert rel_err(backend.to_numpy(p.data) - w0, w - w0) <= 1e-4


def test_plain_sgd_is_w_minus_lr_g():
    init, grads = make_problem(steps=1)
    params, _ = run_ours(lambda ps: optim.SGD(ps, lr=0.5), init, grads)
    for p, w0, g in zip(params, init, grads[0]):
        np.testing.assert_array_equal(p.data, w0 - np.float32(0.5) * g)


def test_sgd_momentum_reference():
    init, grads = make_problem(steps=4)
    params, _ = run_ours(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), init, grads)
    for i, p in enumerate(params):
        w, v = init[i].astype(np.float64), 0.0
        for gs in grads:
            v = 0.9 * v + gs[i]
            w = w - 0.1 * v
        assert rel_err(p.data, w) <= 1e-5


# ---------------------------------------------------------------------------
# base-class behaviour
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)])
def test_updates_are_in_place_and_skip_missing_grads(make):
    a = nn.Parameter(np.ones(3, np.float32))
    b = nn.Parameter(np.ones(2, np.float32))
    opt = make([a, b])
    arr_a, arr_b = a.data, b.data          # views into the optimizer's flat buffer from here on
    assert np.shares_memory(arr_a, opt.groups[0].data)
    a.grad = np.ones(3, np.float32)
    opt.step()
    assert a.data is arr_a and b.data is arr_b
    assert np.all(a.data < 1) and np.all(b.data == 1)        # b had no gradient
    assert opt.state[1] == {}
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()                                                # nothing to do
    assert opt.t == 2


def test_lr_is_settable_and_checked():
    opt = optim.SGD([nn.Parameter(np.zeros(2, np.float32))], lr=0.1)
    opt.lr = 0.01
    assert opt.lr == 0.01
    with pytest.raises(ValueError, match="learning rate"):
        opt.lr = -1.0
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([nn.Parameter(np.zeros(2, np.float32))], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="model.parameters"):
        optim.SGD([np.zeros(3)], lr=0.1)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01)])
def test_state_dict_round_trip_continues_bitwise(make):
    init, grads = make_problem(seed=3, steps=6)
    params, opt = run_ours(make, init, grads[:3])
    saved_weights = [p.data.copy() for p in params]
    saved = opt.state_dict()
    for gs in grads[3:]:                                      # the uninterrupted run
        for p, g in zip(params, gs):
            p.grad = g.copy()
        opt.step()
    # the saved state is a copy: continuing did not change it
    assert saved["t"] == 3

    resumed = [nn.Parameter(w.copy()) for w in saved_weights]
    opt2 = make(resumed)
    opt2.load_state_dict(saved)
    assert opt2.t == 3
    for gs in grads[3:]:
        for p, g in zip(resumed, gs):
            p.grad = g.copy()
        opt2.step()
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.data, b.data)
    assert opt2.t == opt.t == 6


def test_load_state_dict_restores_lr_and_checks_shapes():
    p = nn.Parameter(np.zeros(3, np.float32))
    p.grad = np.ones(3, np.float32)
    opt = optim.Adam([p], lr=0.02)
    opt.step()
    other = optim.Adam([nn.Parameter(np.zeros(3, np.float32))], lr=0.5)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.02 and other.state[0]["step"] == 1
    wrong = optim.Adam([nn.Parameter(np.zeros(4, np.float32))])
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        wrong.load_state_dict(opt.state_dict())


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------
def test_exponential_decay_hits_both_ends():
    s = optim.ExponentialDecay(0.003, 2e-6, 500)
    assert s(0) == pytest.approx(0.003, rel=1e-12)
    assert s(500) == pytest.approx(2e-6, rel=1e-12)
    assert s(250) == pytest.approx(math.sqrt(0.003 * 2e-6), rel=1e-12)
    assert s(1) / s(0) == pytest.approx(s(101) / s(100), rel=1e-12)  # constant ratio per epoch
    with pytest.raises(ValueError):
        optim.ExponentialDecay(0.003, 0.0, 500)
    with pytest.raises(ValueError):
        optim.ExponentialDecay(0.003, 2e-6, 0)


def test_cosine_endpoints_and_midpoint():
    s = optim.Cosine(1e-3, 1000, lr_min=1e-5)
    assert s(0) == pytest.approx(1e-3)
    assert s(500) == pytest.approx((1e-3 + 1e-5) / 2)
    assert s(1000) == pytest.approx(1e-5)
    assert s(5000) == pytest.approx(1e-5)
    assert optim.Cosine(0.1, 10)(10) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError):
        optim.Cosine(1e-3, 10, lr_min=1.0)


def test_step_drops_at_milestones():
    s = optim.StepDrops(0.1, [100_000, 125_000], 0.1)
    assert s(0) == 0.1 and s(99_999) == 0.1
    assert s(100_000) == pytest.approx(0.01) and s(124_999) == pytest.approx(0.01)
    assert s(125_000) == pytest.approx(0.001) and s(150_000) == pytest.approx(0.001)
    assert optim.StepDrops(1.0, [2, 4], [0.5, 0.1])(4) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="increasing"):
        optim.StepDrops(0.1, [125_000, 100_000], 0.1)
    with pytest.raises(ValueError, match="factor"):
        optim.StepDrops(0.1, [10], -0.1)


def test_constant_and_apply():
    opt = optim.Adam([nn.Parameter(np.zeros(2, np.float32))], lr=1.0)
    assert optim.Constant(0.25).apply(opt, 7) == 0.25 and opt.lr == 0.25
    optim.ExponentialDecay(0.003, 2e-6, 500).apply(opt, 500)
    assert opt.lr == pytest.approx(2e-6)
    with pytest.raises(ValueError, match="t must be >= 0"):
        optim.Cosine(0.1, 10)(-1)


# ---------------------------------------------------------------------------
# a tiny model learns
# ---------------------------------------------------------------------------
def test_tiny_mlp_with_adam_fits_a_separable_problem():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 2)) * 4
    y = np.repeat(np.arange(3), 40)
    x = (centers[y] + rng.standard_normal((120, 2))).astype(np.float32)
    # make sure the problem is separable by construction: drop points closer to another center
    d = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    keep = d.argmin(1) == y
    x, y = x[keep], y[keep]
    model = nn.Sequential(nn.Linear(2, 16, bias=True, rng=backend.make_rng(0)), nn.ReLU(),
                          nn.Linear(16, 3, bias=True, rng=backend.make_rng(1)))
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with tp.no_grad():
        accuracy = float((backend.to_numpy(model(x).data).argmax(1) == backend.to_numpy(y)).mean())
    assert accuracy == 1.0, (accuracy, loss.item())


# ---------------------------------------------------------------------------
# flat buffers: one launch for every parameter (optim/flat.py)
# ---------------------------------------------------------------------------
def _params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), (2, 3, 2, 2), (1,), (6, 2)]
    return [nn.Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]


def _grads(params, step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(p.shape).astype(np.float32) for p in params]


class _PerParameter:
    """Forces the parameter-by-parameter path (the readable one)."""

    def update_flat(self, group, states):
        return False


@pytest.mark.parametrize("cls,kw", [(optim.Adam, dict(lr=0.01)),
                                    (optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
                                    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    (optim.SGD, dict(lr=0.1))])
def test_the_flat_update_is_the_per_parameter_update_bit_for_bit(cls, kw):
    per_param_cls = type("PerParam" + cls.__name__, (_PerParameter, cls), {})
    results = []
    for make in (cls, per_param_cls):
        params = _params()
        opt = make(params, **kw)
        for step in range(4):
            for p, g in zip(params, _grads(params, step)):
                p.grad = None if (step == 2 and p is params[1]) else g
            opt.step()
        results.append([backend.to_numpy(p.data) for p in params])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_the_flat_path_makes_one_launch_for_all_parameters(monkeypatch):
    from tinyproj import kernels
    calls = []
    real = kernels.get

    def spy(name, like=None):
        kernel = real(name, like)
        if name in ("adam_update", "adam_update_scalars"):   # the latter on a device
            def counted(w, *args):
                calls.append(w.size)
                return kernel(w, *args)
            return counted
        return kernel
    monkeypatch.setattr(kernels, "get", spy)
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    for p, g in zip(params, _grads(params, 0)):
        p.grad = g
    opt.step()
    assert calls == [sum(p.size for p in params)]
    # a parameter without a gradient: per parameter, the others only
    calls.clear()
    params[0].grad = None
    opt.step()
    assert sorted(calls) == sorted(p.size for p in params[1:])


@pytest.mark.numpy_only("reads the flat buffer's memory with np.shares_memory")
def test_weights_first_in_the_flat_buffer_and_a_replaced_array_is_taken_back_in():
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    group = opt.groups[0]
    assert [p.ndim for p in group.weight_params()] == [2, 4, 2]
    np.testing.assert_array_equal(group.weights()[:12], params[0].data.reshape(-1))
    params[2].data = np.full(params[2].shape, 7.0, np.float32)      # e.g. Module.to
    for p, g in zip(params, _grads(params, 0)):
        p.grad = g
    opt.step()
    assert np.shares_memory(params[2].data, group.data)
    assert np.all(np.abs(params[2].data - 7.0) < 0.02)               # updated from 7


def test_a_flat_optimizer_saves_and_resumes_bit_for_bit():
    def run(stop_at=None):
        params = _params()
        opt = optim.Adam(params, lr=0.01)
        for step in range(5):
            if step == stop_at:
                saved_w = [backend.to_numpy(p.data) for p in params]
                sd = opt.state_dict()
                params = _params()
                for p, w in zip(params, saved_w):
                    p.data[...] = backend.to_device(w, "gpu" if backend.is_gpu_array(p.data)
                                                    else "cpu")
                opt = optim.Adam(params, lr=0.5)
                opt.load_state_dict(sd)
                assert all(s["m"].shape == p.shape for s, p in zip(sd["state"], params))
            for p, g in zip(params, _grads(params, step)):
                p.grad = g
            opt.step()
        return [backend.to_numpy(p.data) for p in params], opt.state_dict()
    (w0, sd0), (w1, sd1) = run(), run(stop_at=3)
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    for s0, s1 in zip(sd0["state"], sd1["state"]):
        np.testing.assert_array_equal(backend.to_numpy(s0["m"]), backend.to_numpy(s1["m"]))
        assert s0["step"] == s1["step"] == 5


def test_a_model_moved_after_the_optimizer_was_built_is_an_error_not_a_silent_move_back():
    from tinyproj import standin
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    other = "cpu" if backend.is_gpu_array(params[0].data) else "gpu"
    if other == "gpu" and backend.name() == "numpy":
        params[0].data = standin.asarray(backend.to_numpy(params[0].data))
    else:
        params[0].data = backend.to_device(params[0].data, other)
    for p, g in zip(params, _grads(params, 0)):
        p.grad = g
    with pytest.raises(ValueError, match="build the optimizer after"):
        opt.step()
