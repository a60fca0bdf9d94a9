"""The runs/ layer: every setting checked before I/O, flags generated from the config,
run-folder safety, resume from config.json, foreign checkpoints refused, files that respect
the umask, stale temporary files, the folder lock, SIGTERM like Ctrl-C, noisy training in
the one loop."""
import argparse
import dataclasses
import json
import os
import signal

import numpy as np
import pytest

from tinyproj import backend
from tinyproj.cli.flags import add_config_flags, cli_fields, config_overrides
from tinyproj.errors import UserError
from tinyproj.runs import files
from tinyproj.runs.config import TrainConfig, make_config, validate
from tinyproj.runs.folder import resume_config
from tinyproj.runs.training import TrainingInterrupted, train

from _helpers import QUIET, tiny_mlp_config  # noqa: E402

tiny = tiny_mlp_config


# ---------------------------------------------------------------------------
# validation: nonsense refused by flag name, before anything is written
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,flag", [
    ("batch_size", 0, "--batch-size"), ("batch_size", -5, "--batch-size"),
    ("train_subset", -100, "--train-subset"), ("epochs", 0, "--epochs"),
    ("iterations", 0, "--iterations"), ("bn_batches", -3, "--bn-batches"),
    ("eval_every", 0, "--eval-every"), ("width", 0.0, "--width"),
    ("width", float("nan"), "--width"), ("lr", float("nan"), "--lr"), ("lr", -1.0, "--lr"),
    ("test_projections", ["none", "sgin"], "--test-projections"),
    ("test_projections", [], "--test-projections"), ("projection", "sing", "--projection"),
    ("model", "resnet", "--model"), ("dataset", "imagenette", "--dataset"),
    ("clip", -1.0, "--clip"), ("lr_schedule", "linear", "--lr-schedule"),
    ("momentum", 1.0, "--momentum"), ("test_subset", 0, "--test-subset"),
    ("val_size", 50_000, "--val-size"), ("lr_milestones", [10, 5], "--lr-milestones"),
    ("loss", "mse", "--loss"), ("seed", -1, "--seed")])
def test_every_bad_setting_is_refused_naming_its_flag(tmp_path, field, value, flag):
    with pytest.raises(UserError, match=flag) as err:
        tiny(tmp_path, **{field: value})
    assert err.value.flag == flag
    assert not (tmp_path / "run").exists()


def test_unknown_preset_and_setting_are_named():
    with pytest.raises(UserError, match="--preset.*tr-sign-c"):
        make_config("tr-nonsense")
    with pytest.raises(UserError, match="learning_rate"):
        make_config(None, learning_rate=0.1)


def test_model_that_cannot_take_the_dataset_is_refused_up_front():
    with pytest.raises(UserError, match="--bn"):
        make_config(None, model="bc_cifar10", bn=True, dataset="synthetic")
    cfg = make_config(None, model="lenet5", dataset="cifar10")      # 32×32: must be accepted
    assert cfg.model == "lenet5"


def test_last_minibatch_of_one_image_is_refused_only_with_batch_norm(tmp_path):
    with pytest.raises(UserError, match="1 image.*--train-subset"):
        tiny(tmp_path, bn=True, train_subset=41, batch_size=20)
    tiny(tmp_path, bn=False, train_subset=41, batch_size=20)     # no batch norm: fine


# ---------------------------------------------------------------------------
# flags generated from the config
# ---------------------------------------------------------------------------
def test_every_field_has_a_flag_that_parses_its_own_default():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    for f in cli_fields():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if default is None or isinstance(default, bool):
            continue
        text = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        if isinstance(default, list) and not default:
            continue
        args = parser.parse_args([f"--{f.name.replace('_', '-')}", text])
        assert getattr(args, f.name) == default, f.name
        assert type(getattr(args, f.name)) is type(default), f.name


def test_flags_have_the_field_types_and_only_given_flags_override():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args(["--width", "0.5", "--clip-milestones", "5,10", "--no-bn",
                              "--clip", "nc", "--lr-final", "1e-5"])
    assert config_overrides(args) == {"width": 0.5, "clip_milestones": [5, 10], "bn": False,
                                      "clip": "NC", "lr_final": 1e-5}
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "many"])
    assert "extra" not in {f.name for f in cli_fields()}      # set by code, never a flag


