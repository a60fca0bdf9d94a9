"""nn: registration and names, state_dict, modes, initializers, layer errors, batch norm,
and forward/backward against torch.nn with the same weights."""
import math

import numpy as np
import pytest

import tinyproj as tp
import tinyproj.nn as nn
from tinyproj import backend, optim


def rel_err(a, b):
    a, b = (np.asarray(backend.to_numpy(v), dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _on_device(values):
    """Host values as a float32 array of the backend in use (CuPy refuses to fill a device
    array from a host list or array)."""
    return backend.asarray(np.asarray(values, dtype=np.float32))


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Net(nn.Module):
    """features (conv, BN, ReLU, pool) then classifier (flatten, linear, ReLU, linear)."""

    def __init__(self, rng=None):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng),
                                        nn.ReLU(), nn.Linear(10, 3, bias=True, rng=rng))

    def forward(self, x):
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------
# registration, names, traversal
# ---------------------------------------------------------------------------
def test_registration_order_and_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.1.weight", "features.1.bias",
                     "classifier.1.weight", "classifier.3.weight", "classifier.3.bias"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.classifier[3].weight.name == "classifier.3.weight"     # params know their name
    assert [n for n, _ in net.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["features", "classifier"]
    assert len(net.modules()) == 1 + 1 + 4 + 1 + 4
    assert net.qualified_name == "Net"
    assert net.features[1].qualified_name == "features.1"
    assert net.num_parameters() == 4 * 9 + 4 + 4 + 64 * 10 + 10 * 3 + 3
    assert net.classifier[1].bias is None


def test_names_follow_when_a_block_is_put_into_a_parent():
    block = nn.Sequential(nn.Linear(3, 4))
    assert block[0].qualified_name == "0" and block[0].weight.name == "0.weight"

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = block

    Outer()
    assert block[0].qualified_name == "body.0"
    assert block[0].weight.name == "body.0.weight"


def test_sequential_indexing_len_iteration_and_slices():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
    assert layers[0].qualified_name == "0"                     # slicing does not rename
    x = randn(5, 2)
    np.testing.assert_array_equal(seq[2](head(x)).data, seq(x).data)
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    with pytest.raises(TypeError, match=r"ReLU\(\.\.\.\) with parentheses"):
        nn.Sequential(nn.Linear(2, 2), nn.ReLU)


def test_repr_is_a_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (features): Sequential(\n    (0): Conv2d(1, 4, kernel_size=(3, 3)")
    assert "(3): Linear(in_features=10, out_features=3, bias=True)" in text
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True)" in text


def test_forgetting_super_init_and_assigning_arrays_to_parameters_are_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(3, np.float32))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="in place"):
        lin.weight = np.zeros((2, 2), np.float32)


def test_train_eval_propagate_to_every_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.classifier.eval()
    assert net.training and net.features[1].training and not net.classifier[1].training


