"""Run folders, grids, checkpoints, resume, config checks and the CLI's argument checks:
behaviour that mutation testing found unguarded (each test fails under a small plausible bug
that the other tests let through). Fast (a few tiny synthetic runs), no real dataset,
everything under tmp_path.
"""
import json
import os
import signal

import numpy as np
import pytest

from tinyproj.errors import UserError
from tinyproj.runs import files
from tinyproj.runs import grid as G
from tinyproj.runs.config import TrainConfig
from tinyproj.runs.folder import resume_config
from tinyproj.runs.training import TrainingInterrupted, train

from _helpers import QUIET, tiny_mlp_config  # noqa: E402

tiny = tiny_mlp_config


def key(row):
    return (row["layer"], float(row["level"]))


def row_of(point, **extra):
    return {"layer": point[0], "level": point[1], "value": point[1] * 10, **extra}


def timeless(rows):
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]


# ---------------------------------------------------------------------------------------------
# grid.py
# ---------------------------------------------------------------------------------------------
def test_shards_numbered_ten_and_above_are_merged(tmp_path):
    """A SLURM array of 12 tasks: shard files -10-of-12 and -11-of-12 belong to the grid."""
    path = tmp_path / "g.jsonl"
    full = [("a", float(i)) for i in range(24)]
    for i in range(12):
        g = G.Grid(path, key, shard=(i, 12))
        for p in g.mine(full):
            g.append(row_of(p), "net")
    names = [p.name for p in G.grid_files(path)]
    assert names == [f"g.shard-{i}-of-12.jsonl" for i in range(12)]
    assert sorted(key(r) for r in G.Grid(path, key).rows()) == sorted(full)
    assert sorted(G.Grid(path, key).finished("net")) == sorted(full)


def test_other_settings_are_refused_in_any_row_of_a_file_not_only_the_first(tmp_path):
    """Two writers with different --draws appending to one file (parallel --layer
    processes): the second row's settings differ from the first's and must be refused."""
    path = tmp_path / "g.jsonl"
    G.Grid(path, key).append(row_of(("a", 0.0), seed=0, draws=3), "net")
    G.Grid(path, key).append(row_of(("a", 1.0), seed=0, draws=2), "net")
    with pytest.raises(UserError, match=r"draws=2 \(now 3\)"):
        G.Grid(path, key, settings={"seed": 0, "draws": 3}).finished("net")
    with pytest.raises(UserError, match="cannot be merged"):
        G.Grid(path, key, settings_keys=("seed", "draws")).finished("net")


def test_two_restarts_in_the_same_second_keep_both_sets_of_files(tmp_path, monkeypatch):
    path = tmp_path / "g.jsonl"
    monkeypatch.setattr(G.time, "strftime", lambda *a: "20250101T000000Z")
    G.Grid(path, key).append(row_of(("a", 0.0)), "first")
    one = G.Grid(path, key).move_aside()
    G.Grid(path, key).append(row_of(("a", 0.0)), "second")
    two = G.Grid(path, key).move_aside()
    assert one != two
    assert [r["network"] for r in G.read_rows(one / "g.jsonl")] == ["first"]
    assert [r["network"] for r in G.read_rows(two / "g.jsonl")] == ["second"]


# ---------------------------------------------------------------------------------------------
# files.py, fingerprint.py
# ---------------------------------------------------------------------------------------------
def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    files.atomic_write_text(target, "old")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        files.atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_an_interrupted_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch):
    """The target is only ever replaced whole: a write that dies before the rename leaves
    the previous checkpoint byte for byte."""
    target = tmp_path / "checkpoint.npz"
    files.atomic_write_bytes(target, b"A" * 1000)

    class Killed(BaseException):
        pass

    def killed(*a, **k):
        raise Killed
    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(Killed):
        files.atomic_write_bytes(target, b"B" * 2000)
    monkeypatch.undo()
    assert target.read_bytes() == b"A" * 1000


def test_checkpoint_round_trip_keeps_optimizer_state_and_step_count(tmp_path):
    model_state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    optim = {"hyper": {"betas": [0.9, 0.999], "eps": 1e-8}, "t": 7,
             "state": [{"m": np.full((2, 3), 1.5, np.float32), "step": 7},
                       {"m": np.full(4, -2.0, np.float32), "step": 6}]}
    path = files.save_checkpoint(tmp_path / "checkpoint.npz", model_state, optim,
                                 {"pos": {"step": 7}})
    m, o, meta = files.load_checkpoint(path)
    np.testing.assert_array_equal(m["w"], model_state["w"])
    assert o["t"] == 7 and o["hyper"] == optim["hyper"] and meta == {"pos": {"step": 7}}
    for got, want in zip(o["state"], optim["state"]):
        assert got["step"] == want["step"]
        np.testing.assert_array_equal(got["m"], want["m"])


