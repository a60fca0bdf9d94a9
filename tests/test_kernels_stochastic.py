"""The random kernels (issue 11): Table 1's Stoch and StochM over every layer of a flat buffer,
and Walking Noise's Gaussian noise, on Philox-4x32-10 (kernels/cuda/random.cuh).

Three checks: the GPU kernels' host-compiled twins (kernels/host.py) against the NumPy
reference (the same Philox words: Stoch and StochM bit for bit, the noise to the last bit of
log/cos/sin); the states, expectations and probabilities over many draws; and the wiring —
Algorithm 1 on the stand-in device projects every layer with one kernel, no sync, no copy.
"""
import numpy as np
import pytest

from tinyproj import algorithm1, backend, kernels, models, optim, standin
from tinyproj.kernels import host, reference

pytestmark = pytest.mark.skipif(not host.available(), reason="no C++ compiler for the host build")

DTYPES = [np.float32, np.float64]


def _flat(dtype, rng=None):
    rng = rng or np.random.default_rng(0)
    sizes = [7, 0, 300, 5, 1001]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    w = rng.standard_normal(int(offsets[-1])).astype(dtype)
    w[7 + 300:7 + 300 + 5] = 0                  # an all-zero tensor: α = 0
    return w, offsets


KEY = np.array([2 ** 40 + 12345, 3], dtype=np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_philox_uniforms_and_the_projections_of_the_host_build_are_the_reference_bit_for_bit(
        dtype):
    w, offsets = _flat(dtype)
    np.testing.assert_array_equal(host.stoch_projection_segments(w, offsets, KEY),
                                  reference.stoch_projection_segments(w, offsets, KEY))
    np.testing.assert_array_equal(host.stochm_projection_segments(w, offsets, KEY, 0.5),
                                  reference.stochm_projection_segments(w, offsets, KEY, 0.5))


def test_philox_matches_its_published_known_answer():
    """Philox-4x32-10, counter 0, key 0 (Random123's known-answer test vector)."""
    words = reference.philox_words(np.array([0, 0], np.int64), 1)[:, 0]
    assert [hex(int(v)) for v in words] == ["0x6627e8d5", "0xe169c58d", "0xbc57ac4c",
                                            "0x9b00dbd8"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma_add,sigma_mul,add_first", [(0.3, 0.0, False), (0.0, 0.2, False),
                                                           (0.3, 0.2, False), (0.3, 0.2, True),
                                                           (0.0, 0.0, False)])
def test_the_noise_of_the_host_build_is_the_reference(dtype, sigma_add, sigma_mul, add_first):
    x = np.random.default_rng(1).standard_normal((4, 3, 5)).astype(dtype)
    y0, f0 = reference.gaussian_noise(x, KEY, sigma_add, sigma_mul, add_first)
    y1, f1 = host.gaussian_noise(x, KEY, sigma_add, sigma_mul, add_first)
    tol = 1e-6 if dtype == np.float32 else 1e-13      # log/cos/sin: the last bit may differ
    np.testing.assert_allclose(y1, y0, rtol=tol, atol=tol)
    assert (f0 is None) == (f1 is None) == (sigma_mul == 0)
    if sigma_mul:
        np.testing.assert_allclose(f1, f0, rtol=tol, atol=tol)
    if sigma_add == sigma_mul == 0:
        np.testing.assert_array_equal(y1, x)


def test_stoch_states_probabilities_and_expectation_over_many_draws():
    # one tensor of 200,000 copies of each of five values, α = 1: p = (w + 1)/2 exactly
    values = np.array([-1.0, -0.5, 0.0, 0.3, 1.0], dtype=np.float32)
    n = 200_000
    w = np.repeat(values, n)
    out = host.stoch_projection_segments(w, np.array([0, w.size]), KEY).reshape(5, n)
    assert set(np.unique(out)) <= {-1.0, 1.0}                          # the states: ±α
    p_hat = (out > 0).mean(axis=1)
    p = (values + 1) / 2
    se = np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(p_hat - p) <= 5 * se), (p_hat, p)            # P(+α) = (w/α + 1)/2
    assert p_hat[0] == 0 and p_hat[-1] == 1                          # w = ±α: surely ±α
    np.testing.assert_allclose(out.mean(axis=1), values, atol=5 * 1 / np.sqrt(n))   # E = w


