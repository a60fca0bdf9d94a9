"""The walk's training set-ups (walking_noise/setups.py): the authors' by default, resolved per
(model, dataset); tinyproj's earlier one by name (--setup legacy); the set-up in the rows' keys."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend
from tinyproj import walking_noise as wn
from tinyproj.cli import build_parser, main as cli_main
from tinyproj.cli.walk_args import check_args
from tinyproj.cli.walk_models import train_config
from tinyproj.errors import UserError
from tinyproj.runs.config import PRESETS
from tinyproj.walking_noise import setups

from test_walk_protocol import _source     # a small learnable 10-class source

# The authors' epochs per (dataset, model), read from their experiment configurations
# (UniHD-CEG/walking-noise, experiment_configs/<dataset>/*.yaml: num_epochs).
AUTHORS_EPOCHS = {("mnist", "mlp_tfc"): 100, ("mnist", "lenet5"): 50,
                  ("fashion-mnist", "mlp_tfc"): 250, ("fashion-mnist", "lenet5"): 200,
                  ("svhn", "mlp_tfc"): 300, ("svhn", "lenet5"): 200,
                  ("cifar10", "mlp_tfc"): 200, ("cifar10", "lenet5"): 300}
AUTHORS_DATA = {"mnist": ("scale", "none"), "fashion-mnist": ("signed", "crop_flip"),
                "svhn": ("meanstd", "crop_flip"), "cifar10": ("meanstd", "crop_flip")}
LEGACY = dict(init="glorot", bias="auto", lr_schedule="cosine", preprocess=None,
              augment="none", epochs=5, lr=1e-3, batch_size=128, optimizer="adam",
              loss="cross_entropy", val_size=0)
"""tinyproj's walk set-up before it had a name (the old noisy_training.SETUP, the old CLI's 5
epochs)."""


def _cli_config(*argv):
    """The clean training's TrainConfig that `tinyproj walk ARGV` would run (no I/O)."""
    args = build_parser().parse_args(["walk", "--out", "unused", *argv])
    check_args(args)
    return train_config(args, 0, Path("unused") / "model")


@pytest.mark.parametrize("dataset,model", sorted(AUTHORS_EPOCHS))
def test_default_is_the_authors_per_dataset_and_model(dataset, model):
    cfg = _cli_config("--model", model, "--dataset", dataset)
    assert cfg.epochs == AUTHORS_EPOCHS[(dataset, model)]
    assert (cfg.preprocess, cfg.augment) == AUTHORS_DATA[dataset]
    assert (cfg.init, cfg.bias, cfg.lr_schedule, cfg.lr_final) == \
        ("torch", "true", "cosine_epoch", 0.0)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.loss, cfg.val_size) == \
        ("adam", 1e-3, 128, "cross_entropy", 0)
    preset = PRESETS[f"wn-authors-{'mlp' if model == 'mlp_tfc' else model}-"
                     f"{dataset.replace('-mnist', '')}"]
    assert {k: v for k, v in preset.items() if k not in ("model", "dataset")} == \
        setups.setup_settings("authors", model, dataset)        # the presets, resolved


def test_legacy_by_name_gives_the_old_settings_and_flags_override():
    cfg = _cli_config("--setup", "legacy")
    assert {k: getattr(cfg, k) for k in LEGACY} == LEGACY
    assert _cli_config("--setup", "legacy", "--epochs", "2").epochs == 2
    assert _cli_config("--epochs", "3").epochs == 3
    assert wn.noisy_training.LEGACY_SETUP["lr_schedule"] == "cosine"
    assert wn.noisy_training.SETUP["lr_schedule"] == "cosine_epoch"


def test_unknown_setup_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "x"
    with pytest.raises(SystemExit) as stop:
        cli_main(["walk", "--out", str(out), "--setup", "tinyproj", "--dataset", "synthetic"])
    assert stop.value.code == 2
    assert "--setup" in capsys.readouterr().err and not out.exists()
    with pytest.raises(UserError, match="--setup"):
        setups.setup_settings("pytorch")


