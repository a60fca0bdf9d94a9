"""Edges of the data pipeline, the evaluation and the Walking Noise injection that the other
files leave open, each pinned to its formula without the real datasets:

- the paper's CIFAR-10 preprocessing: GCN (norm 55) of *both* sets, then ZCA (filter_bias 0.1)
  fit on the GCN'd *training* images only, as load_dataset's defaults; each dataset's default
  normalization; train_subset keeps the *first* N images;
- the validation split of a run: the last val_size training images, and not trained on;
- ImageNet's normalization in RGB order (the torchvision constants);
- top-k error: ties count in the label's favour; a ``limit`` divides by the images scored;
  scoring is in evaluation mode whatever mode the model is in;
- noise: combined add-mul with r = 1 is still additive noise; network repeats are for
  evaluation only; the walk's "reestimate" protocol re-estimates batch norm *with* the noise;
- dynamics: weight_stats' std is the std of the signed weights.
"""
import importlib
import math

import numpy as np
import pytest

import tinyproj as tp
from tinyproj import backend, models, nn
from tinyproj import walking_noise as wn
from tinyproj.data.dataset import check_preprocess
from tinyproj.data.imagenet import normalize_imagenet
from tinyproj.data.sources import ArraySource
from tinyproj.runs.build import build_data
from tinyproj.runs.config import make_config
from tinyproj.runs.evaluation import error_rates
from tinyproj.tensor import no_grad

from _helpers import FixedScores


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, tp.Tensor) else a)


# --- preprocessing and dataset defaults --------------------------------------------------------
def _gcn_zca_by_hand(train, test, scale=55.0, bias=0.1):
    """GCN per image: x ← x − mean(x), x ← scale · x / ‖x‖₂ (both sets); ZCA from the GCN'd
    training rows only: μ = mean, Σ = (X − μ)ᵀ(X − μ)/N + bias·I = V diag(λ) Vᵀ,
    W = V diag(λ^−½) Vᵀ, out = (X − μ) W."""
    def gcn(x):
        x = x.reshape(len(x), -1).astype(np.float64)
        x = x - x.mean(axis=1, keepdims=True)
        return scale * x / np.linalg.norm(x, axis=1, keepdims=True)
    g_train, g_test = gcn(train), gcn(test)
    mu = g_train.mean(axis=0)
    cov = (g_train - mu).T @ (g_train - mu) / len(g_train) + bias * np.eye(g_train.shape[1])
    lam, v = np.linalg.eigh(cov)
    w = (v / np.sqrt(lam)) @ v.T
    return ((g_train - mu) @ w).reshape(train.shape), ((g_test - mu) @ w).reshape(test.shape)


def test_gcn_zca_defaults_gcn_both_sets_and_fit_zca_on_the_training_set_only():
    opts = dict(n_train=60, n_test=25, shape=(3, 4, 4), seed=3)
    raw = tp.data.load_dataset("synthetic", preprocess="none", **opts)
    # test images shifted and scaled: GCN must undo that, and a ZCA fit on train + test
    # (not on train alone) would centre on another mean
    shifted = raw.x_test * 3.0 + 2.0
    want_train, want_test = _gcn_zca_by_hand(raw.x_train, shifted)
    got_train, got_test = tp.data.gcn_zca(raw.x_train, shifted)
    np.testing.assert_allclose(got_train, want_train, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_test, want_test, rtol=1e-4, atol=1e-4)
    # load_dataset's defaults are the paper's: gcn_scale 55, zca_filter_bias 0.1
    ds = tp.data.load_dataset("synthetic", preprocess="gcn_zca", cache=False, **opts)
    want_train, want_test = _gcn_zca_by_hand(raw.x_train, raw.x_test)
    np.testing.assert_allclose(ds.x_train, want_train, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ds.x_test, want_test, rtol=1e-4, atol=1e-4)


