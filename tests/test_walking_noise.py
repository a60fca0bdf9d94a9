"""Walking Noise: noise ops, sites, midpoints, walks, noisy training, dynamics, the CLI."""
import json
import math

import numpy as np
import pytest

import tinyproj as tp
from tinyproj import backend, models, nn
from tinyproj import walking_noise as wn
from tinyproj.cli import main as cli_main
from tinyproj.gradcheck import gradcheck
from tinyproj.tensor import no_grad

from _helpers import class_means_source


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, tp.Tensor) else a)


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28)).astype(np.float32)


# --- noise -----------------------------------------------------------------------------------
def test_noise_statistics_all_kinds():
    rng = backend.make_rng(0)
    n = 200_000
    zeros = backend.xp().zeros(n, dtype=np.float32)
    ones = backend.xp().ones(n, dtype=np.float32)
    y = _host(wn.apply_noise(zeros + 3.0, wn.NoiseSpec("additive", 0.5), rng)) - 3.0
    assert abs(y.mean()) < 0.01 and abs(y.std() - 0.5) < 0.01
    f = _host(wn.apply_noise(ones, wn.NoiseSpec("multiplicative", 0.2), rng))   # the factor
    assert abs(f.mean() - 1.0) < 0.005 and abs(f.std() - 0.2) < 0.005
    assert np.all(_host(wn.apply_noise(zeros, wn.NoiseSpec("multiplicative", 0.2), rng)) == 0)
    spec = wn.parse_noise("combined:ratio=0.3", sigma=1.0)
    assert spec.sigma_add == pytest.approx(0.3) and spec.sigma_mul == pytest.approx(0.7)
    at0 = _host(wn.apply_noise(zeros, spec, rng))           # only the additive part survives
    assert abs(at0.std() - 0.3) < 0.005
    at1 = _host(wn.apply_noise(ones, spec, rng))            # factor·1 + additive
    assert abs(at1.mean() - 1.0) < 0.01
    assert abs(at1.std() - math.hypot(0.3, 0.7)) < 0.01
    # multiplicative first: x·(1 + σm z1) + σa z2 reproduced from the same generator
    x = backend.xp().full(5, 2.0, dtype=np.float32)
    got = _host(wn.apply_noise(x, spec, backend.make_rng(7)))
    if backend.is_gpu_array(x):      # a device draws z1, z2 with Philox keyed from the generator
        from tinyproj import kernels
        from tinyproj.kernels import reference
        key = kernels.random_key(backend.make_rng(7), x)
        words = reference.philox_words(key, 5)
        z1, z2 = (_host(z) for z in reference.philox_normal_pair(words, np.float32))
    else:
        g = backend.make_rng(7)
        z1 = _host(g.standard_normal(5, dtype=np.float32))
        z2 = _host(g.standard_normal(5, dtype=np.float32))
    np.testing.assert_allclose(got, 2.0 * (1 + 0.7 * z1) + 0.3 * z2, rtol=1e-6, atol=1e-6)


def test_noise_fresh_per_element_sample_and_pass():
    rng = backend.make_rng(1)
    x = backend.xp().zeros((4, 6), dtype=np.float32)
    spec = wn.NoiseSpec("additive", 1.0)
    a, b = _host(wn.apply_noise(x, spec, rng)), _host(wn.apply_noise(x, spec, rng))
    assert not np.array_equal(a, b)                      # a new draw every pass
    assert len(np.unique(a)) == a.size                   # every element its own draw
    assert not np.array_equal(a[0], a[1])                # samples differ
    # same generator state, same numbers (rule 5)
    np.testing.assert_array_equal(_host(wn.apply_noise(x, spec, backend.make_rng(3))),
                                  _host(wn.apply_noise(x, spec, backend.make_rng(3))))


