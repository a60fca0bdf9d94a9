"""`tinyproj walk` writes its figures into --out and names every result file at the end."""
from __future__ import annotations

from matplotlib.image import imread

from tinyproj.cli import main


def test_walk_writes_and_names_its_figures(tmp_path, capsys):
    out = tmp_path / "wn"
    assert main(["walk", "--model", "mlp_tfc", "--dataset", "synthetic", "--epochs", "1",
                 "--train-subset", "256", "--test-subset", "128", "--sigmas", "0.1,1,10,100",
                 "--out", str(out), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"results in {out}")
    for name in ("walk.jsonl", "midpoints.csv", "walk-accuracy.png", "walk-midpoints.png"):
        assert name in last
    for name in ("walk-accuracy.png", "walk-midpoints.png"):
        image = imread(str(out / name))
        assert image.shape[0] > 300 and image.shape[1] > 500
        assert float(image[..., :3].std()) > 0.02, f"{name} is blank"


def test_accuracy_vs_sigma_linear_grid_and_seed_spread():
    from tinyproj import reporting
    rows = [{"site": 2, "site_name": "relu1", "noise": "multiplicative", "sigma": s,
             "accuracy": a, "accuracy_std": 0.02} for s, a in ((0.0, 0.9), (1.0, 0.6),
                                                                (2.0, 0.2))]
    fig = reporting.accuracy_vs_sigma(rows)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"                  # σ = 0 is on the grid: drawn
    assert min(ax.lines[0].get_xdata()) == 0.0
    assert ax.containers, "the spread over seeds is drawn as error bars"
    log_rows = [dict(r, sigma=r["sigma"] + 0.5, accuracy_std=None) for r in rows]
    ax = reporting.accuracy_vs_sigma(log_rows).axes[0]
    assert ax.get_xscale() == "log" and not ax.containers


def test_accuracy_vs_sigma_averages_the_seeds_of_one_sigma():
    """Two seeds' rows per σ (the train-at-σ protocol, lesson 7's full mode) are one point
    each, at their mean, with their std as the error bar; the midpoint dot is drawn (a line
    with a σ twice used to stop the plot: "a level appears twice")."""
    import numpy as np
    from tinyproj import reporting
    acc = {0.1: (0.96, 0.98), 1.0: (0.90, 0.94), 10.0: (0.20, 0.40)}
    rows = [{"site": 4, "site_name": "relu2", "noise": "additive", "sigma": s, "seed": k,
             "accuracy": a} for s, pair in acc.items() for k, a in enumerate(pair)]
    ax = reporting.accuracy_vs_sigma(rows).axes[0]
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [0.1, 1.0, 10.0])
    np.testing.assert_allclose(line.get_ydata(), [97.0, 92.0, 30.0])
    (bars,) = ax.containers
    top = bars.lines[2][0].get_segments()[2][1][1]       # σ = 10: mean + std over the seeds
    np.testing.assert_allclose(top, 30.0 + 100 * np.std([0.2, 0.4], ddof=1))
    assert any(len(artist.get_xdata()) == 1 for artist in ax.lines[1:]), "the midpoint dot"


def test_midpoints_plot_leaves_out_global_rows_and_marks_seeds():
    from tinyproj import reporting
    table = [{"site": 0, "site_name": "input", "midpoint_sigma": 1.0, "beyond_grid": False,
              "midpoints_per_seed": [0.9, 1.1]},
             {"site": 2, "site_name": "relu1", "midpoint_sigma": 3.0, "beyond_grid": False,
              "midpoints_per_seed": [2.5, 3.6]},
             {"site": -2, "site_name": "all-no-bn", "midpoint_sigma": 0.5,
              "beyond_grid": False}]
    ax = reporting.midpoints_plot(table).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0: input", "2: relu1"]
    seeds = [line for line in ax.lines if line.get_marker() == "_"]
    assert len(seeds) == 1 and sorted(seeds[0].get_ydata()) == [0.9, 1.1, 2.5, 3.6]
