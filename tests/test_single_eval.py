"""Error bars on single evaluations (reporting/single_eval.py): the binomial SE of the test set,
the spread over seeds, Table 2's cells and Figure 1B's bars, with known p and n."""
import json
import math

import numpy as np
import pytest

from tinyproj.reporting import figures, make_report
from tinyproj.reporting.single_eval import (binomial_se, curve_with_bars, format_bar,
                                            seed_error, single_error, images_scored)
from tinyproj.reporting.table2 import RunSummary, table2, table2_markdown


def test_binomial_se_of_known_proportions():
    assert binomial_se(0.5, 100) == pytest.approx(0.05, abs=1e-15)        # sqrt(.25/100)
    assert binomial_se(0.65, 10000) == pytest.approx(math.sqrt(0.2275) / 100, rel=1e-12)
    assert binomial_se(0.1, 900) == pytest.approx(0.01, rel=1e-12)         # sqrt(.09/900)
    assert binomial_se(0.0, 50) == 0.0 and binomial_se(1.0, 50) == 0.0
    for p, n in ((1.2, 10), (-0.1, 10), (0.5, 0), (0.5, 2.5)):
        with pytest.raises(ValueError):
            binomial_se(p, n)


def test_cells_say_which_bar_with_the_precision_of_the_bar():
    assert format_bar(single_error(0.65, 10000)) == "65.0 ± 0.5 (SE)"       # SE 0.477 points
    assert format_bar(single_error(0.5, 100)) == "50 ± 5 (SE)"              # SE 5 points
    assert format_bar(single_error(0.1, 900)) == "10.0 ± 1.0 (SE)"          # SE 1 point
    assert format_bar(seed_error([0.60, 0.62, 0.64])) == "62.0 ± 2.0 (n = 3 seeds)"
    assert format_bar(seed_error([0.60, None])) == "60.00"      # one seed: no seed spread
    assert format_bar(single_error(0.6, None)) == "60.00"       # n unknown: no bar made up
    assert format_bar(single_error(None, 100)) == "—"


def test_test_images_prefers_the_row_then_the_config_then_the_dataset():
    assert images_scored({"n_test": 123}, {"dataset": "cifar10"}) == 123
    assert images_scored({}, {"dataset": "cifar10", "test_subset": 2000}) == 2000
    assert images_scored({}, {"dataset": "mnist", "test_subset": 99999}) == 10000   # capped
    assert images_scored({}, {"dataset": "svhn"}) == 26032
    assert images_scored({}, {"dataset": "mystery"}) is None


def rows(errors, n_test=None, step0=25):
    """metrics rows at steps 25, 50, ... with Te-None = e, Te-Sign = e + 0.02."""
    out = []
    for i, e in enumerate(errors):
        r = {"epoch": 0, "step": step0 * (i + 1), "epoch_progress": (i + 1) / len(errors),
             "test_error": {"none": e, "sign": e + 0.02}}
        if n_test:
            r["n_test"] = n_test
        out.append(r)
    return out


def test_curve_of_one_run_has_the_binomial_se_at_every_point():
    out, kind = curve_with_bars([(rows([0.5, 0.1], n_test=100), {"dataset": "cifar10"})])
    assert kind == "SE"
    assert out[0]["error_bar"]["none"] == pytest.approx(0.05)
    assert out[1]["error_bar"]["none"] == pytest.approx(0.03)           # sqrt(.09/100)
    assert out[1]["error_bar"]["sign"] == pytest.approx(math.sqrt(0.12 * 0.88 / 100))


