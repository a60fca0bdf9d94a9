"""Walking Noise as the authors ran it: the train-at-σ protocol, the σ grid presets, and the
noise variants (combined order, per-site repeated execution, global noise without BN sites)."""
import json
import math

import numpy as np
import pytest

import tinyproj as tp
from tinyproj import backend, models
from tinyproj import walking_noise as wn
from tinyproj.cli import main as cli_main
from tinyproj.data.sources import ArraySource
from tinyproj.errors import UserError
from tinyproj.gradcheck import gradcheck
from tinyproj.tensor import no_grad
from tinyproj.walking_noise import grids

from _helpers import class_means_source


def _host(a):
    return backend.to_numpy(a.data if isinstance(a, tp.Tensor) else a)


def _source(n, seed=0):
    """A small learnable 10-class dataset of 1x6x6 images: class means plus noise."""
    return class_means_source(n, seed, shape=(1, 6, 6))


# --- grids -------------------------------------------------------------------------------------
def test_grid_presets_are_the_authors():
    add = wn.grid_sigmas("add-mnist")
    assert len(add) == 41 and add[0] == 0.01 and add[-1] == 1e8
    steps = np.diff(np.log10(add))
    np.testing.assert_allclose(steps, 0.25, atol=1e-5)          # quarter decades
    assert len(wn.grid_sigmas("add")) == 49 and wn.grid_sigmas("add")[-1] == 1e10
    assert len(wn.grid_sigmas("add-global")) == 17 and wn.grid_sigmas("add-global")[-1] == 100
    lin6, lin2 = wn.grid_sigmas("mul-linear-mnist"), wn.grid_sigmas("mul-linear")
    assert (len(lin6), lin6[0], lin6[1], lin6[-1]) == (61, 0.0, 0.1, 6.0)
    assert (len(lin2), lin2[0], lin2[-1]) == (21, 0.0, 2.0)
    assert grids.is_linear(lin2) and not grids.is_linear(add)
    log16, log10 = wn.grid_sigmas("mul-log-mnist"), wn.grid_sigmas("mul-log")
    assert (len(log16), log16[0], log16[-1]) == (65, 1.0, 1e16)
    assert (len(log10), log10[-1]) == (41, 1e10)
    assert len(wn.grid_sigmas("combined")) == 25
    assert wn.grid_sigmas("half-decade-add") == wn.default_sigmas("additive")
    assert wn.grid_sigmas("half-decade-mul") == wn.default_sigmas("multiplicative")
    with pytest.raises(UserError, match="unknown grid") as err:
        wn.grid_sigmas("quarter")
    assert err.value.flag == "--grid"
    # every preset passes the walk's own grid check (σ = 0 only where allowed)
    for name in wn.GRIDS:
        s = wn.grid_sigmas(name)
        assert wn.check_sigmas(s, allow_zero=True) == s


