"""Batch-norm re-estimation for the test protocol (robustness/bn_estimate.py, issue 13 item 4):
exact float64 population statistics over a full pass, in grouped passes; the old 20 × 50
protocol still selectable; launches counted on the stand-in."""
import numpy as np
import pytest

from tinyproj import backend, models, nn, standin
from tinyproj.cli import main
from tinyproj.errors import UserError
from tinyproj.robustness import bn_estimate, score_distortion
from tinyproj.robustness.bn_estimate import BNProtocol, parse_bn_images, reestimate_exact
from tinyproj.runs.evaluation import reestimate_batchnorm


class Source:
    """A training set in memory: ``len()`` and ``.batch(indices) -> (x, y)``."""

    def __init__(self, x, y=None):
        self.x = x
        self.y = np.zeros(len(x), dtype=np.int64) if y is None else y

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        idx = backend.to_numpy(idx)            # on the stand-in the permutation is on the device
        return backend.asarray(self.x[idx]), backend.asarray(self.y[idx])


H = backend.to_numpy            # a device array brought to the host (NumPy arrays unchanged)


def mlp():
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3),
                         nn.BatchNorm1d(3))


def data(n=1001, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 5)) * 3 + 2).astype(np.float32)


def first_layer_input(model, x):
    return x.astype(np.float64) @ H(model[0].weight.data).T.astype(np.float64)


@pytest.mark.parametrize("pass_size", [1001, 100, 7])
def test_first_layer_gets_the_population_mean_and_unbiased_variance(pass_size):
    model, x = mlp(), data()
    used = reestimate_exact(model, Source(x), pass_size=pass_size, rng=backend.make_rng(0))
    h = first_layer_input(model, x)
    assert used == len(x)
    np.testing.assert_allclose(H(model[1].running_mean), h.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H(model[1].running_var), h.var(0, ddof=1), rtol=1e-6)


