"""Robustness sweeps: scoring under distortions, bits per weight, resume, shards, per-layer sweeps,
CLI."""
import json
import math
import statistics

import numpy as np
import pytest

from tinyproj import backend, robustness
from tinyproj.algorithm1 import weight_params
from tinyproj.cli import main
from tinyproj.runs.evaluation import error_rate
from tinyproj.robustness import scoring
from tinyproj.runs.training import load_run

from _helpers import copy_run, train_tiny_run

FAST = dict(bn_batches=2, bn_batch_size=50, test_subset=100)   # keep every scoring ~0.1 s
GRID = [0.0, 0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained run (config.json + checkpoint.npz), copied afresh by each test."""
    return train_tiny_run(tmp_path_factory.mktemp("robustness") / "trained", train_subset=120)


@pytest.fixture
def run_copy(trained, tmp_path):
    """A fresh copy of the trained run folder (no sweeps yet)."""
    return lambda name="run": copy_run(trained, tmp_path / name)


@pytest.fixture(scope="module")
def loaded(trained):
    return load_run(trained)


@pytest.fixture(scope="module")
def reference_rows(trained, tmp_path_factory):
    """The GRID sweep of AddNorm run straight through once, unsharded (the oracle)."""
    dst = copy_run(trained, tmp_path_factory.mktemp("reference") / "run")
    return robustness.run_sweep(dst, "addnorm", GRID, draws=2, progress=False, **FAST)


def numbers(rows):
    """What must agree between two sweeps: everything except the timing."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def state(model):
    return {k: np.array(backend.to_numpy(v), copy=True) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def test_scoring_restores_weights_and_batchnorm_bitwise(loaded):
    model = loaded.model
    before = state(model)
    arrays = {n: p.data for n, p in weight_params(model).items()}
    s = robustness.score_distortion(model, loaded.train, loaded.test, "addnorm:sigma=0.4",
                                    draws=2, measure_noise=True, **FAST)
    robustness.score_distortion(model, loaded.train, loaded.test, "power:beta=0.3",
                                layers=["conv3.weight"], **FAST)
    after = state(model)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
        assert before[k].dtype == after[k].dtype
    assert all(p.data is arrays[n] for n, p in weight_params(model).items())   # same objects
    assert not model.training
    assert len(s.noise_power) == 2 and s.noise_power[0] != s.noise_power[1]


def test_addnorm_sigma_zero_is_the_clean_error(loaded):
    m, tr, te = loaded.model, loaded.train, loaded.test
    clean = robustness.score_distortion(m, tr, te, "none", draws=2, **FAST)
    zero = robustness.score_distortion(m, tr, te, "addnorm:sigma=0", draws=2, **FAST)
    assert zero.errors == clean.errors
    # without re-estimation, "none" is the plain error of the stored network
    plain = robustness.score_distortion(m, tr, te, "none", bn_batches=0, test_subset=100)
    assert plain.errors == [error_rate(m, te, limit=100)] and plain.draws == 1


def test_k_draws_give_k_errors_mean_std_and_are_reproducible(loaded):
    m, tr, te = loaded.model, loaded.train, loaded.test
    s = robustness.score_distortion(m, tr, te, "addnorm:sigma=0.6", draws=3, **FAST)
    assert s.draws == 3 and len(s.errors) == 3 and s.n_test == 100
    assert s.mean == pytest.approx(sum(s.errors) / 3)
    assert s.std == pytest.approx(statistics.stdev(s.errors))
    again = robustness.score_distortion(m, tr, te, "addnorm:sigma=0.6", draws=3, **FAST)
    assert again.errors == s.errors
    one = robustness.score_distortion(m, tr, te, "power:beta=0.5", **FAST)
    assert one.draws == 1 and one.std == 0.0
    with pytest.raises(ValueError, match="draws"):
        robustness.score_distortion(m, tr, te, "sign", draws=0)


def test_draw_generators_depend_only_on_seed_spec_layers_draw():
    def first(rngs):
        return [float(backend.to_numpy(r.random(1))[0]) for r in rngs]
    a = first(robustness.draw_generators(0, "addnorm:sigma=0.5", None, 1))
    assert a == first(robustness.draw_generators(0, "addnorm: sigma = 0.50", None, 1))
    assert a != first(robustness.draw_generators(1, "addnorm:sigma=0.5", None, 1))
    b = first(robustness.draw_generators(0, "addnorm:sigma=0.5", ["conv1.weight"], 1))
    assert b[0] != a[0] and b[1] == a[1]        # BN batches: the same for every spec and layer
    with pytest.raises(ValueError, match="seed"):
        robustness.draw_generators(-1, "sign", None, 0)


def test_only_the_named_layers_are_distorted(loaded):
    model = loaded.model
    clean = state(model)
    weights = list(weight_params(model))
    with robustness.distorted_weights(model, "addnorm:sigma=0.5", backend.make_rng(0),
                                      layers=["conv2.weight"]) as P:
        assert list(P) == ["conv2.weight"]
        inside = state(model)
    for k in clean:
        same = np.array_equal(clean[k], inside[k])
        assert same == (k != "conv2.weight"), k
    with robustness.distorted_weights(model, "addnorm:sigma=0.5", backend.make_rng(0)):
        inside = state(model)
    for k in clean:                  # all weights noisy, biases and batch norm untouched
        assert np.array_equal(clean[k], inside[k]) == (k not in weights), k
    with pytest.raises(ValueError, match="conv1.weight, conv2.weight"):
        robustness.select_weights(model, ["conv9.weight"])
    bias = next(n for n, p in model.named_parameters() if p.data.ndim == 1)
    with pytest.raises(ValueError, match="batch-norm"):
        robustness.select_weights(model, [bias])
    with pytest.raises(ValueError) as err:           # the command line names the flag
        robustness.select_weights(model, ["conv9.weight"])
    assert getattr(err.value, "flag", None) == "--layer"


@pytest.mark.parametrize("levels, words", [(["1", "x"], "'x' is not a number"),
                                           (["2"], "gamma"), ([], "no levels")])
def test_check_levels_errors_are_one_line_about_levels(levels, words):
    with pytest.raises(ValueError) as err:
        robustness.check_levels("multunif", levels)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert getattr(err.value, "flag", None) == "--levels"


def test_untrained_network_builds_the_runs_network_without_its_data(tmp_path, monkeypatch):
    from tinyproj.errors import UserError
    from tinyproj.runs import build
    from tinyproj.runs.config import make_config
    from tinyproj.runs.folder import untrained_network
    monkeypatch.setattr(build, "build_data", lambda *a, **k: pytest.fail("data loaded"))
    cfg = make_config(model="mlp_tfc", dataset="mnist", val_size=0)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg.to_dict()))
    network = untrained_network(tmp_path / "run")
    assert list(weight_params(network)) == ["fc1.weight", "fc2.weight", "fc3.weight",
                                            "fc4.weight"]
    assert network.fc1.weight.data.shape[1] == 28 * 28
    with pytest.raises(UserError, match="no config.json"):   # not a run folder
        untrained_network(tmp_path)