# ---------------------------------------------------------------------------
# the run folder
# ---------------------------------------------------------------------------
def test_a_new_run_refuses_a_file_or_a_folder_with_someone_elses_files(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        train(tiny(tmp_path, "file"), **QUIET)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "config.json").write_text('{"mine": 1}')
    (other / "metrics.jsonl").write_text('{"epoch": 7}\n')
    with pytest.raises(UserError, match="not empty"):
        train(tiny(tmp_path, "notes"), **QUIET)
    assert (other / "config.json").read_text() == '{"mine": 1}'
    assert (other / "metrics.jsonl").read_text() == '{"epoch": 7}\n'


def test_a_retrain_over_a_run_with_sweeps_is_refused(tmp_path):
    cfg = tiny(tmp_path)
    train(cfg, **QUIET)
    (tmp_path / "run" / "checkpoint.npz").unlink()     # "start over" by hand ...
    (tmp_path / "run" / "sweeps").mkdir()
    (tmp_path / "run" / "sweeps" / "addnorm.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="not empty"):  # ... still refused: sweeps are there
        train(tiny(tmp_path), **QUIET)
    assert (tmp_path / "run" / "sweeps" / "addnorm.jsonl").exists()


def test_resume_reads_config_json_and_refuses_conflicting_overrides(tmp_path):
    train(tiny(tmp_path, epochs=1), **QUIET)
    cfg = resume_config(tmp_path / "run", {"epochs": 2})
    assert (cfg.epochs, cfg.model, cfg.train_subset) == (2, "mlp_tfc", 60)
    with pytest.raises(UserError, match="--lr: the run has 0.01, you gave 0.5"):
        resume_config(tmp_path / "run", {"lr": 0.5})
    with pytest.raises(UserError, match="--test-projections: the run has none, you gave "
                                        "none,sign"):        # as typed, not a Python list
        resume_config(tmp_path / "run", {"test_projections": ["none", "sign"]})
    _, rows = train(cfg, resume=True, **QUIET)
    assert [r["epoch"] for r in rows] == [1, 2]


def test_a_resume_that_trains_longer_is_remembered_by_the_next_plain_resume(tmp_path):
    train(tiny(tmp_path, epochs=1), **QUIET)
    longer = resume_config(tmp_path / "run", {"epochs": 3})
    with pytest.raises(TrainingInterrupted):
        train(longer, resume=True, stop_at_step=4, **QUIET)          # stopped in epoch 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 3
    _, rows = train(resume_config(tmp_path / "run"), resume=True, **QUIET)
    assert [r["epoch"] for r in rows] == [1, 2, 3]


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    train(tiny(tmp_path, epochs=1), **QUIET)
    path = tmp_path / "run" / "checkpoint.npz"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2],
                      "garbage": b"not a zip file at all"}[damage])
    before = _run_files(tmp_path / "run")
    with pytest.raises(UserError, match="corrupt"):
        train(tiny(tmp_path, epochs=2), resume=True, **QUIET)
    assert _run_files(tmp_path / "run") == before      # epochs=2 not saved: nothing changed


def _run_files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_checkpoint_damaged_inside_an_array_changes_nothing_either(tmp_path):
    # the zip directory (at the end) is intact, so the early read of the checkpoint's meta
    # passes; the damage shows when the weights are read, still before config.json is written
    train(tiny(tmp_path, epochs=1), **QUIET)
    path = tmp_path / "run" / "checkpoint.npz"
    data = bytearray(path.read_bytes())
    start = data.index(b"model/")                       # the first array's entry
    data[start + 200:start + 400] = bytes(200)
    path.write_bytes(bytes(data))
    before = _run_files(tmp_path / "run")
    with pytest.raises(UserError, match="corrupt"):
        train(resume_config(tmp_path / "run", {"epochs": 3}), resume=True, **QUIET)
    assert _run_files(tmp_path / "run") == before


@pytest.mark.parametrize("stop_at,epochs,message", [
    (None, 1, r"--epochs 1: the run has already trained 2 epoch\(s\) \(step 6\); give "
              r"--epochs 2 or more"),
    (4, 1, r"--epochs 1: the run has already trained 1 epoch\(s\) and part of epoch 2 "
           r"\(step 4\); give --epochs 2 or more")])