def test_one_pass_gives_the_second_layer_the_statistics_of_its_population_input():
    model, x = mlp(), data(500)
    reestimate_exact(model, Source(x), pass_size=500, rng=backend.make_rng(1))
    h = first_layer_input(model, x)
    bn = model[1]
    z = (h - h.mean(0)) / np.sqrt(h.var(0) + bn.eps) * H(bn.weight.data) + H(bn.bias.data)
    h2 = np.maximum(z, 0) @ H(model[3].weight.data).T.astype(np.float64)
    np.testing.assert_allclose(H(model[4].running_mean), h2.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(H(model[4].running_var), h2.var(0, ddof=1), rtol=1e-4)


def batches_with_their_own_means(batches=20, size=50, seed=0):
    """Rows in batches of ``size``, each batch around its own random mean (spread 3 in every
    direction, 1 within a batch): whatever the weights, every channel's total variance is
    about 10× its variance within a batch."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((batches, 5)) * 3
    return (np.repeat(means, size, axis=0) + rng.standard_normal((batches * size, 5))
            ).astype(np.float32)


def test_exact_counts_the_spread_between_batches_the_old_average_misses():
    """Every 50-image batch has its own mean. The exact variance is the total variance; the
    old average of within-batch variances is far smaller."""
    x = batches_with_their_own_means()
    src = Source(x)
    exact, old = mlp(), mlp()
    old.load_state_dict(exact.state_dict())
    reestimate_exact(exact, src, pass_size=50, rng=backend.make_rng(0))
    # the old protocol on all 20 batches of 50 in file order (identity "permutation")
    import tinyproj.runs.evaluation as ev
    real = ev.backend.permutation
    ev.backend.permutation = lambda rng, n: np.arange(n)
    try:
        reestimate_batchnorm(old, src, 20, 50)
    finally:
        ev.backend.permutation = real
    total = first_layer_input(exact, x).var(0, ddof=1)
    np.testing.assert_allclose(H(exact[1].running_var), total, rtol=1e-5)
    # the old average of within-batch variances misses the spread of the batch means: here
    # most of the variance, in every channel (it once sorted the rows by x[:, 0] instead, and
    # passed or failed with the initial weights: whether they followed x[:, 0])
    assert np.all(H(old[1].running_var) < 0.5 * total), (H(old[1].running_var), total)


def test_subsets_and_orders_come_from_the_draw_generator():
    x = data(600)
    stats, model = [], mlp()
    for seed in (0, 0, 1):
        used = reestimate_exact(model, Source(x), images=100, pass_size=40,
                                rng=backend.make_rng(seed))
        assert used == 100
        stats.append(H(model[1].running_mean).copy())
    np.testing.assert_array_equal(stats[0], stats[1])          # same generator, same images
    assert not np.allclose(stats[0], stats[2])                  # another draw, other images


def test_model_is_left_as_it_was_apart_from_the_statistics():
    model, x = mlp(), data(200)
    model.train()
    reestimate_exact(model, Source(x), rng=backend.make_rng(0))
    assert model.training and all("forward" not in vars(m) for m in model.modules())
    model.eval()
    reestimate_exact(model, Source(x), rng=backend.make_rng(0))
    assert not model.training
    out = model(x[:3])                          # the class's forward is back
    assert out.shape == (3, 3)


def test_a_pass_of_single_images_is_never_made():
    """1001 images in passes of 500: three near-equal passes (334, 333, 334), not 500+500+1,
    which would stop BatchNorm1d (one value per channel)."""
    model, x = mlp(), data(1001)
    assert reestimate_exact(model, Source(x), pass_size=500, rng=backend.make_rng(0)) == 1001


def test_protocol_settings_describe_and_images_used():
    exact = BNProtocol()
    assert exact.settings(45000) == {"bn_batches": None, "bn_batch_size": None,
                                     "bn_images": 45000, "bn_pass_size": 1000}
    assert BNProtocol("exact", images=5000).images_used(1000) == 1000
    old = BNProtocol.batches(20, 50)
    assert old.kind == "batches" and old.settings(45000)["bn_images"] is None
    assert old.images_used(45000) == 1000 and BNProtocol.batches(0).kind == "none"
    assert "all 45000" in exact.describe(45000) and "20 batches of 50" in old.describe()
    assert parse_bn_images("all") is None and parse_bn_images("2000") == 2000
    for bad in ("0", "-3", "1e3", "many"):
        with pytest.raises(UserError, match="--bn-images"):
            parse_bn_images(bad)
    with pytest.raises(ValueError):
        BNProtocol("momentum")


def test_scoring_with_the_exact_protocol_has_a_small_spread_over_draws():
    """A deterministic spec: draws differ only in the re-estimation. All images in one pass
    (order irrelevant): identical errors. The old protocol on 2 × 10 images: they differ."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 5)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.standard_normal(400) > 0).astype(np.int64) * 2
    src = Source(x, y)
    model = mlp()
    exact = score_distortion(model, src, src, "sign", draws=3,
                             bn=BNProtocol(pass_size=400))
    assert exact.draws == 3 and exact.std == pytest.approx(0.0, abs=1e-12)
    old = score_distortion(model, src, src, "sign", draws=6, bn_batches=2, bn_batch_size=10)
    assert old.std > 0
    default = score_distortion(model, src, src, "sign", draws=3)     # no bn setting: exact
    assert default.errors == exact.errors


# ---------------------------------------------------------------------------------------------
# Stand-in launch counts: a draw is a few grouped passes, not one forward per 50-image batch
# ---------------------------------------------------------------------------------------------
def test_launches_grow_with_passes_not_with_images(on_standin):
    host = np.random.default_rng(0)
    x = backend.asarray(host.standard_normal((1000, 3, 32, 32)).astype(np.float32))
    y = backend.asarray(host.integers(0, 10, 1000))
    src = type("DeviceSource", (), {"__len__": lambda s: 1000,
                                    "batch": lambda s, idx: (x[idx], y[idx])})()
    model = models.bc_cifar10(width=1 / 16)

    def count(fn):
        with standin.counting() as c:
            fn()
        return c
    one = count(lambda: reestimate_exact(model, src, pass_size=1000, rng=backend.make_rng(0)))
    four = count(lambda: reestimate_exact(model, src, pass_size=250, rng=backend.make_rng(0)))
    old = count(lambda: reestimate_batchnorm(model, src, 20, 50, backend.make_rng(0)))
    # the same 1,000 images: one grouped pass against 20 forwards of 50
    assert one.launches * 3 < old.launches, (one.ops, old.ops)
    # cost per pass is fixed: four passes ≈ four times one pass (plus the merges of Chan's update)
    assert 3.5 * one.launches < four.launches < 4.5 * one.launches, (one.launches, four.launches)
    # the permutation is the only sync; no copy beyond the per-pass indices
    assert one.syncs <= 1 and four.syncs <= 1
    assert one.copies <= 2 and old.copies >= 20
    print(f"\nexact, 1 pass: {dict(one)}; 4 passes: {dict(four)}; old 20 x 50: {dict(old)}")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def test_cli_flags_select_the_protocol_and_refuse_mixtures(tmp_path, capsys):
    from tinyproj.cli import sweep as cli_sweep
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_sweep.add_parsers(sub)
    args = parser.parse_args(["sweep", "RUN", "--distortion", "power"])
    assert cli_sweep.bn_protocol(args) == BNProtocol()
    args = parser.parse_args(["sweep", "RUN", "--distortion", "power", "--bn-images", "3000",
                              "--bn-pass-size", "500"])
    assert cli_sweep.bn_protocol(args) == BNProtocol(images=3000, pass_size=500)
    args = parser.parse_args(["sweep", "RUN", "--distortion", "power", "--bn-batches", "20"])
    assert cli_sweep.bn_protocol(args) == BNProtocol.batches(20, 50)

    def error_of(argv):
        assert main(["sweep", str(tmp_path), "--distortion", "power"] + argv) == 2
        return capsys.readouterr().err
    assert "--bn-images" in error_of(["--bn-images", "lots"])
    assert "not both" in error_of(["--bn-images", "all", "--bn-batches", "20"])
    assert "--bn-pass-size" in error_of(["--bn-pass-size", "0"])


def test_module_docstring_states_both_protocols():
    doc = bn_estimate.__doc__
    assert "re-computed on the training data" in doc and "20 × 50" in doc


def test_protocol_from_settings_speaks_the_sweeps_words():
    from tinyproj.robustness.bn_estimate import protocol_from_settings
    assert protocol_from_settings() == BNProtocol()                       # exact, all images
    assert protocol_from_settings("all", 250) == BNProtocol("exact", None, 250)
    assert protocol_from_settings("5000") == BNProtocol("exact", images=5000)
    assert protocol_from_settings(5000) == BNProtocol("exact", images=5000)
    assert protocol_from_settings(bn_batches=20) == BNProtocol.batches(20, 50)   # the old one
    assert protocol_from_settings(bn_batches=0).kind == "none"           # stored statistics
    for kwargs, flag in ((dict(bn_images="all", bn_batches=20), "--bn-images"),
                         (dict(bn_images="-3"), "--bn-images"),
                         (dict(bn_images=True), "--bn-images"),
                         (dict(bn_pass_size=0), "--bn-pass-size"),
                         (dict(bn_pass_size=2.5), "--bn-pass-size"),
                         (dict(bn_batches=-1), "--bn-batches"),
                         (dict(bn_batches=3, bn_batch_size=0), "--bn-batch-size")):
        with pytest.raises(UserError) as err:
            protocol_from_settings(**kwargs)
        assert err.value.flag == flag, kwargs


def test_each_test_projection_is_scored_with_statistics_re_estimated_under_its_weights():
    # Merolla's protocol for Te-Sign (the training loop's evaluation, errors_by_projection):
    # swap Sign(W) in, re-estimate batch norm with those weights, score — computed here step
    # by step, and against scoring Sign(W) with the statistics of training
    from tinyproj.algorithm1 import project_weights
    from tinyproj.projections import parse
    from tinyproj.runs.evaluation import error_rates, errors_by_projection, saved_batchnorm_stats
    model = mlp()
    rng = np.random.default_rng(4)
    x, x_test = data(600, seed=1), data(400, seed=2)
    label = lambda v: (v[:, 0] > 2).astype(np.int64) + (v[:, 1] > 2)       # 3 classes
    train_src, test_src = Source(x, label(x)), Source(x_test, label(x_test))
    for m in (model[1], model[4]):         # running statistics far from these inputs'
        m.running_mean[...] = backend.asarray(rng.standard_normal(m.running_mean.shape) * 5)
    model.eval()

    def score(reestimate: bool) -> float:
        with saved_batchnorm_stats(model), project_weights(model, parse("sign"),
                                                           backend.make_rng(7)):
            if reestimate:
                reestimate_batchnorm(model, train_src, 4, 50, backend.make_rng(7))
            return error_rates(model, test_src, 500)[1]
    expected, stale = score(True), score(False)
    assert abs(expected - stale) > 0.05           # the test can tell the two apart
    got = errors_by_projection(model, train_src, {"test": test_src}, ["sign"],
                               rng=backend.make_rng(7), bn_batches=4, batch_size=50)
    assert got["test"]["sign"] == expected


def test_the_training_loops_evaluation_re_estimates_with_the_runs_batches(monkeypatch):
    # cfg.bn_reestimate (the default) hands bn_batches x batch_size to errors_by_projection;
    # bn_reestimate=False (the Walking Noise set-ups) hands 0: the statistics of training
    from tinyproj.runs import train_eval
    from tinyproj.runs.config import make_config
    from tinyproj.runs.training import train
    said = []
    real = train_eval.errors_by_projection

    def spy(*args, **kw):
        said.append((kw["bn_batches"], kw["batch_size"], kw["bn_images"]))
        return real(*args, **kw)
    monkeypatch.setattr(train_eval, "errors_by_projection", spy)
    common = dict(dataset="synthetic", width=1 / 16, train_subset=40, val_size=0,
                  batch_size=20, epochs=1, test_subset=20, out=None)
    train(make_config("tr-sign-c", bn_batches=3, **common), progress=False, log=lambda *a: None)
    train(make_config("tr-sign-c", bn_reestimate=False, **common), progress=False,
          log=lambda *a: None)
    assert said == [(3, 20, None), (0, 20, None)]
    assert make_config("tr-sign-c").bn_reestimate and make_config("tr-sign-c").bn_batches == 20
