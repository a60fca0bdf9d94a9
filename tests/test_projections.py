"""Table 1 projections: formulas, allowed states, statistics of the stochastic rows, parser.

Runs on every backend present (numpy always, cupy when a GPU is usable). Reference
values are computed with plain NumPy in the tests.
"""
import numpy as np
import pytest

from tinyproj import backend, projections as P


def host(a):
    return backend.to_numpy(a)


def random_weights(seed=0, shape=(7, 5, 3, 3), dtype=np.float32):
    return np.random.default_rng(seed).normal(0, 0.1, size=shape).astype(dtype)


DETERMINISTIC = {
    "sign": lambda w, rng: P.sign(w),
    "round": lambda w, rng: P.round(w),
    "none": lambda w, rng: P.none(w),
    "power0.5": lambda w, rng: P.power(w, 0.5),
    "power2": lambda w, rng: P.power(w, 2.0),
}
STOCHASTIC = {
    "stoch": lambda w, rng: P.stoch(w, rng),
    "stochm": lambda w, rng: P.stochm(w, 0.5, rng),
    "stochm3": lambda w, rng: P.stochm3(w, 0.5, rng),
    "stochm_literal": lambda w, rng: P.stochm_literal(w, 0.5, rng),
    "stochm_alpha": lambda w, rng: P.stochm_alpha(w, 0.5, rng),
    "addnorm": lambda w, rng: P.addnorm(w, 0.3, rng),
    "multunif": lambda w, rng: P.multunif(w, 0.5, rng),
}
ALL = {**DETERMINISTIC, **STOCHASTIC}


# ---------------------------------------------------------------------------
# Deterministic rows against the formulas of Table 1.
# ---------------------------------------------------------------------------
def test_sign_formula_and_states(on):
    w = random_weights()
    w.flat[3] = 0.0
    alpha = np.abs(w).max()
    out = host(P.sign(on(w)))
    expected = np.where(w >= 0, alpha, -alpha)          # sign(0) = +1
    np.testing.assert_array_equal(out, expected)
    assert set(np.unique(out)) == {-alpha, alpha}
    assert out.flat[3] == alpha


def test_round_formula_and_states(on):
    w = random_weights(1)
    alpha = np.abs(w).max()
    out = host(P.round(on(w)))
    x = w / alpha
    expected = alpha * np.sign(x) * np.floor(np.abs(x) + 0.5)   # half away from zero
    np.testing.assert_allclose(out, expected, rtol=0, atol=0)
    assert set(np.unique(out)) <= {-alpha, np.float32(0), alpha}
    assert len(np.unique(out)) == 3


def test_round_ties_go_away_from_zero(on):
    w = np.array([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(host(P.round(on(w))), [-1, -1, 0, 0, 0, 1, 1])


def test_none_is_a_copy(on):
    w = on(random_weights(2))
    out = P.none(w)
    assert out is not w
    np.testing.assert_array_equal(host(out), host(w))


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.5, 2.0, 3.0])
def test_power_formula_and_range(on, beta):
    w = random_weights(3)
    alpha = np.abs(w).max()
    out = host(P.power(on(w), beta))
    expected = alpha * np.abs(w / alpha) ** beta * np.sign(w)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(out) <= alpha * (1 + 1e-6))
    assert np.all(np.sign(out) == np.sign(w))
    assert np.isclose(np.abs(out).max(), alpha)          # the largest weight stays at alpha


def test_power_special_cases_are_exact(on):
    w = random_weights(4)
    w.flat[0] = 0.0
    np.testing.assert_array_equal(host(P.power(on(w), 0)), host(P.sign(on(w))))
    np.testing.assert_array_equal(host(P.power(on(w), 1)), w)
    np.testing.assert_array_equal(host(P.power(on(w), 1)), host(P.none(on(w))))


def test_power_rejects_negative_beta():
    with pytest.raises(ValueError, match="beta"):
        P.power(random_weights(), -0.5)


# ---------------------------------------------------------------------------
# Every row: dtype, shape, zero tensors, reproducibility.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_and_dtype_preserved(on, name, dtype):
    w = on(random_weights(5, dtype=dtype))
    out = ALL[name](w, backend.make_rng(0))
    assert out.shape == w.shape and out.dtype == w.dtype
    assert type(out) is type(w)


