"""Walking Noise, the cross-robustness table, the graph fallback and the stand-in's counters:
behaviour that mutation testing found unguarded (each test fails under a small plausible bug
that the other tests let through). Fast: tiny models, no dataset."""
import numpy as np
import pytest

from tinyproj import backend, models, nn
from tinyproj import walking_noise as wn
from tinyproj.data.sources import ArraySource
from tinyproj.runs.evaluation import error_rate
from tinyproj.tensor import no_grad
from tinyproj.walking_noise import dynamics as dyn


def _host(a):
    return backend.to_numpy(getattr(a, "data", a))


def _source(n, classes=10, seed=1, shape=(1, 28, 28)):
    rng = np.random.default_rng(seed)
    return ArraySource(rng.random((n, *shape)).astype(np.float32),
                       (np.arange(n) % classes).astype(np.int64))


# --- noise.py ----------------------------------------------------------------------------------
def test_parse_noise_reads_false_train_and_eval_flags():
    s = wn.parse_noise("additive:train=false,eval=no", sigma=0.1)
    assert (s.train, s.eval) == (False, False)
    s = wn.parse_noise("additive:train=on,eval=0", sigma=0.1)
    assert (s.train, s.eval) == (True, False)


def test_apply_noise_at_sigma_zero_returns_a_copy_not_the_input():
    x = backend.xp().ones((3, 4), dtype=np.float32)
    y = wn.apply_noise(x, wn.NoiseSpec("additive", 0.0), backend.make_rng(0))
    assert y is not x
    np.testing.assert_array_equal(_host(y), _host(x))


# --- sites.py ----------------------------------------------------------------------------------
def test_global_noise_all_includes_the_input_site():
    model = models.mlp_tfc(rng=backend.make_rng(0)).eval()
    noisy = wn.NoisyModel(model, backend.make_rng(1))
    assert noisy.resolve_sites("all") == list(range(8))
    assert noisy.resolve_sites(None) == list(range(8))
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    noisy.set_noise(wn.NoiseSpec("additive", 1.0), "all").eval()
    with no_grad():
        first = _host(noisy.site_outputs(x)[0])
    assert first.std() > 0.5                     # the input itself got N(0, 1)


# --- walk.py / walk_points.py -------------------------------------------------------------------
def _walk_spec(kind, sigma):
    return wn.parse_noise(kind).replace(sigma=sigma, train=False, eval=True, repeats=1)


def _expected_accuracy(model, src, kind, site, sigma, seed=0):
    """The accuracy of one walk point recomputed by hand: the point's own generator, noise at
    the point's sites ("all" for -1, "all-no-bn" for -2), evaluation mode."""
    spec = _walk_spec(kind, sigma)
    noise_rng, _ = wn.point_generators(seed, spec.with_sigma(0.0), site, sigma)
    noisy = wn.NoisyModel(model, noise_rng)
    where = {-1: "all", -2: "all-no-bn"}.get(site, [site])
    noisy.set_noise(spec, where)
    return 1.0 - error_rate(noisy, src, 500)


def test_walk_all_no_bn_point_has_no_noise_after_batch_norm():
    model = models.mlp_tfc(bn=True, rng=backend.make_rng(0)).eval()
    src = _source(60)
    (row,) = wn.walk(model, None, src, "multiplicative", [3.0], sites="all-no-bn", seed=0,
                     progress=False)
    want = _expected_accuracy(model, src, "multiplicative", -2, 3.0)
    assert row["accuracy"] == pytest.approx(want, abs=1e-12)
    (glob,) = wn.walk(model, None, src, "multiplicative", [3.0], sites="all", seed=0,
                      progress=False)
    assert glob["accuracy"] == pytest.approx(_expected_accuracy(model, src, "multiplicative",
                                                                -1, 3.0), abs=1e-12)


def test_walk_row_chance_is_one_over_the_number_of_classes():
    model = nn.Sequential({"fc1": nn.Linear(12, 5, rng=backend.make_rng(0))}).eval()
    src = ArraySource(np.random.default_rng(0).random((20, 12)).astype(np.float32),
                      (np.arange(20) % 5).astype(np.int64))
    (row,) = wn.walk(model, None, src, "additive", [1.0], sites=["fc1"], progress=False)
    assert row["chance"] == pytest.approx(0.2)


def test_walk_of_a_noisy_model_restores_its_noise_setting():
    model = models.mlp_tfc(rng=backend.make_rng(0)).eval()
    rng = backend.make_rng(5)
    noisy = wn.NoisyModel(model, rng).set_noise(wn.NoiseSpec("additive", 0.3), ["relu2"])
    spec_before, active_before = noisy.spec, noisy.active
    wn.walk(noisy, None, _source(20), "multiplicative", [1.0], sites=["fc1"], progress=False)
    assert noisy.spec == spec_before and noisy.active == active_before and noisy.rng is rng


