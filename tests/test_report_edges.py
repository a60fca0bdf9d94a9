"""Edges of Table 2, the figures' data, the best-validation choice and the reproduce plan.

What these tests prove, without training anything (hand-written run folders, scripted
evaluations, hand-made figure data; the whole file runs in a few seconds):

* Table 2 takes its Te-None/Sign/Round columns from the **last** metrics row's
  ``test_error`` (in that order, under those headers), its "@best val" columns from
  ``test_error_at_best_val`` and the epoch from the last row's ``best_val_epoch``; the
  paper's values are those of Merolla et al. 2016, Table 2, and stay beside runs whose
  labels carry a folder name (seed groups).
* The best-validation epoch is chosen on the validation set's Te-None error, ties go to the
  later epoch, evaluations inside an epoch never become the best, and the test errors kept
  with it are those of that epoch; the validation source is scored, not the test source.
* Figures 1C, 1D, 2A–C and 2D draw the data they are given: raw distances in 1C's first
  panel, the correlations in 1D, only whole-network sweep rows with ± error_std bars, and
  Power(β) histograms on a w/α axis; Figure 2D shows the Tr-Sign-C run, and a network
  without conv2 its second weight layer.
* The reproduce plan trains network i of preset p with seed s (never the network index),
  passes --train-subset/--test-subset as given, and keeps --epochs on a resumed run.
"""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinyproj import reproduce as rp
from tinyproj.reporting import figures
from tinyproj.reporting import report as report_mod
from tinyproj.reporting.table2 import (PAPER_TABLE2, label_runs, read_run, table2,
                                       table2_markdown)
from tinyproj.runs import train_eval


# ---------------------------------------------------------------------------
# Table 2 from hand-written run folders
# ---------------------------------------------------------------------------
FIRST = {"none": 0.60, "sign": 0.70, "round": 0.80}
LAST = {"none": 0.30, "sign": 0.40, "round": 0.50}
AT_BEST = {"none": 0.20, "sign": 0.25, "round": 0.35}


def write_run(folder: Path, preset="tr-sign-c", seed=0) -> Path:
    """A run folder with three evaluations: best validation at epoch 2, the last at epoch 3."""
    folder.mkdir(parents=True)
    config = {"preset": preset, "model": "bc_cifar10", "width": 0.25, "dataset": "cifar10",
              "train_subset": None, "epochs": 3, "seed": seed, "out": str(folder)}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": 1, "step": 10, "test_error": FIRST, "best_val_epoch": 1,
             "test_error_at_best_val": FIRST, "n_test": 1000},
            {"epoch": 2, "step": 20, "test_error": AT_BEST, "best_val_epoch": 2,
             "test_error_at_best_val": AT_BEST, "n_test": 1000},
            {"epoch": 3, "step": 30, "test_error": LAST, "best_val_epoch": 2,
             "test_error_at_best_val": AT_BEST, "n_test": 1000}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def md_cells(md: str, start: str) -> list:
    line = next(l for l in md.splitlines() if l.startswith(f"| {start}"))
    return [c.strip() for c in line.split("|")[1:-1]]


def test_table2_last_columns_are_the_last_rows_test_errors_and_best_val_its_own(tmp_path):
    run = read_run(write_run(tmp_path / "a"))
    label_runs([run])
    (row,) = table2([run])
    for t in ("none", "sign", "round"):
        assert row[f"te_{t}"] == pytest.approx(100 * LAST[t])
        assert row[f"best_val_te_{t}"] == pytest.approx(100 * AT_BEST[t])
    assert row["best_val_epoch"] == 2 and row["epochs_trained"] == 3


def test_table2_markdown_columns_follow_their_headers(tmp_path):
    run = read_run(write_run(tmp_path / "a"))
    label_runs([run])
    md = table2_markdown(table2([run]))
    head = md_cells(md, "run")
    cells = dict(zip(head, md_cells(md, "tr-sign-c")))

    def value(cell):
        return float(cell.split(" ± ")[0])
    assert value(cells["Te-None"]) == pytest.approx(30.0, abs=0.05)
    assert value(cells["Te-Sign"]) == pytest.approx(40.0, abs=0.05)
    assert value(cells["Te-Round"]) == pytest.approx(50.0, abs=0.05)
    assert value(cells["Te-Sign @best val"]) == pytest.approx(25.0, abs=0.05)
    assert value(cells["Te-Round @best val"]) == pytest.approx(35.0, abs=0.05)
    assert cells["best-val epoch"] == "2"
    assert (cells["paper Te-None"], cells["paper Te-Sign"], cells["paper Te-Round"]) == \
        ("10.64", "9.95", "10.40")