# ---------------------------------------------------------------------------------------------
# Bits per weight
# ---------------------------------------------------------------------------------------------
def test_bits_per_weight_match_hand_computation():
    w1 = np.array([[1.0, -1.0], [0.5, 0.0]], dtype=np.float32)     # alpha 1, Q_w = 0.5625
    w2 = np.array([[2.0, 0.0, 0.0, -2.0]], dtype=np.float32)       # alpha 2, Q_w = 2
    rep = robustness.addnorm_bits({"a": w1, "b": w2}, 0.5)
    b1 = 0.5 * math.log2(1 + 0.5625 / 0.25)                         # Q_n = (1·0.5)² = 0.25
    b2 = 0.5 * math.log2(1 + 2.0 / 1.0)                             # Q_n = (2·0.5)² = 1
    assert rep.per_layer["a"] == pytest.approx(b1) and rep.per_layer["b"] == pytest.approx(b2)
    assert rep.per_weight == pytest.approx((4 * b1 + 4 * b2) / 8)
    assert rep.pooled == pytest.approx(0.5 * math.log2(1 + (0.5625 + 2) / (0.25 + 1)))
    assert robustness.snr_bits(1.0, 0.0) == math.inf
    zero = robustness.addnorm_bits({"a": w1}, 0.0)
    assert zero.per_weight == math.inf and zero.as_json()["bits_per_weight"] is None
    # MultUnif(0.5): u ~ U(0.5, 2), E[(u − 1)²] = 1.75 − 2·1.25 + 1 = 0.25
    assert robustness.multunif_bits({"a": w1}, 0.5).per_weight == pytest.approx(
        0.5 * math.log2(1 + 1 / 0.25))
    # the empirical version agrees with the formula on a big layer
    w = backend.make_rng(1).standard_normal((400, 500), dtype=np.float32)
    from tinyproj import projections
    noisy = projections.addnorm(w, 0.3, backend.make_rng(2))
    emp = robustness.bits_report({"w": w}, robustness.empirical_noise_power({"w": w},
                                                                           {"w": noisy}))
    assert emp.per_weight == pytest.approx(robustness.addnorm_bits({"w": w}, 0.3).per_weight,
                                           rel=0.01)