# --- noise variants ----------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["mul-add", "add-mul"])
def test_combined_orders_expectation_and_variance(order):
    n, x0, A, r = 400_000, 2.0, 1.0, 0.4                  # σ_add = 0.4, σ_mul = 0.6
    spec = wn.parse_noise(f"combined:ratio={r},order={order}", sigma=A)
    assert spec.order == order and spec.sigma_add == pytest.approx(0.4)
    x = backend.xp().full(n, x0, dtype=np.float64)
    y = _host(wn.apply_noise(x, spec, backend.make_rng(3)))
    sa, sm = 0.4, 0.6
    var = x0 ** 2 * sm ** 2 + sa ** 2 if order == "mul-add" else \
        x0 ** 2 * sm ** 2 + sa ** 2 * (1 + sm ** 2)
    assert abs(y.mean() - x0) < 4 * math.sqrt(var / n)             # E[y] = x in both orders
    assert y.var() == pytest.approx(var, rel=0.01)
    # the draw itself: the order of the operations, reproduced from the same generator
    g = backend.make_rng(9)
    x4 = backend.xp().full(4, x0)
    got = _host(wn.apply_noise(x4, spec, backend.make_rng(9)))
    if backend.is_gpu_array(x4):     # a device: Philox keyed from the generator, z1 for the factor
        from tinyproj import kernels
        from tinyproj.kernels import reference
        words = reference.philox_words(kernels.random_key(g, x4), 4)
        z_mul, z_add = (_host(z) for z in reference.philox_normal_pair(words, np.float64))
    else:                            # the host: draws in the order of the operations
        z = [_host(g.standard_normal(4)) for _ in range(2)]
        z_mul, z_add = (z[0], z[1]) if order == "mul-add" else (z[1], z[0])
    want = x0 * (1 + sm * z_mul) + sa * z_add if order == "mul-add" else \
        (x0 + sa * z_add) * (1 + sm * z_mul)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_combined_orders_differ_and_label():
    spec = wn.parse_noise("combined:order=add-mul", sigma=1.0)
    assert spec.label == "combined:ratio=0.5,order=add-mul"
    assert wn.parse_noise("combined", sigma=1.0).label == "combined:ratio=0.5"   # unchanged
    with pytest.raises(ValueError, match="order applies to combined"):
        wn.parse_noise("additive:order=add-mul")
    with pytest.raises(ValueError, match="order"):
        wn.NoiseSpec("combined", 1.0, order="sideways")


def test_add_mul_gradcheck():
    spec = wn.parse_noise("combined:ratio=0.4,order=add-mul", sigma=0.7)
    x = np.random.default_rng(0).standard_normal((3, 5))
    gradcheck(lambda t: wn.noise(t, spec, backend.make_rng(0)) * t, [x])


@pytest.mark.parametrize("text", ["additive", "multiplicative",
                                  "combined:ratio=0.4,order=add-mul"])
def test_noise_mean_gradcheck(text):
    spec = wn.parse_noise(text, sigma=0.7)
    x = np.random.default_rng(0).standard_normal((3, 5))
    gradcheck(lambda t: wn.noise_mean(t, spec, backend.make_rng(0), 3) * t, [x])


def test_noise_mean_statistics():
    n = 200_000
    ones = backend.xp().ones(n, dtype=np.float64)
    for draws in (1, 4):
        y = _host(wn.noise_mean(ones, wn.NoiseSpec("multiplicative", 0.6), backend.make_rng(draws),
                                draws))
        assert y.mean() == pytest.approx(1.0, abs=0.005)                  # E kept
        assert y.var() == pytest.approx(0.36 / draws, rel=0.02)           # Var / N
    with pytest.raises(ValueError, match="n must be"):
        wn.noise_mean(ones, wn.NoiseSpec("additive", 1.0), backend.make_rng(0), 0)


def _identity_net():
    """A flat Sequential whose sites we can read: input, fc (identity weights), relu."""
    from tinyproj import nn
    lin = nn.Linear(4, 4, rng=backend.make_rng(0))
    lin.weight.data[...] = np.eye(4, dtype=lin.weight.data.dtype)
    if getattr(lin, "bias", None) is not None:
        lin.bias.data[...] = 0
    return nn.Sequential(lin, nn.ReLU())


