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
