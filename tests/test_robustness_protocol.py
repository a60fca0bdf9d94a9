"""Merolla et al.'s test protocol, pinned down where a changed line would go unnoticed.

What this file proves, each against numbers computed independently of the code under test:

* Scoring a distortion (``robustness.score_distortion``) re-estimates batch norm **with the
  distorted weights in place** (the paper: "Batch norm parameters are re-computed on the
  training data for each distortion"): the running statistics the test set is scored with
  are those of P = Proj(W), not those of the clean W.
* Bits per weight of several layers (``bits.bits_report``) weight every layer by its number
  of weights: ``per_weight = Σ n_k·b_k / Σ n_k`` and the pooled noise power
  ``Q_n = Σ n_k·Q_n,k / Σ n_k`` (docs: PAPERS.md, section 4.1.2 of the paper).
* A sweep's ``bits_per_weight_empirical`` uses the noise power **averaged** over the K draws.
* A Power sweep's midpoint walks by default from β = 1 down towards β = 0 (Sign).

Networks are tiny (a 5-4-3 perceptron with batch norm) and data synthetic; every test takes
well under a second.
"""
import math

import numpy as np
import pytest

from tinyproj import backend, nn, robustness
from tinyproj.algorithm1 import weight_params
from tinyproj.data.sources import ArraySource
from tinyproj.robustness import bn_estimate, scoring
from tinyproj.robustness.bn_estimate import BNProtocol
from tinyproj.runs.folder import LoadedRun

H = backend.to_numpy            # a device array brought to the host (NumPy arrays unchanged)


def mlp(seed=0):
    """Linear(5→4) → BN → ReLU → Linear(4→3) → BN: two weight layers, two batch norms."""
    rng = backend.make_rng(seed)
    return nn.Sequential(nn.Linear(5, 4, rng=rng), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 3, rng=rng), nn.BatchNorm1d(3))