def test_curve_of_seeds_is_their_mean_with_the_std_over_seeds():
    a, b = rows([0.60, 0.50]), rows([0.64, 0.54, 0.40])       # b evaluated once more
    out, kind = curve_with_bars([(a, {}), (b, {})])
    assert kind == "seeds" and [r["step"] for r in out] == [25, 50]   # the common steps
    assert out[0]["test_error"]["none"] == pytest.approx(0.62)
    assert out[0]["error_bar"]["none"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    assert out[1]["seeds"] == 2


def summary(tmp_path, name, preset, seed, errors, n_test=10000):
    cfg = {"preset": preset, "model": "bc_cifar10", "width": 0.25, "dataset": "cifar10",
           "train_subset": 10000, "epochs": 1, "seed": seed, "out": str(tmp_path / name),
           "eval_every_steps": 25}
    r = rows(errors, n_test=n_test)
    for row in r:
        row.update(epoch=1, test_error=dict(row["test_error"], round=0.7))
    return RunSummary(tmp_path / name, name, cfg, r)


def test_table2_groups_seeds_and_gives_a_single_run_its_se(tmp_path):
    runs = [summary(tmp_path, "sign-0", "tr-sign-c", 0, [0.70, 0.60]),
            summary(tmp_path, "sign-1", "tr-sign-c", 1, [0.70, 0.64]),
            summary(tmp_path, "plain", "tr-none-nc", 0, [0.70, 0.65])]
    table = table2(runs)
    assert [r["seed_group"] for r in table] == ["tr-sign-c", "tr-sign-c", "tr-none-nc"]
    assert table[2]["te_none_se"] == pytest.approx(100 * math.sqrt(0.65 * 0.35 / 10000))
    assert table[2]["n_test"] == 10000
    md = table2_markdown(table)
    line = next(l for l in md.splitlines() if l.startswith("| tr-sign-c (seeds 0, 1) |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    std = 100 * np.std([0.60, 0.64], ddof=1)                      # 2.83 points
    assert cells[3] == f"62.0 ± {std:.1f} (n = 2 seeds)" == "62.0 ± 2.8 (n = 2 seeds)"
    assert not any(l.startswith("| sign-0 |") for l in md.splitlines())   # one row per group
    plain = next(l for l in md.splitlines() if l.startswith("| plain |"))
    assert "65.0 ± 0.5 (SE)" in plain


def write_run(folder, preset, seed, errors):
    folder.mkdir(parents=True)
    cfg = {"preset": preset, "model": "bc_cifar10", "width": 0.25, "dataset": "cifar10",
           "train_subset": 10000, "epochs": 1, "seed": seed, "eval_every_steps": 25}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows(errors, n_test=400)))


def test_figure_1b_draws_the_bars_it_is_given():
    fig = figures.training_curves({"a": [dict(r, error_bar={"none": 0.05, "sign": 0.01})
                                         for r in rows([0.5, 0.4])]})
    ax = fig.axes[0]
    spans = []
    for container in ax.containers:                 # one errorbar container per test
        (collection,) = container.lines[2]
        spans.append(sorted(round(float(s[1][1] - s[0][1]), 9)
                            for s in collection.get_segments()))
    assert spans == [[10.0, 10.0], [2.0, 2.0]]      # ± 5 points and ± 1 point, in %


def test_report_draws_figure_1b_from_separate_curve_runs_and_says_so(tmp_path):
    write_run(tmp_path / "runs" / "tr-sign-c", "tr-sign-c", 0, [0.64])
    write_run(tmp_path / "curves" / "tr-sign-c", "tr-sign-c", 0, [0.8, 0.7, 0.66, 0.65])
    rep = make_report([tmp_path / "runs" / "tr-sign-c"], tmp_path / "out", analyses=False,
                      curve_dirs=[tmp_path / "curves" / "tr-sign-c"], log=lambda *a: None)
    assert rep.fig1b_curves and rep.fig1b_bars == {"SE"}
    md = (tmp_path / "out" / "report.md").read_text()
    caption = next(l for l in md.splitlines() if l.startswith("**Figure 1B"))
    assert "These curves come from separate runs" in caption
    assert "not checked against the report's networks" in caption       # no checkpoints
    assert "binomial standard error" in caption and "not a spread over seeds" in caption
    assert "4 evaluations, every 25 steps" in md
    # without curve runs, the report's one evaluation per run is a dot with its SE
    rep = make_report([tmp_path / "runs" / "tr-sign-c"], tmp_path / "out2", analyses=False,
                      log=lambda *a: None)
    assert not rep.fig1b_curves and rep.fig1b_bars == {"SE"}


def test_report_compares_the_curve_runs_networks_by_their_checkpoints(tmp_path):
    """Same weights: said to be the same networks; other weights: said not to be."""
    from tinyproj.runs.files import save_checkpoint
    write_run(tmp_path / "runs" / "tr-sign-c", "tr-sign-c", 0, [0.64])
    write_run(tmp_path / "same" / "tr-sign-c", "tr-sign-c", 0, [0.8, 0.65])
    write_run(tmp_path / "other" / "tr-sign-c", "tr-sign-c", 0, [0.8, 0.65])
    w = {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    for folder, weights in (("runs", w), ("same", w), ("other", {"fc.weight": w["fc.weight"] + 1})):
        save_checkpoint(tmp_path / folder / "tr-sign-c" / "checkpoint.npz", weights,
                        {"state": [], "hyper": {}, "t": 0}, {})
    for folder, said in (("same", "the same networks as Table 2's"),
                         ("other", "**not the same networks**")):
        make_report([tmp_path / "runs" / "tr-sign-c"], tmp_path / f"out-{folder}",
                    analyses=False, curve_dirs=[tmp_path / folder / "tr-sign-c"],
                    log=lambda *a: None)
        md = (tmp_path / f"out-{folder}" / "report.md").read_text()
        assert said in next(l for l in md.splitlines() if l.startswith("**Figure 1B"))


def test_training_progress_line_shows_the_test_errors_with_their_bars():
    """`tinyproj train` prints each evaluation with ± the binomial SE of the test images."""
    from tinyproj.runs.train_eval import summary_line as _summary
    row = {"epoch": 1, "step": 200, "lr": 1e-3, "train_loss": 0.5, "train_error": 0.3,
           "test_error": {"none": 0.352, "sign": 0.5}, "n_test": 10000}
    line = _summary(row)
    assert "Te-None 35.20±0.48%" in line and "Te-Sign 50.00±0.50%" in line
    assert "train 30.00%" in line and "±" not in line.split("test")[0]   # train: no bar
    del row["n_test"]                                  # rows from before n_test was recorded
    assert "Te-None 35.20%" in _summary(row)