def test_each_dataset_has_its_papers_default_normalization():
    # Merolla: CIFAR-10 GCN + ZCA; Walking Noise: MNIST [0, 1], SVHN per-channel mean/std
    want = {"cifar10": "gcn_zca", "mnist": "scale", "fashion-mnist": "scale", "svhn": "meanstd",
            "synthetic": "none"}
    assert {name: check_preprocess(name, "default") for name in want} == want


def test_train_subset_keeps_the_first_images():
    opts = dict(n_train=50, n_test=10, shape=(1, 4, 4), seed=1)
    full = tp.data.load_dataset("synthetic", **opts)
    part = tp.data.load_dataset("synthetic", train_subset=20, **opts)
    np.testing.assert_array_equal(part.x_train, full.x_train[:20])
    np.testing.assert_array_equal(part.y_train, full.y_train[:20])
    np.testing.assert_array_equal(part.x_test, full.x_test)          # the test set stays whole


def test_a_runs_validation_images_are_the_last_ones_and_not_trained_on():
    ds = tp.data.load_dataset("synthetic")                            # 1000 training images
    cfg = make_config("tr-none-nc", dataset="synthetic", width=1 / 16, val_size=100)
    train, val, _, _, _ = build_data(cfg)
    assert len(train) == 900 and len(val) == 100
    np.testing.assert_array_equal(val.x, ds.x_train[900:])
    np.testing.assert_array_equal(train.x, ds.x_train[:900])
    # train_subset counts among the images left after the split
    cfg = make_config("tr-none-nc", dataset="synthetic", width=1 / 16, val_size=100,
                      train_subset=50)
    train, val, _, _, _ = build_data(cfg)
    np.testing.assert_array_equal(train.x, ds.x_train[:50])
    np.testing.assert_array_equal(val.x, ds.x_train[900:])


def test_imagenet_normalization_is_per_rgb_channel_with_the_torchvision_constants():
    # (p − 255·mean_c) / (255·std_c), mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)
    pixels = np.zeros((1, 3, 2, 2), np.uint8)
    pixels[0, 0], pixels[0, 1], pixels[0, 2] = 200, 100, 50           # R, G, B
    got = _host(normalize_imagenet(pixels))
    want = [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12, (50 - 103.53) / 57.375]
    np.testing.assert_allclose(got[0, :, 0, 0], want, rtol=1e-5)


# --- evaluation --------------------------------------------------------------------------------
def _source(n):
    return ArraySource(np.arange(n, dtype=np.float32)[:, None], np.zeros(n, np.int64))


def test_top5_ties_count_in_the_labels_favour():
    # rank = #{j : s_j > s_label}; a tie with the label does not push it down
    scores = np.zeros((2, 10), np.float32)          # example 0: all ten tied -> rank 0
    scores[1, 1:6] = 1.0                            # example 1: five beat the label -> rank 5
    rates = error_rates(FixedScores(scores), _source(2), batch_size=2, top=(1, 5))
    assert rates[5] == 0.5


def test_error_rate_with_a_limit_is_over_the_images_scored():
    # every example wrong (label 0 scores lowest): the first 3 of 10 scored, 3 / 3 wrong
    scores = np.tile(np.arange(10, dtype=np.float32), (10, 1))
    rates = error_rates(FixedScores(scores), _source(10), batch_size=2, limit=3, top=(1, 5))
    assert rates == {1: 1.0, 5: 1.0}


def test_error_rates_score_in_evaluation_mode_and_restore_the_mode():
    model = models.mlp_tfc(bn=True, rng=backend.make_rng(0))
    src = ArraySource(np.random.default_rng(0).random((60, 1, 28, 28)).astype(np.float32),
                      np.arange(60) % 10)
    model.eval()
    want = error_rates(model, src, batch_size=7)
    stats = {k: _host(v).copy() for k, v in model.state_dict().items()}
    model.train()
    assert error_rates(model, src, batch_size=7) == want     # running statistics, not batch's
    assert model.training
    for k, v in model.state_dict().items():                   # the statistics untouched
        np.testing.assert_array_equal(_host(v), stats[k])


