"""Evaluations inside an epoch (``eval_every_steps``): the rows, and the training left untouched.

Evaluation draws from a generator of its own (``runs.training.evaluation_rng``), so evaluating
more often trains the same network: these tests fail if an evaluation consumes the run's draws.
"""
import numpy as np
import pytest

from tinyproj import backend
from tinyproj.errors import UserError
from tinyproj.runs.config import make_config
from tinyproj.runs.training import evaluation_rng, train


def tiny(tmp_path, name, **overrides):
    values = dict(dataset="synthetic", model="bc_cifar10", width=1 / 16, train_subset=120,
                  val_size=40, batch_size=20, epochs=2, lr=0.01, bn_batches=2,
                  eval_batch_size=100, test_projections=["none", "sign"],
                  out=str(tmp_path / name))
    values.update(overrides)
    return make_config(values.pop("preset", "tr-stoch-c"), **values)


def weights(model):
    return {k: np.array(backend.to_numpy(v)) for k, v in model.state_dict().items()}


def quiet(*args, **kwargs):
    pass


@pytest.mark.numpy_only("the comparison needs bit-identical draws of the host generator")
@pytest.mark.parametrize("preset", ["tr-stoch-c", "tr-sign-c"])
def test_evaluating_inside_the_epoch_trains_the_same_network(tmp_path, preset):
    # Tr-Stoch-C draws at every step and the second epoch reshuffles: an evaluation that took
    # its re-estimation batches from the run's generator would change both.
    a, rows_a = train(tiny(tmp_path, "plain", preset=preset), progress=False, log=quiet)
    b, rows_b = train(tiny(tmp_path, "curve", preset=preset, eval_every_steps=3),
                      progress=False, log=quiet)
    wa, wb = weights(a), weights(b)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    # steps per epoch 120 / 20 = 6: inside the epochs at 3 and 9, at the ends 6 and 12
    assert [r["step"] for r in rows_b] == [3, 6, 9, 12]
    assert [r["epoch_progress"] for r in rows_b] == [0.5, 1.0, 1.5, 2.0]
    assert [r["epoch"] for r in rows_b] == [0, 1, 1, 2]
    assert all(r["n_test"] == 200 for r in rows_b)       # the synthetic test set, for its SE
    seconds = [r["train_seconds"] for r in rows_b]          # training time so far, growing
    assert seconds[0] > 0 and seconds == sorted(seconds)
    # the end-of-epoch evaluations are the plain run's, number for number (same draws)
    strip = lambda r: {k: v for k, v in r.items() if not k.endswith("seconds")}
    assert [strip(r) for r in rows_b[1::2]] == [strip(r) for r in rows_a]


@pytest.mark.numpy_only("the comparison needs bit-identical draws of the host generator")
def test_an_evaluation_inside_an_epoch_never_becomes_the_best_validation_epoch(tmp_path):
    _, rows = train(tiny(tmp_path, "run", eval_every_steps=1, epochs=1), progress=False,
                    log=quiet)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # selection only at the end of an epoch: the one end-of-epoch row is the best one
    assert all(r.get("best_val_epoch") in (None, 1) for r in rows)
    assert rows[-1]["best_val_epoch"] == 1
    assert rows[-1]["test_error_at_best_val"] == rows[-1]["test_error"]
    assert "best_val_epoch" not in rows[0]          # nothing selected before the epoch's end


def test_the_evaluation_generator_depends_on_seed_and_step_only():
    draw = lambda seed, step: backend.to_numpy(backend.permutation(evaluation_rng(seed, step), 50))
    np.testing.assert_array_equal(draw(0, 10), draw(0, 10))
    assert not np.array_equal(draw(0, 10), draw(0, 11))
    assert not np.array_equal(draw(0, 10), draw(1, 10))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_a_bad_eval_every_steps_is_refused_naming_the_flag(tmp_path, bad):
    with pytest.raises(UserError, match="eval-every-steps"):
        tiny(tmp_path, "bad", eval_every_steps=bad)
