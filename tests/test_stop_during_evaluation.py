"""Ctrl-C / SIGTERM during an evaluation: it stops at the evaluation's next batch, the
checkpoint marks the evaluation pending, and ``--resume`` redoes it first (runs/interrupts.py,
runs/training.py). The resumed run must end exactly where an uninterrupted one ends: same
metrics rows (timings aside), same weights and batch-norm statistics."""
from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend
from tinyproj.runs import evaluation
from tinyproj.runs.files import load_checkpoint, read_jsonl, save_checkpoint
from tinyproj.runs.interrupts import EvaluationStopped
from tinyproj.runs.training import TrainingInterrupted, train

from _helpers import class_means_source, tiny_config

QUIET = dict(progress=False, log=lambda *a: None)
TIMINGS = ("train_seconds", "eval_seconds")


# the Walking Noise MLP with batch norm: the loop's logic is what is tested, and on the
# stand-in it trains 13× faster than tiny_config's convolutional network (0.6 s against 8 s)
MLP_BN = dict(model="mlp_tfc", bn=True, width=1.0)


def config(tmp_path, name, **overrides):
    """tiny_config (synthetic data, 6 steps an epoch, 2 epochs) with the MLP."""
    return tiny_config(tmp_path, name, **{**MLP_BN, **overrides})


@functools.lru_cache(maxsize=None)
def straight_run(**overrides):
    """(model, rows) of the run never stopped (no folder), trained once per file and setting."""
    return train(config(Path("unused"), "straight", out=None, **overrides), **QUIET)


def state(model) -> dict:
    """Every weight and buffer (batch-norm statistics included), as NumPy arrays."""
    return {k: np.array(backend.to_numpy(v)) for k, v in model.state_dict().items()}


def without_timings(rows) -> list:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def ctrl_c_in_evaluation(monkeypatch, target, at_call: int):
    """Send the process a real SIGINT when the function ``target = (module, name)`` of the
    evaluation is entered for the ``at_call``-th time, i.e. in mid-evaluation:
    the run's own handler receives it, as when a user presses Ctrl-C then."""
    module, name = target
    real, calls = getattr(module, name), []

    def with_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, with_ctrl_c)
    return real


def assert_same_run(model_a, rows_a, model_b, out_b, redone_step: int):
    """The resumed run's rows equal the straight run's — first those up to the redone
    evaluation (the weights then were the checkpoint's), then all of them — and so does every
    weight: the checkpoint holds the generator's state on every backend (runs/files.py)."""
    rows_b = without_timings(read_jsonl(out_b / "metrics.jsonl"))
    upto = [r for r in without_timings(rows_a) if r["step"] <= redone_step]
    assert rows_b[:len(upto)] == upto
    assert rows_b == without_timings(rows_a)
    for k, v in state(model_a).items():
        np.testing.assert_array_equal(v, state(model_b)[k], err_msg=k)


def test_a_stop_during_an_epochs_evaluation_is_redone_first_on_resume(tmp_path, monkeypatch):
    """Stopped while scoring after epoch 1 of 2 (steps 6 of 12): the checkpoint is epoch 1's
    with the evaluation pending; the resume writes epoch 1's row, then trains epoch 2."""
    model_a, rows_a = straight_run()
    assert [r["step"] for r in rows_a] == [6, 12]

    real = ctrl_c_in_evaluation(monkeypatch, (evaluation, "error_rates"), at_call=1)
    cfg = config(tmp_path, "stopped")
    with pytest.raises(TrainingInterrupted, match="Ctrl-C during the evaluation"):
        train(cfg, **QUIET)
    _, _, meta = load_checkpoint(tmp_path / "stopped" / "checkpoint.npz")
    assert (meta["pos"]["step"], meta["pos"]["pending_eval"]) == (6, "epoch")
    assert meta["pos"]["best_val"] is None           # the cut evaluation chose nothing
    assert read_jsonl(tmp_path / "stopped" / "metrics.jsonl") == []

    monkeypatch.setattr(evaluation, "error_rates", real)
    said = []
    model_b, _ = train(cfg, resume=True, progress=False, log=said.append)
    assert any("first the evaluation at step 6" in line for line in said)
    assert_same_run(model_a, rows_a, model_b, tmp_path / "stopped", 6)
    _, _, meta = load_checkpoint(tmp_path / "stopped" / "checkpoint.npz")
    assert meta["pos"]["pending_eval"] is None


