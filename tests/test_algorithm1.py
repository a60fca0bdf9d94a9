"""Algorithm 1, line by line: project, forward with P, backward ∂L/∂P, update W, clip."""
import math

import numpy as np
import pytest

import tinyproj.functional as F
from tinyproj import algorithm1, backend, clipping, models, optim, projections
from tinyproj.algorithm1 import Trace, train_step, weight_params


def tiny_model(seed=0, bn=True):
    """A small conv net with batch norm (bc_cifar10 at width 1/32 on 16×16 inputs)."""
    if bn:
        return models.bc_cifar10(width=1 / 32, rng=backend.make_rng(seed), input_size=16)
    return models.lenet5(bn=False, rng=backend.make_rng(seed))


def batch(n=8, shape=(3, 16, 16), seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, 10, n)


def copies(model):
    return {n: p.data.copy() for n, p in model.named_parameters()}


def test_weight_params_are_the_ndim2_parameters():
    model = tiny_model()
    w = weight_params(model)
    assert list(w) == [n for n, p in model.named_parameters() if p.ndim >= 2]
    assert all(not n.startswith("bn") for n in w)
    lenet = tiny_model(bn=False)
    assert "conv1.bias" not in weight_params(lenet) and "conv1.weight" in weight_params(lenet)


def test_model_holds_W_not_P_and_sgd_applies_dL_dP():
    model = tiny_model()
    x, y = batch()
    before = copies(model)
    weights = weight_params(model)
    opt = optim.SGD(model.parameters(), lr=1.0)  # from here W_k are views of its flat buffer
    arrays = {n: p.data for n, p in weights.items()}

    # ∂L/∂P computed separately: put Sign(W) in by hand, forward/backward on a twin model
    twin = tiny_model()
    for n, p in weight_params(twin).items():
        p.data = projections.sign(p.data)
    F.square_hinge_loss(twin(x), y).backward()
    grads = {n: p.grad.copy() for n, p in weight_params(twin).items()}

    loss = train_step(model, x, y, F.square_hinge_loss, opt, "sign", {}, backend.make_rng(0))
    assert isinstance(loss, float) and math.isfinite(loss)
    for n, p in weights.items():
        assert p.data is arrays[n]                       # the very same W arrays are back
        assert len(np.unique(p.data)) > 2                # W, not the two-valued P
        np.testing.assert_allclose(p.data, before[n] - grads[n], rtol=1e-6, atol=1e-7)


def test_clip_bounds_respected_and_clip_after_update():
    model = tiny_model()
    x, y = batch()
    bounds = clipping.clip_bounds(model, 0.5)
    opt = optim.SGD(model.parameters(), lr=10.0)          # big steps, many weights leave the box
    trace = Trace()
    train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds, backend.make_rng(0),
               trace=trace)
    for n, p in weight_params(model).items():
        c = bounds[n]
        assert np.abs(p.data).max() <= c * (1 + 1e-6)
        np.testing.assert_array_equal(p.data, np.clip(trace[n]["W_hat"], -c, c))
        assert trace[n]["c"] == c
    assert any(np.abs(trace[n]["W_hat"]).max() > bounds[n] for n in bounds)  # clip did work


def test_biases_and_bn_are_neither_projected_nor_clipped():
    # batch norm γ/β
    model = tiny_model()
    for n, p in model.named_parameters():
        if p.ndim == 1:                                   # make BN params clearly non-sign-valued
            p.data[...] = backend.asarray(np.linspace(0.5, 3.0, p.size, dtype=np.float32))
    bounds = clipping.clip_bounds(model, 0.5)
    seen = {}

    def loss_fn(scores, y):                               # look at the parameters during forward
        seen.update({n: p.data.copy() for n, p in model.named_parameters() if p.ndim == 1})
        return F.square_hinge_loss(scores, y)

    before = copies(model)
    x, y = batch()
    opt = optim.SGD(model.parameters(), lr=0.0)            # lr 0: only projection/clip could act
    train_step(model, x, y, loss_fn, opt, "sign", bounds, backend.make_rng(0))
    for n, p in model.named_parameters():
        if p.ndim == 1:
            np.testing.assert_array_equal(seen[n], before[n])      # not projected
            np.testing.assert_array_equal(p.data, before[n])       # not clipped (3.0 > c_k)
            assert len(np.unique(p.data)) > 3
    # biases of a model without BN: projection leaves them, a clip bound on them is refused
    lenet = tiny_model(bn=False)
    for n, p in lenet.named_parameters():
        if p.ndim == 1:
            p.data[...] = 5.0
    xl, yl = batch(shape=(1, 28, 28))
    train_step(lenet, xl, yl, F.cross_entropy, optim.SGD(lenet.parameters(), lr=0.0), "sign",
               clipping.clip_bounds(lenet, 0.5), backend.make_rng(0))
    assert all(np.all(p.data == 5.0) for n, p in lenet.named_parameters() if p.ndim == 1)
    with pytest.raises(ValueError, match="biases or batch-norm"):
        train_step(lenet, xl, yl, F.cross_entropy, optim.SGD(lenet.parameters(), lr=0.0),
                   "none", {"conv1.bias": 0.1}, backend.make_rng(0))