def test_site_repeats_divide_the_sites_sd_by_sqrt_n():
    net = _identity_net().eval()
    x = np.full((20_000, 4), 3.0, dtype=np.float32)
    with no_grad():
        for n_input, n_fc in ((1, 1), (4, 1), (4, 9)):
            noisy = wn.NoisyModel(net, backend.make_rng(n_input + n_fc))
            spec = wn.NoiseSpec("additive", 1.0, repeat_at="site",
                                site_repeats=(n_input, n_fc, 1))
            noisy.set_noise(spec, sites=[0, 1]).eval()
            inp, fc, _ = (_host(v) for v in noisy.site_outputs(x))
            d_in = inp - 3.0
            assert abs(d_in.mean()) < 0.01                             # expectation kept
            assert d_in.std() == pytest.approx(1 / math.sqrt(n_input), rel=0.02)
            # fc's own noise: its output minus its (noisy) input, identity weights
            assert (fc - inp).std() == pytest.approx(1 / math.sqrt(n_fc), rel=0.02)
    # one N for every site: repeats with repeat_at="site"
    noisy = wn.NoisyModel(net, backend.make_rng(0))
    noisy.set_noise(wn.NoiseSpec("multiplicative", 0.5, repeats=4, repeat_at="site"),
                    sites=[0]).eval()
    with no_grad():
        f = _host(noisy.site_outputs(np.ones((40_000, 4), dtype=np.float32))[0])
    assert f.mean() == pytest.approx(1.0, abs=0.01) and f.std() == pytest.approx(0.25, rel=0.02)
    with pytest.raises(ValueError, match="one N per site"):
        wn.NoisyModel(net, None).set_noise(wn.NoiseSpec("additive", 1.0, repeat_at="site",
                                                        site_repeats=(1, 2)))
    with pytest.raises(ValueError, match="repeat_at='site'"):
        wn.NoiseSpec("additive", 1.0, site_repeats=(1, 2, 3))


def test_site_and_network_repeats_differ_in_where_they_average():
    """Network repeats average the logits of N whole passes; site repeats average at the site.
    At the logits site alone both give variance / N; at the input, only the site average
    is exactly σ/√N at the input."""
    model = models.mlp_tfc(rng=backend.make_rng(0)).eval()
    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    with no_grad():
        clean = _host(model(x))
        out = {}
        for at in ("network", "site"):
            noisy = wn.NoisyModel(model, backend.make_rng(1))
            noisy.set_noise(wn.NoiseSpec("additive", 1.0, repeats=4, repeat_at=at),
                            sites=["fc4"]).eval()
            out[at] = np.stack([_host(noisy(x)) - clean for _ in range(400)]).var()
    assert out["network"] == pytest.approx(0.25, rel=0.2)
    assert out["site"] == pytest.approx(0.25, rel=0.2)


def test_all_no_bn_skips_the_batchnorm_sites():
    model = models.mlp_tfc(bn=True, rng=backend.make_rng(0)).eval()
    noisy = wn.NoisyModel(model, backend.make_rng(0))
    kinds = {s.index: s.kind for s in noisy.sites}
    active = noisy.resolve_sites("all-no-bn")
    assert len(noisy.sites) == 11 and len(active) == 8
    assert all(kinds[i] != "batchnorm" for i in active)
    assert wn.walk_sites(noisy, "all-no-bn") == [-2]
    assert wn.walk_sites(noisy, ["all-no-bn", "all", "relu1"]) == [-2, -1, 3]
    # noise really off after BN: a site's output equals its clean value there
    noisy.set_noise(wn.NoiseSpec("multiplicative", 0.5), "all-no-bn").eval()
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    with no_grad():
        outs = noisy.site_outputs(x)
        bn_site = next(s.index for s in noisy.sites if s.kind == "batchnorm")
        before = outs[bn_site - 1]
        layer = dict(model.named_children())[noisy.sites[bn_site].name]
        np.testing.assert_allclose(_host(layer(before)), _host(outs[bn_site]), rtol=1e-6)
    src = ArraySource(np.random.default_rng(1).random((40, 1, 28, 28)).astype(np.float32),
                      np.arange(40) % 10)
    rows = wn.walk(model, None, src, "additive", [1.0], sites="all-no-bn", progress=False)
    assert [(r["site"], r["site_name"]) for r in rows] == [(-2, "all-no-bn")]