def test_a_stop_during_an_evaluation_inside_the_epoch_resumes_mid_epoch(tmp_path, monkeypatch):
    """--eval-every-steps 3: stopped in the evaluation at step 3, halfway through epoch 1."""
    model_a, rows_a = straight_run(eval_every_steps=3)
    assert [r["step"] for r in rows_a] == [3, 6, 9, 12]

    # the re-estimation's batches (bn_batches=2) come before the scoring: stop inside them
    real = ctrl_c_in_evaluation(monkeypatch, (evaluation, "reestimate_batchnorm"), at_call=1)
    cfg = config(tmp_path, "stopped", eval_every_steps=3)
    with pytest.raises(TrainingInterrupted, match=r"in epoch 1 \(Ctrl-C during the evaluation"):
        train(cfg, **QUIET)
    _, _, meta = load_checkpoint(tmp_path / "stopped" / "checkpoint.npz")
    assert (meta["pos"]["step"], meta["pos"]["batch"], meta["pos"]["pending_eval"]) == \
        (3, 3, "inside")

    monkeypatch.setattr(evaluation, "reestimate_batchnorm", real)
    model_b, _ = train(cfg, resume=True, **QUIET)
    assert_same_run(model_a, rows_a, model_b, tmp_path / "stopped", 3)


def test_a_stop_during_the_final_evaluation_is_finished_by_resume(tmp_path, monkeypatch):
    """The run has trained all its steps; the resume only writes the last row (and does not
    say the run is finished before it has done so)."""
    model_a, rows_a = straight_run(epochs=1)
    real = ctrl_c_in_evaluation(monkeypatch, (evaluation, "error_rates"), at_call=2)
    cfg = config(tmp_path, "stopped", epochs=1)
    with pytest.raises(TrainingInterrupted, match=r"after epoch 1 \(Ctrl-C during the evaluation"):
        train(cfg, **QUIET)
    monkeypatch.setattr(evaluation, "error_rates", real)
    said = []
    model_b, _ = train(cfg, resume=True, progress=False, log=said.append)
    assert not any("already trained" in line for line in said)
    assert_same_run(model_a, rows_a, model_b, tmp_path / "stopped", 6)
    said.clear()                                     # now it is finished
    train(cfg, resume=True, progress=False, log=said.append)
    assert any("already trained" in line for line in said)
    assert len(read_jsonl(tmp_path / "stopped" / "metrics.jsonl")) == len(rows_a)


def test_a_stop_during_the_exact_reestimation_is_redone_on_resume(tmp_path, monkeypatch):
    """--bn-images all: the stop is noticed between two passes of runs/bn_exact.py."""
    model_a, rows_a = straight_run(bn_images="all")
    real = ctrl_c_in_evaluation(monkeypatch, (evaluation, "reestimate_exact"), at_call=1)
    cfg = config(tmp_path, "stopped", bn_images="all")
    with pytest.raises(TrainingInterrupted, match="Ctrl-C during the evaluation"):
        train(cfg, **QUIET)
    monkeypatch.setattr(evaluation, "reestimate_exact", real)
    model_b, _ = train(cfg, resume=True, **QUIET)
    assert_same_run(model_a, rows_a, model_b, tmp_path / "stopped", 6)


def test_a_checkpoint_written_before_pending_evaluations_existed_still_resumes(tmp_path):
    """A checkpoint whose position has no "pending_eval" (older tinyproj) resumes as before."""
    model_a, rows_a = straight_run()
    cfg = config(tmp_path, "old")
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_at_step=8, **QUIET)
    path = tmp_path / "old" / "checkpoint.npz"
    model_state, optim_state, meta = load_checkpoint(path)
    del meta["pos"]["pending_eval"]
    save_checkpoint(path, model_state, optim_state, meta)
    model_b, _ = train(cfg, resume=True, **QUIET)
    assert_same_run(model_a, rows_a, model_b, tmp_path / "old", 8)


@pytest.mark.parametrize("protocol", [dict(bn_batches=3), dict(bn_images="all")],
                         ids=["batches", "exact"])
@pytest.mark.parametrize("stop_after", [0, 1, 3, 6])
def test_a_stopped_evaluation_leaves_weights_statistics_and_mode_as_they_were(protocol,
                                                                            stop_after):
    """Whichever batch the stop comes before — re-estimation or scoring, first projection or
    second — the model is put back exactly: weights, batch-norm statistics, training mode."""
    from tinyproj.models import build

    source = class_means_source(60, shape=(3, 32, 32))
    model = build("bc_cifar10", width=1 / 16, rng=backend.make_rng(0))
    model(backend.asarray(source.x[:20]))                # running statistics ≠ their init
    model.train()
    before = state(model)
    checks = []

    def stop():
        checks.append(1)
        return len(checks) > stop_after

    with pytest.raises(EvaluationStopped):
        evaluation.errors_by_projection(model, source, {"test": source}, ["sign", "none"],
                                        backend.make_rng(1), batch_size=20, eval_batch_size=20,
                                        stop=stop, **protocol)
    assert model.training
    for k, v in before.items():
        np.testing.assert_array_equal(v, state(model)[k], err_msg=k)