def source(n, seed):
    """n rows of 5 features (mean 2, spread 3) with labels 0…2."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 5)) * 3 + 2).astype(np.float32)
    return ArraySource(x, (np.arange(n) % 3).astype(np.int64))


def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def bn_stats(model):
    """[(running_mean, running_var)] of every batch-norm layer, host copies."""
    return [(H(m.running_mean).astype(np.float64).copy(),
             H(m.running_var).astype(np.float64).copy()) for m in bn_layers(model)]


def spy_on_scoring(monkeypatch):
    """Record the batch-norm statistics the model holds each time the test set is scored."""
    seen = []
    real = scoring.error_rate

    def spy(model, *args, **kwargs):
        seen.append(bn_stats(model))
        return real(model, *args, **kwargs)
    monkeypatch.setattr(scoring, "error_rate", spy)
    return seen


def assert_stats_close(got, want, rtol=1e-5, atol=1e-6):
    assert len(got) == len(want)
    for (gm, gv), (wm, wv) in zip(got, want):
        np.testing.assert_allclose(gm, wm, rtol=rtol, atol=atol)
        np.testing.assert_allclose(gv, wv, rtol=rtol, atol=atol)


def stats_differ(a, b):
    return any(not np.allclose(am, bm, rtol=1e-3) or not np.allclose(av, bv, rtol=1e-3)
               for (am, av), (bm, bv) in zip(a, b))


def power_by_hand(w, beta):
    w = w.astype(np.float64)
    alpha = np.abs(w).max()
    return alpha * np.abs(w / alpha) ** beta * np.sign(w)


def population_stats(model, x, weights):
    """The exact protocol over one pass of every row, written out: per BN layer the mean and
    unbiased variance of its input; inside the pass each BN normalises with the pass's own
    mean and biased variance. ``weights``: the two Linear weight matrices to use."""
    bn1, bn2 = bn_layers(model)
    h = x.astype(np.float64) @ weights[0].T
    z = (h - h.mean(0)) / np.sqrt(h.var(0) + bn1.eps) * H(bn1.weight.data) + H(bn1.bias.data)
    h2 = np.maximum(z, 0) @ weights[1].T
    return [(h.mean(0), h.var(0, ddof=1)), (h2.mean(0), h2.var(0, ddof=1))]


# ---------------------------------------------------------------------------------------------
# Batch norm is re-estimated with the distorted weights in place
# ---------------------------------------------------------------------------------------------
def test_power_distortion_is_scored_with_bn_statistics_of_the_distorted_weights(monkeypatch):
    model, train, test = mlp(), source(300, 1), source(60, 2)
    seen = spy_on_scoring(monkeypatch)
    W = [H(p.data).astype(np.float64) for p in weight_params(model).values()]
    beta = 0.25                                   # far from β = 1: the statistics move a lot
    robustness.score_distortion(model, train, test, f"power:beta={beta}", bn=BNProtocol())
    assert len(seen) == 1
    distorted = population_stats(model, train.x, [power_by_hand(w, beta) for w in W])
    clean = population_stats(model, train.x, W)
    assert stats_differ(distorted, clean)         # the test can tell the two apart
    assert_stats_close(seen[0], distorted)
    assert stats_differ(seen[0], clean)


def test_addnorm_draws_are_scored_with_bn_statistics_reestimated_on_their_noisy_weights(
        monkeypatch):
    model, train, test = mlp(), source(300, 3), source(60, 4)
    spec, seed, draws = "addnorm:sigma=1", 5, 2
    seen = spy_on_scoring(monkeypatch)
    robustness.score_distortion(model, train, test, spec, draws=draws, seed=seed,
                                bn=BNProtocol())
    assert len(seen) == draws
    # the same draw, redone through the public API on a twin network: distort, then re-estimate
    twin = mlp()
    twin.load_state_dict(model.state_dict())
    for d in range(draws):
        noise_rng, bn_rng = robustness.draw_generators(seed, spec, None, d)
        with robustness.distorted_weights(twin, spec, noise_rng):
            bn_estimate.reestimate(twin, train, BNProtocol(), bn_rng)
        expected = bn_stats(twin)
        _, bn_rng = robustness.draw_generators(seed, spec, None, d)
        bn_estimate.reestimate(twin, train, BNProtocol(), bn_rng)     # clean W
        clean = bn_stats(twin)
        assert stats_differ(expected, clean)
        assert_stats_close(seen[d], expected)
        assert stats_differ(seen[d], clean), f"draw {d} scored with the clean statistics"


# ---------------------------------------------------------------------------------------------
# Bits per weight: layers weighted by their number of weights
# ---------------------------------------------------------------------------------------------
# a small layer (4 weights, Q_w = 1) with little information and a big one (400 weights,
# Q_w = 4) with a lot: unweighted averages land far from the weighted ones
SMALL = np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=np.float32)
BIG = np.where(np.arange(400).reshape(20, 20) % 2, 2.0, -2.0).astype(np.float32)
NOISE = {"small": 1.0, "big": 0.25}
B_SMALL = 0.5 * math.log2(1 + 1.0 / 1.0)            # 0.5
B_BIG = 0.5 * math.log2(1 + 4.0 / 0.25)             # ½·log2 17 ≈ 2.04


def test_per_weight_bits_weight_each_layer_by_its_number_of_weights():
    rep = robustness.bits_report({"small": SMALL, "big": BIG}, NOISE)
    assert rep.per_layer == pytest.approx({"small": B_SMALL, "big": B_BIG})
    want = (4 * B_SMALL + 400 * B_BIG) / 404
    assert rep.per_weight == pytest.approx(want, rel=1e-12)
    assert rep.as_json()["bits_per_weight"] == pytest.approx(want, rel=1e-12)
    assert abs(rep.per_weight - (B_SMALL + B_BIG) / 2) > 0.5     # not the plain layer mean


def test_pooled_bits_pool_signal_and_noise_power_by_number_of_weights():
    rep = robustness.bits_report({"small": SMALL, "big": BIG}, NOISE)
    q_w = (4 * 1.0 + 400 * 4.0) / 404
    q_n = (4 * 1.0 + 400 * 0.25) / 404
    want = 0.5 * math.log2(1 + q_w / q_n)
    assert rep.pooled == pytest.approx(want, rel=1e-12)
    assert rep.as_json()["bits_per_weight_pooled"] == pytest.approx(want, rel=1e-12)
    # AddNorm(σ) through the same report: Q_n,k = (α_k·σ)², α = 1 and 2
    sigma = 0.5
    add = robustness.addnorm_bits({"small": SMALL, "big": BIG}, sigma)
    q_n = (4 * (1 * sigma) ** 2 + 400 * (2 * sigma) ** 2) / 404
    assert add.pooled == pytest.approx(0.5 * math.log2(1 + q_w / q_n), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# A sweep's empirical bits: the noise power averaged over the K draws
# ---------------------------------------------------------------------------------------------
def test_empirical_bits_of_a_sweep_use_the_noise_power_averaged_over_draws(tmp_path):
    model, train, test = mlp(), source(60, 5), source(30, 6)
    model.eval()                                  # as load_run gives it
    run = LoadedRun(None, model, train, None, test, {}, tmp_path)
    sigma, seed, draws = 0.5, 0, 3
    rows = robustness.run_sweep(run, "addnorm", [sigma], draws=draws, seed=seed, bn_batches=0,
                                progress=False)
    assert len(rows) == 1 and rows[0]["draws"] == draws
    # the K draws' noise, measured by hand: mean((P − W)²) per layer, averaged over draws
    spec = robustness.get_distortion("addnorm").spec(sigma)
    clean = {n: H(p.data).astype(np.float64) for n, p in weight_params(model).items()}
    noise = {n: [] for n in clean}
    for d in range(draws):
        rng, _ = robustness.draw_generators(seed, spec, None, d)
        with robustness.distorted_weights(model, spec, rng) as P:
            for n in clean:
                noise[n].append(np.mean((H(P[n]).astype(np.float64) - clean[n]) ** 2))
    assert all(len(set(v)) == draws for v in noise.values())     # the draws do differ
    bits = {n: 0.5 * math.log2(1 + np.mean(clean[n] ** 2) / np.mean(noise[n])) for n in clean}
    sizes = {n: clean[n].size for n in clean}
    want = sum(sizes[n] * bits[n] for n in clean) / sum(sizes.values())
    assert rows[0]["bits_per_weight_empirical"] == pytest.approx(want, rel=1e-9)
    # and it agrees with the exact AddNorm bits of the row (about, from 3 small draws)
    assert rows[0]["bits_per_weight_empirical"] == pytest.approx(rows[0]["bits_per_weight"],
                                                                 rel=0.5)


# ---------------------------------------------------------------------------------------------
# Power midpoints walk towards Sign by default
# ---------------------------------------------------------------------------------------------
def test_power_midpoint_walks_down_from_beta_one_towards_sign_by_default():
    # clean 0.1 at β = 1, chance 0.9: threshold 0.5. Down: 0.3 at β = 0.5, 0.9 at β = 0, so
    # the crossing is at 0.5 − 0.5·(0.2/0.6) = 1/3. Up: 0.8 at β = 1.5, crossing at
    # 1 + 0.5·(0.4/0.7) = 9/7.
    curve = [(0.0, 0.9), (0.5, 0.3), (1.0, 0.1), (1.5, 0.8), (2.0, 0.9)]
    rows = [{"distortion": "power", "layer": None, "level": b, "error_mean": e,
             "chance_error": 0.9} for b, e in curve]
    m = robustness.midpoints(rows)[None]
    assert m.side == "down" and m.clean_error == 0.1 and m.threshold == pytest.approx(0.5)
    assert m.level == pytest.approx(1 / 3)
    up = robustness.midpoints(rows, side="up")[None]
    assert up.side == "up" and up.level == pytest.approx(9 / 7)