def test_a_checkpoint_whose_meta_is_not_an_object_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, meta=np.array(json.dumps([1, 2, 3])))
    with pytest.raises(UserError, match="corrupt"):
        files.load_checkpoint_meta(path)


def test_fingerprint_tells_dtypes_apart_even_with_the_same_bytes():
    from tinyproj.runs.fingerprint import network_fingerprint
    w = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    assert network_fingerprint({"w": w}) != network_fingerprint({"w": w.view(np.int32)})


def test_checkpoint_fingerprint_follows_a_rewritten_checkpoint(tmp_path):
    from tinyproj.runs.fingerprint import checkpoint_fingerprint, network_fingerprint
    path = tmp_path / "checkpoint.npz"
    optim = {"hyper": {}, "t": 0, "state": []}
    a = {"w": np.zeros(4, np.float32)}
    b = {"w": np.ones(4, np.float32)}
    files.save_checkpoint(path, a, optim, {})
    assert checkpoint_fingerprint(path) == network_fingerprint(a)
    files.save_checkpoint(path, b, optim, {})              # a retraining in the same process
    assert checkpoint_fingerprint(path) == network_fingerprint(b)


# ---------------------------------------------------------------------------------------------
# folder.py, config.py, validation.py
# ---------------------------------------------------------------------------------------------
def test_a_resume_may_end_exactly_where_the_run_already_is(tmp_path):
    train(tiny(tmp_path, epochs=1), **QUIET)                      # 3 steps
    assert resume_config(tmp_path / "run", {"iterations": 3}).iterations == 3
    with pytest.raises(UserError, match="--iterations 2"):
        resume_config(tmp_path / "run", {"iterations": 2})


def test_a_resume_may_point_at_moved_data_and_the_next_plain_resume_remembers_it(tmp_path):
    train(tiny(tmp_path, epochs=1), **QUIET)
    moved = tmp_path / "moved-data"
    moved.mkdir()
    cfg = resume_config(tmp_path / "run", {"data_dir": str(moved), "epochs": 2})
    assert cfg.data_dir == str(moved)
    train(cfg, resume=True, **QUIET)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["data_dir"], saved["epochs"]) == (str(moved), 2)


def test_an_output_folder_under_a_file_is_refused_before_any_work(tmp_path):
    from tinyproj.runs.folder import check_output_folder
    (tmp_path / "notes").write_text("x")
    with pytest.raises(UserError, match="notes is a file") as err:
        check_output_folder(tmp_path / "notes" / "rep", "report", "the report",
                            lambda p: False, lambda p: [])
    assert err.value.flag == "--out"
    assert (tmp_path / "notes").read_text() == "x"


@pytest.mark.parametrize("field,value", [("clip", 0.0), ("epochs", 1.5), ("batch_size", 2.0)])
def test_values_that_make_no_run_are_refused(tmp_path, field, value):
    flag = "--" + field.replace("_", "-")
    with pytest.raises(UserError, match=flag):
        tiny(tmp_path, **{field: value})


def test_the_whole_test_set_and_the_whole_training_set_are_accepted(tmp_path):
    # synthetic: 1000 training, 200 test images
    cfg = tiny(tmp_path, test_subset=200, train_subset=1000)
    assert (cfg.test_subset, cfg.train_subset) == (200, 1000)
    with pytest.raises(UserError, match="--test-subset"):
        tiny(tmp_path, test_subset=201)
    with pytest.raises(UserError, match="--train-subset"):
        tiny(tmp_path, train_subset=1001)


def test_list_defaults_are_not_shared_between_configs():
    a, b = TrainConfig(), TrainConfig()
    a.test_projections.append("stoch")
    a.clip_milestones.append(5)
    assert b.test_projections == ["none", "sign", "round"] and b.clip_milestones == []