def test_walk_rows_name_the_variants_only_when_not_default(tmp_path):
    model = models.mlp_tfc(rng=backend.make_rng(0)).eval()
    src = ArraySource(np.random.default_rng(1).random((30, 1, 28, 28)).astype(np.float32),
                      np.arange(30) % 10)
    plain = wn.walk(model, None, src, "combined", [1.0], sites=["relu1"], progress=False)[0]
    assert "order" not in plain and "repeat_at" not in plain
    other = wn.walk(model, None, src, "combined:order=add-mul", [1.0], sites=["relu1"],
                    progress=False, site_repeats=[1, 1, 3, 1, 1, 1, 1, 1])[0]
    assert other["order"] == "add-mul" and other["repeat_at"] == "site"
    assert other["site_repeats"] == [1, 1, 3, 1, 1, 1, 1, 1]
    assert wn.walk(model, None, src, "additive", [0.0, 1.0], sites=["relu1"], progress=False,
                   allow_zero=True)[0]["sigma"] == 0.0


# --- the train-at-σ protocol -------------------------------------------------------------------
def _protocol(tmp_path, folder, log=None, **kw):
    src, test = _source(64), _source(40, seed=1)
    args = dict(sites=["input", "relu1"], seeds=[0, 1], epochs=1, batch_size=32,
                out_file=tmp_path / folder / "walk.jsonl", models_dir=tmp_path / folder / "nets",
                log=log)
    args.update(kw)
    return wn.train_at_sigma("mlp_tfc", src, test, "additive", [0.1, 10.0], **args)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_protocol_rows_one_network_per_point(tmp_path):
    said = []
    rows = _protocol(tmp_path, "a", log=said.append)
    assert len(rows) == 2 * 2 * 2                              # sites × σ × seeds
    assert [(r["site_name"], r["sigma"], r["seed"]) for r in rows] == [
        (s, g, d) for s in ("input", "relu1") for g in (0.1, 10.0) for d in (0, 1)]
    assert all(r["train_sigma"] == r["sigma"] and r["protocol"] == "train-at-sigma"
               and r["epochs"] == 1 and r["n_train"] == 64 and r["model"] == "mlp_tfc"
               for r in rows)
    assert len({r["network"] for r in rows}) == 8              # eight different networks
    assert len(list((tmp_path / "a" / "nets").glob("*.npz"))) == 8
    assert sum("train at σ" in s for s in said) == 8
    # resume: nothing trained again, the same rows
    said.clear()
    again = _protocol(tmp_path, "a", log=said.append)
    assert said == [] and _strip(again) == _strip(rows)
    assert len((tmp_path / "a" / "walk.jsonl").read_text().splitlines()) == 8
    # μ per site: one curve per site (train σ = test σ), one μ per seed
    table = wn.midpoints_table(rows)
    assert [e["site_name"] for e in table] == ["input", "relu1"]
    for e in table:
        assert e["train_sigma"] == "sigma" and e["n_seeds"] == 2 and e["seeds"] == [0, 1]
        assert len(e["midpoints_per_seed"]) == 2
    # the spread over seeds per point
    spread = wn.point_spread(rows)
    assert len(spread) == 4
    first = [r["accuracy"] for r in rows[:2]]
    assert spread[0]["accuracy_mean"] == pytest.approx(np.mean(first))
    assert spread[0]["accuracy_std"] == pytest.approx(np.std(first, ddof=1))
    assert spread[0]["accuracies"] == first
    wn.write_point_spread_csv(tmp_path / "points.csv", spread)
    lines = (tmp_path / "points.csv").read_text().splitlines()
    assert lines[0].startswith("site,site_name,noise,sigma,n_seeds,accuracy_mean") and \
        len(lines) == 5


def test_protocol_shards_merge_to_the_unsharded_rows(tmp_path):
    whole = _protocol(tmp_path, "one")
    for i in (0, 1):
        part = _protocol(tmp_path, "sh", shard=f"{i}/2")
        assert len(part) == 4
    merged = wn.train_at_sigma("mlp_tfc", _source(64), _source(40, seed=1), "additive",
                               [0.1, 10.0], sites=["input", "relu1"], seeds=[0, 1],
                               epochs=1, batch_size=32, out_file=tmp_path / "sh" / "walk.jsonl",
                               compute=False)
    assert _strip(merged) == _strip(whole)
    assert sorted(p.name for p in (tmp_path / "sh").iterdir() if p.suffix == ".jsonl") == [
        "walk.shard-0-of-2.jsonl", "walk.shard-1-of-2.jsonl"]