# --- noise -------------------------------------------------------------------------------------
def test_combined_add_then_multiply_with_ratio_one_is_additive_noise():
    # r = 1: σ_add = A, σ_mul = 0, so y = (x + A·z)·1 = x + A·z
    spec = wn.parse_noise("combined:ratio=1,order=add-mul", sigma=0.5)
    assert (spec.sigma_add, spec.sigma_mul) == (0.5, 0.0)
    x = backend.xp().full(100_000, 2.0, dtype=np.float32)
    d = _host(wn.apply_noise(x, spec, backend.make_rng(0))) - 2.0
    assert abs(d.mean()) < 0.01 and d.std() == pytest.approx(0.5, rel=0.02)


def _identity_net():
    """input, fc (identity weights, no bias), relu: the logits are relu(x)."""
    lin = nn.Linear(4, 4, bias=False, rng=backend.make_rng(0))
    lin.weight.data[...] = backend.asarray(np.eye(4, dtype=np.float32))
    return nn.Sequential(lin, nn.ReLU())


def test_network_repeats_average_evaluation_passes_only():
    # repeat_at="network", N = 16 at the logits: evaluation Var = σ²/N, training Var = σ²
    x = backend.asarray(np.full((20_000, 4), 3.0, dtype=np.float32))
    spec = wn.NoiseSpec("additive", 1.0, train=True, eval=True, repeats=16)
    noisy = wn.NoisyModel(_identity_net(), backend.make_rng(0)).set_noise(spec, sites=[2])
    with no_grad():
        noisy.train()
        in_training = _host(noisy(x)) - 3.0
        noisy.eval()
        in_evaluation = _host(noisy(x)) - 3.0
    assert in_training.std() == pytest.approx(1.0, rel=0.03)
    assert in_evaluation.std() == pytest.approx(0.25, rel=0.03)


def test_walk_reestimates_batchnorm_with_the_noise_on(monkeypatch):
    # additive σ = 10 at the input: fc1's outputs gain variance σ²·‖w_row‖² (≈ 33 for
    # U(±1/√784) weights), so the re-estimated bn1 variance must dwarf the clean one
    walk_module = importlib.import_module("tinyproj.walking_noise.walk")   # not wn.walk
    model = models.mlp_tfc(bn=True, rng=backend.make_rng(0)).eval()
    src = ArraySource(np.random.default_rng(0).random((40, 1, 28, 28)).astype(np.float32),
                      np.arange(40) % 10)
    bn1 = dict(model.named_children())["bn1"]
    seen = []
    real = walk_module.error_rate

    def spy(m, *args, **kwargs):
        seen.append(float(_host(bn1.running_var).mean()))      # what the scoring uses
        return real(m, *args, **kwargs)

    monkeypatch.setattr(walk_module, "error_rate", spy)
    wn.walk(model, src, src, "additive", [1e-6, 10.0], sites=["input"],
            bn_protocol="reestimate", bn_batches=2, bn_batch_size=20, progress=False)
    clean, noisy = seen
    assert noisy > 30 * clean


# --- dynamics ----------------------------------------------------------------------------------
def test_weight_stats_std_is_of_the_signed_weights():
    # w = ±0.7: mean |w| = 0.7, and std(w) = 0.7·sqrt(1 − mean(sign)²), not std(|w|) = 0
    layer = nn.Linear(50, 40, bias=False, rng=backend.make_rng(0))
    signs = np.where(np.random.default_rng(0).random((40, 50)) < 0.5, -1.0, 1.0)
    layer.weight.data[...] = backend.asarray(0.7 * signs)
    stats = wn.weight_stats(nn.Sequential({"fc1": layer}))["fc1"]
    assert stats["std"] == pytest.approx(0.7 * math.sqrt(1 - signs.mean() ** 2), rel=1e-5)