def test_zero_grad_clears_every_gradient():
    net = Net()
    net(randn(4, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------
def test_state_dict_holds_copies_of_params_and_buffers():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["features.0.weight", "features.1.weight", "features.1.bias",
                        "features.1.running_mean", "features.1.running_var",
                        "features.1.num_batches_tracked", "classifier.1.weight",
                        "classifier.3.weight", "classifier.3.bias"]
    before = sd["features.0.weight"].copy()
    net.features[0].weight.data += 1.0
    np.testing.assert_array_equal(sd["features.0.weight"], before)
    assert sd["features.1.num_batches_tracked"].shape == ()


def test_state_dict_round_trip_after_a_training_step():
    x, y = randn(6, 1, 8, 8, seed=1), np.array([0, 1, 2, 0, 1, 2])
    net = Net(rng=backend.make_rng(1))
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    import tinyproj.functional as F
    F.cross_entropy(net(x), y).backward()
    opt.step()
    assert int(net.features[1].num_batches_tracked) == 1

    fresh = Net(rng=backend.make_rng(2))
    weight_array = fresh.features[0].weight.data
    fresh.load_state_dict(net.state_dict())
    assert fresh.features[0].weight.data is weight_array          # copied in place
    for (k, a), (_, b) in zip(net.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    net.eval(), fresh.eval()
    np.testing.assert_array_equal(net(x).data, fresh(x).data)
    net.train(), fresh.train()
    np.testing.assert_array_equal(net(x).data, fresh(x).data)


def test_strict_load_reports_missing_and_unexpected_keys():
    net = Net()
    sd = net.state_dict()
    del sd["classifier.3.bias"]
    sd["classifier.9.weight"] = np.zeros(3, np.float32)
    with pytest.raises(nn.StateDictError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys" in msg and "'classifier.3.bias'" in msg
    assert "unexpected keys" in msg and "'classifier.9.weight'" in msg
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["classifier.3.bias"]
    assert result.unexpected_keys == ["classifier.9.weight"]


def test_shape_mismatch_names_the_key_and_both_shapes_and_copies_nothing():
    net = Net()
    sd = net.state_dict()
    sd["classifier.1.weight"] = np.zeros((10, 65), np.float32)
    sd["features.0.weight"] = np.zeros_like(sd["features.0.weight"])
    before = net.features[0].weight.data.copy()
    with pytest.raises(nn.StateDictError) as err:
        net.load_state_dict(sd, strict=False)
    msg = str(err.value)
    assert "'classifier.1.weight'" in msg and "(10, 65)" in msg and "(10, 64)" in msg
    assert "Linear 'classifier.1'" in msg
    np.testing.assert_array_equal(net.features[0].weight.data, before)   # all or nothing


# ---------------------------------------------------------------------------
# initializers
# ---------------------------------------------------------------------------
def test_fans():
    assert nn.init.fans((5, 7)) == (7, 5)
    assert nn.init.fans((64, 3, 5, 3)) == (3 * 15, 64 * 15)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.fans((5,))


@pytest.mark.parametrize("make, shape", [
    (lambda rng: nn.Linear(300, 500, rng=rng), (500, 300)),
    (lambda rng: nn.Conv2d(32, 64, 3, rng=rng), (64, 32, 3, 3)),
    (lambda rng: nn.Conv2d(16, 8, (5, 3), rng=rng), (8, 16, 5, 3)),
])
def test_glorot_uniform_range_std_and_dtype(make, shape):
    layer = make(backend.make_rng(0))
    w = layer.weight.data
    assert w.shape == shape and w.dtype == np.float32
    fan_in, fan_out = nn.init.fans(shape)
    a = math.sqrt(6 / (fan_in + fan_out))
    assert w.min() >= -a and w.max() <= a
    assert w.min() < -0.98 * a and w.max() > 0.98 * a        # the whole range is used
    assert abs(w.std() / math.sqrt(2 / (fan_in + fan_out)) - 1) < 0.03
    assert abs(w.mean()) < 0.02 * a


def test_same_seed_same_weights():
    a = Net(rng=backend.make_rng(7))
    b = Net(rng=backend.make_rng(7))
    c = Net(rng=backend.make_rng(8))
    for (name, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(),
                                            c.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
        if name.endswith("0.weight"):
            assert not np.array_equal(pa.data, pc.data)
    tp.manual_seed(3)
    d = nn.Linear(4, 4)
    tp.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(4, 4).weight.data, d.weight.data)


def test_biases_start_at_zero():
    assert np.all(nn.Linear(3, 4, bias=True).bias.data == 0)
    assert np.all(nn.Conv2d(3, 4, 3, bias=True).bias.data == 0)


# ---------------------------------------------------------------------------
# layer errors name the layer and both shapes
# ---------------------------------------------------------------------------
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.classifier = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(10), nn.Linear(10, 5))


def shape_error(layer, *shape):
    """The message of the ValueError that ``layer`` raises on an input of the wrong shape."""
    with pytest.raises(ValueError) as err:
        layer(randn(*shape))
    return str(err.value)


def test_linear_shape_error():
    model = Classifier()
    msg = shape_error(model.classifier[2], 32, 7)
    assert "Linear 'classifier.2' (in_features=10, out_features=5" in msg
    assert "(N, 10)" in msg and "(32, 7)" in msg


def test_linear_suggests_flatten():
    with pytest.raises(ValueError, match=r"Flatten"):
        nn.Linear(12, 2)(randn(2, 3, 2, 2))


def test_conv_channel_error():
    model = Classifier()
    msg = shape_error(model.features[0], 2, 1, 8, 8)
    assert "Conv2d 'features.0'" in msg and "(N, 3, H, W)" in msg and "(2, 1, 8, 8)" in msg


def test_batchnorm_channel_errors():
    model = Classifier()
    msg = shape_error(model.features[1], 2, 6, 4, 4)
    assert "BatchNorm2d 'features.1'" in msg and "(N, 8, H, W)" in msg and "(2, 6, 4, 4)" in msg
    msg = shape_error(model.classifier[1], 4, 9)
    assert "BatchNorm1d 'classifier.1'" in msg and "(N, 10)" in msg and "(4, 9)" in msg


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2d(1, 1, (3, 3, 3))


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------
def test_dropout_train_vs_eval_and_expectation():
    x = np.ones((200, 500), np.float32) * 2.0
    drop = nn.Dropout(0.3, rng=backend.make_rng(0))
    y = drop(x).data
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[kept], 2.0 / 0.7, rtol=1e-6)     # survivors scaled by 1/(1−p)
    assert abs(y.mean() / 2.0 - 1) < 0.01                          # E[y] = x
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x)
    a = nn.Dropout(0.5, rng=backend.make_rng(4))(x).data
    b = nn.Dropout(0.5, rng=backend.make_rng(4))(x).data
    np.testing.assert_array_equal(a, b)


def test_dropout_gradient_uses_the_same_mask():
    x = tp.tensor(np.ones((10, 10), np.float32), requires_grad=True)
    y = nn.Dropout(0.5, rng=backend.make_rng(1))(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------
def test_batchnorm_eval_uses_running_stats():
    bn = nn.BatchNorm2d(3)
    bn.running_mean[...] = _on_device([0.5, -1.0, 2.0])
    bn.running_var[...] = _on_device([4.0, 0.25, 1.0])
    bn.weight.data[...] = _on_device([1.0, 2.0, 3.0])
    bn.bias.data[...] = _on_device([0.0, 0.1, -0.2])
    bn.eval()
    x = randn(4, 3, 5, 5)
    y = bn(x).data
    rm, rv = bn.running_mean.reshape(1, 3, 1, 1), bn.running_var.reshape(1, 3, 1, 1)
    rm, rv = backend.to_numpy(rm), backend.to_numpy(rv)
    expected = (x - rm) / np.sqrt(rv + 1e-5) * bn.weight.numpy().reshape(1, 3, 1, 1) \
        + bn.bias.numpy().reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean, [0.5, -1.0, 2.0])   # not updated in eval
    assert int(bn.num_batches_tracked) == 0


def test_batchnorm_training_updates_running_stats_with_momentum():
    bn = nn.BatchNorm1d(4, momentum=0.1)
    x = randn(16, 4) * 3 + 1
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("bn, shape, axes", [
    (nn.BatchNorm1d(5), (20, 5), (0,)),
    (nn.BatchNorm2d(3), (6, 3, 4, 4), (0, 2, 3)),
])
def test_batchnorm_reestimation_is_an_exact_average(bn, shape, axes):
    rng = np.random.default_rng(0)
    for _ in range(3):                                   # some ordinary history first
        bn(rng.standard_normal(shape).astype(np.float32))
    model = nn.Sequential(bn)
    assert nn.start_bn_reestimation(model) == [bn]
    assert np.all(bn.running_mean == 0) and np.all(bn.running_var == 1)
    batches = [(rng.standard_normal(shape) * (k + 1) + k).astype(np.float32) for k in range(7)]
    with tp.no_grad():
        for xb in batches:
            model(xb)
    means = np.mean([xb.mean(axis=axes, dtype=np.float64) for xb in batches], axis=0)
    variances = np.mean([xb.var(axis=axes, ddof=1, dtype=np.float64) for xb in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean, means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, variances, rtol=1e-5)
    assert bn.reestimation_batches == 7
    nn.stop_bn_reestimation(model)
    assert not bn.reestimating
    before = backend.to_numpy(bn.running_mean).copy()
    xb = batches[0]
    bn(xb)                                               # back to momentum 0.1
    np.testing.assert_allclose(bn.running_mean, 0.9 * before + 0.1 * xb.mean(axis=axes),
                               rtol=1e-5, atol=1e-6)


def test_batchnorm_needs_more_than_one_value_per_channel_in_training():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one value"):
        bn(randn(1, 3))
    bn.eval()
    bn(randn(1, 3))


# ---------------------------------------------------------------------------
# against torch.nn, same weights
# ---------------------------------------------------------------------------
def _compare_with_torch(ours, theirs, x, torch):
    xt = torch.tensor(x, requires_grad=True)
    xo = tp.tensor(x, requires_grad=True)
    yo = ours(xo)
    yt = theirs(xt)
    assert rel_err(yo.data, yt.detach().numpy()) <= 1e-4
    gy = randn(*yo.shape, seed=5)
    yo.backward(gy)
    yt.backward(torch.tensor(gy))
    assert rel_err(xo.grad, xt.grad.numpy()) <= 1e-3
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, dict(theirs.named_parameters())[name].grad.numpy()) <= 1e-3, name


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Linear(7, 5, bias=True, rng=backend.make_rng(0))
    ours.bias.data[...] = _on_device(randn(5, seed=3))
    theirs = torch.nn.Linear(7, 5)
    theirs.load_state_dict({k: torch.tensor(backend.to_numpy(v)) for k, v in ours.state_dict().items()})
    _compare_with_torch(ours, theirs, randn(9, 7, seed=1), torch)


@pytest.mark.parametrize("k, stride, padding", [(3, 1, 1), ((5, 3), 2, (2, 0))])
def test_conv2d_matches_torch(k, stride, padding):
    torch = pytest.importorskip("torch")
    ours = nn.Conv2d(3, 4, k, stride=stride, padding=padding, bias=True, rng=backend.make_rng(0))
    ours.bias.data[...] = _on_device(randn(4, seed=3))
    theirs = torch.nn.Conv2d(3, 4, k, stride=stride, padding=padding)
    theirs.load_state_dict({k: torch.tensor(backend.to_numpy(v)) for k, v in ours.state_dict().items()})
    _compare_with_torch(ours, theirs, randn(2, 3, 9, 8, seed=1), torch)


def test_batchnorm2d_matches_torch_in_training_and_eval():
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3)
    ours.weight.data[...] = _on_device(randn(3, seed=2))
    ours.bias.data[...] = _on_device(randn(3, seed=3))
    theirs = torch.nn.BatchNorm2d(3)
    theirs.load_state_dict({k: torch.tensor(backend.to_numpy(v)) for k, v in ours.state_dict().items()})
    x = randn(4, 3, 5, 6, seed=1) * 2 + 1
    _compare_with_torch(ours, theirs, x, torch)
    assert rel_err(ours.running_mean, theirs.running_mean.numpy()) <= 1e-5
    assert rel_err(ours.running_var, theirs.running_var.numpy()) <= 1e-5
    ours.eval(), theirs.eval()
    ours.zero_grad(), theirs.zero_grad()
    _compare_with_torch(ours, theirs, randn(2, 3, 5, 6, seed=4), torch)


