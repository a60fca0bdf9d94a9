"""PyTorch's default initialisation and optional biases for the Walking Noise models (issue 13).

PyTorch's nn.Linear / nn.Conv2d draw W and b from U(−1/√fan_in, 1/√fan_in); the
distributions are checked over many draws (bounds reached but never passed, variance
1/(3·fan_in), mean 0). The bias gradients of F.linear / F.conv2d are checked by finite
differences in test_functional.py (linear_bias, test_conv2d_bias_gradient); here a whole
mlp_tfc with biases *and* batch norm is checked, a combination that did not exist before.
"""
import math

import numpy as np
import pytest

import tinyproj.nn as nn
from tinyproj import backend, models
from tinyproj.errors import UserError
from tinyproj.runs.build import build_model
from tinyproj.runs.config import make_config


def _check_uniform(values, bound, n_min=10_000):
    """values ~ U(−bound, bound): inside, near both ends, variance bound²/3, mean 0."""
    v = backend.to_numpy(values).astype(np.float64).ravel()
    assert v.size >= n_min
    assert v.min() >= -bound and v.max() <= bound
    assert v.min() < -0.99 * bound and v.max() > 0.99 * bound
    # std of the sample variance of U(−a, a): a²·√(4/45 / n); 5 of them is a loose bound
    var = bound ** 2 / 3
    assert abs(v.var() - var) < 5 * bound ** 2 * math.sqrt(4 / 45 / v.size)
    assert abs(v.mean()) < 5 * bound / math.sqrt(3 * v.size)


def test_torch_bound_is_kaiming_uniform_with_a_sqrt5():
    a = math.sqrt(5)
    for fan_in in (1, 9, 784, 400):
        gain = math.sqrt(2 / (1 + a * a))
        assert nn.init.torch_bound(fan_in) == pytest.approx(math.sqrt(3) * gain / math.sqrt(fan_in))
    assert nn.init.torch_std((64, 784)) == pytest.approx(1 / math.sqrt(3 * 784))
    # Glorot is 1.7-2.4x larger on mlp_tfc (the claim, kept honest here)
    ratios = [nn.init.glorot_std(s) / nn.init.torch_std(s) for s in
              [(64, 784), (64, 64), (10, 64)]]
    assert 1.7 < min(ratios) and max(ratios) < 2.4


@pytest.mark.parametrize("make, fan_in, bias_size", [
    (lambda rng: nn.Linear(9, 20_000, bias=True, rng=rng, init="torch"), 9, 20_000),
    (lambda rng: nn.Conv2d(3, 4000, 3, bias=True, rng=rng, init="torch"), 27, 4000),
])
def test_torch_init_weights_and_biases_are_uniform_over_fan_in(make, fan_in, bias_size):
    layer = make(backend.make_rng(0))
    bound = 1 / math.sqrt(fan_in)
    assert layer.weight.data.dtype == np.float32 and tuple(layer.bias.data.shape) == (bias_size,)
    _check_uniform(layer.weight.data, bound)
    _check_uniform(layer.bias.data, bound, n_min=4000)


def test_torch_init_biases_over_many_layers_of_few_units():
    """A bias of 3 values is still U(±1/√fan_in): pooled over 2,000 seeds."""
    draws = [backend.to_numpy(nn.Linear(16, 3, bias=True, rng=backend.make_rng(s),
                                        init="torch").bias.data) for s in range(2000)]
    _check_uniform(np.concatenate(draws), 0.25, n_min=6000)


def test_glorot_keeps_zero_biases_and_the_weight_is_drawn_first():
    lin = nn.Linear(30, 20, bias=True, rng=backend.make_rng(1))
    assert not backend.to_numpy(lin.bias.data).any()
    a = nn.Linear(30, 20, bias=True, rng=backend.make_rng(2), init="torch")
    b = nn.Linear(30, 20, bias=False, rng=backend.make_rng(2), init="torch")
    np.testing.assert_array_equal(backend.to_numpy(a.weight.data),
                                  backend.to_numpy(b.weight.data))      # PyTorch's order
    assert a.bias is not None and b.bias is None


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="glorot, torch"):
        nn.Linear(3, 2, init="he")
    with pytest.raises(ValueError, match="glorot, torch"):
        nn.init.check_init("xavier")


