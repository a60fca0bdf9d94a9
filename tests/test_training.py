"""Training runs: metrics, exact resume, Ctrl-C checkpoints, NaN losses, clear errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend
from tinyproj.errors import UserError

from tinyproj.runs.files import load_checkpoint
from tinyproj.runs.config import PRESETS, make_config
from tinyproj.runs.training import TrainingInterrupted, train

from _helpers import tiny_config


def weights(model):
    return {k: np.array(backend.to_numpy(v)) for k, v in model.state_dict().items()}


def test_metrics_rows_have_the_documented_fields(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1)
    _, rows = train(cfg, progress=False, log=lambda *a: None)
    assert len(rows) == 1
    row = rows[0]
    for key in ("epoch", "step", "train_loss", "train_error", "lr", "test_error", "val_error"):
        assert key in row
    assert set(row["test_error"]) == {"none", "sign", "round"}
    assert all(0.0 <= e <= 1.0 for e in row["test_error"].values())
    assert row["step"] == 120 // 20
    assert json.loads((tmp_path / "run" / "config.json").read_text())["projection"] == "sign"


@pytest.mark.parametrize("val_errors, best", [([0.5, 0.5, 0.5], 3), ([0.5, 0.4, 0.45], 2),
                                              ([0.3, 0.4, 0.3], 3)])
def test_best_validation_epoch_takes_the_later_epoch_on_a_tie(tmp_path, monkeypatch, val_errors,
                                                              best):
    # BinaryConnect's rule `if val_err <= best_val_err`: with 5,000 validation images errors
    # move in steps of 0.02 %, so late in the decay ties happen and decide the reported epoch
    from tinyproj.runs import train_eval
    errors = iter(val_errors)

    def scored(*args, **kwargs):
        v = next(errors)
        return {"val": {"none": v}, "test": {"none": v + 0.01, "sign": v + 0.02}}

    monkeypatch.setattr(train_eval, "errors_by_projection", scored)
    _, rows = train(tiny_config(tmp_path, epochs=3), progress=False, log=lambda *a: None)
    assert [r["val_error"] for r in rows] == val_errors
    assert rows[-1]["best_val_epoch"] == best
    assert rows[-1]["test_error_at_best_val"] == rows[best - 1]["test_error"]


@pytest.fixture(scope="module")
def straight_stoch_run(tmp_path_factory):
    """The uninterrupted Tr-Stoch-C run (stochastic: it draws from the run's generator at
    every step), trained once for the resume tests below."""
    cfg = tiny_config(tmp_path_factory.mktemp("straight"), "straight", preset="tr-stoch-c")
    return train(cfg, progress=False, log=lambda *a: None)


@pytest.mark.parametrize("stop_at", [3, 6, 8])   # mid-epoch, at an epoch boundary, 2nd epoch
def test_resume_continues_to_the_same_weights_bitwise(tmp_path, straight_stoch_run, stop_at):
    model_a, rows_a = straight_stoch_run
    cfg_b = tiny_config(tmp_path, "interrupted", preset="tr-stoch-c")
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(cfg_b, progress=False, stop_at_step=stop_at, log=lambda *a: None)
    _, _, meta = load_checkpoint(tmp_path / "interrupted" / "checkpoint.npz")
    assert meta["pos"]["step"] == stop_at
    model_b, rows_b = train(cfg_b, resume=True, progress=False, log=lambda *a: None)

    wa, wb = weights(model_a), weights(model_b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    strip = [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows_a]
    assert strip == [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows_b]


def test_resume_refuses_changed_settings_and_missing_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path, epochs=1)
    with pytest.raises(UserError, match="not a folder"):
        train(cfg, resume=True, progress=False)
    train(cfg, progress=False, log=lambda *a: None)
    with pytest.raises(UserError, match="--resume"):
        train(cfg, progress=False)
    changed = tiny_config(tmp_path, epochs=1, lr=0.5)
    with pytest.raises(ValueError, match="lr"):
        train(changed, resume=True, progress=False)


def test_nan_loss_stops_with_the_step_and_says_what_the_folder_holds(tmp_path):
    cfg = tiny_config(tmp_path, preset="tr-none-nc", lr=1e30, lr_schedule="constant",
                      optimizer="sgd", epochs=3)
    with pytest.raises(FloatingPointError, match=r"step \d+: the loss is (nan|inf)") as err:
        train(cfg, progress=False, log=lambda *a: None)
    # it failed in the first epoch: there is no checkpoint, and the message does not claim one
    out = Path(cfg.out)
    assert not (out / "checkpoint.npz").exists()
    assert "No checkpoint was saved yet" in str(err.value) and "intact" not in str(err.value)
    assert "smaller --lr" in str(err.value) and ".;" not in str(err.value)


def test_a_nan_after_a_checkpoint_says_it_is_intact_but_a_resume_meets_the_same_loss(tmp_path):
    from tinyproj.runs.training import _not_finite
    (tmp_path / "checkpoint.npz").write_bytes(b"")
    text = str(_not_finite(FloatingPointError("Algorithm 1, step 7: the loss is nan."), tmp_path))
    assert "checkpoint.npz, is intact, but resuming it with the same settings meets" in text
    assert str(_not_finite(FloatingPointError("x"), None)) == "x"     # no run folder: as is


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="tr-sign-c"):
        make_config("tr-nonsense")
    with pytest.raises(ValueError, match="valid settings"):
        make_config(None, learning_rate=0.1)
    with pytest.raises(ValueError, match="bc_cifar10"):
        train(tiny_config(tmp_path, model="resnet"), progress=False)


def test_presets_cover_table2():
    assert {"tr-none-nc", "tr-none-c", "tr-sign-c", "tr-stoch-c", "tr-power-c",
            "tr-stochm-c"} <= set(PRESETS)
    assert make_config("tr-power-c").projection == "power:beta=U(0,2)"
    assert make_config("tr-none-nc").clip == "NC"
    cfg = make_config("tr-stochm-c")
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.clip) == (0.003, 50, 500, 0.5)


def test_ctrl_c_saves_a_checkpoint_between_steps_and_resume_matches(tmp_path, monkeypatch):
    """A real SIGINT, delivered in the middle of step 4, goes through the run's handler."""
    import os
    import signal

    from tinyproj import algorithm1

    cfg = tiny_config(tmp_path, "straight", epochs=1)
    model_a, _ = train(cfg, progress=False, log=lambda *a: None)

    real_step = algorithm1.train_step
    calls = []

    def step_with_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)      # as if the user pressed Ctrl-C now
        return real_step(*args, **kwargs)

    monkeypatch.setattr(algorithm1, "train_step", step_with_ctrl_c)
    cfg_b = tiny_config(tmp_path, "ctrl-c", epochs=1)
    with pytest.raises(TrainingInterrupted):
        train(cfg_b, progress=False, log=lambda *a: None)
    _, _, meta = load_checkpoint(tmp_path / "ctrl-c" / "checkpoint.npz")
    assert meta["pos"]["step"] == 4                  # the step in progress was completed
    monkeypatch.setattr(algorithm1, "train_step", real_step)
    model_b, _ = train(cfg_b, resume=True, progress=False, log=lambda *a: None)
    for k, v in weights(model_a).items():
        np.testing.assert_array_equal(v, weights(model_b)[k], err_msg=k)