def test_batchnorm1d_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm1d(6), torch.nn.BatchNorm1d(6)
    _compare_with_torch(ours, theirs, randn(8, 6, seed=1) * 3, torch)
    assert rel_err(ours.running_var, theirs.running_var.numpy()) <= 1e-5


# ---------------------------------------------------------------------------
# Batch norm fused with the ReLU that follows it (issues 11 and 15)
# ---------------------------------------------------------------------------
def _bn_relu_model(kind, seed=0):
    rng = backend.make_rng(seed)
    if kind == "2d":
        return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3),
                             nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 4, 6, rng=rng),
                             nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2, rng=rng),
                             nn.BatchNorm1d(2))
    return nn.Sequential(nn.Linear(4, 5, rng=rng), nn.BatchNorm1d(5), nn.ReLU())


@pytest.mark.parametrize("kind", ["2d", "1d"])
@pytest.mark.parametrize("training", [True, False])
def test_fused_bn_relu_equals_the_unfused_modules(kind, training, monkeypatch):
    shape = (6, 2, 5, 4) if kind == "2d" else (7, 4)
    x = randn(*shape, seed=3) * 2
    results = []
    for fuse in (False, True):
        model = _bn_relu_model(kind)
        model.fuse_bn_relu = fuse
        model.train(training)
        if not training:                 # some running statistics to evaluate with
            model.train()
            model(tp.tensor(x * 0.5))
            model.train(False)
        xt = tp.tensor(x, requires_grad=True)
        out = model(xt)
        (out * tp.tensor(randn(*out.shape, seed=4))).sum().backward()
        results.append((out.numpy(), xt.grad, [p.grad for p in model.parameters()],
                        [backend.to_numpy(b) for _, b in model.named_buffers()]))
    (o0, g0, p0, b0), (o1, g1, p1, b1) = results
    assert rel_err(o1, o0) <= 1e-5
    assert rel_err(g1, g0) <= 1e-5
    for a, b in zip(p1, p0):
        assert rel_err(a, b) <= 1e-5
    for a, b in zip(b1, b0):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fused_bn_relu_gradients_agree_with_finite_differences_in_float64():
    from tinyproj import gradcheck
    import tinyproj.functional as F
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 2, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3) * 0.3

    def fn(x, gamma, beta):
        return F.batch_norm(x, None, None, gamma, beta, training=True, relu=True)
    gradcheck.gradcheck(fn, [x, gamma, beta])

    def fn_eval(x, gamma, beta):
        xp = backend.xp()
        return F.batch_norm(x, xp.zeros(3), xp.ones(3) * 2, gamma, beta, training=False,
                            relu=True)
    gradcheck.gradcheck(fn_eval, [x, gamma, beta])