def test_a_resume_may_not_end_the_run_before_what_it_has_trained(tmp_path, stop_at, epochs,
                                                                  message):
    cfg = tiny(tmp_path, epochs=2)
    if stop_at is None:
        train(cfg, **QUIET)
    else:
        with pytest.raises(TrainingInterrupted):
            train(cfg, stop_at_step=stop_at, **QUIET)
    before = _run_files(tmp_path / "run")
    with pytest.raises(UserError, match=message) as err:
        resume_config(tmp_path / "run", {"epochs": epochs})
    assert err.value.flag == "--epochs"
    with pytest.raises(UserError, match="--iterations 3: the run is already at step"):
        resume_config(tmp_path / "run", {"iterations": 3})
    assert _run_files(tmp_path / "run") == before
    assert resume_config(tmp_path / "run", {"epochs": 2}).epochs == 2     # its own end: fine


def test_a_checkpoint_of_another_run_or_architecture_is_refused(tmp_path):
    train(tiny(tmp_path, "a", epochs=1, seed=1), **QUIET)
    train(tiny(tmp_path, "b", epochs=1), **QUIET)
    train(tiny(tmp_path, "c", epochs=1, width=0.5), **QUIET)
    theirs = (tmp_path / "b" / "checkpoint.npz").read_bytes()
    (tmp_path / "a" / "checkpoint.npz").write_bytes(theirs)
    before = _run_files(tmp_path / "a")
    with pytest.raises(UserError, match="another run.*seed"):
        train(tiny(tmp_path, "a", epochs=2, seed=1), resume=True, **QUIET)
    assert _run_files(tmp_path / "a") == before         # its config.json still says 1 epoch
    from tinyproj.runs.folder import check_checkpoint
    from tinyproj.runs.build import build_model
    from tinyproj import backend
    cfg_c = tiny(tmp_path, "c", epochs=1, width=0.5)
    model = build_model(tiny(tmp_path, "x"), (3, 32, 32), 10, backend.make_rng(0))
    with pytest.raises(UserError, match="another network|another run"):
        check_checkpoint(tmp_path / "c" / "checkpoint.npz", tiny(tmp_path, "x"), model)
    assert cfg_c.width == 0.5


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        path = files.atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == mode


def test_stale_temporary_files_of_our_names_only_are_removed(tmp_path):
    for name in (".checkpoint.npz.abc123xy.tmp", ".metrics.jsonl.zz99yy00.tmp",
                 ".notes.txt.abc123xy.tmp", "checkpoint.npz.tmp", "keep.tmp"):
        (tmp_path / name).write_text("x")
    removed = files.remove_stale_temps(tmp_path, ("checkpoint.npz", "metrics.jsonl"))
    assert sorted(p.name for p in removed) == [".checkpoint.npz.abc123xy.tmp",
                                               ".metrics.jsonl.zz99yy00.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.abc123xy.tmp",
                                                          "checkpoint.npz.tmp", "keep.tmp"]


def test_a_second_process_in_the_same_folder_is_stopped(tmp_path):
    with files.folder_lock(tmp_path):
        with pytest.raises(UserError, match="in use"):
            with files.folder_lock(tmp_path):
                pass
    with files.folder_lock(tmp_path):            # released: free again
        pass