def test_paper_values_are_merolla_table2():
    assert PAPER_TABLE2 == {
        "tr-none-nc": {"none": 11.35, "sign": 14.92, "round": 90.0},
        "tr-none-c": {"none": 9.97, "sign": 11.32, "round": 11.2},
        "tr-sign-c": {"none": 10.64, "sign": 9.95, "round": 10.4},
        "tr-stoch-c": {"none": 8.12, "sign": 8.38, "round": 8.36},
        "tr-power-c": {"none": 10.3, "sign": 10.6, "round": 10.2},
        "tr-stochm-c": {"none": 7.64, "sign": 8.25, "round": 7.88},
    }


def test_seed_runs_labelled_with_their_folder_keep_the_papers_values(tmp_path):
    runs = [read_run(write_run(tmp_path / f"s{k}", seed=k)) for k in (0, 1)]
    label_runs(runs)
    assert runs[0].label != "tr-sign-c"                  # the folder name is in the label
    table = table2(runs)
    assert [r["paper_te_sign"] for r in table] == [9.95, 9.95]
    cells = md_cells(table2_markdown(table), "tr-sign-c (seeds 0, 1)")
    assert cells[-3:] == ["10.64", "9.95", "10.40"]


# ---------------------------------------------------------------------------
# The best-validation epoch (runs/train_eval.py), with scripted evaluations
# ---------------------------------------------------------------------------
def scripted_rows(monkeypatch, script, projections=("none", "sign", "round")):
    """Metrics rows of ``evaluation_row`` for ``[(epoch, select_best, val errors, test
    errors)]``; the scoring is replaced by the scripted errors."""
    queue = list(script)

    def fake_errors(model, train_src, sources, projs, rng, **kw):
        _, _, val, test = queue[0]
        assert set(sources) == {"val", "test"}
        return {"val": dict(val), "test": dict(test)}
    monkeypatch.setattr(train_eval, "errors_by_projection", fake_errors)
    cfg = SimpleNamespace(bn_reestimate=False, bn_batches=0, bn_images=None,
                          test_projections=projections, batch_size=10, eval_batch_size=10,
                          dataset="synthetic")
    pos = {"epoch": 0, "step": 0, "loss_sum": 1.0, "seen": 10, "wrong": 3,
           "best_val": None, "elapsed": 0.0}
    rows = []
    while queue:
        epoch, select, _, _ = queue[0]
        pos["epoch"], pos["step"] = epoch, 10 * epoch
        rows.append(train_eval.evaluation_row(cfg, None, SimpleNamespace(lr=0.1), [0] * 50,
                                              [0] * 20, [0] * 30, None, pos,
                                              select_best=select))
        queue.pop(0)
    return rows


def errs(none, sign=0.9, round_=0.95):
    return {"none": none, "sign": sign, "round": round_}


def test_best_val_tie_goes_to_later_epoch_and_keeps_that_epochs_test_errors(monkeypatch):
    rows = scripted_rows(monkeypatch, [
        (1, True, errs(0.5), errs(0.41)),
        (2, True, errs(0.3), errs(0.42)),
        (3, True, errs(0.3), errs(0.43)),          # a tie: the later epoch wins
        (4, True, errs(0.6), errs(0.44)),
    ])
    assert [r["best_val_epoch"] for r in rows] == [1, 2, 3, 3]
    assert [r["test_error_at_best_val"]["none"] for r in rows] == [0.41, 0.42, 0.43, 0.43]
    assert rows[-1]["test_error"]["none"] == 0.44


