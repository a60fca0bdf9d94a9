"""`tinyproj report` and the layer-wise analyses (Figures 1C, 1D, 2D) on tiny runs."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend, data, models, projections, robustness
from tinyproj.robustness import analysis
from tinyproj.algorithm1 import weight_params
from tinyproj.cli import main
from tinyproj.runs.config import make_config
from tinyproj.runs.fingerprint import checkpoint_fingerprint
from tinyproj.runs.grid import NETWORK_FIELD
from tinyproj.errors import UserError
from tinyproj.reporting import PAPER_TABLE2, make_report, read_sweep
from tinyproj.runs.training import train


PER_LAYER_POWER = robustness.sweep_name("power", per_layer=True)    # the per-layer sweep's name


def tiny_config(folder, preset, **overrides):
    values = dict(dataset="synthetic", model="bc_cifar10", width=1 / 16, train_subset=120,
                  val_size=40, batch_size=20, epochs=2, lr=0.01, bn_batches=2,
                  eval_batch_size=100, test_subset=100, out=str(folder))
    values.update(overrides)
    return make_config(preset, **values)


def sweep_row(distortion, level, error, layer=None, std=0.01, bits=None):
    return {"distortion": distortion, "level": level, "spec": f"{distortion}:{level}",
            "layer": layer, "error_mean": error, "error_std": std,
            "errors": [error - std, error + std], "draws": 2, "bits_per_weight": bits,
            "bits_per_layer": None}


def write_sweep(run_folder, file_name, rows):
    """Hand-written sweep rows, stamped with the run's network as `tinyproj sweep` does (the
    report refuses rows of another network)."""
    network = checkpoint_fingerprint(run_folder / "checkpoint.npz")
    path = run_folder / "sweeps" / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(dict(r, **{NETWORK_FIELD: network})) + "\n"
                            for r in rows))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny trained runs; the sign run gets hand-written sweep, shard and per-layer files."""
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for preset in ("tr-none-nc", "tr-sign-c"):
        folders[preset] = root / preset
        train(tiny_config(folders[preset], preset), progress=False, log=lambda *a: None)
    sign = folders["tr-sign-c"]
    write_sweep(sign, "addnorm.jsonl",
                [sweep_row("addnorm", 0.0, 0.50), sweep_row("addnorm", 0.5, 0.60, bits=0.7),
                 sweep_row("addnorm", 1.0, 0.70, bits=0.3)])        # 1.0 repeated in a shard
    write_sweep(sign, "addnorm.shard-1-of-2.jsonl",
                [sweep_row("addnorm", 1.0, 0.70, bits=0.3), sweep_row("addnorm", 2.0, 0.85,
                                                                       bits=0.1)])
    write_sweep(sign, "power.jsonl",
                [sweep_row("power", b, 0.5 + 0.1 * abs(1 - b)) for b in (0.0, 0.5, 1.0, 2.0)])
    write_sweep(sign, f"{PER_LAYER_POWER}.jsonl",
                [sweep_row("power", b, 0.5 + 0.05 * k * abs(1 - b), layer=f"{name}.weight")
                 for k, name in enumerate(("conv1", "conv2", "fc9")) for b in (0.5, 1.0, 2.0)])
    write_sweep(folders["tr-none-nc"], "power.jsonl",
                [sweep_row("power", b, 0.6 + 0.2 * abs(1 - b)) for b in (0.0, 1.0, 2.0)])
    return folders


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = main(["report", str(runs["tr-none-nc"]), str(runs["tr-sign-c"]), "--out", str(out)])
    assert rc == 0
    return out


def last_row(folder):
    lines = (Path(folder) / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------
def test_table2_csv_has_the_runs_values_in_percent_and_the_papers(runs, report):
    with open(report / "table2.csv") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"tr-none-nc", "tr-sign-c"}
    for preset, folder in runs.items():
        last = last_row(folder)
        row = rows[preset]
        for t in ("none", "sign", "round"):
            assert float(row[f"te_{t}"]) == pytest.approx(100 * last["test_error"][t])
            assert float(row[f"best_val_te_{t}"]) == pytest.approx(
                100 * last["test_error_at_best_val"][t])
            assert float(row[f"paper_te_{t}"]) == PAPER_TABLE2[preset][t]
        assert int(row["epochs_trained"]) == 2 and int(row["epochs_planned"]) == 2