@pytest.mark.parametrize("name", sorted(ALL))
def test_all_zero_tensor_gives_zeros_not_nan(on, name):
    w = on(np.zeros((4, 3), dtype=np.float32))
    out = host(ALL[name](w, backend.make_rng(0)))
    assert np.all(out == 0) and not np.any(np.isnan(out))


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_same_seed_same_result(on, name):
    w = on(random_weights(6))
    a = host(STOCHASTIC[name](w, backend.make_rng(42)))
    b = host(STOCHASTIC[name](w, backend.make_rng(42)))
    c = host(STOCHASTIC[name](w, backend.make_rng(43)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_non_float_input_is_explained():
    with pytest.raises(TypeError, match="floating-point"):
        P.sign(np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5])
def test_bad_gamma_rejected(gamma):
    with pytest.raises(ValueError, match="gamma"):
        P.stochm(random_weights(), gamma, backend.make_rng(0))


# ---------------------------------------------------------------------------
# Stochastic rows: allowed states and statistics over many draws.
#
# A weight row is tiled N times into an (N, k) tensor: alpha of the tiled tensor is
# alpha of the row, so each column holds N independent draws for one weight.
# ---------------------------------------------------------------------------
N_DRAWS = 200_000
ROW = np.array([-1.0, -0.9, -0.6, -0.3, -0.1, -0.02, 0.0, 0.05, 0.2, 0.45, 0.5, 0.7, 0.95, 1.0],
               dtype=np.float32) * 0.3   # alpha = 0.3
ALPHA = np.float32(0.3)


def tiled(on):
    return on(np.tile(ROW, (N_DRAWS, 1)))


def binomial_tol(p, n, sigmas=5.0):
    return sigmas * np.sqrt(np.maximum(p * (1 - p), 1e-12) / n) + 1e-12


def test_stoch_states_probability_and_unbiased(on):
    out = host(P.stoch(tiled(on), backend.make_rng(1)))
    assert set(np.unique(out)) == {-ALPHA, ALPHA}
    p = (ROW / ALPHA + 1) / 2
    frac_plus = (out > 0).mean(axis=0)
    assert np.all(np.abs(frac_plus - p) <= binomial_tol(p, N_DRAWS))
    mean = out.astype(np.float64).mean(axis=0)
    std_of_mean = ALPHA * np.sqrt(np.maximum(1 - (ROW / ALPHA) ** 2, 1e-12) / N_DRAWS)
    assert np.all(np.abs(mean - ROW) <= 5 * std_of_mean + 1e-7)      # E[stoch(w)] = w


@pytest.mark.parametrize("gamma", [0.5, 0.8])
def test_stochm_sign_probability_magnitude_and_range(on, gamma):
    out = host(P.stochm(tiled(on), gamma, backend.make_rng(2))).astype(np.float64)
    assert np.all(np.abs(out) <= ALPHA / gamma * (1 + 1e-6))
    nz = ROW != 0
    p = (ROW / ALPHA + 1) / 2
    frac_plus = (out > 0).mean(axis=0)
    assert np.all(np.abs(frac_plus - p)[nz] <= binomial_tol(p, N_DRAWS)[nz])
    # |stochm(w)| = |w| * U(gamma, 1/gamma): range and mean
    ratio = np.abs(out[:, nz]) / np.abs(ROW[nz])
    assert ratio.min() >= gamma * (1 - 1e-6) and ratio.max() <= (1 / gamma) * (1 + 1e-6)
    mean_abs = np.abs(out).mean(axis=0)
    expected = np.abs(ROW) * (gamma + 1 / gamma) / 2
    std_of_mean = np.abs(ROW) * (1 / gamma - gamma) / np.sqrt(12 * N_DRAWS)
    assert np.all(np.abs(mean_abs - expected) <= 5 * std_of_mean + 1e-7)
    assert np.all(out[:, ~nz] == 0)


def test_stochm3_zeros_only_in_the_half_nearest_zero(on):
    rng_w = np.random.default_rng(3)
    w = rng_w.normal(0, 0.1, size=(400, 500)).astype(np.float32)     # 200k distinct weights
    gamma = 0.5
    out = host(P.stochm3(on(w), gamma, backend.make_rng(4)))
    alpha = np.abs(w).max()
    assert np.all(np.abs(out) <= alpha / gamma * (1 + 1e-6))
    median = np.median(np.abs(w))
    small = np.abs(w) < median
    assert small.sum() == w.size // 2
    zeros = out == 0
    assert not np.any(zeros & ~small)                  # the large half is never dropped
    n = w.size
    assert abs(zeros.mean() - 0.25) <= binomial_tol(0.25, n)
    assert abs(zeros[small].mean() - 0.5) <= binomial_tol(0.5, n // 2)
    # the survivors are StochM draws: magnitude |w| * U(gamma, 1/gamma)
    ratio = np.abs(out[~zeros]) / np.abs(w[~zeros])
    assert ratio.min() >= gamma * (1 - 1e-6) and ratio.max() <= (1 / gamma) * (1 + 1e-6)


def test_stochm3_odd_size_drops_floor_half(on):
    w = np.linspace(-1, 1, 7, dtype=np.float32) + np.float32(0.01)   # no zero weight
    rng = backend.make_rng(5)
    zeros_seen = np.zeros(7, dtype=bool)
    for _ in range(200):
        zeros_seen |= host(P.stochm3(on(w), 0.5, rng)) == 0
    nearest = np.argsort(np.abs(w))[:3]
    assert set(np.flatnonzero(zeros_seen)) == set(nearest)


def test_addnorm_mean_and_std(on):
    sigma = 0.3
    out = host(P.addnorm(tiled(on), sigma, backend.make_rng(6))).astype(np.float64)
    noise_std = ALPHA * sigma
    assert np.all(np.abs(out.mean(axis=0) - ROW) <= 5 * noise_std / np.sqrt(N_DRAWS))
    rel = np.abs(out.std(axis=0) / noise_std - 1)
    assert np.all(rel <= 5 / np.sqrt(2 * N_DRAWS))


def test_addnorm_sigma_zero_is_identity(on):
    w = random_weights(7)
    np.testing.assert_array_equal(host(P.addnorm(on(w), 0.0, backend.make_rng(0))), w)


def test_multunif_mean_and_range(on):
    gamma = 0.5
    out = host(P.multunif(tiled(on), gamma, backend.make_rng(7))).astype(np.float64)
    lo = np.minimum(ROW * gamma, ROW / gamma) - 1e-7
    hi = np.maximum(ROW * gamma, ROW / gamma) + 1e-7
    assert np.all((out >= lo) & (out <= hi))
    assert np.all(np.abs(out) <= ALPHA / gamma * (1 + 1e-6))
    expected = ROW * (gamma + 1 / gamma) / 2
    std_of_mean = np.abs(ROW) * (1 / gamma - gamma) / np.sqrt(12 * N_DRAWS)
    assert np.all(np.abs(out.mean(axis=0) - expected) <= 5 * std_of_mean + 1e-7)


def test_stochm_literal_flips_strongly_negative_weights(on):
    """The printed formula sends a weight of -0.9*alpha to a positive value ~95 % of the time."""
    gamma = 0.5
    out = host(P.stochm_literal(tiled(on), gamma, backend.make_rng(8))).astype(np.float64)
    strongly_negative = ROW <= -0.9 * ALPHA
    frac_positive = (out[:, strongly_negative] > 0).mean(axis=0)
    assert np.all(frac_positive > 0.9)
    # E[literal(w)] = w^2/alpha * E[U] >= 0 for every w: negative weights vanish on average
    means = out.mean(axis=0)
    expected = ROW ** 2 / ALPHA * (gamma + 1 / gamma) / 2
    assert np.all(means > -1e-3)
    np.testing.assert_allclose(means, expected, atol=2e-3)
    # the magnitude reading keeps the sign of strongly negative weights
    good = host(P.stochm(tiled(on), gamma, backend.make_rng(8)))
    assert np.all((good[:, strongly_negative] < 0).mean(axis=0) > 0.9)


@pytest.mark.parametrize("gamma", [0.5, 0.8, 1.0])
def test_stochm_alpha_states_probability_and_expectation(on, gamma):
    """±alpha·U(gamma, 1/gamma): |P|/alpha in [gamma, 1/gamma], + with probability p, and
    E[P] = w·(gamma + 1/gamma)/2 (so E[P] = w at gamma = 1 only, 1.25·w at gamma = 0.5)."""
    out = host(P.stochm_alpha(tiled(on), gamma, backend.make_rng(5))).astype(np.float64)
    ratio = np.abs(out) / ALPHA
    assert ratio.min() >= gamma * (1 - 1e-6) and ratio.max() <= (1 / gamma) * (1 + 1e-6)
    p = (ROW / ALPHA + 1) / 2
    frac_plus = (out > 0).mean(axis=0)
    assert np.all(np.abs(frac_plus - p) <= binomial_tol(p, N_DRAWS))
    # |P| is the same U(gamma, 1/gamma)·alpha for every w: its mean does not depend on w
    eu = (gamma + 1 / gamma) / 2
    sd_u = (1 / gamma - gamma) / np.sqrt(12)
    assert np.all(np.abs(np.abs(out).mean(axis=0) - ALPHA * eu)
                  <= 5 * ALPHA * sd_u / np.sqrt(N_DRAWS) + 1e-7)
    # expectation against the formula; the std of one draw is <= alpha/gamma
    expected = ROW.astype(np.float64) * eu
    variance = np.maximum(float(ALPHA) ** 2 * (eu ** 2 + sd_u ** 2) - expected ** 2, 0.0)
    std_of_mean = np.sqrt(variance / N_DRAWS)
    assert np.all(np.abs(out.mean(axis=0) - expected) <= 5 * std_of_mean + 1e-7)
    if gamma == 1.0:          # exactly Stoch: two states ±alpha
        np.testing.assert_allclose(np.unique(np.abs(out)), [ALPHA], rtol=1e-6)


def test_the_three_stochm_readings_differ_in_expectation(on):
    """At gamma = 0.5, for w = -0.3·alpha: alpha reading 1.25·w, magnitude w·|w|/alpha·1.25,
    literal w²/alpha·1.25 (positive); only the alpha reading is a multiple of w for all w."""
    gamma, eu = 0.5, 1.25
    readings = {"stochm_alpha": ROW * eu, "stochm": ROW * np.abs(ROW) / ALPHA * eu,
                "stochm_literal": ROW ** 2 / ALPHA * eu}
    for name, expected in readings.items():
        out = host(P.REGISTRY[name].function(tiled(on), gamma, backend.make_rng(6)))
        np.testing.assert_allclose(out.astype(np.float64).mean(axis=0), expected, atol=2.5e-3,
                                   err_msg=name)


# ---------------------------------------------------------------------------
# Projection objects and the parser.
# ---------------------------------------------------------------------------
VALID_SPECS = [
    "sign", "round", "none", "stoch", "power:beta=0.5", "power:beta=U(0,2)",
    "stochm:gamma=0.5", "stochm3:gamma=0.5", "stochm_literal:gamma=0.5", "stochm_alpha:gamma=0.5",
    "addnorm:sigma=0.3", "multunif:gamma=0.5",
]


@pytest.mark.parametrize("spec", VALID_SPECS)
def test_every_valid_spec_parses_and_round_trips(spec):
    proj = P.parse(spec)
    assert isinstance(proj, P.Projection)
    assert proj.spec == spec
    assert P.parse(proj.spec) == proj
    assert P.parse(str(proj)) == proj
    assert eval(repr(proj), {"Projection": P.Projection, "Uniform": P.Uniform}) == proj
    assert P.parse(proj) is proj
    assert proj.name == spec.split(":")[0]


def test_parse_is_case_and_whitespace_tolerant():
    assert P.parse("  Power : Beta = 0.5 ") == P.parse("power:beta=0.5")
    assert P.parse("POWER:beta=u( 0 , 2 )") == P.parse("power:beta=U(0,2)")
    assert P.parse("StochM:gamma=5e-1").params == {"gamma": 0.5}
    assert P.parse("power:beta=uniform(0,2)") == P.parse("power:beta=U(0,2)")


def test_stochastic_flags():
    for spec in ["sign", "round", "none", "power:beta=0.5", "power:beta=U(0,2)"]:
        assert not P.parse(spec).stochastic
    for spec in ["stoch", "stochm:gamma=0.5", "stochm3:gamma=0.5", "addnorm:sigma=0.1",
                 "multunif:gamma=0.5", "stochm_literal:gamma=0.5"]:
        assert P.parse(spec).stochastic


def test_projection_objects_call_the_functions(on):
    w = on(random_weights(8))
    np.testing.assert_array_equal(host(P.parse("sign")(w)), host(P.sign(w)))
    np.testing.assert_array_equal(host(P.parse("power:beta=0.5")(w)), host(P.power(w, 0.5)))
    np.testing.assert_array_equal(host(P.parse("stochm:gamma=0.5")(w, backend.make_rng(3))),
                                  host(P.stochm(w, 0.5, backend.make_rng(3))))
    np.testing.assert_array_equal(host(P.parse("addnorm:sigma=0.2")(w, backend.make_rng(3))),
                                  host(P.addnorm(w, 0.2, backend.make_rng(3))))


@pytest.mark.parametrize("bad, words", [
    ("sgn", ["unknown projection", "'sgn'"]),
    ("power", ["needs a value", "beta"]),
    ("power:gamma=0.5", ["no parameter", "'gamma'"]),
    ("power:beta=-1", ["beta"]),
    ("power:beta=abc", ["not a number"]),
    ("stochm:gamma=0", ["gamma"]),
    ("stochm:gamma=1.5", ["gamma"]),
    ("stochm:gamma=-0.2", ["gamma"]),
    ("multunif:gamma=2", ["gamma"]),
    ("addnorm:sigma=-0.1", ["sigma"]),
    ("addnorm:sigma=nan", ["sigma"]),
    ("power:beta=U(2,0)", ["U(low, high)"]),
    ("stochm:gamma=U(0,1)", ["gamma"]),
    ("power:beta", ["param=value"]),
    ("power:beta=1,beta=2", ["twice"]),
])
def test_bad_specs_list_the_valid_ones(bad, words):
    with pytest.raises(ValueError) as err:
        P.parse(bad)
    message = str(err.value)
    for word in words:
        assert word in message
    if "twice" not in words:
        for listed in ["sign", "round", "none", "power:beta", "stoch", "stochm:gamma",
                       "stochm3:gamma", "addnorm:sigma", "multunif:gamma"]:
            assert listed in message


def test_non_string_spec_rejected():
    with pytest.raises(ValueError, match="stochm:gamma"):
        P.parse(0.5)


def test_registry_and_available():
    assert set(P.REGISTRY) == {"sign", "round", "none", "power", "stoch", "stochm", "stochm3",
                               "stochm_literal", "stochm_alpha", "addnorm", "multunif"}
    listing = P.available()
    assert len(listing) == len(P.REGISTRY)
    assert any(line.startswith("stochm:gamma") for line in listing)
    assert P.REGISTRY["addnorm"].use == "test" and P.REGISTRY["sign"].use == "train, test"


def test_power_beta_uniform_is_drawn_once_per_minibatch():
    proj = P.parse("power:beta=U(0,2)")
    assert proj.random_params
    rng = backend.make_rng(9)
    betas = []
    for _ in range(300):                       # one sample() per minibatch
        step = proj.sample(rng)
        assert not step.random_params and step.name == "power"
        betas.append(step.params["beta"])
    betas = np.array(betas)
    assert np.all((betas >= 0) & (betas <= 2))
    assert len(np.unique(betas)) == len(betas)            # a new beta each minibatch
    assert abs(betas.mean() - 1.0) < 5 * (2 / np.sqrt(12 * len(betas)))
    # within a minibatch the sampled projection is fixed: same beta for every layer
    step = proj.sample(rng)
    w1, w2 = random_weights(10), random_weights(11, shape=(4, 6))
    beta = step.params["beta"]
    np.testing.assert_array_equal(step(w1), P.power(w1, beta))
    np.testing.assert_array_equal(step(w2), P.power(w2, beta))
    # same seed, same sequence of betas
    again = [proj.sample(r).params["beta"] for r in [backend.make_rng(9)] * 300]
    np.testing.assert_array_equal(again, betas)


def test_sample_of_fixed_projection_is_itself():
    proj = P.parse("stochm:gamma=0.5")
    assert proj.sample(backend.make_rng(0)) is proj


def test_unsampled_random_parameter_refuses_to_project():
    with pytest.raises(ValueError, match="sample"):
        P.parse("power:beta=U(0,2)")(random_weights())


def test_constructor_validates_like_parse():
    assert P.Projection("power", beta=0.5) == P.parse("power:beta=0.5")
    assert P.Projection("power", beta=P.Uniform(0, 2)) == P.parse("power:beta=U(0,2)")
    with pytest.raises(ValueError, match="gamma"):
        P.Projection("stochm", gamma=3)


# ---------------------------------------------------------------------------
# Property test: allowed states hold for arbitrary float32 tensors.
# ---------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(w=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                    elements=st.floats(-1e3, 1e3, width=32)),
       beta=st.floats(0, 3), gamma=st.floats(0.05, 1), seed=st.integers(0, 2**16))
def test_allowed_states_for_any_tensor(w, beta, gamma, seed):
    alpha = np.abs(w).max()
    rng = backend.make_rng(seed)
    tol = 1e-5 * max(alpha, 1e-30)
    assert set(np.unique(P.sign(w))) <= {alpha, -alpha}
    assert set(np.unique(P.round(w))) <= {alpha, -alpha, 0}
    assert set(np.unique(P.stoch(w, rng))) <= {alpha, -alpha}
    assert np.all(np.abs(P.power(w, beta)) <= alpha + tol)
    for out in (P.stochm(w, gamma, rng), P.stochm3(w, gamma, rng), P.multunif(w, gamma, rng)):
        assert out.dtype == np.float32 and not np.any(np.isnan(out))
        assert np.all(np.abs(out) <= alpha / gamma * (1 + 1e-5) + 1e-30)