def test_fusion_is_used_only_for_a_batch_norm_followed_by_a_plain_relu(monkeypatch):
    calls = []
    real = nn.BatchNorm2d.forward

    def spy(self, x, relu=False):
        calls.append(relu)
        return real(self, x, relu=relu)
    monkeypatch.setattr(nn.BatchNorm2d, "forward", spy)
    x = tp.tensor(randn(2, 2, 5, 4))
    _bn_relu_model("2d")(x)
    seq = nn.Sequential(nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.ReLU())
    seq(x)
    assert calls == [True, False]


# ---------------------------------------------------------------------------
# Conv2d fused with the MaxPool2d after it (functional/conv_pool.py)
# ---------------------------------------------------------------------------
def _conv_pool_model(bias=False, seed=0):
    rng = backend.make_rng(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=bias, rng=rng), nn.MaxPool2d(2),
                         nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1, rng=rng),
                         nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten(),
                         nn.Linear(5 * 3 * 3, 2, rng=rng))


@pytest.mark.parametrize("bias", [False, True])
def test_fused_conv_pool_equals_the_unfused_modules(bias):
    x = randn(4, 3, 10, 10, seed=3)
    results = []
    for fuse in (False, True):
        model = _conv_pool_model(bias)
        model.fuse_conv_pool = fuse
        xt = tp.tensor(x, requires_grad=True)
        out = model(xt)
        (out * tp.tensor(randn(*out.shape, seed=4))).sum().backward()
        results.append((out.numpy(), xt.grad, [p.grad for p in model.parameters()]))
    (o0, g0, p0), (o1, g1, p1) = results
    np.testing.assert_array_equal(o1, o0)                 # the same arithmetic, bit for bit
    np.testing.assert_array_equal(g1, g0)
    for a, b in zip(p1, p0):
        np.testing.assert_array_equal(a, b)