def test_sign_forward_uses_two_valued_weights():
    model = tiny_model()
    x, y = batch()
    trace = Trace()
    opt = optim.Adam(model.parameters(), lr=0.003)
    loss = train_step(model, x, y, F.square_hinge_loss, opt, "sign", {}, backend.make_rng(0),
                      trace=trace)
    assert trace.loss == loss and trace.projection == "sign"
    for n, rec in trace.items():
        alpha = float(np.abs(backend.to_numpy(rec["W"])).max())
        assert set(np.unique(backend.to_numpy(rec["P"])).tolist()) <= {-alpha, alpha}
        np.testing.assert_array_equal(rec["P"], projections.sign(rec["W"]))


def test_none_without_clipping_is_plain_backprop_bitwise():
    x, y = batch()
    a, b = tiny_model(), tiny_model()
    opt_a = optim.Adam(a.parameters(), lr=0.003)
    opt_b = optim.Adam(b.parameters(), lr=0.003)
    for _ in range(2):
        loss_a = train_step(a, x, y, F.square_hinge_loss, opt_a, "none", {}, backend.make_rng(0))
        opt_b.zero_grad()
        loss_b = F.square_hinge_loss(b(x), y)
        loss_b.backward()
        opt_b.step()
        assert loss_a == float(loss_b.item())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(pa.data, pb.data), na
    for (na, ba), (nb, bb) in zip(a.named_buffers(), b.named_buffers()):
        assert np.array_equal(ba, bb), na


def test_nan_loss_raises_naming_the_step_and_changes_nothing():
    model = tiny_model()
    x, y = batch()
    params_before = copies(model)
    buffers_before = {n: b.copy() for n, b in model.named_buffers()}
    opt = optim.Adam(model.parameters(), lr=0.003)
    arrays = {n: p.data for n, p in model.named_parameters()}      # views of opt's buffer
    x_bad = x.copy()
    x_bad[0, 0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="step 17") as err:
        train_step(model, x_bad, y, F.square_hinge_loss, opt, "stoch", clipping.clip_bounds(model),
                   backend.make_rng(0), step=17)
    assert "NaN" in str(err.value) or "nan" in str(err.value)
    for n, p in model.named_parameters():
        assert p.data is arrays[n]
        np.testing.assert_array_equal(p.data, params_before[n])
    for n, b in model.named_buffers():
        np.testing.assert_array_equal(b, buffers_before[n])
    assert opt.t == 0 and all(not s for s in opt.state)


def test_stochastic_projection_same_seed_same_result():
    x, y = batch()

    def run(seed):
        model = tiny_model()
        opt = optim.Adam(model.parameters(), lr=0.003)
        bounds = clipping.clip_bounds(model, 0.5)
        rng = backend.make_rng(seed)
        losses = [train_step(model, x, y, F.square_hinge_loss, opt, "stochm:gamma=0.5", bounds,
                             rng, step=t) for t in range(2)]
        return losses, copies(model)

    (l1, w1), (l2, w2), (_, w3) = run(5), run(5), run(6)
    assert l1 == l2
    assert all(np.array_equal(w1[n], w2[n]) for n in w1)
    assert not all(np.array_equal(w1[n], w3[n]) for n in w1)


def test_random_parameter_drawn_once_per_minibatch():
    model = tiny_model()
    x, y = batch()
    trace = Trace()
    train_step(model, x, y, F.square_hinge_loss, optim.SGD(model.parameters(), lr=0.01),
               "power:beta=U(0,2)", {}, backend.make_rng(0), trace=trace)
    beta = projections.parse(trace.projection).params["beta"]
    assert 0.0 <= beta <= 2.0
    for rec in trace.values():                    # every layer used the same beta
        np.testing.assert_allclose(rec["P"], projections.power(rec["W"], beta), rtol=1e-6)


