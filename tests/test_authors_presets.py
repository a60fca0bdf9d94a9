"""The papers' set-ups as presets, the per-epoch cosine, AlexNet's two learning-rate readings
and top-5 error (issue 13)."""
import math

import numpy as np
import pytest

import tinyproj as tp
from tinyproj.cli import main
from tinyproj.data.sources import ArraySource
from tinyproj.errors import UserError
from tinyproj.runs.build import lr_schedule
from tinyproj.runs.config import PRESET_NOTES, PRESETS, make_config, reports_top5
from tinyproj.runs.evaluation import error_rates, errors_by_projection
from tinyproj.runs.training import train

from _helpers import FixedScores


# --- presets ------------------------------------------------------------------------------------
# (model, dataset) → (epochs, normalization, augmentation), as in the authors' code:
# experiment_configs/<dataset>/*.yaml (num_epochs) and data/<dataset>.py (transforms)
AUTHORS = {
    ("mlp_tfc", "mnist"): (100, "scale", "none"), ("lenet5", "mnist"): (50, "scale", "none"),
    ("mlp_tfc", "fashion-mnist"): (250, "signed", "crop_flip"),
    ("lenet5", "fashion-mnist"): (200, "signed", "crop_flip"),
    ("mlp_tfc", "svhn"): (300, "meanstd", "crop_flip"),
    ("lenet5", "svhn"): (200, "meanstd", "crop_flip"),
    ("mlp_tfc", "cifar10"): (200, "meanstd", "crop_flip"),
    ("lenet5", "cifar10"): (300, "meanstd", "crop_flip"),
}


def test_every_preset_validates_and_has_a_note():
    for name in PRESETS:
        cfg = make_config(name)
        assert cfg.preset == name and PRESET_NOTES[name]


def test_walking_noise_authors_presets():
    found = {}
    for name, values in PRESETS.items():
        if name.startswith("wn-authors-"):
            cfg = make_config(name)
            found[(cfg.model, cfg.dataset)] = (cfg.epochs, cfg.preprocess, cfg.augment)
            assert (cfg.optimizer, cfg.lr, cfg.lr_schedule, cfg.lr_final) == \
                ("adam", 1e-3, "cosine_epoch", 0.0)
            assert (cfg.loss, cfg.batch_size, cfg.val_size) == ("cross_entropy", 128, 0)
            assert (cfg.init, cfg.bias, cfg.projection, cfg.clip) == ("torch", "true", "none",
                                                                     "NC")
    assert found == AUTHORS


def test_alexnet_presets_two_readings_of_the_drop():
    literal, tenfold = make_config("alexnet-stochm3-c"), make_config("alexnet-stochm3-c-drop10")
    assert literal.epochs == 64 and literal.iterations == 150_000     # not 10**6 epochs
    at = lr_schedule(literal, 2503)
    assert [at(0, s) for s in (0, 99_999, 100_000, 124_999, 125_000, 149_999)] == \
        pytest.approx([0.1, 0.1, 1e-3, 1e-3, 1e-5, 1e-5])
    at = lr_schedule(tenfold, 2503)
    assert [at(0, s) for s in (99_999, 100_000, 125_000)] == pytest.approx([0.1, 0.01, 1e-3])


def test_list_presets_shows_them_all(capsys):
    assert main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert f"\n{name}: " in "\n" + out
    assert "1000000" not in out and "epochs=64" in out
    assert "lr_milestones=100000,125000" in out                      # as it would be typed


# --- cosine per epoch ---------------------------------------------------------------------------
def test_cosine_epoch_is_constant_within_an_epoch_as_cosine_annealing_lr():
    cfg = make_config("wn-authors-mlp-mnist", epochs=4)
    at = lr_schedule(cfg, steps_per_epoch=10)
    # PyTorch's CosineAnnealingLR(T_max=4, eta_min=0) stepped after each epoch
    expected = [1e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    for e in range(4):
        assert [at(e, 10 * e + b) for b in range(10)] == pytest.approx([expected[e]] * 10)
    assert at(3, 39) > 0                                              # the last epoch too
    per_step = lr_schedule(make_config("wn-authors-mlp-mnist", epochs=4,
                                       lr_schedule="cosine"), 10)
    assert per_step(0, 5) < per_step(0, 0)                             # the other reading


def test_cosine_minimum_above_the_start_is_refused():
    with pytest.raises(UserError) as err:
        make_config("wn-authors-mlp-mnist", lr_final=0.01)
    assert err.value.flag == "--lr-final"


# --- top-5 --------------------------------------------------------------------------------------
def test_top1_and_top5_errors_from_the_labels_rank():
    # label 0 everywhere; its rank among 10 scores: 0, 1, 4, 5, 9
    scores = np.zeros((5, 10), np.float32)
    for i, rank in enumerate([0, 1, 4, 5, 9]):
        scores[i, 1:] = np.arange(9, 0, -1)          # the other classes score 9, 8, ..., 1
        scores[i, 0] = 9.5 - rank                    # beaten by exactly `rank` of them
    x = np.arange(5, dtype=np.float32)[:, None]
    src = ArraySource(x, np.zeros(5, np.int64))
    rates = error_rates(FixedScores(scores), src, batch_size=2, top=(1, 5))
    assert rates == {1: 4 / 5, 5: 2 / 5}
    errs = errors_by_projection(FixedScores(scores), src, {"test": src}, ["none"],
                                bn_batches=0, eval_batch_size=3, top5=True)
    assert errs == {"test": {"none": 0.8}, "test_top5": {"none": 0.4}}


def test_top5_is_reported_for_imagenet_only(tmp_path):
    assert reports_top5(make_config("alexnet-stochm3-c"))
    assert not reports_top5(make_config("tr-none-nc"))
    x, y = tp.data.synthetic_classification(40, (3, 16, 16), 10, seed=0)
    data = (ArraySource(x[:30], y[:30]), None, ArraySource(x[30:], y[30:]), (3, 16, 16), 10)
    rows = {}
    for dataset in ("imagenet", "synthetic"):
        cfg = make_config(model="mlp_tfc", dataset=dataset, epochs=1, batch_size=10,
                          val_size=0, test_projections=["none"], loss="cross_entropy", out=None)
        _, rows[dataset] = train(cfg, data=data, progress=False, log=lambda *a: None)
    row = rows["imagenet"][-1]
    assert set(row["test_error_top5"]) == {"none"}
    assert row["test_error_top5"]["none"] <= row["test_error"]["none"]
    assert "test_error_top5" not in rows["synthetic"][-1]