def test_stochm_magnitudes_and_sign_probabilities_over_many_draws():
    gamma, n = 0.5, 100_000
    w = np.repeat(np.array([-0.8, 0.4, 1.0], dtype=np.float32), n)
    out = host.stochm_projection_segments(w, np.array([0, w.size]), KEY, gamma).reshape(3, n)
    mag = np.abs(out) / np.abs(w.reshape(3, n))
    assert mag.min() >= gamma * (1 - 1e-6) and mag.max() <= (1 / gamma) * (1 + 1e-6)
    np.testing.assert_allclose(mag.mean(axis=1), (gamma + 1 / gamma) / 2, rtol=0.01)
    p = (np.array([-0.8, 0.4, 1.0]) + 1) / 2                         # α = 1
    se = np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs((out > 0).mean(axis=1) - p) <= 5 * se)


@pytest.mark.parametrize("order", ["mul-add", "add-mul"])
def test_noise_mean_and_variance_over_many_draws(order):
    n, sa, sm = 400_000, 0.3, 0.2
    x = np.full(n, 1.5, dtype=np.float32)
    y, f = host.gaussian_noise(x, KEY, sa, sm, add_first=order == "add-mul")
    var = (1.5 ** 2 * sm ** 2 + sa ** 2 if order == "mul-add"
           else (1.5 ** 2 + sa ** 2) * (1 + sm ** 2) - 1.5 ** 2)
    assert abs(y.mean() - 1.5) <= 5 * np.sqrt(var / n)
    assert abs(y.var() / var - 1) <= 0.02
    assert abs(f.mean() - 1) <= 5 * sm / np.sqrt(n) and abs(f.std() / sm - 1) <= 0.02
    z = reference.philox_normal_pair(reference.philox_words(KEY, n), np.float64)
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 0.01                  # two independent normals


def test_same_key_same_draw_another_key_another_draw():
    w, offsets = _flat(np.float32)
    a = host.stoch_projection_segments(w, offsets, KEY)
    assert np.array_equal(a, host.stoch_projection_segments(w, offsets, KEY.copy()))
    assert not np.array_equal(a, host.stoch_projection_segments(w, offsets, KEY + [0, 1]))
    assert not np.array_equal(a, host.stoch_projection_segments(w, offsets, KEY + [1, 0]))


@pytest.mark.parametrize("spec,name", [("stoch", "stoch"), ("stochm:gamma=0.5", "stochm")])
def test_algorithm1_projects_every_layer_with_one_random_kernel_on_the_device(on_standin, spec,
                                                                              name):
    model = models.bc_cifar10(width=1 / 16, rng=backend.make_rng(0))
    optim.Adam(model.parameters(), lr=1e-3)                       # the weights in a flat buffer
    rng = backend.make_rng(1)
    with standin.counting() as counted:
        with algorithm1.project_weights(model, spec, rng) as P:
            pass
    # the run's generator moves its key on (one add on the device), then the one kernel
    assert counted.ops == {f"kernel.{name}_projection_segments": 1, "add": 1}
    assert (counted.syncs, counted.copies) == (0, 0)
    weights = algorithm1.weight_params(model)
    for k, (layer, p) in enumerate(weights.items()):
        W, Pk = p.data.get(), P[layer].get()
        alpha = np.abs(W).max()
        if name == "stoch":
            assert set(np.unique(np.abs(Pk))) == {alpha}
        else:
            ratio = np.abs(Pk) / np.abs(W)
            assert ratio.min() >= 0.5 * (1 - 1e-6) and ratio.max() <= 2 * (1 + 1e-6)


def test_kernels_get_hands_out_the_random_kernels(on_standin):
    x = backend.xp().zeros(3, dtype=np.float32)
    y, f = kernels.get("gaussian_noise", x)(x, kernels.random_key(backend.make_rng(0), x), 0.1,
                                            0.0)
    assert backend.is_gpu_array(y) and f is None
    host_x = np.zeros(3, np.float32)
    assert kernels.get("gaussian_noise", host_x) is reference.gaussian_noise