def test_folder_source_streams_an_image_folder(tmp_path):
    from PIL import Image

    from tinyproj.data import ImageFolder
    from tinyproj.data.sources import FolderSource

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    source = FolderSource(ImageFolder(tmp_path, resize=36, crop=32))
    assert len(source) == 6 and source.input_shape == (3, 32, 32)
    x, y = source.batch([0, 4, 5])
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32
    assert y.tolist() == [0, 1, 1]


def test_load_run_gives_back_the_trained_weights(tmp_path):
    from tinyproj.runs.training import load_run

    cfg = tiny_config(tmp_path, epochs=1)
    model, rows = train(cfg, progress=False, log=lambda *a: None)
    run = load_run(tmp_path / "run")
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, weights(run.model)[k], err_msg=k)
    assert len(run.train) == 120 and len(run.test) == 200 and run.meta["pos"]["epoch"] == 1
    with pytest.raises(UserError, match="run folder"):
        load_run(tmp_path / "nothing")


def test_the_first_signal_asks_the_loop_to_stop_and_the_second_stops_at_once():
    import signal
    from tinyproj.runs.interrupts import StopFlag
    said = []
    flag = StopFlag(said.append)
    flag._handle(signal.SIGTERM, None)
    assert flag.requested == "SIGTERM"
    # what the user reads must be true while an evaluation (minutes with --bn-images) runs
    assert "evaluation" in said[0] and "send it again to stop at once" in said[0]
    with pytest.raises(KeyboardInterrupt):
        flag._handle(signal.SIGINT, None)