def test_check_sigmas_drops_repeats_and_a_walk_measures_each_sigma_once():
    assert wn.check_sigmas("1,0.1,1") == [1.0, 0.1]
    assert wn.check_sigmas([0.0, 0, 1], allow_zero=True) == [0.0, 1.0]
    model = nn.Sequential({"fc1": nn.Linear(12, 5, rng=backend.make_rng(0))}).eval()
    src = ArraySource(np.random.default_rng(0).random((20, 12)).astype(np.float32),
                      (np.arange(20) % 5).astype(np.int64))
    rows = wn.walk(model, None, src, "additive", [1.0, 0.1, 1.0], sites=["fc1"], progress=False)
    assert [r["sigma"] for r in rows] == [1.0, 0.1]


def test_each_grid_point_draws_from_its_own_generator():
    spec = _walk_spec("additive", 0.0)
    def draw(site, sigma, seed=0):
        g, _ = wn.point_generators(seed, spec, site, sigma)
        return _host(g.standard_normal(8))
    base = draw(1, 1.0)
    np.testing.assert_array_equal(base, draw(1, 1.0))       # reproducible
    for other in (draw(2, 1.0), draw(1, 10.0), draw(1, 1.0, seed=1), draw(-1, 1.0)):
        assert not np.array_equal(base, other)               # site, σ and seed all matter


# --- tables.py ----------------------------------------------------------------------------------
def _row(seed, sigma, acc, site=1, **extra):
    return dict({"site": site, "site_name": "fc1", "noise": "additive", "ratio": None,
                 "sigma": sigma, "bn_protocol": "running", "bn_batches": 0, "repeats": 1,
                 "seed": seed, "test_subset": None, "accuracy": acc, "chance": 0.1,
                 "n_test": 100}, **extra)


def test_midpoints_table_max_accuracy_is_the_mean_over_seeds():
    rows = [_row(0, s, a) for s, a in zip([0.1, 1, 10], [0.9, 0.5, 0.1])]
    rows += [_row(1, s, a) for s, a in zip([0.1, 1, 10], [0.7, 0.5, 0.1])]
    (entry,) = wn.midpoints_table(rows)
    assert entry["max_accuracy"] == pytest.approx(0.8)


def test_midpoints_table_uses_the_rows_chance_accuracy():
    # 2 classes: chance 0.5, threshold 0.5 + (0.9 − 0.5)/2 = 0.7, crossed at σ = 1 exactly
    rows = [dict(_row(0, s, a), chance=0.5) for s, a in zip([0.1, 1, 10], [0.9, 0.7, 0.5])]
    (entry,) = wn.midpoints_table(rows)
    assert entry["threshold"] == pytest.approx(0.7)
    assert entry["midpoint_sigma"] == pytest.approx(1.0)


def test_midpoints_table_flags_beyond_grid_when_some_seed_is_beyond():
    rows = [_row(0, s, a) for s, a in zip([0.1, 1, 10], [0.9, 0.5, 0.1])]   # crosses at 1
    rows += [_row(1, s, a) for s, a in zip([0.1, 1, 10], [0.9, 0.9, 0.8])]  # never crosses
    (entry,) = wn.midpoints_table(rows)
    assert entry["beyond_grid"] is True
    assert (entry["n_midpoints"], entry["n_beyond"]) == (1, 1)
    assert entry["midpoint_sigma"] == pytest.approx(1.0)


# --- dynamics.py --------------------------------------------------------------------------------
def test_share_near_max_is_strictly_above_the_fraction():
    w = np.array([0.9, 1.0, -0.5, 0.2])
    assert dyn.share_near_max(w) == pytest.approx(0.25)          # 0.9 = 0.9·max: not counted
    assert dyn.magnitude_histogram(w, bins=10)[-1] == pytest.approx(dyn.share_near_max(w))


# --- setups.py ----------------------------------------------------------------------------------
def test_authors_setup_outside_their_datasets_takes_mnist_epochs_per_model():
    from tinyproj.walking_noise.setups import setup_settings
    assert setup_settings("authors", "mlp_tfc", "synthetic")["epochs"] == 100
    assert setup_settings("authors", "lenet5", "synthetic")["epochs"] == 50


# --- noisy_training.py --------------------------------------------------------------------------
def test_train_noisy_scores_the_noisy_test_accuracy_with_the_training_noise_on():
    src, test = _source(60, seed=2), _source(60, seed=3)
    spec = "additive:sigma=3"
    model, rows = wn.train_noisy("mlp_tfc", src, spec, sites=["input"], epochs=1,
                                 batch_size=30, seed=4, test_source=test,
                                 record_dynamics=False)
    last = rows[-1]
    checker = wn.NoisyModel(model, backend.make_rng([4, 21, last["epoch"]]))
    checker.set_noise(wn.parse_noise(spec).replace(train=True, eval=True), ["input"])
    want = 1.0 - error_rate(checker, test, 500)
    assert last["test_accuracy_noisy"] == pytest.approx(want, abs=1e-12)
    assert last["test_accuracy_noisy"] != last["test_accuracy"]