def test_table2_md_lists_runs_epochs_and_paper_values(runs, report):
    md = (report / "table2.md").read_text()
    for preset, folder in runs.items():
        line = next(l for l in md.splitlines() if l.startswith(f"| {preset} |"))
        assert "2 of 2" in line                       # epochs trained
        p = last_row(folder)["test_error"]["sign"]    # one evaluation on 100 test images:
        se = 100 * (p * (1 - p) / 100) ** 0.5         # ± its binomial SE, in points
        cells = [c.strip() for c in line.split("|")[1:-1]]
        value, bar = (float(x) for x in cells[4].removesuffix(" (SE)").split(" ± "))
        assert value == pytest.approx(100 * p, abs=0.51) and bar == pytest.approx(se, abs=0.51)
        assert cells[4].endswith("(SE)")
    for value in ("11.35", "14.92", "90.00", "10.64", "9.95", "10.40"):
        assert value in md
    assert "last" in md and "best val" in md          # says which evaluation is shown
    assert "sqrt(p(1 − p)/n_test)" in md and "not a spread over seeds" in md


# ---------------------------------------------------------------------------
# Figures and report.md
# ---------------------------------------------------------------------------
EXPECTED_PNGS = ("fig1b", "fig1c", "fig1d", "fig2a", "fig2c", "fig2d", PER_LAYER_POWER)


@pytest.mark.parametrize("name", EXPECTED_PNGS)
def test_figures_exist_and_are_real_images(report, name):
    import matplotlib.image as mpimg
    path = report / f"{name}.png"
    assert path.exists(), f"{name}.png missing"
    assert path.stat().st_size > 5000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300


def test_report_md_embeds_every_png_and_says_what_was_skipped(report):
    md = (report / "report.md").read_text()
    for png in sorted(report.glob("*.png")):
        assert f"]({png.name})" in md
    assert not (report / "fig2b.png").exists()         # no multunif sweep was written
    assert "fig2b skipped" in md and "multunif" in md
    assert "| tr-sign-c |" in md                       # the table is in the page


def test_read_sweep_merges_shards_dedupes_and_sorts(runs):
    rows = read_sweep(runs["tr-sign-c"], "addnorm")
    assert [r["level"] for r in rows] == [0.0, 0.5, 1.0, 2.0]   # 1.0 once, 2.0 from the shard
    layers = read_sweep(runs["tr-sign-c"], PER_LAYER_POWER)
    assert len(layers) == 9 and layers[0]["layer"] == "conv1.weight"
    assert read_sweep(runs["tr-sign-c"], "multunif") == []
    assert read_sweep(runs["tr-none-nc"], "addnorm") == []   # per-layer/shard names do not leak