def test_the_models_start_as_their_setup_says():
    rng = backend.make_rng
    authors = wn.build_walk_model("mlp_tfc", (1, 28, 28), 10, rng(0))
    legacy = wn.build_walk_model("mlp_tfc", (1, 28, 28), 10, rng(0), setup="legacy")
    fc1 = {name: float(np.abs(backend.to_numpy(p.data)).max())
           for name, p in authors.named_parameters() if name.startswith("fc1")}
    assert fc1["fc1.weight"] <= 1 / np.sqrt(784) and fc1["fc1.bias"] > 0   # U(±1/√fan_in)
    glorot = max(float(np.abs(backend.to_numpy(p.data)).max())
                 for name, p in legacy.named_parameters() if name == "fc1.weight")
    assert glorot > 1.5 / np.sqrt(784)                     # Glorot: √(6/848) = 0.084


def test_train_noisy_records_its_setup(tmp_path):
    src = _source(40)
    for setup, schedule, init, tag in (("authors", "cosine_epoch", "torch", "authors"),
                                       ("legacy", "cosine", "glorot", None)):
        out = tmp_path / setup
        wn.train_noisy("mlp_tfc", src, "additive:sigma=0.1", sites=["relu1"], epochs=1,
                       batch_size=20, record_dynamics=False, out=out, setup=setup)
        cfg = json.loads((out / "config.json").read_text())
        assert (cfg["lr_schedule"], cfg["init"]) == (schedule, init)
        assert cfg["extra"].get("setup") == tag


def test_rows_of_two_setups_are_different_points(tmp_path):
    """A row measured with one set-up is never reused for the other: the set-up is in the
    row's key, and a network saved by the other set-up is refused, not read back."""
    src, test = _source(64), _source(40, seed=1)
    kw = dict(sites=["relu1"], seeds=[0], epochs=1, batch_size=32,
              out_file=tmp_path / "walk.jsonl", models_dir=tmp_path / "nets")
    legacy = wn.train_at_sigma("mlp_tfc", src, test, "additive", [1.0], setup="legacy", **kw)
    assert "setup" not in legacy[0]                     # the keys of the committed walks
    with pytest.raises(UserError, match="another set-up: --setup legacy"):
        wn.train_at_sigma("mlp_tfc", src, test, "additive", [1.0], **kw)
    kw.update(out_file=tmp_path / "b.jsonl", models_dir=tmp_path / "nets-b")
    authors = wn.train_at_sigma("mlp_tfc", src, test, "additive", [1.0], **kw)
    assert authors[0]["setup"] == "authors"
    assert wn.row_key(authors[0]) != wn.row_key(legacy[0])
    assert authors[0]["network"] != legacy[0]["network"]


def test_cli_clean_walk_keeps_setups_apart(tmp_path, capsys):
    base = ["--dataset", "synthetic", "--epochs", "1", "--train-subset", "64",
            "--test-subset", "40", "--sigmas", "0.1,10", "--sites", "relu1", "--no-progress",
            "--quiet"]
    out = tmp_path / "w"
    assert cli_main(["walk", "--out", str(out), "--setup", "legacy", *base]) == 0
    rows = wn.read_walk(out / "walk.jsonl")
    assert len(rows) == 2 and all("setup" not in r for r in rows)
    assert cli_main(["walk", "--out", str(out), *base]) == 2      # the authors' into it
    err = capsys.readouterr().err
    assert "other settings" in err and "init" in err and "--setup legacy" in err
    other = tmp_path / "a"
    assert cli_main(["walk", "--out", str(other), *base]) == 0
    assert {r["setup"] for r in wn.read_walk(other / "walk.jsonl")} == {"authors"}
    # a given run: the rows record the set-up it was trained with, not --setup's
    again = tmp_path / "r"
    assert cli_main(["walk", "--out", str(again), "--run", str(out / "model"),
                     *base[6:]]) == 0
    assert all("setup" not in r for r in wn.read_walk(again / "walk.jsonl"))
    assert setups.infer_setup(json.loads((other / "model" / "config.json").read_text())) == \
        "authors"
    assert setups.infer_setup({"model": "mlp_tfc", "dataset": "mnist", "lr": 0.01}) == "custom"