# ---------------------------------------------------------------------------------------------
# Sweeps, resume, shards
# ---------------------------------------------------------------------------------------------
def test_sweep_file_rows_and_fields(reference_rows, run_copy):
    rows = reference_rows
    assert [r["level"] for r in rows] == GRID
    fields = {"distortion", "param", "level", "spec", "layer", "error_mean", "error_std",
              "errors", "draws", "bits_per_weight", "bits_per_layer", "n_test", "seed"}
    for r in rows:
        assert fields <= set(r)
        assert r["distortion"] == "addnorm" and r["layer"] is None and r["draws"] == 2
        assert len(r["errors"]) == 2 and r["error_mean"] == pytest.approx(np.mean(r["errors"]))
        assert r["spec"] == f"addnorm:sigma={r['level']:g}"
    assert rows[0]["bits_per_weight"] is None and set(rows[0]["bits_per_layer"].values()) == {None}
    bits = [r["bits_per_weight"] for r in rows[1:]]
    assert all(b > 0 for b in bits) and bits == sorted(bits, reverse=True)
    assert len(rows[1]["bits_per_layer"]) == 9
    # power: deterministic, one draw by default, no bits; file name and JSON lines
    run = run_copy()
    prow = robustness.run_sweep(run, "power", [1.0, 0.0], progress=False, **FAST)
    assert [r["draws"] for r in prow] == [1, 1] and "bits_per_weight" not in prow[0]
    assert prow[0]["bn_protocol"] == "batches" and prow[0]["bn_images"] is None
    lines = (run / "sweeps" / "power.jsonl").read_text().splitlines()
    assert [json.loads(x)["spec"] for x in lines] == ["power:beta=1", "power:beta=0"]
    assert [r["level"] for r in prow] == [0.0, 1.0]          # merged rows: sorted by level