def test_missing_sweeps_and_no_analyses_still_write_the_report(runs, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(runs["tr-none-nc"]), "--out", str(out), "--no-analyses"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("tinyproj report:") and "analyses: off" in printed
    assert f"results in {out}/" in printed.splitlines()[-1]
    md = (out / "report.md").read_text()
    assert (out / "table2.md").exists() and (out / "fig1b.png").exists()
    for name in ("fig1c", "fig1d", "fig2a", "fig2b", "fig2d"):
        assert f"{name} skipped" in md
        assert not (out / f"{name}.png").exists()
    assert (out / "fig2c.png").exists()                # tr-none-nc has a power sweep


def test_a_run_without_checkpoint_gets_a_note_not_a_crash(runs, tmp_path):
    folder = tmp_path / "nockpt"
    folder.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        (folder / name).write_text((runs["tr-none-nc"] / name).read_text())
    out = tmp_path / "rep"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "fig1c skipped" in md and "checkpoint.npz" in md


def test_sweeps_of_another_network_are_refused_with_a_note(runs, tmp_path):
    """A sweep made before a retraining (other fingerprint) is never drawn; report.md says why."""
    import shutil
    folder = tmp_path / "retrained"
    shutil.copytree(runs["tr-none-nc"], folder)
    path = folder / "sweeps" / "power.jsonl"
    path.write_text(path.read_text().replace(checkpoint_fingerprint(folder / "checkpoint.npz"),
                                             "0123456789abcdef"))
    rep = make_report([folder], tmp_path / "rep", analyses=False, log=lambda *a: None)
    assert "fig2c" not in rep.figures and "see the notes" in rep.skipped["fig2c"]
    assert any("another network" in n for n in rep.notes)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "fig2c skipped" in md and "## Notes" in md


def test_bad_run_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "config.json" in err
    (tmp_path / "afile.txt").write_text("x")
    assert main(["report", str(tmp_path / "afile.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "o" / "report.md").exists()


def test_a_report_rewrites_only_its_own_files(runs, tmp_path, capsys):
    """--out holding the user's own report.md: refused, nothing touched; an earlier report's
    folder (and a folder of unrelated files) is fine."""
    theirs = tmp_path / "notes"
    theirs.mkdir()
    (theirs / "report.md").write_text("# my own notes\n")
    argv = ["report", str(runs["tr-none-nc"]), "--no-analyses", "--out"]
    assert main(argv + [str(theirs)]) == 2
    err = capsys.readouterr().err
    assert "report.md" in err and "--out" in err and "Traceback" not in err
    assert [p.name for p in theirs.iterdir()] == ["report.md"]
    assert (theirs / "report.md").read_text() == "# my own notes\n"
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "todo.txt").write_text("keep")
    for _ in range(2):                                  # a rerun rewrites its own report
        assert main(argv + [str(shared)]) == 0
        assert (shared / "report.md").exists() and (shared / "todo.txt").read_text() == "keep"


def test_betas_that_are_not_numbers_are_a_usage_error(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(runs["tr-none-nc"]), "--out", str(tmp_path / "o"), "--betas", "a,b"])
    assert exit_.value.code == 2 and "--betas" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_out_naming_a_file_is_refused_before_any_work(runs, tmp_path, capsys):
    """`report --out FILE` (or a path under a file): one message naming the flag and the fix."""
    afile = tmp_path / "report.txt"
    afile.write_text("keep me")
    for out in (afile, afile / "sub"):
        assert main(["report", str(runs["tr-none-nc"]), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "not a folder" in err and "Traceback" not in err
    assert afile.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    with pytest.raises(UserError, match="--out"):
        make_report([tmp_path / "not-even-a-run"], afile, log=lambda *a: None)


# ---------------------------------------------------------------------------
# The analyses
# ---------------------------------------------------------------------------
@pytest.fixture
def model():
    m = models.bc_cifar10(width=1 / 16, rng=backend.make_rng(3))
    return m.eval()


@pytest.fixture
def batch():
    x, _ = data.synthetic_classification(16, seed=1)
    return x


def test_sign_distance_matches_a_hand_computation(model):
    d = analysis.sign_distance(model)
    dn = analysis.sign_distance(model, normalized=True)
    assert list(d) == list(weight_params(model))
    for name, p in weight_params(model).items():
        W = np.asarray(backend.to_numpy(p.data), dtype=np.float64)
        alpha = np.abs(W).max()
        hand = np.mean(np.abs(W - alpha * np.where(W >= 0, 1.0, -1.0)))
        assert d[name] == pytest.approx(hand, rel=1e-6)
        assert d[name] == pytest.approx(alpha - np.abs(W).mean(), rel=1e-5)
        assert dn[name] == pytest.approx(hand / alpha, rel=1e-6)
        assert 0.0 <= dn[name] <= 1.0


def test_layer_outputs_names_count_and_final_output(model, batch):
    names = [n for n, _ in model.named_children()]
    outs = analysis.layer_outputs(model, batch)
    assert list(outs) == names and len(outs) == 30
    np.testing.assert_allclose(outs["bn9"], model(batch).data, rtol=1e-6)
    some = analysis.layer_outputs(model, batch, ["relu2", "conv1"])
    assert list(some) == ["conv1", "relu2"] and some["relu2"].shape == (16, 8, 16, 16)
    with pytest.raises(KeyError, match="conv1"):
        analysis.layer_outputs(model, batch, ["conv99"])


def test_activity_sites_are_the_ends_of_the_blocks(model):
    sites = analysis.activity_sites(model)
    assert sites["conv2"] == "relu2" and sites["fc9"] == "bn9" and len(sites) == 9


@pytest.mark.parametrize("bn", ["batch", "running", "reestimate"])
def test_activation_correlation_is_one_for_sign_valued_weights(model, batch, bn):
    from tinyproj.data.sources import ArraySource
    xs, ys = data.synthetic_classification(40, seed=2)
    source = ArraySource(xs, ys)
    kwargs = dict(source=source, bn_batches=2, batch_size=20) if bn == "reestimate" else {}
    before = {k: np.array(backend.to_numpy(v)) for k, v in model.state_dict().items()}
    r = analysis.activation_correlation(model, batch, bn=bn, **kwargs)
    assert list(r) == [n.split(".")[0] for n in weight_params(model)]
    assert all(-1.0 <= v < 0.9999 for v in r.values())          # Sign changes the activity
    after = model.state_dict()
    for k in before:                                            # weights and stats restored
        np.testing.assert_array_equal(before[k], backend.to_numpy(after[k]), err_msg=k)
    for p in weight_params(model).values():
        p.data = projections.sign(p.data)                       # now W == Sign(W)
    r = analysis.activation_correlation(model, batch, bn=bn, **kwargs)
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in r.values())


def test_activation_correlation_re_estimates_exactly_by_default_as_the_sweeps(model, batch,
                                                                           monkeypatch):
    from tinyproj.data.sources import ArraySource
    from tinyproj.robustness.bn_estimate import BNProtocol, reestimate_exact
    xs, ys = data.synthetic_classification(60, seed=2)
    source = ArraySource(xs, ys)
    seen = []
    real = analysis.reestimate
    monkeypatch.setattr(analysis, "reestimate",
                        lambda m, src, protocol, rng: seen.append(protocol) or
                        real(m, src, protocol, rng))
    r = analysis.activation_correlation(model, batch, source=source)
    assert seen == [BNProtocol(), BNProtocol()]                 # exact, every image, both passes
    seen.clear()
    old = analysis.activation_correlation(model, batch, source=source, bn_batches=2,
                                          batch_size=20)
    assert seen == [BNProtocol.batches(2, 20)] * 2              # the old protocol, when asked
    seen.clear()
    analysis.activation_correlation(model, batch, source=source, bn_images="30",
                                    bn_pass_size=10)
    assert seen == [BNProtocol("exact", images=30, pass_size=10)] * 2
    assert r != old                                             # the protocol matters
    # the default's value is the exact statistics of all 60 images: rebuild it by hand
    from tinyproj.algorithm1 import project_weights
    from tinyproj.runs.evaluation import saved_batchnorm_stats

    def outputs(projected):
        with saved_batchnorm_stats(model):
            ctx = project_weights(model, "sign") if projected else __import__("contextlib").nullcontext()
            with ctx:
                reestimate_exact(model, source, rng=backend.make_rng(0))
                model.eval()
                return analysis.layer_outputs(model, batch, ["relu2"])["relu2"]
    assert r["conv2"] == pytest.approx(analysis.pearson(outputs(False), outputs(True)), abs=1e-12)


@pytest.mark.parametrize("kwargs, flag", [
    (dict(bn_images="all", bn_batches=20), "--bn-images"), (dict(bn_images="x"), "--bn-images"),
    (dict(bn_pass_size=0), "--bn-pass-size"), (dict(bn_batches=-2), "--bn-batches")])
def test_activation_correlation_refuses_bad_re_estimation_settings(model, batch, kwargs, flag):
    with pytest.raises(UserError) as err:
        analysis.activation_correlation(model, batch, source=object(), **kwargs)
    assert err.value.flag == flag


@pytest.mark.parametrize("flags, flag", [
    (["--bn-images", "lots"], "--bn-images"), (["--bn-images", "0"], "--bn-images"),
    (["--bn-images", "all", "--bn-batches", "20"], "--bn-images"),
    (["--bn-pass-size", "0"], "--bn-pass-size"), (["--bn-batches", "-1"], "--bn-batches"),
    (["--bn-batches", "5", "--bn-batch-size", "0"], "--bn-batch-size")])
def test_report_refuses_bad_re_estimation_flags_before_any_work(runs, tmp_path, capsys, flags,
                                                                flag):
    out = tmp_path / "o"
    assert main(["report", str(runs["tr-none-nc"]), "--out", str(out)] + flags) == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


def test_report_says_how_figure_1d_re_estimated(runs, report, tmp_path):
    md = (report / "report.md").read_text()
    caption = next(l for l in md.splitlines() if l.startswith("**Figure 1D"))
    assert "Batch norm for each pass: exact over all 120 training images, passes of 1000." \
        in caption                                       # the sweeps' default
    out = tmp_path / "old"
    assert main(["report", str(runs["tr-sign-c"]), "--out", str(out), "--bn-batches", "3",
                 "--bn-batch-size", "20"]) == 0
    caption = next(l for l in (out / "report.md").read_text().splitlines()
                   if l.startswith("**Figure 1D"))
    assert "Batch norm for each pass: average of 3 batches of 20." in caption


def test_activation_correlation_reestimate_needs_a_source(model, batch):
    with pytest.raises(ValueError, match="source"):
        analysis.activation_correlation(model, batch, bn="reestimate")


def test_power_histograms_count_every_weight(model):
    h = analysis.power_histograms(model, "conv2", betas=(0.0, 0.5, 1.0, 2.0), bins=21)
    n = weight_params(model)["conv2.weight"].data.size
    assert h["layer"] == "conv2.weight" and h["size"] == n and len(h["edges"]) == 22
    for beta, counts in h["counts"].items():
        assert int(counts.sum()) == n, beta
    assert int(h["counts"][0.0][[0, -1]].sum()) == n            # β = 0 is Sign: two spikes
    with pytest.raises(KeyError, match="conv2.weight"):
        analysis.power_histograms(model, "bn2")


def test_report_reads_sweeps_written_by_robustness(tmp_path):
    """The report's figures from real `robustness.run_sweep` files (whole network, per layer)."""
    folder = tmp_path / "tr-sign-c"
    train(tiny_config(folder, "tr-sign-c", epochs=1), progress=False, log=lambda *a: None)
    opts = dict(draws=1, bn_batches=1, bn_batch_size=20, test_subset=20, progress=False)
    robustness.run_sweep(folder, "addnorm", [0.0, 0.5], **opts)
    robustness.run_sweep(folder, "power", [0.5, 1.0], per_layer=True, **opts)
    rep = make_report([folder], tmp_path / "rep", analyses=False, log=lambda *a: None)
    assert {"fig1b", "fig2a", PER_LAYER_POWER} <= set(rep.figures)
    assert not rep.notes
    assert "fig2b" in rep.skipped and "fig2c" in rep.skipped


# ---------------------------------------------------------------------------
# Error bars (issue 13): precision, seeds, Table 2 over draws, the sweep table, captions
# ---------------------------------------------------------------------------
from tinyproj.reporting import errorbars  # noqa: E402
from tinyproj.robustness import te_scores  # noqa: E402
from tinyproj.robustness.bn_estimate import BNProtocol  # noqa: E402


@pytest.mark.parametrize("mean, std, n, text", [
    (59.7412, 0.43, 5, "59.7 ± 0.4 (n = 5)"),
    (8.1234, 0.15, 3, "8.12 ± 0.15 (n = 3)"),
    (59.7412, 1.6, 4, "59.7 ± 1.6 (n = 4)"),
    (59.7412, 4.2, 4, "60 ± 4 (n = 4)"),
    (0.81234, 0.0042, 2, "0.812 ± 0.004 (n = 2)"),
    (60.0, 0.0, 3, "60.00 ± 0.00 (n = 3)"),
    (59.7412, None, 1, "59.74 (n = 1)"),
    (None, 0.3, 3, "—"),
])
def test_errors_are_printed_with_the_precision_of_their_spread(mean, std, n, text):
    assert errorbars.format_error(mean, std, n) == text


def test_seed_groups_and_averaged_curves():
    from tinyproj.reporting.table2 import RunSummary
    def run(label, seed, **cfg):
        return RunSummary(Path(label), label, dict(preset="tr-sign-c", width=0.25, seed=seed,
                                                   out=label, **cfg), [])
    a, b, c = run("a", 0), run("b", 1), run("c", 0, lr=0.1)
    groups = errorbars.seed_groups([a, b, c])
    assert [len(g) for g in groups.values()] == [2, 1] and groups["tr-sign-c"] == [a, b]
    curve = errorbars.average_rows([
        [{"level": 0.0, "error_mean": 0.50, "bits_per_weight": None},
         {"level": 0.5, "error_mean": 0.60, "bits_per_weight": 1.0}],
        [{"level": 0.5, "error_mean": 0.64, "bits_per_weight": 3.0}]])
    assert len(curve) == 1 and curve[0]["seeds"] == 2                  # common levels only
    assert curve[0]["error_mean"] == pytest.approx(0.62)
    assert curve[0]["error_std"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    assert curve[0]["bits_per_weight"] == pytest.approx(2.0)


def test_table2_scores_over_draws_resume_and_cli(runs, tmp_path, capsys):
    import shutil
    folder = tmp_path / "sign"
    shutil.copytree(runs["tr-sign-c"], folder)
    scores = te_scores.run_test_scores(folder, draws=2, bn=BNProtocol(pass_size=40),
                                       test_subset=50)
    assert list(scores) == ["none", "sign", "round"]
    for test, row in scores.items():
        assert row["draws"] == 2 and len(row["errors"]) == 2 and row["n_test"] == 50
        assert row["bn_protocol"] == "exact" and row["bn_images"] == 120   # the whole train set
        assert row["error_mean"] == pytest.approx(np.mean(row["errors"]))
    before = (folder / "sweeps" / "table2.jsonl").read_text()
    again = te_scores.run_test_scores(folder, draws=2, bn=BNProtocol(pass_size=40),
                                      test_subset=50)
    assert again == scores and (folder / "sweeps" / "table2.jsonl").read_text() == before
    with pytest.raises(UserError, match="other settings"):
        te_scores.run_test_scores(folder, draws=3, bn=BNProtocol(pass_size=40), test_subset=50)
    assert main(["sweep", str(folder), "--distortion", "table2", "--levels", "0"]) == 2
    assert "no --levels" in capsys.readouterr().err
    assert main(["sweep", str(folder), "--distortion", "table2", "--draws", "2",
                 "--bn-pass-size", "40", "--test-subset", "50"]) == 0
    assert "Te-Sign" in capsys.readouterr().out


def test_report_has_table2_error_bars_a_sweep_table_and_the_right_1b_caption(runs, tmp_path):
    import shutil
    folders = {}
    for preset, src in runs.items():
        folders[preset] = tmp_path / preset
        shutil.copytree(src, folders[preset])
    network = checkpoint_fingerprint(folders["tr-sign-c"] / "checkpoint.npz")
    path = folders["tr-sign-c"] / "sweeps" / "table2.jsonl"
    path.write_text("".join(json.dumps({
        "test": t, "spec": t, "error_mean": m, "error_std": 0.0043, "errors": [m, m, m],
        "draws": 3, "n_test": 100, "seed": 0, "bn_batches": None, "bn_batch_size": None,
        "bn_images": 80, "bn_pass_size": 1000, "test_subset": 100, "checkpoint_step": 12,
        "bn_protocol": "exact", NETWORK_FIELD: network}) + "\n"
        for t, m in (("none", 0.5512), ("sign", 0.5634), ("round", 0.6))))
    # one evaluation per run: Figure 1B shows dots, and its caption must say so
    for folder in folders.values():
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        (folder / "metrics.jsonl").write_text(lines[-1] + "\n")
    out = tmp_path / "report"
    make_report([folders["tr-none-nc"], folders["tr-sign-c"]], out, analyses=False,
                log=lambda *a: None)
    md = (out / "report.md").read_text()
    assert "### Table 2 with error bars" in md
    line = next(l for l in md.splitlines() if l.startswith("| tr-sign-c | 1 | 3 |"))
    assert "55.1 ± 0.4 (n = 3)" in line and "56.3 ± 0.4 (n = 3)" in line
    assert "exact, 80 train images" in line
    assert "## Sweeps — the numbers behind Figures 2A–2C" in md
    assert "| β | tr-none-nc | tr-sign-c |" in md
    assert "50.0 ± 1.0 (n = 2)" in md                       # power β = 1 of the sign run
    caption = next(l for l in md.splitlines() if l.startswith("**Figure 1B"))
    assert "dot" in caption and "solid" not in caption and "dashed" not in caption


def test_a_results_folder_without_checkpoint_draws_sweeps_of_one_network_only(runs, tmp_path):
    """Committed results folders hold no checkpoint: their sweep rows are drawn when they all
    name one network (with a note), and refused when they mix networks."""
    import shutil
    folder = tmp_path / "results-run"
    shutil.copytree(runs["tr-sign-c"], folder)
    (folder / "checkpoint.npz").unlink()
    rep = make_report([folder], tmp_path / "rep", analyses=False, log=lambda *a: None)
    assert "fig2c" in rep.figures and "fig2a" in rep.figures
    assert any("checked among its rows only" in n for n in rep.notes)
    path = folder / "sweeps" / "power.jsonl"
    lines = path.read_text().splitlines()
    other = json.loads(lines[0])
    other[NETWORK_FIELD] = "0123456789abcdef"
    other["level"] = 3.0
    path.write_text("\n".join(lines + [json.dumps(other)]) + "\n")
    rep = make_report([folder], tmp_path / "rep2", analyses=False, log=lambda *a: None)
    assert "fig2c" not in rep.figures and any("2 networks" in n for n in rep.notes)