def test_best_val_is_chosen_on_validation_te_none_never_on_test(monkeypatch):
    rows = scripted_rows(monkeypatch, [
        (1, True, errs(0.2, sign=0.9), errs(0.6, sign=0.1)),
        (2, True, errs(0.4, sign=0.1), errs(0.1, sign=0.6)),   # better on test and val sign
    ], projections=("sign", "none", "round"))
    assert [r["val_error"] for r in rows] == [0.2, 0.4]
    assert rows[-1]["best_val_epoch"] == 1
    assert rows[-1]["test_error_at_best_val"] == errs(0.6, sign=0.1)


def test_an_evaluation_inside_an_epoch_never_becomes_the_best(monkeypatch):
    rows = scripted_rows(monkeypatch, [
        (1, True, errs(0.5), errs(0.41)),
        (1, False, errs(0.1), errs(0.05)),         # mid-epoch (select_best=False)
        (2, True, errs(0.4), errs(0.42)),
    ])
    assert [r["best_val_epoch"] for r in rows] == [1, 1, 2]
    assert rows[1]["test_error_at_best_val"]["none"] == 0.41


def test_summary_line_gives_the_binomial_se_over_n_test():
    row = {"epoch": 1, "step": 5, "lr": 0.1, "train_loss": 1.0, "train_error": 0.5,
           "test_error": {"none": 0.35}, "n_test": 100}
    assert "Te-None 35.00±4.77%" in train_eval.summary_line(row)


def test_errors_by_projection_scores_each_source_on_its_own_images():
    from tinyproj import backend, nn
    from tinyproj.data.sources import ArraySource
    from tinyproj.runs.evaluation import errors_by_projection
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].weight.data[...] = backend.asarray(np.eye(2, dtype=np.float32))
    x = np.array([[1.0, 0.0], [0.0, 1.0]] * 5, dtype=np.float32)
    right, wrong = np.array([0, 1] * 5), np.array([1, 0] * 5)
    errors = errors_by_projection(model, ArraySource(x, right),
                                  {"val": ArraySource(x, right), "test": ArraySource(x, wrong)},
                                  ["none"], bn_batches=0)
    assert errors == {"val": {"none": 0.0}, "test": {"none": 1.0}}


# ---------------------------------------------------------------------------
# The figures' data
# ---------------------------------------------------------------------------
def test_figure_1c_draws_raw_distances_then_the_normalized_ones():
    raw = {"run": {"conv1.weight": 0.02, "conv2.weight": 0.05, "fc9.weight": 0.01}}
    norm = {"run": {"conv1.weight": 0.6, "conv2.weight": 0.8, "fc9.weight": 0.3}}
    fig = figures.sign_distance_plot(raw, None, norm)
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.02, 0.05, 0.01]
    assert list(fig.axes[1].lines[0].get_ydata()) == [0.6, 0.8, 0.3]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["conv1", "conv2", "fc9"]


def test_figure_2_sweeps_draw_whole_network_rows_with_their_std_bars():
    rows = [{"level": lv, "layer": None, "error_mean": e, "error_std": 0.01}
            for lv, e in ((0.0, 0.2), (0.5, 0.3), (1.0, 0.5))]
    rows.append({"level": 0.5, "layer": "conv1.weight", "error_mean": 0.9, "error_std": 0.0})
    fig = figures.sweep_plot({"run": rows}, "power", None)
    container = fig.axes[0].containers[0]
    assert list(container.lines[0].get_xdata()) == [0.0, 0.5, 1.0]
    assert list(container.lines[0].get_ydata()) == pytest.approx([20.0, 30.0, 50.0])
    for seg in container.lines[2][0].get_segments():          # ± one std, in points
        assert seg[1][1] - seg[0][1] == pytest.approx(2 * 1.0)


def test_figure_2d_histograms_are_drawn_on_w_over_alpha():
    hist = {"edges": [-0.5, -0.25, 0.0, 0.25, 0.5], "alpha": 0.5, "layer": "conv2.weight",
            "counts": {1.0: [1, 2, 3, 4], 0.0: [10, 0, 0, 10]}}
    fig = figures.power_histogram_plot(hist, None, "run")
    xs = [p.get_x() for p in fig.axes[0].patches]
    assert xs == pytest.approx([-1.0, -0.5, 0.0, 0.5])
    assert [p.get_height() for p in fig.axes[1].patches] == [10, 0, 0, 10]


