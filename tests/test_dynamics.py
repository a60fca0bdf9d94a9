"""Learning-dynamics measures (walking_noise.dynamics) and the experiment driver
benchmarks/wn_dynamics.py, on weights built by hand and a tiny run."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend, nn
from tinyproj.data.sources import ArraySource
from tinyproj.walking_noise import dynamics as dyn

from _helpers import load_module

ROOT = Path(__file__).resolve().parent.parent


def _driver():
    return load_module("wn_dynamics", ROOT / "benchmarks" / "wn_dynamics.py")


def _bimodal(n, spread, seed=0, a=0.5):
    """±a with Gaussian spread·a around each mode, signs fair."""
    rng = np.random.default_rng(seed)
    signs = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return a * signs * (1.0 + spread * rng.standard_normal(n))


# --- the verdict: a bimodal set scores as binarized, a Gaussian or uniform one does not ------
@pytest.mark.parametrize("spread", [0.0, 0.05, 0.2])
def test_bimodal_weights_look_binarized(spread):
    w = _bimodal(20_000, spread)
    assert dyn.looks_binarized(w)
    assert dyn.bimodality_coefficient(w) > dyn.BINARIZED_BIMODALITY


@pytest.mark.parametrize("make", [
    lambda rng: rng.standard_normal(20_000),                 # Gaussian: b = 1/3
    lambda rng: rng.uniform(-1, 1, 20_000),                  # uniform (the PyTorch init): 5/9
    lambda rng: rng.laplace(size=20_000),                    # heavy-tailed: 1/6
    lambda rng: np.concatenate([rng.standard_normal(19_990), [40.0] * 10]),   # outliers
])
def test_unimodal_weights_do_not_look_binarized(make):
    w = make(np.random.default_rng(3))
    assert not dyn.looks_binarized(w)
    assert dyn.bimodality_coefficient(w) < 0.6


def test_verdict_sits_between_uniform_and_a_spread_mixture():
    uniform = dyn.bimodality_coefficient(np.random.default_rng(0).uniform(-1, 1, 200_000))
    mixture = dyn.bimodality_coefficient(_bimodal(200_000, 0.3))
    assert uniform == pytest.approx(5 / 9, abs=0.01)
    assert mixture == pytest.approx(0.76, abs=0.02)
    assert uniform < dyn.BINARIZED_BIMODALITY < mixture


def test_no_spread_is_not_binarized():
    assert not dyn.looks_binarized(np.full(100, 0.3))        # one value: b undefined
    assert not dyn.looks_binarized(np.zeros(100))


def test_a_lopsided_two_valued_layer_still_counts():
    """±a with 90 % of one sign is still two-valued: skew raises b (Sarle), it stays > 0.7."""
    rng = np.random.default_rng(1)
    w = np.where(rng.random(10_000) < 0.9, 0.4, -0.4)
    assert dyn.looks_binarized(w)


# --- the magnitude histogram ------------------------------------------------------------------
def test_histogram_of_two_values_is_all_in_the_last_bin():
    h = dyn.magnitude_histogram(_bimodal(1000, 0.0), bins=10)
    assert h == [0.0] * 9 + [1.0]


def test_histogram_of_uniform_weights_is_flat_and_gaussian_piles_near_zero():
    rng = np.random.default_rng(2)
    flat = dyn.magnitude_histogram(rng.uniform(-1, 1, 100_000), bins=10)
    np.testing.assert_allclose(flat, 0.1, atol=0.01)
    gauss = dyn.magnitude_histogram(rng.standard_normal(100_000), bins=10)
    assert gauss[0] > gauss[3] > gauss[6] > gauss[9]
    assert sum(gauss) == pytest.approx(1.0)


def test_histogram_last_bin_is_share_near_max_and_edges_go_down():
    w = np.array([0.0, 0.05, 0.1, 0.35, 0.95, 1.0, -1.0, -0.5])
    h = dyn.magnitude_histogram(w, bins=10)
    assert h[-1] == pytest.approx(dyn.share_near_max(w)) == pytest.approx(3 / 8)
    assert h[0] == pytest.approx(3 / 8)             # 0, 0.05 and 0.1 (an upper edge: bin 0)
    assert h[1] == 0.0
    assert h[3] == pytest.approx(1 / 8) and h[4] == pytest.approx(1 / 8)


def test_histogram_edge_cases():
    assert dyn.magnitude_histogram(np.zeros(5), bins=4) == [1.0, 0.0, 0.0, 0.0]
    assert dyn.magnitude_histogram(np.zeros(0), bins=3) == [0.0, 0.0, 0.0]
    assert dyn.magnitude_histogram(np.ones((3, 4)), bins=1) == [1.0]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="bins"):
            dyn.magnitude_histogram(np.ones(3), bins=bad)


def test_histogram_of_a_device_array():
    h = dyn.magnitude_histogram(backend.asarray(np.array([[1.0, -1.0], [0.5, 0.05]])), 2)
    assert h == [0.5, 0.5]


# --- growth ---------------------------------------------------------------------------------
def test_growth_of_a_layer_whose_weights_doubled():
    layer = nn.Linear(30, 20, bias=True, rng=backend.make_rng(0))
    model = nn.Sequential({"fc1": layer})
    first = dyn.weight_stats(model)
    layer.weight.data[...] = layer.weight.data * 2.0
    layer.bias.data[...] = layer.bias.data * 100.0          # biases are not weights here
    g = dyn.growth(first, dyn.weight_stats(model))
    assert g == {"fc1": pytest.approx(2.0)}
    assert dyn.growth(first, dyn.weight_stats(model), "max_abs")["fc1"] == pytest.approx(2.0)


def test_growth_from_zero_and_missing_layers():
    first = {"a": {"mean_abs": 0.0}, "b": {"mean_abs": 0.0}, "c": {"mean_abs": 1.0}}
    last = {"a": {"mean_abs": 0.5}, "b": {"mean_abs": 0.0}, "d": {"mean_abs": 1.0}}
    g = dyn.growth(first, last)
    assert g["a"] == math.inf and math.isnan(g["b"]) and set(g) == {"a", "b"}


# --- the driver -------------------------------------------------------------------------------
def _tiny_mnist(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, n)
    x[np.arange(n), 0, y, y] = 3.0                  # a learnable mark per class
    return ArraySource(x, y)


@pytest.mark.parametrize("name", ["clean", "mul-1e10-bn", "add-1e8"])
def test_driver_runs_records_and_summarizes(name, tmp_path):
    wd = _driver()
    rec = wd.run_one(name, _tiny_mnist(64, 0), _tiny_mnist(32, 1), epochs=1, seed=0,
                     settings=wd.authors_settings(), log=lambda text: None)
    assert rec["status"] == "finished" and [r["epoch"] for r in rec["rows"]] == [0, 1]
    assert set(rec["rows"][0]["weights"]) == {"fc1", "fc2", "fc3", "fc4"}
    for when in ("start", "end"):
        for h in rec["histograms"][when].values():
            assert len(h) == 10 and sum(h) == pytest.approx(1.0)
        for h in rec["signed_histograms"][when].values():
            assert len(h) == 20 and sum(h) == pytest.approx(1.0, abs=1e-4)
    if name == "clean":                             # no noise: both accuracies are the same
        assert all(r["test_accuracy"] == r["test_accuracy_noisy"] for r in rec["rows"])
    (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    rows = wd.summarize(tmp_path, tmp_path / "res", log=lambda text: None)
    assert [r["layer"] for r in rows] == ["fc1", "fc2", "fc3", "fc4"]
    first, last = rec["rows"][0]["weights"], rec["rows"][-1]["weights"]
    assert rows[0]["share_near_zero_end"] == pytest.approx(rec["histograms"]["end"]["fc1"][0],
                                                           abs=1e-4)
    assert rows[1]["growth"] == pytest.approx(last["fc2"]["mean_abs"] / first["fc2"]["mean_abs"],
                                              rel=1e-3)
    data = json.loads((tmp_path / "res" / "dynamics.json").read_text())
    assert data[name]["epoch"] == [0, 1] and len(data[name]["bimodality"]["fc1"]) == 2
    assert (tmp_path / "res" / "dynamics.png").stat().st_size > 1000
    assert (tmp_path / "res" / "summary.csv").read_text().startswith("run,seed,noise,sigma")


def test_driver_refuses_bad_flags_before_any_file(tmp_path):
    wd = _driver()
    with pytest.raises(Exception, match="--runs|unknown runs"):
        wd.main(["--out", str(tmp_path / "x"), "--runs", "clean,nope"])
    with pytest.raises(Exception, match="epochs"):
        wd.main(["--out", str(tmp_path / "x"), "--epochs", "0"])
    with pytest.raises(Exception, match="no finished runs"):
        wd.main(["--out", str(tmp_path / "x"), "--summarize", "--results", str(tmp_path / "r")])
    assert not (tmp_path / "x").exists() and not (tmp_path / "r").exists()


def test_driver_refuses_a_folder_of_another_setup(tmp_path):
    wd = _driver()
    out = tmp_path / "x"
    out.mkdir()
    (out / "clean.json").write_text(json.dumps({"name": "clean"}))   # no "setup": legacy
    with pytest.raises(Exception, match="--setup legacy"):
        wd.main(["--out", str(out), "--runs", "clean", "--data-dir", str(tmp_path / "none")])
    assert sorted(p.name for p in out.iterdir()) == ["clean.json"]


def test_driver_schedule_follows_the_setup():
    wd = _driver()
    recs = {s: wd.run_one("clean", _tiny_mnist(300, 0), _tiny_mnist(32, 1), epochs=2, seed=0,
                          settings=wd.authors_settings(), log=lambda text: None, setup=s)
            for s in ("authors", "legacy")}
    assert recs["authors"]["setup"] == "authors" and recs["legacy"]["setup"] == "legacy"
    # cosine per epoch keeps epoch 1's lr at its start value; per minibatch it has decayed
    lr = {s: [r["lr"] for r in rec["rows"]] for s, rec in recs.items()}
    assert lr["authors"][:2] == [pytest.approx(1e-3)] * 2 and lr["legacy"][1] < 0.9e-3


def test_summary_keeps_a_diverged_run():
    wd = _driver()
    rec = {"name": "add-1e8", "status": "diverged: step 3", "rows": []}
    assert wd.summary_rows([rec]) == [{"run": "add-1e8", "layer": "",
                                       "status": "diverged: step 3"}]


def _record(name, noise, bn, start, end):
    def row(epoch, scale):
        return {"epoch": epoch, "test_accuracy": 0.9, "test_accuracy_noisy": 0.8,
                "weights": {"fc1": {"mean_abs": scale, "max_abs": 2 * scale, "std": scale}},
                "binarization": {"fc1": {"bimodality": 0.5, "share_near_max": 0.01}}}
    return {"name": name, "noise": noise, "sigma": 1.0, "bn": bn, "site": "fc2", "epochs": 1,
            "status": "finished", "rows": [row(0, start), row(1, end)]}


def test_summary_compares_with_the_clean_run_of_the_same_kind():
    wd = _driver()
    rows = wd.summary_rows([_record("clean", None, False, 0.1, 0.2),
                            _record("add", "additive", False, 0.1, 0.5),
                            _record("clean-bn", None, True, 0.1, 0.4),
                            _record("mul-bn", "multiplicative", True, 0.1, 0.2),
                            _record("add-bn-alone", "additive", None, 0.1, 0.2)])
    by = {r["run"]: r for r in rows}
    assert by["add"]["growth"] == pytest.approx(5.0) and by["add"]["vs_clean"] == 2.5
    assert by["mul-bn"]["vs_clean"] == 0.5 and by["clean-bn"]["vs_clean"] == 1.0
    assert by["add-bn-alone"]["vs_clean"] is None          # no clean run of its kind
    assert not by["add"]["binarized"]


def test_seeds_are_compared_within_a_seed_and_tabled_over_seeds(tmp_path):
    wd = _driver()
    records = []
    for seed, end in ((0, 0.5), (1, 0.9)):
        for rec in (_record("clean", None, False, 0.1, 0.3 if seed else 0.25),
                    _record("add-1e0", "additive", False, 0.1, end)):
            rec["seed"] = seed
            rec["histograms"], rec["seconds"] = {"start": {}, "end": {}}, 1.0
            records.append(rec)
    rows = wd.summary_rows(records)
    noisy = [r for r in rows if r["run"] == "add-1e0"]
    assert [r["vs_clean"] for r in noisy] == [2.0, 3.0]        # each seed against its own clean
    table = {r["run"]: r for r in wd.seed_table(rows)}
    assert table["add-1e0"]["seeds"] == 2 and table["add-1e0"]["vs_clean"] == 2.5
    assert (table["add-1e0"]["vs_clean_min"], table["add-1e0"]["vs_clean_max"]) == (2.0, 3.0)
    assert set(wd.series(records)) == {"clean", "add-1e0", "clean/seed1", "add-1e0/seed1"}
    for seed in (0, 1):
        folder = tmp_path / f"s{seed}"
        folder.mkdir()
        for rec in records:
            if rec["seed"] == seed:
                (folder / f"{rec['name']}.json").write_text(json.dumps(rec))
    wd.main(["--out", f"{tmp_path / 's0'},{tmp_path / 's1'}", "--summarize",
             "--results", str(tmp_path / "res")])
    assert (tmp_path / "res" / "table.csv").read_text().count("\n") == 3   # header + 2 runs


def test_a_spike_at_zero_with_broad_humps_is_not_binarized():
    """What the additive σ >= 1e4 runs left in fc1 (b ≈ 0.71, 53 % of |w| below 0.1·max):
    half the weights still near their tiny initial values (never- or rarely-lit pixels, dead
    hidden units), the rest grown on one side (positive). Two modes, but not ±a: Sarle's b
    alone calls it binarized, the near-zero condition does not."""
    rng = np.random.default_rng(4)
    spike = rng.uniform(-0.03, 0.03, 10_000)
    hump = rng.uniform(0.2, 0.8, 10_000)
    w = np.concatenate([spike, hump])
    assert dyn.bimodality_coefficient(w) > dyn.BINARIZED_BIMODALITY
    assert dyn.share_near_zero(w) > 0.45
    assert not dyn.looks_binarized(w)


def test_share_near_zero():
    w = np.array([0.0, 0.05, 0.1, 0.5, -1.0])
    assert dyn.share_near_zero(w) == pytest.approx(3 / 5)     # 0.1 is on the edge: counted
    assert dyn.share_near_zero(np.zeros(4)) == 1.0 and dyn.share_near_zero(np.zeros(0)) == 0.0
    assert dyn.share_near_zero(_bimodal(10_000, 0.2)) < 0.01
    assert dyn.share_near_zero(np.random.default_rng(0).uniform(-1, 1, 100_000)) == \
        pytest.approx(0.1, abs=0.01)


def test_fc1_report_splits_by_pixel_and_unit():
    module = load_module("wn_dynamics_fc1", ROOT / "benchmarks" / "wn_dynamics_fc1.py")
    x = np.zeros((10, 1, 2, 2), np.float32)
    x[:, 0, 0, 1] = 1.0                        # pixel 1 always lit, pixel 0 never
    x[:1, 0, 1, 0] = 1.0                       # pixel 2 lit in 1 of 10 images
    x[:5, 0, 1, 1] = 1.0                       # pixel 3 in 5 of 10
    w = np.array([[0.01, 1.0, 0.5, 0.8],       # unit 0: the never-lit pixel's weight stays small
                  [0.01, 0.02, -0.03, 0.0]])   # unit 1: every weight near zero
    text = module.report(w, x)
    assert "share near zero 0.625" in text
    assert "never lit                       1: share near zero 1.00" in text
    assert "hidden units with every weight near zero: 1 of 2" in text