def test_trace_contents_and_layer_selection():
    model = tiny_model()
    x, y = batch()
    bounds = clipping.clip_bounds(model, 0.5)
    trace = Trace()
    train_step(model, x, y, F.square_hinge_loss, optim.Adam(model.parameters(), lr=0.003),
               "round", bounds, backend.make_rng(0), trace=trace, step=3)
    assert list(trace) == list(weight_params(model)) and trace.step == 3
    for n, p in weight_params(model).items():
        rec = trace[n]
        assert set(rec) == {"W", "P", "dL_dP", "W_hat", "W_next", "c"}
        for key in ("W", "P", "dL_dP", "W_hat", "W_next"):
            assert rec[key].shape == p.shape and rec[key].dtype == np.float32
        np.testing.assert_array_equal(rec["W_next"], p.data)
        assert rec["W_next"] is not p.data                       # copies, not the live arrays
    one = Trace(["fc7.weight"])
    train_step(model, x, y, F.square_hinge_loss, optim.SGD(model.parameters(), lr=0.01),
               "sign", bounds, backend.make_rng(0), trace=one)
    assert list(one) == ["fc7.weight"]
    plain = {}
    train_step(model, x, y, F.square_hinge_loss, optim.SGD(model.parameters(), lr=0.01),
               "sign", bounds, backend.make_rng(0), trace=plain)
    assert set(plain) == set(weight_params(model))


def test_project_weights_restores_W_even_on_exception():
    model = tiny_model()
    before = copies(model)
    arrays = {n: p.data for n, p in weight_params(model).items()}
    with algorithm1.project_weights(model, "sign", backend.make_rng(0)) as P:
        for n, p in weight_params(model).items():
            assert p.data is P[n]
            assert len(np.unique(p.data)) <= 2
    with pytest.raises(RuntimeError):
        with algorithm1.projected(model, "addnorm:sigma=0.5", backend.make_rng(0)):
            raise RuntimeError("boom")
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before[n])
        if n in arrays:
            assert p.data is arrays[n]


def test_unsampled_random_projection_object_and_bad_bounds():
    model = tiny_model()
    x, y = batch()
    proj = projections.parse("power:beta=U(0,2)")          # a Projection object works too
    train_step(model, x, y, F.square_hinge_loss, optim.SGD(model.parameters(), lr=0.01), proj,
               {}, backend.make_rng(0))
    with pytest.raises(ValueError, match="does not have"):
        train_step(model, x, y, F.square_hinge_loss, optim.SGD(model.parameters(), lr=0.01),
                   "sign", {"nope.weight": 1.0}, backend.make_rng(0))


def test_loss_goes_down_with_sign_projection():
    x, y = batch(n=20)
    model = tiny_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    bounds = clipping.clip_bounds(model, 0.5)
    rng = backend.make_rng(0)
    losses = [train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds, rng, step=t)
              for t in range(15)]
    assert losses[-1] < losses[0]


@pytest.mark.skipif(algorithm1.kernels.mode() == "reference",
                    reason="TINYPROJ_KERNELS=reference keeps Algorithm 1's loop: no all-layers kernel")
def test_sign_and_clip_over_all_layers_at_once_equal_the_layer_by_layer_loop(monkeypatch):
    """With an optimizer's flat buffer, Sign and the clip run once for every layer (one or two
    launches on a GPU); the result is the loop of Algorithm 1 as written, bit for bit."""
    from tinyproj.optim import flat
    calls = []
    real_get = algorithm1.kernels.get

    def spy(name, like=None):
        calls.append(name)
        return real_get(name, like)

    def run(all_at_once):
        model = tiny_model()
        x, y = batch()
        opt = optim.Adam(model.parameters(), lr=0.01)
        bounds = clipping.clip_bounds(model, 0.5)
        bounds.pop(next(iter(bounds)))                   # one layer left unclipped
        for step in range(3):
            train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds,
                       backend.make_rng(step))
        return [p.data.copy() for p in model.parameters()]

    monkeypatch.setattr(algorithm1.kernels, "get", spy)
    fused = run(True)
    assert calls.count("sign_projection_segments") == 3 and calls.count("clip_segments") == 3
    monkeypatch.setattr(flat, "group_of", lambda params: None)
    calls.clear()
    loop = run(False)
    assert "clip_segments" not in calls
    for a, b in zip(fused, loop):
        np.testing.assert_array_equal(a, b)