def test_parse_noise_and_spec_errors():
    assert wn.parse_noise("additive") == wn.NoiseSpec("additive", 0.0)
    assert wn.parse_noise("MULT").kind == "multiplicative"
    s = wn.parse_noise("combined:ratio=0.3,sigma=2,repeats=4")
    assert (s.kind, s.ratio, s.sigma, s.repeats) == ("combined", 0.3, 2.0, 4)
    assert wn.parse_noise("combined").ratio == 0.5
    assert str(wn.NoiseSpec("combined", 0.1, 0.3)) == "combined:ratio=0.3,sigma=0.1"
    with pytest.raises(ValueError, match="additive, multiplicative, combined"):
        wn.parse_noise("gaussian")
    with pytest.raises(ValueError, match="combined noise only"):
        wn.parse_noise("additive:ratio=0.3")
    with pytest.raises(ValueError, match=">= 0"):
        wn.NoiseSpec("additive", -1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        wn.NoiseSpec("combined", 1, ratio=1.5)
    with pytest.raises(ValueError, match="repeats"):
        wn.NoiseSpec("additive", 1, repeats=0)


@pytest.mark.parametrize("text", ["additive", "multiplicative", "combined:ratio=0.4"])
def test_noise_gradcheck(text):
    spec = wn.parse_noise(text, sigma=0.7)
    x = np.random.default_rng(0).standard_normal((3, 5))
    # a generator seeded inside fn: the same draw at every evaluation of fn
    gradcheck(lambda t: wn.noise(t, spec, backend.make_rng(0)) * t, [x])


def test_noise_backward_is_identity_or_the_drawn_factor():
    x = tp.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    wn.noise(x, wn.NoiseSpec("additive", 2.0), backend.make_rng(0)).sum().backward()
    np.testing.assert_array_equal(_host(x.grad), np.ones((2, 3)))
    x = tp.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = wn.noise(x, wn.NoiseSpec("multiplicative", 0.5), backend.make_rng(0))
    y.sum().backward()
    np.testing.assert_allclose(_host(x.grad), _host(y))   # x = 1: y is the factor itself


# --- sites -----------------------------------------------------------------------------------
def test_site_counts_names_and_indices():
    counts = {(models.mlp_tfc, False): 8, (models.mlp_tfc, True): 11,
              (models.lenet5, False): 12, (models.lenet5, True): 16}
    for (build, bn), count in counts.items():
        noisy = wn.NoisyModel(build(bn=bn), None)
        assert len(noisy.sites) == count
        assert [s.index for s in noisy.sites] == list(range(count))
        assert noisy.sites[0] == wn.Site(0, "input", "input")
        assert noisy.sites[-1].logits and sum(s.logits for s in noisy.sites) == 1
        assert "flatten" not in noisy.site_names
    assert wn.NoisyModel(models.mlp_tfc(), None).site_names == [
        "input", "fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "fc4"]
    lenet = wn.NoisyModel(models.lenet5(bn=True), None)
    assert lenet.site_names == ["input", "conv1", "bn1", "relu1", "pool1", "conv2", "bn2",
                                "relu2", "pool2", "fc3", "bn3", "relu3", "fc4", "bn4", "relu4",
                                "fc5"]
    assert [s.kind for s in lenet.sites[:5]] == ["input", "conv", "batchnorm", "relu", "pool"]
    assert lenet.site("relu2").index == 7 and lenet.site(-1).name == "fc5"
    assert lenet.resolve_sites(["fc5", 0, "relu2"]) == [0, 7, 15]
    with pytest.raises(ValueError, match="unknown site 'flatten'"):
        lenet.site("flatten")
    with pytest.raises(ValueError, match="out of range"):
        lenet.site(16)
    # the wrapped model is untouched: same parameter names and state
    model = models.mlp_tfc(rng=backend.make_rng(0))
    names = [n for n, _ in model.named_parameters()]
    noisy = wn.NoisyModel(model, backend.make_rng(0))
    assert [n for n, _ in noisy.named_parameters()] == names
    assert list(noisy.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("build,bn,site", [(models.mlp_tfc, True, "relu2"),
                                           (models.lenet5, False, "pool1")])
def test_noise_only_at_the_chosen_site(build, bn, site):
    model = build(bn=bn, rng=backend.make_rng(0)).eval()
    noisy = wn.NoisyModel(model, backend.make_rng(1)).eval()
    x = _images(3)
    with no_grad():
        clean = [_host(t) for t in noisy.site_outputs(x)]
        np.testing.assert_array_equal(clean[-1], _host(model(x)))     # the trace is the model
        k = noisy.site(site).index
        noisy.set_noise(wn.NoiseSpec("additive", 0.1), sites=[site])
        out = [_host(t) for t in noisy.site_outputs(x)]
        assert not np.array_equal(_host(noisy(x)), _host(noisy(x)))   # fresh every pass
    for i in range(k):
        np.testing.assert_array_equal(out[i], clean[i])              # exact before the site
    diff = out[k] - clean[k]
    assert abs(diff.std() - 0.1) < 0.03                              # noise N(0, 0.1) there
    assert not np.allclose(out[-1], clean[-1])                       # and it propagates
    noisy.clear_noise()
    with no_grad():
        np.testing.assert_array_equal(_host(noisy(x)), clean[-1])


def test_train_and_eval_switches():
    model = models.mlp_tfc(rng=backend.make_rng(0))
    noisy = wn.NoisyModel(model, backend.make_rng(0))
    x = _images(4)
    with no_grad():
        clean = _host(model(x))
        noisy.set_noise(wn.NoiseSpec("additive", 1.0, train=False, eval=True), "all")
        assert np.array_equal(_host(noisy.train()(x)), clean) and not noisy.noise_on
        assert not np.allclose(_host(noisy.eval()(x)), clean) and noisy.noise_on
        noisy.set_noise(wn.NoiseSpec("additive", 1.0, train=True, eval=False), "all")
        assert np.array_equal(_host(noisy.eval()(x)), clean)
        assert not np.allclose(_host(noisy.train()(x)), clean)
    assert noisy.training and model.training                        # modes are the model's


def test_repeats_average_lowers_variance_by_n():
    model = models.mlp_tfc(rng=backend.make_rng(0)).eval()
    x = _images(1)
    with no_grad():
        clean = _host(model(x))

        def spread(repeats):
            noisy = wn.NoisyModel(model, backend.make_rng(repeats))
            noisy.set_noise(wn.NoiseSpec("additive", 1.0, repeats=repeats), sites=["fc4"])
            noisy.eval()
            return np.stack([_host(noisy(x)) - clean for _ in range(400)]).var()

        v1, v4 = spread(1), spread(4)
    assert abs(v1 - 1.0) < 0.15                  # logits + N(0, 1)
    assert abs(v4 / v1 - 0.25) < 0.05            # mean of 4: variance / 4, σ / 2


# --- midpoint ----------------------------------------------------------------------------------
def test_midpoint_interpolates_on_log_sigma():
    m = wn.midpoint_sigma([1, 0.01, 10, 0.1], [0.3, 0.9, 0.1, 0.8], chance=0.1)
    # max 0.9, threshold 0.5; between σ=0.1 (0.8) and σ=1 (0.3): t = 0.3/0.5 = 0.6 of a decade
    assert m.threshold == pytest.approx(0.5) and m.max_accuracy == 0.9
    assert m.sigma == pytest.approx(10 ** (-1 + 0.6)) and not m.beyond_grid
    # the crossing is searched after the maximum
    m = wn.midpoint_sigma([0.01, 0.1, 1, 10], [0.2, 0.9, 0.5, 0.1])
    assert m.sigma == pytest.approx(1.0)
    beyond = wn.midpoint_sigma([0.01, 0.1, 1], [0.95, 0.9, 0.6], chance=0.1)
    assert beyond.sigma is None and beyond.beyond_grid
    dead = wn.midpoint_sigma([0.1, 1], [0.1, 0.05])
    assert dead.sigma is None and not dead.beyond_grid and dead.note
    with pytest.raises(ValueError, match="> 0"):
        wn.midpoint_sigma([0, 1], [0.9, 0.1], scale="log")
    # a grid holding σ = 0 (the authors' linear multiplicative grids) interpolates linearly
    lin = wn.midpoint_sigma([0, 1, 2], [0.9, 0.7, 0.1], chance=0.1)
    assert lin.sigma == pytest.approx(1 + 0.2 / 0.6) and not lin.beyond_grid
    s = wn.summarize_midpoints([wn.Midpoint(0.1, False, 0.9, 0.5), wn.Midpoint(10, False, 0.9,
                                0.5), beyond])
    assert s.geo_mean == pytest.approx(1.0) and s.log10_std == pytest.approx(math.sqrt(2))
    assert (s.n, s.n_beyond) == (2, 1)
    assert wn.summarize_midpoints([beyond]) == (None, None, 0, 1)
    # a dead walk (never above chance) has no midpoint and is not "beyond the grid": it is
    # neither in the mean nor counted as a network too robust for the grid
    assert wn.summarize_midpoints([dead]) == (None, None, 0, 0)
    assert wn.summarize_midpoints([dead, beyond, wn.Midpoint(1.0, False, 0.9, 0.5)]) == (
        pytest.approx(1.0), 0.0, 1, 1)


def test_midpoint_walks_from_the_first_of_tied_maxima():
    # max 0.9 at σ = 0.01 and again at σ = 1, threshold 0.5: from the first maximum the
    # accuracy falls below 0.5 between 0.01 (0.9) and 0.1 (0.4): t = 0.4/0.5 of a decade;
    # from the last it would cross between 1 and 10 instead
    m = wn.midpoint_sigma([0.01, 0.1, 1, 10, 100], [0.9, 0.4, 0.9, 0.3, 0.1], chance=0.1)
    assert m.sigma == pytest.approx(10 ** (-2 + 0.8)) and not m.beyond_grid


# --- walks -------------------------------------------------------------------------------------
def _trained_mlp(bn=False, steps=30):
    """An mlp_tfc fitted a little on the synthetic source (so that noise costs accuracy)."""
    src = class_means_source(200)
    model, _ = wn.train_noisy("mlp_tfc", src, "additive:sigma=0.01", sites=[0],
                              epochs=steps, batch_size=100, seed=0, bn=bn,
                              record_dynamics=False, lr=3e-3)
    return model, src


@pytest.fixture(scope="module")
def trained():
    return _trained_mlp()


def test_walk_rows_resume_and_shards(trained, tmp_path):
    model, src = trained
    sigmas = [0.01, 1.0, 100.0]
    out = tmp_path / "walk.jsonl"
    rows = wn.walk(model, None, src, "additive", sigmas, sites="each", seed=0, out_file=out,
                   progress=False)
    assert len(rows) == 8 * 3 and len(wn.read_walk(out)) == 24
    for field in ("site", "site_name", "noise", "sigma", "accuracy", "bn_protocol", "repeats",
                  "seed"):
        assert field in rows[0]
    assert rows[0]["site_name"] == "input" and rows[-1]["site_name"] == "fc4"
    assert rows[0]["accuracy"] > 0.8 and all(r["accuracy"] < 0.5 for r in rows
                                             if r["sigma"] == 100.0)
    # resume: nothing recomputed, nothing repeated
    again = wn.walk(model, None, src, "additive", sigmas, sites="each", seed=0, out_file=out,
                    progress=False)
    assert again == rows and len(out.read_text().splitlines()) == 24
    # shards: separate files, merged equal to the single run number for number
    sh = tmp_path / "sharded.jsonl"
    for i in range(3):
        wn.walk(model, None, src, "additive", sigmas, seed=0, out_file=sh, shard=f"{i}/3",
                progress=False)
    assert not sh.exists() and len(wn.walk_files(sh)) == 3
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in wn.read_walk(sh)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in wn.read_walk(out)]
    # global noise: one site -1 "all"
    rows_all = wn.walk(model, None, src, "multiplicative", [0.1], sites="all", progress=False)
    assert [(r["site"], r["site_name"]) for r in rows_all] == [(-1, "all")]
    # midpoints per site, CSV
    table = wn.midpoints_table(wn.read_walk(out))
    assert [e["site"] for e in table] == list(range(8))
    path = wn.write_midpoints_csv(tmp_path / "midpoints.csv", table)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:6] == ["site", "site_name", "noise", "midpoint_sigma", "beyond_grid",
                          "max_accuracy"]


def test_walk_errors(trained):
    model, src = trained
    with pytest.raises(ValueError, match="> 0"):
        wn.walk(model, None, src, "additive", [0.0, 1.0], progress=False)
    with pytest.raises(ValueError, match="bn_protocol"):
        wn.walk(model, None, src, "additive", [1.0], bn_protocol="magic", progress=False)
    with pytest.raises(ValueError, match="unknown site"):
        wn.walk(model, None, src, "additive", [1.0], sites=["conv9"], progress=False)
    with pytest.raises(ValueError, match="shard"):
        wn.walk(model, None, src, "additive", [1.0], shard="3/3", progress=False)


def test_midpoints_over_seeds(trained):
    model, src = trained
    rows = []
    for seed in (0, 1, 2):
        rows += wn.walk(model, None, src, "additive", [0.1, 1, 3, 10, 30], sites=["input"],
                        seed=seed, progress=False)
    (entry,) = wn.midpoints_table(rows)
    assert entry["n_seeds"] == 3 and entry["seeds"] == [0, 1, 2]
    mids = [m for m in entry["midpoints_per_seed"] if m is not None]
    geo = 10 ** np.mean(np.log10(mids))
    assert entry["midpoint_sigma"] == pytest.approx(geo)
    assert entry["midpoint_log10_std"] is not None


def test_bn_protocols_differ_and_restore_statistics(tmp_path):
    model, src = _trained_mlp(bn=True, steps=10)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    kwargs = dict(sites=["fc1"], seed=0, bn_batches=3, progress=False)
    run = wn.walk(model, src, src, "additive", [0.3, 3.0], bn_protocol="running", **kwargs)
    est = wn.walk(model, src, src, "additive", [0.3, 3.0], bn_protocol="reestimate", **kwargs)
    assert [r["accuracy"] for r in run] != [r["accuracy"] for r in est]
    assert est[0]["bn_batches"] == 3 and run[0]["bn_batches"] == 0
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(_host(v), _host(before[k]))    # weights and BN stats


# --- noisy training and dynamics ----------------------------------------------------------------
def test_dynamics_on_hand_made_weights():
    layer = nn.Linear(50, 40, bias=False, rng=backend.make_rng(0))
    model = nn.Sequential({"fc1": layer})
    signs = np.where(np.random.default_rng(0).random((40, 50)) < 0.5, -1.0, 1.0)
    layer.weight.data[...] = backend.asarray(0.7 * signs)
    b = wn.binarization(model)["fc1"]
    assert b["share_near_max"] == 1.0 and b["bimodality"] == pytest.approx(1.0, abs=0.01)
    stats = wn.weight_stats(model)["fc1"]
    assert stats["mean_abs"] == pytest.approx(0.7) and stats["max_abs"] == pytest.approx(0.7)
    rng = np.random.default_rng(1)
    gauss = rng.standard_normal(200_000)
    assert wn.bimodality_coefficient(gauss) == pytest.approx(1 / 3, abs=0.01)
    uniform = rng.uniform(-1, 1, 200_000)
    assert wn.bimodality_coefficient(uniform) == pytest.approx(5 / 9, abs=0.01)
    assert wn.share_near_max(uniform) == pytest.approx(0.1, abs=0.01)
    assert wn.bimodality_coefficient(np.ones(10)) is None


def test_train_noisy_rows_clamp_and_determinism():
    src, test = class_means_source(100, seed=0), class_means_source(50, seed=0)
    kwargs = dict(sites=["relu1"], epochs=2, batch_size=50, seed=3, test_source=test)
    model, rows = wn.train_noisy("mlp_tfc", src, "multiplicative:sigma=0.5", clamp=0.01,
                                 **kwargs)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[0]["sites"] == ["relu1"] and rows[-1]["loss"] > 0
    for key in ("train_accuracy", "test_accuracy", "test_accuracy_noisy", "weights",
                "binarization"):
        assert key in rows[-1]
    # fc1's initial weights are U(±1/√3072) = U(±0.018) (the authors' set-up): c = 0.01 binds
    assert all(s["max_abs"] <= 0.01 + 1e-7 for s in rows[-1]["weights"].values())
    assert rows[-1]["binarization"]["fc1"]["share_near_max"] > rows[0]["binarization"]["fc1"][
        "share_near_max"]                       # the clamp piles weights up at ±c
    again, rows2 = wn.train_noisy("mlp_tfc", src, "multiplicative:sigma=0.5", clamp=0.01,
                                  **kwargs)
    assert rows2[-1]["loss"] == rows[-1]["loss"]
    for (_, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(_host(a), _host(b))
    with pytest.raises(ValueError, match="sigma > 0"):
        wn.train_noisy("mlp_tfc", src, "additive", sites="all")
    with pytest.raises(ValueError, match="unknown model"):
        wn.train_noisy("resnet", src, "additive:sigma=1")


# --- command line ----------------------------------------------------------------------------
def _walk_cli(out, *extra):
    return cli_main(["walk", "--out", str(out), "--no-progress", "--quiet", *extra])


def test_cli_end_to_end_synthetic(tmp_path, capsys):
    base = ["--dataset", "synthetic", "--model", "mlp_tfc", "--epochs", "1",
            "--sigmas", "0.1,10", "--test-subset", "100", "--sites", "input,fc4"]
    out = tmp_path / "run"
    assert _walk_cli(out, *base, "--seeds", "0,1") == 0
    rows = [json.loads(line) for line in (out / "walk.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2                        # seeds × sites × sigmas
    assert {r["seed"] for r in rows} == {0, 1} and (out / "model-seed1").is_dir()
    csv_lines = (out / "midpoints.csv").read_text().splitlines()
    assert csv_lines[0].startswith("site,site_name,noise,midpoint_sigma,beyond_grid,max_accuracy")
    assert len(csv_lines) == 3 and ",2," in csv_lines[1]      # one line per site, 2 seeds
    assert _walk_cli(out, *base, "--seeds", "0,1") == 0         # resume: nothing repeated
    assert len((out / "walk.jsonl").read_text().splitlines()) == 8
    # shards need a trained model; then they merge equal to the unsharded walk
    sharded = tmp_path / "sharded"
    assert _walk_cli(sharded, *base, "--shard", "0/2") == 2
    assert "--train-only" in capsys.readouterr().err
    assert _walk_cli(sharded, *base, "--train-only") == 0
    for i in (0, 1):
        assert _walk_cli(sharded, *base, "--shard", f"{i}/2") == 0
    merged = [{k: v for k, v in r.items() if k != "seconds"}
              for r in wn.read_walk(sharded / "walk.jsonl")]
    single = [{k: v for k, v in r.items() if k != "seconds"}
              for r in wn.read_walk(out / "walk.jsonl") if r["seed"] == 0]
    assert merged == single
    # an already trained run (--run): the same numbers as the walk of that model
    other = tmp_path / "from-run"
    assert _walk_cli(other, "--run", str(out / "model"), *base[6:]) == 0
    assert [{k: v for k, v in r.items() if k != "seconds"}
            for r in wn.read_walk(other / "walk.jsonl")] == single


@pytest.mark.parametrize("extra,message", [
    (["--model", "resnet"], "unknown model"),
    (["--sigmas=-1,1"], ">= 0"),
    (["--sigmas", "a"], "not a number"),
    (["--noise", "gaussian"], "unknown noise kind"),
    (["--shard", "2/2"], "shard"),
    (["--seeds", "x"], "--seeds"),
    (["--clamp", "1"], "--train-noise"),
    (["--repeats", "0"], "--repeats"),
])
def test_cli_errors(tmp_path, capsys, extra, message):
    assert _walk_cli(tmp_path / "x", "--dataset", "synthetic", *extra) == 2
    assert message in capsys.readouterr().err


def test_cli_mnist_noisy_training(tmp_path, shared_data_dir):
    if not (shared_data_dir / "mnist").is_dir():
        pytest.skip("no MNIST in the shared datasets")
    out = tmp_path / "mnist"
    args = ["--dataset", "mnist", "--data-dir", str(shared_data_dir), "--epochs", "1",
            "--train-subset", "300", "--test-subset", "200", "--sigmas", "0.1,1,10",
            "--sites", "relu1", "--train-noise", "0.5", "--clamp", "1"]
    assert _walk_cli(out, *args) == 0
    rows = wn.read_walk(out / "walk.jsonl")
    assert len(rows) == 3 and all(r["train_sigma"] == 0.5 and r["clamp"] == 1.0 for r in rows)
    dyn = [json.loads(line) for line in (out / "dynamics.jsonl").read_text().splitlines()]
    assert [d["epoch"] for d in dyn] == [0, 1] and dyn[0]["site_name"] == "relu1"
    assert len(list((out / "noisy-models").glob("*.npz"))) == 1
    assert _walk_cli(out, *args) == 0                        # reuses the model, no new rows
    assert len((out / "walk.jsonl").read_text().splitlines()) == 3
    assert len((out / "dynamics.jsonl").read_text().splitlines()) == 2