# ---------------------------------------------------------------------------------------------
# training.py: resume after a kill between the metrics row and the checkpoint
# ---------------------------------------------------------------------------------------------
def test_a_kill_after_the_metrics_row_but_before_the_checkpoint_is_redone_once(tmp_path,
                                                                              monkeypatch):
    from tinyproj.runs import training
    _, straight = train(tiny(tmp_path, "straight", epochs=2), **QUIET)

    class Killed(BaseException):
        """kill -9 between metrics.jsonl's append and checkpoint.npz's write."""

    real, calls = training.save_checkpoint, []

    def dies_at_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(*a, **k)
    monkeypatch.setattr(training, "save_checkpoint", dies_at_the_second)
    with pytest.raises(Killed):
        train(tiny(tmp_path, epochs=2), **QUIET)
    monkeypatch.setattr(training, "save_checkpoint", real)
    on_file = files.read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in on_file] == [1, 2]                 # epoch 2 logged, not saved
    _, rows = train(resume_config(tmp_path / "run"), resume=True, **QUIET)
    assert [r["epoch"] for r in rows] == [1, 2]
    on_file = files.read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert timeless(on_file) == timeless(rows) == timeless(straight)


def test_a_row_left_by_a_killed_redo_of_a_pending_evaluation_is_not_kept(tmp_path,
                                                                          monkeypatch):
    """A stop cut the evaluation of step 3 short (pending); the resume redid it, wrote its row
    and was killed before its checkpoint: the next resume must not keep that row as well."""
    from tinyproj.runs import training
    from tinyproj.runs.interrupts import EvaluationStopped
    _, straight = train(tiny(tmp_path, "straight", epochs=2), **QUIET)
    real = training.evaluation_row

    def cut_short(*a, **k):
        raise EvaluationStopped
    monkeypatch.setattr(training, "evaluation_row", cut_short)
    with pytest.raises(TrainingInterrupted):
        train(tiny(tmp_path, epochs=2), **QUIET)
    monkeypatch.setattr(training, "evaluation_row", real)
    run = tmp_path / "run"
    pos = files.load_checkpoint_meta(run / "checkpoint.npz")["pos"]
    assert (pos["step"], pos["pending_eval"]) == (3, "epoch")
    files.append_jsonl(run / "metrics.jsonl", dict(straight[0]))     # the redo's row
    train(resume_config(run), resume=True, **QUIET)
    assert timeless(files.read_jsonl(run / "metrics.jsonl")) == timeless(straight)


# ---------------------------------------------------------------------------------------------
# tally.py
# ---------------------------------------------------------------------------------------------
def test_tally_weights_losses_by_batch_size_and_counts_each_step_once():
    from tinyproj.runs.tally import Tally
    t = Tally()
    t.add(0, np.float32(1.0), np.int64(2), 20)
    t.add(1, np.float32(4.0), np.int64(3), 10)                   # the short last batch
    pos = dict(loss_sum=0.0, wrong=0, seen=0)
    assert t.read(pos, 0.1, False) == 4.0
    assert pos == dict(loss_sum=60.0, wrong=5, seen=30)
    assert len(t) == 0
    t.add(2, np.float32(2.0), np.int64(1), 20)
    assert t.read(pos, 0.1, False) == 2.0
    assert pos == dict(loss_sum=100.0, wrong=6, seen=50)
    assert t.read(pos, 0.1, False) is None
    # on a device the loop meets a NaN only here (NumPy's step raises itself)
    t.add(3, np.float32(1.0), np.int64(0), 20)
    t.add(4, np.float32("nan"), np.int64(0), 20)
    with pytest.raises(FloatingPointError, match="step 4"):
        t.read(pos, 0.1, True)