def test_conv_pool_fusion_only_for_a_bias_free_conv_followed_by_a_max_pool(monkeypatch):
    calls = []
    real = nn.Conv2d.forward

    def spy(self, x, pool=None):
        calls.append(pool is not None)
        return real(self, x, pool=pool)
    monkeypatch.setattr(nn.Conv2d, "forward", spy)
    x = tp.tensor(randn(2, 3, 10, 10))
    _conv_pool_model(bias=False)(x)                       # both convs fused
    _conv_pool_model(bias=True)(x)                        # the first has a bias: not fused
    seq = nn.Sequential(nn.Conv2d(3, 2, 3, rng=backend.make_rng(0)), nn.ReLU(), nn.MaxPool2d(2))
    seq(x)                                                # a ReLU in between: not fused
    assert calls == [True, True, False, True, False]
    calls.clear()
    model = _conv_pool_model()
    model.fuse_conv_pool = False
    model(x)
    assert calls == [False, False]


def test_fused_conv_pool_names_the_pool_layer_when_its_window_does_not_fit():
    rng = backend.make_rng(0)
    seq = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.MaxPool2d(3))
    with pytest.raises(ValueError, match=r"MaxPool2d.*3×3 window does not fit.*spatial size 2×2"):
        seq(tp.tensor(randn(1, 1, 4, 4)))