def test_report_draws_each_runs_correlations_in_1d_and_tr_sign_c_in_2d(tmp_path, monkeypatch):
    folders = [write_run(tmp_path / "runs" / p, preset=p) for p in ("tr-none-nc", "tr-sign-c")]
    drawn = {}

    def fake_analyses(run, data_dir, want_hist, hist_layer, betas, log, bn):
        k = 1.0 if run.preset == "tr-sign-c" else 2.0
        hist = {"layer": "conv2.weight", "run": run.label} if want_hist else None
        return ({"conv1.weight": 0.01 * k}, {"conv1.weight": 0.1 * k},
                {"conv1": 0.5 * k}, hist, "how")
    monkeypatch.setattr(report_mod, "_run_analyses", fake_analyses)
    for name in ("sign_distance_plot", "correlation_plot", "power_histogram_plot"):
        monkeypatch.setattr(figures, name,
                            lambda data, path, *a, _n=name: drawn.setdefault(_n, (data, a)))
    report_mod.make_report([str(f) for f in folders], tmp_path / "report", log=lambda *a: None)
    assert drawn["correlation_plot"][0] == {"tr-none-nc": {"conv1": 1.0},
                                            "tr-sign-c": {"conv1": 0.5}}
    assert drawn["sign_distance_plot"][0]["tr-none-nc"] == {"conv1.weight": 0.02}
    assert drawn["power_histogram_plot"][0]["run"] == "tr-sign-c"


def test_figure_2d_shows_the_first_tr_sign_c_run_else_the_first():
    assert report_mod.figure_2d_run(["tr-none-nc", None, "tr-sign-c", "tr-sign-c"]) == 2
    assert report_mod.figure_2d_run(["tr-none-nc", "tr-stoch-c"]) == 0


# ---------------------------------------------------------------------------
# The reproduce plan
# ---------------------------------------------------------------------------
def flag(step, name):
    return step.argv[step.argv.index(name) + 1] if name in step.argv else None


def test_every_network_trains_with_its_own_seed_not_its_index(tmp_path):
    for seeds in (1, 3):
        s = rp.ReproduceSettings(kind="table2", seeds=seeds)
        trains = [st for st in rp.plan(s, tmp_path) if st.argv[0] == "train"]
        assert len(trains) == 6 * seeds
        assert [flag(st, "--seed") for st in trains] == [str(k % seeds) for k in
                                                          range(6 * seeds)]
        assert [flag(st, "--preset") for st in trains][::seeds] == list(rp.KINDS["table2"])


def test_plan_passes_train_and_test_subsets_to_their_own_flags(tmp_path):
    s = rp.ReproduceSettings(kind="table2", train_subset=500, test_subset=200)
    step = rp.plan(s, tmp_path)[0]
    assert flag(step, "--train-subset") == "500" and flag(step, "--test-subset") == "200"


def test_a_resumed_network_keeps_the_grown_epochs(tmp_path):
    folder = tmp_path / "runs" / "tr-none-nc"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "checkpoint.npz").write_bytes(b"")
    steps = rp.plan(rp.ReproduceSettings(kind="table2", epochs=7), tmp_path)
    assert "--resume" in steps[0].argv and flag(steps[0], "--epochs") == "7"
    assert "--resume" not in steps[2].argv and flag(steps[2], "--epochs") == "7"


def test_figure_2d_of_a_network_without_conv2_shows_its_second_layer(tmp_path, monkeypatch):
    """The paper's 2D shows conv2, the second weight layer; a network without one (an MLP,
    with the default --hist-layer) shows its own second layer."""
    from tinyproj import models
    from tinyproj.data.sources import ArraySource
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 1, 28, 28)).astype(np.float32)
    src = ArraySource(x, np.arange(8) % 10)
    loaded = SimpleNamespace(model=models.build("mlp_tfc", (1, 28, 28)), train=src, test=src,
                             config=SimpleNamespace(batch_size=4, bn_reestimate=False, seed=0))
    monkeypatch.setattr(report_mod, "load_run", lambda folder, data_dir=None: loaded)
    run = read_run(write_run(tmp_path / "mlp", preset=None))
    *_, hist, _ = report_mod._run_analyses(run, None, True, "conv2", (1.0, 0.0),
                                           lambda *a: None, None)
    assert hist["layer"] == "fc2.weight"