# --- experiments --------------------------------------------------------------------------------
def test_noisy_regimes_train_with_noise_at_every_site(monkeypatch):
    from tinyproj.experiments import CrossData, regimes
    seen = {}

    def fake_train_noisy(name, train, spec, sites="all", **kw):
        seen.update(name=name, spec=spec, sites=sites)
        return models.mlp_tfc(rng=backend.make_rng(0)), []

    monkeypatch.setattr(regimes, "train_noisy", fake_train_noisy)
    regime = regimes.Regime("noisy-additive", "noisy", noise="additive:sigma=0.5")
    regimes.train_regime(regime, CrossData(train=_source(10), test=_source(10)), epochs=1)
    assert seen["sites"] == "all"
    assert seen["spec"].train and not seen["spec"].eval and seen["spec"].sigma == 0.5


def test_cross_table_recalibrates_batch_norm_only_when_asked(monkeypatch):
    import contextlib
    from tinyproj.experiments import CrossData, Perturbation, cells, cross_table
    calls = []
    monkeypatch.setattr(cross_table, "reestimate", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(cross_table, "saved_batchnorm_stats",
                        lambda model: contextlib.nullcontext())
    monkeypatch.setattr(cross_table, "error_rate", lambda *a, **k: 0.1)
    monkeypatch.setattr(cells, "walk", lambda model, tr, te, kind, sigmas, **k: [
        {"site": -1, "sigma": s, "accuracy": 0.9 if s < 1 else 0.1} for s in sigmas])
    model = models.mlp_tfc(bn=True, rng=backend.make_rng(0))
    pert = [Perturbation("act-add", "activation", "additive", (0.1, 10.0))]
    data = CrossData(train=_source(10), test=_source(10))
    cross_table.cross_robustness({"m": model}, pert, data, recalibrate_bn=False,
                                 progress=False, bn_batches=2)
    assert calls == []
    cross_table.cross_robustness({"m": model}, pert, data, recalibrate_bn=True,
                                 progress=False, bn_batches=2)
    assert calls == [1]


# --- graphs.py ------------------------------------------------------------------------------------
@pytest.fixture
def standin_backend():
    previous = backend.name()
    backend.use("standin")
    yield
    backend.use(previous)


def test_a_repeated_signature_fallback_is_printed_once(standin_backend):
    from tinyproj import graphs, standin
    x = standin.asarray(np.arange(3.0))
    said = []
    step = graphs.capture_step(lambda: (x * 2,), mode="on", log=said.append)
    for _ in range(3):                     # two warm-up steps, then the capture
        step(signature=8)
    assert step.kind == "standin"
    for _ in range(3):                     # partial batches: eager, the reason said once
        (out,) = step(signature=5)
    assert len(said) == 1 and "signature 5" in said[0] and step.reasons == [said[0][12:-1]]
    np.testing.assert_array_equal(backend.to_numpy(out), [0.0, 2.0, 4.0])
    step(signature=8)
    assert step.replays == 1


# --- tables.py: one noisy-trained network's walk ------------------------------------------------
def test_a_noisy_networks_walk_is_one_curve_even_where_sigma_equals_train_sigma():
    """`walk --train-noise 1` tags every row train_sigma=1; the row at σ = 1 is one of its
    points, not a network of the train-at-σ protocol (a second, one-point curve)."""
    sig, acc = [0.1, 0.316228, 1.0, 3.16228, 10.0], [0.95, 0.93, 0.80, 0.40, 0.12]
    rows = [_row(0, s, a, train_sigma=1.0, clamp=None) for s, a in zip(sig, acc)]
    table = wn.midpoints_table(rows)
    assert len(table) == 1
    # threshold 0.525, crossed between σ = 1 (0.80) and 10^0.5 (0.40): 0.6875 of a half decade
    assert table[0]["midpoint_sigma"] == pytest.approx(10 ** (0.6875 * 0.5), rel=1e-6)
    protocol = [dict(r, protocol="train-at-sigma", train_sigma=r["sigma"]) for r in rows]
    (curve,) = wn.midpoints_table(protocol)      # one network per σ: still one curve
    assert curve["train_sigma"] == wn.SAME_SIGMA
    assert curve["midpoint_sigma"] == pytest.approx(table[0]["midpoint_sigma"])


# --- standin ----------------------------------------------------------------------------------------
def test_standin_counts_host_values_and_host_indices_as_copies(standin_backend):
    from tinyproj import standin
    a = standin.asarray(np.zeros(4))
    with standin.counting() as c:
        a[1:3] = np.ones(2)                      # host values go up first
    assert (c.copies, c.syncs) == (1, 0)
    with standin.counting() as c:
        b = a[np.array([0, 2])]                  # a host index array goes up
    assert (c.copies, c.syncs) == (1, 0) and b.shape == (2,)
    with pytest.raises(standin.CaptureError, match="setitem"):
        with standin.capture_check("t"):
            a[0:2] = np.ones(2)
    with pytest.raises(standin.CaptureError, match="host index array"):
        with standin.capture_check("t"):
            a[np.array([1])]


def test_standin_generator_draws_count_one_launch_each(standin_backend):
    from tinyproj import standin
    g = standin.random.default_rng(0)
    with standin.counting() as c:
        z = g.standard_normal(5)
        g.random(2)
    assert (c.launches, c.syncs, c.copies) == (2, 0, 0)
    assert c.ops == {"random.standard_normal": 1, "random.random": 1}
    assert type(z) is standin.DeviceArray