def test_resume_after_a_partial_grid_and_after_a_crash(reference_rows, run_copy, monkeypatch):
    # a sweep of some levels, then the full grid: nothing repeated, nothing lost
    run = run_copy("partial")
    robustness.run_sweep(run, "addnorm", [0.5, 0.0], draws=2, progress=False, **FAST)
    rows = robustness.run_sweep(run, "addnorm", GRID, draws=2, progress=False, **FAST)
    assert numbers(rows) == numbers(reference_rows)
    assert len((run / "sweeps" / "addnorm.jsonl").read_text().splitlines()) == len(GRID)

    # a crash after two levels, then the same call again
    run = run_copy("crash")
    real, calls = scoring.score_distortion, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)
    monkeypatch.setattr(scoring, "score_distortion", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        robustness.run_sweep(run, "addnorm", GRID, draws=2, progress=False, **FAST)
    assert len(robustness.merge_sweep_files(run, "addnorm")) == 2
    monkeypatch.setattr(scoring, "score_distortion", real)
    rows = robustness.run_sweep(run, "addnorm", GRID, draws=2, progress=False, **FAST)
    assert numbers(rows) == numbers(reference_rows)

    # resuming with other settings is refused, --restart starts afresh
    with pytest.raises(ValueError, match="draws=2"):
        robustness.run_sweep(run, "addnorm", GRID, draws=3, progress=False, **FAST)
    rows = robustness.run_sweep(run, "addnorm", [0.5], draws=3, restart=True, progress=False,
                                **FAST)
    assert len(rows) == 1 and rows[0]["draws"] == 3


def test_shards_merge_to_exactly_the_single_run(reference_rows, run_copy):
    run = run_copy("sharded")
    for i in (2, 0, 1):                                       # any order
        robustness.run_sweep(run, "addnorm", GRID, draws=2, shard=f"{i}/3", progress=False,
                             **FAST)
    names = sorted(p.name for p in (run / "sweeps").iterdir())
    assert names == [f"addnorm.shard-{i}-of-3.jsonl" for i in range(3)]
    assert len((run / "sweeps" / "addnorm.shard-0-of-3.jsonl").read_text().splitlines()) == 2
    assert numbers(robustness.merge_sweep_files(run, "addnorm")) == numbers(reference_rows)
    assert robustness.shard_points(list(range(7)), "1/3") == [1, 4]
    for bad in ("3/3", "1/0", "x", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            robustness.parse_shard(bad)


def test_jobs_run_shards_in_parallel_processes(reference_rows, run_copy):
    run = run_copy("jobs")
    rows = robustness.run_sweep_jobs(run, "addnorm", GRID, jobs=2, draws=2, progress=False,
                                     **FAST)
    assert numbers(rows) == numbers(reference_rows)
    assert sorted(p.name for p in (run / "sweeps").iterdir()) == [
        "addnorm.shard-0-of-2.jsonl", "addnorm.shard-1-of-2.jsonl"]


def test_per_layer_sweep_writes_one_row_per_layer_and_level(run_copy, monkeypatch):
    run = run_copy("per-layer")
    seen = []
    real = scoring.score_distortion

    def spy(model, *args, layers=None, **kwargs):
        seen.append(layers)
        return real(model, *args, layers=layers, **kwargs)
    monkeypatch.setattr(scoring, "score_distortion", spy)
    robustness.run_sweep(run, "multunif", [1.0, 0.2], layer="conv2.weight", draws=1,
                         progress=False, **FAST)
    rows = robustness.run_sweep(run, "multunif", [1.0, 0.2], per_layer=True, draws=1,
                                progress=False, **FAST)
    names = list(weight_params(load_run(run).model))
    assert [(r["layer"], r["level"]) for r in rows] == [(n, g) for n in names for g in (0.2, 1.0)]
    assert [r["layer_index"] for r in rows[::2]] == list(range(len(names)))
    assert seen == [["conv2.weight"]] * 2 + [[n] for n in names if n != "conv2.weight"
                                             for _ in (1, 2)]   # conv2 not scored again
    assert all(list(r["bits_per_layer"]) == [r["layer"]] for r in rows)
    assert not (run / "sweeps" / "multunif.jsonl").exists()
    mids = robustness.midpoints(rows)
    assert list(mids) == names
    for m in mids.values():
        assert m.side == "down" and (m.level is None) == (m.beyond_grid or bool(m.note))
        if m.level is not None:
            assert 0.2 <= m.level <= 1.0


def test_midpoint_interpolates_linearly_and_flags_beyond_grid():
    rows = [{"distortion": "addnorm", "layer": None, "level": l, "error_mean": e,
             "chance_error": 0.9} for l, e in [(0, 0.1), (0.2, 0.2), (0.4, 0.6), (0.6, 0.9)]]
    m = robustness.midpoints(rows)[None]
    assert m.threshold == pytest.approx(0.5) and m.level == pytest.approx(0.35)
    assert not m.beyond_grid
    low = [dict(r, error_mean=min(r["error_mean"], 0.3)) for r in rows]
    m = robustness.midpoints(low)[None]
    assert m.level is None and m.beyond_grid
    # MultUnif walks down from γ = 1
    rows = [{"distortion": "multunif", "layer": "fc7.weight", "level": l, "error_mean": e,
             "chance_error": 0.9} for l, e in [(1, 0.1), (0.5, 0.3), (0.25, 0.7)]]
    assert robustness.midpoints(rows)["fc7.weight"].level == pytest.approx(0.375)
    with pytest.raises(ValueError, match="clean_error"):
        robustness.midpoints(rows[1:])
    assert robustness.midpoints(rows[1:], clean_error=0.1)["fc7.weight"].level == \
        pytest.approx(0.375)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def test_cli_sweep_and_its_errors(run_copy, tmp_path, capsys):
    run = str(run_copy("cli"))
    fast = ["--bn-batches", "2", "--test-subset", "50", "--no-progress"]
    assert main(["sweep", run, "--distortion", "power", "--levels", "1,0.5"] + fast) == 0
    assert "beta" in capsys.readouterr().out
    assert len(robustness.merge_sweep_files(run, "power")) == 2
    assert main(["sweep", run, "--distortion", "addnorm", "--levels", "0,0.5", "--draws", "1",
                 "--shard", "1/2", "--per-layer", "--quiet"] + fast) == 0
    assert len(robustness.merge_sweep_files(run, "layers-addnorm")) == 9   # 18 points / 2

    def error_of(argv):
        assert main(["sweep"] + argv + fast) == 2
        return capsys.readouterr().err
    err = error_of([run, "--distortion", "gauss"])
    assert "gauss" in err and "addnorm, multunif, power" in err
    assert "0 <= i < n" in error_of([run, "--distortion", "addnorm", "--shard", "2/2"])
    assert "i/n" in error_of([run, "--distortion", "addnorm", "--shard", "half"])
    assert "gamma" in error_of([run, "--distortion", "multunif", "--levels", "1.5"])
    assert "conv1.weight" in error_of([run, "--distortion", "power", "--layer", "conv0.weight"])
    assert "run folder" in error_of([str(tmp_path / "empty"), "--distortion", "addnorm"])
    assert "--jobs" in error_of([run, "--distortion", "power", "--jobs", "2", "--shard", "0/2"])