def test_protocol_killed_between_training_and_test_reads_the_network_back(tmp_path):
    rows = _protocol(tmp_path, "k")
    path = tmp_path / "k" / "walk.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])   # 5 rows and a torn one
    said = []
    again = _protocol(tmp_path, "k", log=said.append)
    assert sum("read back" in s for s in said) == 3 and not any("train at" in s for s in said)
    assert _strip(again) == _strip(rows)
    # a row on file measured on another network than the saved one is refused
    bad = [json.loads(line) for line in path.read_text().splitlines()]
    bad[0]["network"] = "0" * 16
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(UserError, match="another network"):
        _protocol(tmp_path, "k")
    # a saved network trained with other settings is never read back
    (tmp_path / "k" / "walk.jsonl").unlink()
    with pytest.raises(UserError, match="other settings.*epochs"):
        _protocol(tmp_path, "k", epochs=2)


def test_protocol_sigma_zero_trains_cleanly_once_per_seed(tmp_path):
    said = []
    rows = wn.train_at_sigma("mlp_tfc", _source(64), _source(40, seed=1), "multiplicative",
                             [0.0, 1.0], sites=["input", "relu1"], seeds=[0], epochs=1,
                             batch_size=32, models_dir=tmp_path / "nets", log=said.append)
    assert [(r["site_name"], r["sigma"]) for r in rows] == [
        ("input", 0.0), ("input", 1.0), ("relu1", 0.0), ("relu1", 1.0)]
    # σ = 0 is the same clean network at every site: trained once, read back for the other
    assert sum("train at σ" in s and "σ=0 " in s for s in said) == 1
    assert sum("read back clean-sigma0-seed0.npz" in s for s in said) == 1
    assert rows[0]["network"] == rows[2]["network"] != rows[1]["network"]
    clean = wn.build_walk_model("mlp_tfc", (1, 6, 6), 10, backend.make_rng(0))
    wn.train_noisy(clean, _source(64), "multiplicative:sigma=0", epochs=1, batch_size=32,
                   seed=0, allow_clean=True)
    from tinyproj.runs.fingerprint import network_fingerprint
    assert network_fingerprint(clean.state_dict()) == rows[0]["network"]
    table = wn.midpoints_table(rows)
    assert len(table) == 2 and all(e["train_sigma"] == "sigma" for e in table)


# --- the command line --------------------------------------------------------------------------
def _walk(out, *extra):
    return cli_main(["walk", "--out", str(out), "--no-progress", "--quiet", *extra])


def test_cli_train_at_sigma_synthetic(tmp_path):
    out = tmp_path / "at"
    args = ["--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
            "--test-subset", "64", "--protocol", "train-at-sigma", "--sigmas", "0.1,100",
            "--sites", "input,all", "--seeds", "0,1"]
    assert _walk(out, *args) == 0
    rows = wn.read_walk(out / "walk.jsonl")
    assert len(rows) == 8 and {r["site_name"] for r in rows} == {"input", "all"}
    csv = (out / "midpoints.csv").read_text().splitlines()
    assert len(csv) == 3 and all(",sigma," in line for line in csv[1:])     # train σ = σ
    assert (out / "walk-points.csv").is_file() and (out / "walk-accuracy.png").is_file()
    assert _walk(out, *args) == 0                                          # resume
    assert len((out / "walk.jsonl").read_text().splitlines()) == 8