def test_train_loss_is_the_mean_over_images_with_a_short_last_batch(tmp_path, monkeypatch):
    """50 images in batches of 20, 20, 10: train_loss is the per-image mean, so the short
    batch weighs half."""
    from tinyproj import algorithm1
    real, losses = algorithm1.train_step, []

    def spy(*a, **k):
        out = real(*a, **k)
        losses.append(float(out[0]))
        return out
    monkeypatch.setattr(algorithm1, "train_step", spy)
    _, rows = train(tiny(tmp_path, train_subset=50, epochs=2, out=None), **QUIET)
    assert len(losses) == 6 and [r["epoch"] for r in rows] == [1, 2]
    for row, (a, b, c) in zip(rows, (losses[:3], losses[3:])):       # each epoch its own
        assert row["train_loss"] == pytest.approx((20 * a + 20 * b + 10 * c) / 50, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# interrupts.py
# ---------------------------------------------------------------------------------------------
def test_the_stop_flag_puts_the_previous_signal_handlers_back():
    from tinyproj.runs.interrupts import StopFlag
    before = {s: signal.getsignal(s) for s in StopFlag.SIGNALS}
    with StopFlag(lambda *a: None):
        assert all(signal.getsignal(s) != before[s] for s in StopFlag.SIGNALS)
    assert {s: signal.getsignal(s) for s in StopFlag.SIGNALS} == before


def test_training_leaves_ctrl_c_as_it_found_it(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    train(tiny(tmp_path, out=None), **QUIET)
    assert signal.getsignal(signal.SIGINT) == before


# ---------------------------------------------------------------------------------------------
# cli: train and sweep argument checks, before anything is touched
# ---------------------------------------------------------------------------------------------
def test_train_resume_without_out_is_one_clear_line(capsys):
    from tinyproj.cli import main
    assert main(["train", "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err


@pytest.mark.parametrize("argv,flag", [
    (["--seed", "-1"], "--seed"),
    (["--bn-batches", "-1"], "--bn-batches"),
    (["--draws", "0"], "--draws"),
    (["--levels", "0,0.5", "--distortion", "addnorm,power"], "--levels"),
    (["--distortion", "table2", "--shard", "0/2"], "--distortion"),
    (["--restart", "--shard", "0/2"], "--restart"),
    (["--jobs", "2", "--shard", "0/2"], "--jobs"),
    (["--jobs", "0"], "--jobs"),
    (["--bn-images", "all", "--bn-batches", "2"], "--bn-images"),
])
def test_sweep_flags_are_refused_before_the_run_is_read(tmp_path, capsys, argv, flag):
    """No run folder exists: each bad flag must be named before the run is looked at."""
    from tinyproj.cli import main
    full = ["sweep", str(tmp_path / "no-such-run")]
    if "--distortion" not in argv:
        full += ["--distortion", "addnorm"]
    assert main(full + argv) == 2
    err = capsys.readouterr().err
    assert flag in err and "no-such-run" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# a stop after the last step of a run that ends by --iterations (SIGTERM / Ctrl-C arriving during
# that step): the final evaluation is marked pending, so a resume writes it
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("iterations", [4, 6])          # mid-epoch; at an epoch's end (3 a epoch)
def test_a_stop_at_the_last_iteration_resumes_to_the_uninterrupted_rows(tmp_path, iterations):
    _, straight = train(tiny(tmp_path, "straight", epochs=5, iterations=iterations), **QUIET)
    assert straight[-1]["step"] == iterations
    with pytest.raises(TrainingInterrupted, match=f"step {iterations}"):
        train(tiny(tmp_path, epochs=5, iterations=iterations), stop_at_step=iterations, **QUIET)
    said = []
    _, rows = train(resume_config(tmp_path / "run"), resume=True, progress=False,
                    log=said.append)
    assert timeless(rows) == timeless(straight)
    assert any("first the evaluation" in line for line in said)


def test_a_resume_takes_a_setting_in_another_spelling_of_the_runs_own(tmp_path):
    """`--model MLP_TFC` starts a run of mlp_tfc; given again on --resume it is the same
    setting, not a conflict. Another model still is one."""
    from tinyproj.runs.config import validate
    train(validate(tiny(tmp_path, epochs=1)), **QUIET)
    cfg = resume_config(tmp_path / "run", {"model": "MLP-TFC", "dataset": "SYNTHETIC",
                                            "epochs": 2})
    assert (cfg.model, cfg.dataset, cfg.epochs) == ("mlp_tfc", "synthetic", 2)
    with pytest.raises(UserError, match="--model: the run has 'mlp_tfc', you gave 'lenet5'"):
        resume_config(tmp_path / "run", {"model": "lenet5"})


def test_a_resume_takes_a_preset_or_projection_in_another_spelling(tmp_path):
    """The command line lower-cases a preset (`--preset TR-STOCH-C` starts tr-stoch-c) and a
    projection spec means the same in any case or spacing; given again on --resume, such a
    spelling is the run's own setting. Another projection still is a conflict."""
    from tinyproj.runs.config import validate
    train(validate(tiny(tmp_path, epochs=1, projection="STOCH", preset="tr-stoch-c",
                        test_projections=["none", "stochm:gamma=0.5"])), **QUIET)
    cfg = resume_config(tmp_path / "run", {"preset": "TR-STOCH-C", "projection": "stoch",
                                            "test_projections": ["NONE", "StochM: gamma=0.50"],
                                            "epochs": 2})
    assert (cfg.preset, cfg.projection, cfg.epochs) == ("tr-stoch-c", "STOCH", 2)
    assert cfg.test_projections == ["none", "stochm:gamma=0.5"]
    with pytest.raises(UserError, match="--projection: the run has 'STOCH', you gave 'sign'"):
        resume_config(tmp_path / "run", {"projection": "sign"})
    with pytest.raises(UserError, match="--test-projections"):
        resume_config(tmp_path / "run", {"test_projections": ["none"]})


@pytest.mark.parametrize("iterations", [4, 6])
def test_a_run_an_earlier_tinyproj_stopped_in_its_last_step_gets_its_final_row(tmp_path,
                                                                              iterations):
    """Such a checkpoint has no pending evaluation (and, at an epoch's end, the epoch not yet
    counted): the resume evaluates it, to the uninterrupted run's rows."""
    _, straight = train(tiny(tmp_path, "straight", epochs=5, iterations=iterations), **QUIET)
    with pytest.raises(TrainingInterrupted):
        train(tiny(tmp_path, epochs=5, iterations=iterations), stop_at_step=iterations, **QUIET)
    path = tmp_path / "run" / "checkpoint.npz"
    state, optim_state, meta = files.load_checkpoint(path)
    pos = meta["pos"]
    assert pos["pending_eval"] == "epoch"
    pos["pending_eval"] = None                     # what the earlier version saved
    if pos["order"] is None:                       # the step ended an epoch: not yet counted
        pos.update(epoch=pos["epoch"] - 1, batch=3, order=list(range(60)))
    files.save_checkpoint(path, state, optim_state, meta)
    _, rows = train(resume_config(tmp_path / "run"), resume=True, **QUIET)
    assert timeless(rows) == timeless(straight)


def test_a_stop_during_the_last_step_reads_no_evaluation_data(tmp_path, monkeypatch):
    """The final evaluation after such a stop marks itself pending before it reads a batch
    (ImageNet's decoding workers may be gone with the same SIGTERM)."""
    from tinyproj.runs import training
    scored = []
    real = training.evaluation_row
    monkeypatch.setattr(training, "evaluation_row",
                        lambda *a, **k: scored.append(1) or real(*a, **k))
    with pytest.raises(TrainingInterrupted, match="before the evaluation"):
        train(tiny(tmp_path, epochs=5, iterations=4), stop_at_step=4, **QUIET)
    assert scored == [1]                           # step 3's evaluation (epoch end) only


@pytest.mark.numpy_only("a folder source's host-side batches; on a device the training set is "
                        "resident and gathered there, with no decoding workers")
def test_a_sigterm_that_also_ended_the_decoding_workers_still_saves_the_checkpoint(tmp_path):
    """A cluster's time limit sends SIGTERM to every process: ImageNet's decoding workers end
    with it, and the batch being fetched fails. The run stops before that step, with its
    checkpoint, and the resume reaches the uninterrupted run's rows."""
    from concurrent.futures.process import BrokenProcessPool
    from tinyproj.data.sources import ArraySource
    from tinyproj.data.synthetic import synthetic_classification
    x, y = synthetic_classification(100, shape=(1, 28, 28), seed=3, dtype=np.float32)

    class Source(ArraySource):
        calls = 0
        broken_at = None

        def batch(self, indices, **kw):
            Source.calls += 1
            if Source.calls == Source.broken_at:
                os.kill(os.getpid(), signal.SIGTERM)      # the parent gets it, then the pool
                raise BrokenProcessPool("a worker died")  # tells that its workers are gone
            return super().batch(indices, **kw)

    def data():
        return (Source(x[:60], y[:60]), None, ArraySource(x[60:], y[60:]), (1, 28, 28), 10)
    _, straight = train(tiny(tmp_path, "straight", epochs=2), data=data(), **QUIET)
    Source.calls, Source.broken_at = 0, 5                 # the second step of epoch 2
    with pytest.raises(TrainingInterrupted, match="SIGTERM.*decoding workers"):
        train(tiny(tmp_path, epochs=2), data=data(), **QUIET)
    Source.broken_at = None
    _, rows = train(resume_config(tmp_path / "run"), resume=True, data=data(), **QUIET)
    assert timeless(rows) == timeless(straight)