def test_sigterm_saves_a_checkpoint_and_the_run_resumes_exactly(tmp_path):
    straight, _ = train(tiny(tmp_path, "straight", epochs=3), **QUIET)

    def send_sigterm(model, row):
        if row["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)
    cfg = tiny(tmp_path, epochs=3)
    with pytest.raises(TrainingInterrupted, match="SIGTERM"):
        train(cfg, on_eval=send_sigterm, **QUIET)
    meta = files.load_checkpoint(tmp_path / "run" / "checkpoint.npz")[2]
    assert meta["pos"]["epoch"] == 1
    resumed, rows = train(resume_config(tmp_path / "run"), resume=True, **QUIET)
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(backend.to_numpy(v), backend.to_numpy(resumed.state_dict()[k]))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert not list((tmp_path / "run").glob(".*.tmp"))


# ---------------------------------------------------------------------------
# noisy training is the same loop
# ---------------------------------------------------------------------------
def test_noisy_training_gets_checkpoints_and_resume_from_the_one_loop(tmp_path):
    from tinyproj.data.sources import ArraySource
    from tinyproj.data.synthetic import synthetic_classification
    from tinyproj.walking_noise import train_noisy
    x, y = synthetic_classification(80, shape=(1, 8, 8), seed=3)
    src = ArraySource(x[:60], y[:60]), ArraySource(x[60:], y[60:])
    model, rows = train_noisy("mlp_tfc", src, "additive:sigma=0.1", epochs=2, batch_size=20,
                              clamp=0.5, out=tmp_path / "noisy")
    saved = json.loads((tmp_path / "noisy" / "config.json").read_text())
    assert saved["extra"]["noise"].startswith("additive") and saved["extra"]["clamp"] == 0.5
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(r["sigma"] == 0.1 and "test_accuracy_noisy" in r for r in rows)
    weights = [p.data for name, p in model.named_parameters() if p.data.ndim >= 2]
    assert max(float(np.abs(w).max()) for w in weights) <= 0.5     # the clamp held
    again, rows2 = train_noisy("mlp_tfc", src, "additive:sigma=0.1", epochs=3, batch_size=20,
                               clamp=0.5, out=tmp_path / "noisy", resume=True)
    assert [r["epoch"] for r in rows2] == [0, 1, 2, 3]
    with pytest.raises(UserError, match="--resume"):              # a new run: refused
        train_noisy("mlp_tfc", src, "additive:sigma=0.1", epochs=2, batch_size=20,
                    out=tmp_path / "noisy")


def test_noisy_training_stopped_by_ctrl_c_resumes_to_the_straight_runs_weights_and_rows(
        tmp_path, monkeypatch):
    """Noisy training draws its noise from the run's generator at every step (on a device,
    Philox keyed by it: kernels.random_key). Ctrl-C during the 3rd step (the end of epoch 1
    of 2; on the stand-in the step its CUDA graph captures) stops it before that epoch's
    evaluation; the resume runs the evaluation, then epoch 2, to the weights and rows of the
    uninterrupted run."""
    from tinyproj import algorithm1
    from tinyproj.data.sources import ArraySource
    from tinyproj.data.synthetic import synthetic_classification
    from tinyproj.walking_noise import train_noisy
    x, y = synthetic_classification(80, shape=(1, 8, 8), seed=3)
    src = ArraySource(x[:60], y[:60]), ArraySource(x[60:], y[60:])
    settings = dict(epochs=2, batch_size=20, clamp=0.5)
    straight, rows_a = train_noisy("mlp_tfc", src, "additive:sigma=0.3", out=tmp_path / "a",
                                   **settings)
    real, calls = algorithm1.train_step, []

    def ctrl_c_in_the_third_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(algorithm1, "train_step", ctrl_c_in_the_third_step)
    with pytest.raises(TrainingInterrupted, match="step 3"):
        train_noisy("mlp_tfc", src, "additive:sigma=0.3", out=tmp_path / "b", **settings)
    monkeypatch.setattr(algorithm1, "train_step", real)
    resumed, rows_b = train_noisy("mlp_tfc", src, "additive:sigma=0.3", out=tmp_path / "b",
                                  resume=True, **settings)

    def timeless(rows):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]
    assert [r["epoch"] for r in rows_b] == [0, 1, 2]
    assert timeless(rows_b) == timeless(rows_a)
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a.data), backend.to_numpy(b.data),
                                      err_msg=name)


def test_validate_accepts_the_presets():
    from tinyproj.runs.config import PRESETS
    for name in PRESETS:
        assert validate(make_config(name)).preset == name
    assert isinstance(TrainConfig().extra, dict)


@pytest.mark.parametrize("first", ["tinyproj.runs.validation", "tinyproj.runs.presets",
                                   "tinyproj.runs.config"])
def test_config_presets_and_validation_import_in_any_order_and_config_reexports_them(first):
    """config.py re-exports presets.py and validation.py (the import paths of before); a
    process that imports validation.py first still gets a working make_config and flags."""
    import subprocess
    import sys
    code = (f"import {first}\n"
            "from tinyproj.runs import config, presets, validation\n"
            "assert config.PRESETS is presets.PRESETS and config.validate is validation.validate\n"
            "assert config.BIAS is validation.BIAS and config.check_last_batch is "
            "validation.check_last_batch\n"
            "assert config.make_config('tr-sign-c').projection == 'sign'\n"
            "try:\n"
            "    config.make_config(model='lenet5', dataset='mnist', width=-1)\n"
            "except config.UserError as err:\n"
            "    assert err.flag == '--width', err.flag\n"
            "else:\n"
            "    raise AssertionError('no error')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