@pytest.mark.parametrize("extra,flag,message", [
    (["--grid", "decades"], "--grid", "unknown grid"),
    (["--grid", "add", "--sigmas", "1,2"], "--grid", "not both"),
    (["--protocol", "train-at-sigma", "--train-noise", "1"], "--protocol", "--train-noise"),
    (["--protocol", "train-at-sigma", "--run", "x"], "--protocol", "--run"),
    (["--protocol", "train-at-sigma", "--bn-protocol", "reestimate"], "--bn-protocol",
     "running"),
    (["--protocol", "train-at-sigma", "--train-only"], "--train-only", "train-only"),
    (["--site-repeats", "2,0"], "--site-repeats", ">= 1"),
    (["--site-repeats", "2,x"], "--site-repeats", ">= 1"),
    (["--site-repeats", "2,2", "--repeat-at", "network"], "--site-repeats", "--repeat-at"),
    (["--site-repeats", "2,2"], "--site-repeats", "8 noise sites"),
    (["--site-repeats", "2,2", "--protocol", "train-at-sigma"], "--site-repeats",
     "8 noise sites"),
    (["--noise", "additive:order=add-mul"], "--noise", "combined noise only"),
])
def test_cli_flag_errors(tmp_path, capsys, extra, flag, message):
    assert _walk(tmp_path / "x", "--dataset", "synthetic", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and flag in err
    assert not (tmp_path / "x").exists()                     # nothing written


def test_cli_help_lists_the_grids(capsys):
    with pytest.raises(SystemExit):
        cli_main(["walk", "--help"])
    text = capsys.readouterr().out
    for name in ("add-mnist", "mul-linear-mnist", "mul-log-mnist", "train-at-sigma",
                 "all-no-bn", "--site-repeats", "add-mul"):
        assert name in text


def test_cli_variants_reach_the_rows(tmp_path):
    out = tmp_path / "v"
    assert _walk(out, "--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
                 "--test-subset", "64", "--bn", "--sites", "all-no-bn,relu1",
                 "--noise", "combined:ratio=0.3,order=add-mul", "--sigmas", "0.1,10",
                 "--site-repeats", "1,1,1,2,1,1,1,1,1,1,1") == 0
    rows = wn.read_walk(out / "walk.jsonl")
    assert len(rows) == 4 and {r["site_name"] for r in rows} == {"all-no-bn", "relu1"}
    assert all(r["order"] == "add-mul" and r["repeat_at"] == "site" and r["ratio"] == 0.3
               and r["site_repeats"] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1] for r in rows)
    out2 = tmp_path / "g"
    assert _walk(out2, "--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
                 "--test-subset", "64", "--sites", "relu1", "--noise", "multiplicative",
                 "--grid", "mul-linear") == 0
    rows = wn.read_walk(out2 / "walk.jsonl")
    assert [r["sigma"] for r in rows] == wn.grid_sigmas("mul-linear")
    assert (out2 / "walk-accuracy.png").is_file()
    # --sigmas with 0: a linear grid of one's own, μ interpolated in σ
    out3 = tmp_path / "lin"
    assert _walk(out3, "--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
                 "--test-subset", "64", "--sites", "relu1", "--noise", "multiplicative",
                 "--sigmas", "0,1,3,6") == 0
    rows = wn.read_walk(out3 / "walk.jsonl")
    entry = wn.midpoints_table(rows)[0]
    linear = wn.midpoint_sigma([r["sigma"] for r in rows], [r["accuracy"] for r in rows],
                               rows[0]["chance"], scale="linear")
    assert linear.sigma is not None and entry["midpoint_sigma"] == linear.sigma


def test_cli_train_noise_all_no_bn(tmp_path):
    out = tmp_path / "tn"
    assert _walk(out, "--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
                 "--test-subset", "64", "--bn", "--sites", "all-no-bn", "--sigmas", "0.1,10",
                 "--train-noise", "0.5") == 0
    rows = wn.read_walk(out / "walk.jsonl")
    assert [(r["site"], r["site_name"]) for r in rows] == [(-2, "all-no-bn")] * 2
    nets = [p.name for p in (out / "noisy-models").glob("*.npz")]
    assert len(nets) == 1 and "all-no-bn" in nets[0]
    dyn = [json.loads(line) for line in (out / "dynamics.jsonl").read_text().splitlines()]
    assert dyn[0]["sites"] == ["input", "fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "fc4"]