@pytest.mark.parametrize("name", ["mlp_tfc", "lenet5"])
@pytest.mark.parametrize("bn", [False, True])
def test_bias_switch_of_the_walking_noise_models(name, bn):
    def biases(**kw):
        m = models.build(name, bn=bn, rng=backend.make_rng(0), **kw)
        layers = m.weight_layer_names()
        return [getattr(m, n).bias is not None for n in layers]
    assert biases() == [not bn] * len(biases())          # auto: bias only without BN
    assert all(biases(bias=True)) and not any(biases(bias=False))


def test_torch_init_in_a_model_uses_each_layers_fan_in():
    m = models.build("lenet5", rng=backend.make_rng(0), init="torch", bias=True)
    for name in m.weight_layer_names():
        layer = getattr(m, name)
        w, b = backend.to_numpy(layer.weight.data), backend.to_numpy(layer.bias.data)
        bound = 1 / math.sqrt(nn.init.fans(w.shape)[0])
        assert bound * 0.9 < np.abs(w).max() <= bound
        assert np.abs(b).max() <= bound and b.any()


def test_factory_refuses_bad_switches_and_the_merolla_models():
    with pytest.raises(UserError, match="--init") as err:
        models.check("mlp_tfc", init="kaiming")
    assert err.value.flag == "--init"
    with pytest.raises(UserError, match="--bias") as err:
        models.check("lenet5", bias="yes")
    assert err.value.flag == "--bias"
    with pytest.raises(UserError, match="Glorot initial weights only"):
        models.check("bc_cifar10", init="torch")
    with pytest.raises(UserError, match="has no biases"):
        models.check("bc_cifar10", bias=True)
    assert models.check("bc_cifar10", init="glorot", bias=None)[0] == "bc_cifar10"


def test_config_settings_reach_the_model_and_are_validated():
    cfg = make_config(model="mlp_tfc", dataset="mnist", bn=True, init="torch", bias=True)
    assert (cfg.init, cfg.bias) == ("torch", "true")              # canonical spelling
    m = build_model(cfg, (1, 28, 28), 10, backend.make_rng(0))
    assert m.fc1.bias is not None and np.abs(backend.to_numpy(m.fc1.weight.data)).max() <= 1 / 28
    assert make_config(model="mlp_tfc", dataset="mnist").bias == "auto"
    with pytest.raises(UserError) as err:
        make_config(model="mlp_tfc", dataset="mnist", init="he")
    assert err.value.flag == "--init"
    with pytest.raises(UserError) as err:
        make_config(model="mlp_tfc", dataset="mnist", bias="maybe")
    assert err.value.flag == "--bias"
    with pytest.raises(UserError) as err:
        make_config(init="torch")                                  # bc_cifar10
    assert err.value.flag == "--init"


@pytest.mark.numpy_only("a float64 finite-difference check on host arrays")
def test_gradient_of_mlp_with_biases_and_batch_norm_by_finite_differences():
    """Every parameter's gradient, biases included, against central differences (float64)."""
    import tinyproj as tp
    import tinyproj.functional as F
    m = models.build("mlp_tfc", (6,), 3, bn=True, bias=True, init="torch",
                     rng=backend.make_rng(0), hidden=5)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6))
    y = rng.integers(0, 3, 8)
    params = dict(m.named_parameters())
    for p in params.values():
        p.data = p.data.astype(np.float64)
    m.train()

    def loss():
        return F.cross_entropy(m(tp.tensor(x)), y)
    m.zero_grad()
    loss().backward()
    eps = 1e-6
    for name in ("fc1.bias", "fc4.bias", "fc2.weight"):
        p = params[name]
        d = rng.standard_normal(p.data.shape)
        base = p.data.copy()
        p.data = base + eps * d
        up = float(loss().data)
        p.data = base - eps * d
        down = float(loss().data)
        p.data = base
        numeric = (up - down) / (2 * eps)
        analytic = float((p.grad * d).sum())
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), name
