"""The command line against a hostile user: bad input and faults (issue 10).

Each case of ``hostile_cases.CASES`` is a small scenario (synthetic data, tiny settings)
and asserts what a careful framework does: a user error exits 2 with an ``error: ...``
line naming the flag, file or value, without a traceback and before any file is made;
no file the command did not create is deleted or overwritten; no stale result is
reported; valid commands (resume from ``--out`` alone, lenet5 on 32x32 images, SIGTERM
then resume) work. See ``hostile_cases.py`` for the outcome classes.

Outcome table for any tree (e.g. the commit before the redesign)::

    PYTHONPATH=/tmp/before .venv/bin/python tests/test_cli_hostile.py --classify
    .venv/bin/python tests/test_cli_hostile.py --classify --details [--only ID,ID]
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_cases as hc  # noqa: E402
from hostile_cases import (LONG_TRAIN, MLP, OK, PARTIAL_ARGS, SWEEP_TINY, TINY,  # noqa: E402
                           WALK_TINY, Diff, Outcome, Result, Skip, case, diff, judge_error,
                           judge_ok, limit_file_size, metrics_rows, simple_error, start_training,
                           sub_argv, sub_env, table_lines, tinyproj_root, wait_for)


# ---- demo --------------------------------------------------------------------------------
DEMO_TINY = ["--width", "0.0625", "--train-subset", "64", "--test-subset", "32", "--epochs", "1",
             "--no-progress"]


@case("demo-presets-abs-dir", "lead", "demo --presets /abs/folder (a folder with files)")
def _(ctx):
    victim = ctx.root / "victim"
    ctx.write("victim/a.txt"), ctx.write("victim/sub/b.txt")
    return ctx.error_case(["demo", "--presets", victim, "--out", "demo"] + DEMO_TINY,
                          [("preset",)])


@case("demo-presets-dotdot", "lead",
      "demo --presets .. --out work/demo (an earlier demo in work/demo; work/ holds files)")
def _(ctx):
    ctx.write("work/keep.txt"), ctx.write("work/notes/n.md")
    ctx.write("work/demo/tr-none-nc/config.json", "{}\n")       # an earlier demo
    return ctx.error_case(["demo", "--presets", "..", "--out", "work/demo"] + DEMO_TINY,
                          [("preset",)])


@case("demo-out-holds-run", "lead",
      "demo --out X where X/tr-none-nc is a train run (demo then fails: no CIFAR-10 in --data-dir)")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X" / "tr-none-nc")
    (ctx.root / "nodata").mkdir()
    return ctx.error_case(["demo", "--out", "X", "--data-dir", "nodata"] + DEMO_TINY,
                          [("tr-none-nc", "nodata", "cifar")], ignore_new=["nodata"])


@case("demo-out-is-file", "lead", "demo --out FILE")
def _(ctx):
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["demo", "--out", "afile.txt"] + DEMO_TINY, [("afile.txt",)])


simple_error("demo-unknown-preset", "lead",
              ["demo", "--presets", "tr-bogus", "--out", "demo"] + DEMO_TINY, [("tr-bogus",)])


@case("demo-width-0", "lead", "demo --width 0 (checked before the data is looked for)")
def _(ctx):
    (ctx.root / "nodata").mkdir()
    argv = ["demo", "--out", "demo", "--data-dir", "nodata", "--width", "0", "--train-subset",
            "64", "--test-subset", "32", "--epochs", "1", "--no-progress"]
    return ctx.error_case(argv, [("width",)])


# ---- train: values checked before anything is touched ------------------------------------
def _train_error(id, extra, names, base=None, what=None):
    base = MLP + TINY if base is None else base
    simple_error(id, "lead", ["train"] + base + extra + ["--out", "run"], names,
                  what=what or "train " + " ".join(extra))


_train_error("train-unknown-preset", ["--preset", "tr-bogus"], [("tr-bogus",)])
_train_error("train-unknown-model", ["--model", "resnet"], [("resnet",)])
_train_error("train-batch-size-0", ["--batch-size", "0"], [("batch-size", "batch_size")])
_train_error("train-batch-size-neg", ["--batch-size", "-5"], [("batch-size", "batch_size")])
_train_error("train-train-subset-neg", ["--train-subset", "-100"],
             [("train-subset", "train_subset")])
_train_error("train-test-subset-neg", ["--test-subset", "-5"], [("test-subset", "test_subset")])
_train_error("train-epochs-0", ["--epochs", "0"], [("epochs",)])
_train_error("train-epochs-abc", ["--epochs", "abc"], [("epochs",)])
_train_error("train-iterations-0", ["--iterations", "0"], [("iterations",)])
_train_error("train-bn-batches-neg", ["--bn-batches", "-3"], [("bn-batches", "bn_batches")])
_train_error("train-eval-every-0", ["--eval-every", "0"], [("eval-every", "eval_every")])
_train_error("train-eval-batch-size-0", ["--eval-batch-size", "0"],
             [("eval-batch-size", "eval_batch_size")])
_train_error("train-width-0", ["--width", "0"], [("width",)],
             base=["--model", "bc_cifar10"] + TINY)
_train_error("train-test-projections-typo", ["--test-projections", "none,sgn"], [("sgn",)])
_train_error("train-projection-typo", ["--projection", "sgin"], [("sgin",)])
_train_error("train-lr-nan", ["--lr", "nan"], [("lr",)])
_train_error("train-lr-negative", ["--lr", "-0.1"], [("lr",)])
_train_error("train-clip-negative", ["--clip", "-0.5"], [("clip",)])
_train_error("train-seed-negative", ["--seed", "-1"], [("seed",)])
_train_error("train-dataset-typo", ["--dataset", "cifar100"], [("cifar100",)])
_train_error("train-optimizer-typo", ["--optimizer", "adamm"], [("adamm",)])
_train_error("train-loss-typo", ["--loss", "hinge"], [("hinge",)])
_train_error("train-lr-schedule-typo", ["--lr-schedule", "cosnie"], [("cosnie",)])
_train_error("train-preprocess-typo", ["--preprocess", "zca"], [("zca",)])
_train_error("train-val-size-too-big", ["--val-size", "5000"], [("val-size", "val_size")],
             base=MLP + [a for a in TINY if a not in ("--val-size", "0")])


@case("train-width-mlp", "lead", "train --model mlp_tfc --width 0.5 (honoured or refused)",
      accept=("clear error", "correct"))
def _(ctx):
    def check():
        import numpy as np
        def count(p):
            with np.load(p) as f:
                return sum(f[k].size for k in f.files if k.startswith("model/"))
        n_half = count(ctx.root / "run" / "checkpoint.npz")
        n_one = count(ctx.fx.run("mlp") / "checkpoint.npz")
        return (n_half < n_one, f"{n_half} weights at width 0.5 vs {n_one} at width 1"
                + ("" if n_half < n_one else ": --width ignored"))
    return ctx.error_or_ok(["train", *MLP, *TINY, "--width", "0.5", "--out", "run"],
                           [("width",)], check)


@case("train-bn-last-batch-of-1", "lead",
      "train mlp_tfc --bn, 65 images, batch 32 (last minibatch 1 image): refused or handled",
      accept=("clear error", "correct"))
def _(ctx):
    def check():
        import math
        rows = metrics_rows(ctx.root / "run")
        if not rows:
            return False, "exit 0 but no metrics row"
        vals = list(rows[-1]["test_error"].values()) + [rows[-1]["train_loss"]]
        ok = all(math.isfinite(v) for v in vals)
        return ok, f"last row {rows[-1]['test_error']} loss {rows[-1]['train_loss']}"
    return ctx.error_or_ok(["train", *MLP, "--bn", *[a if a != "64" else "65" for a in TINY],
                            "--batch-size", "32", "--out", "run"],
                           [("batch", "train-subset")], check)


@case("train-lenet5-32x32", "lead", "train --model lenet5 on a 32x32 dataset (synthetic)",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("train", "--model", "lenet5", *TINY, "--out", "run")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (bool(metrics_rows(ctx.root / "run")), "metrics row written"))


# ---- train: folders ------------------------------------------------------------------
# Tiny training on the real MNIST files (after "--dataset mnist" and any "--data-dir")
MNIST_TINY = ["--train-subset", "64", "--test-subset", "32", "--epochs", "1", "--val-size", "0",
              "--no-progress"]


@case("train-out-is-file", "lead", "train --out FILE")
def _(ctx):
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "afile.txt"], [("afile.txt",)])


@case("train-out-foreign-folder", "lead",
      "train --out X where X holds other files (not a run): refuse, keep them")
def _(ctx):
    ctx.write("X/notes.txt"), ctx.write("X/data.csv", "a,b\n1,2\n")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X"], [("X",)])


@case("train-out-config-no-checkpoint", "lead",
      "train --out X where X holds config.json + metrics.jsonl but no checkpoint",
      accept=("clear error", "correct"))
def _(ctx):
    ctx.write("X/config.json", json.dumps({"model": "mlp_tfc", "note": "my old run"}) + "\n")
    ctx.write("X/metrics.jsonl", json.dumps({"epoch": 1, "step": 9, "test_error": {"none": 0.5}})
              + "\n")
    return ctx.error_or_ok(["train", *MLP, *TINY, "--out", "X"], [("X",)])


@case("train-bn-images-no-reestimate", "lead",
      "train --bn-images all --no-bn-reestimate (asks for and turns off the re-estimation)")
def _(ctx):
    return ctx.error_case(["train", *MLP, *TINY, "--bn-images", "all", "--no-bn-reestimate",
                           "--out", "X"], [("--bn-images",), ("--no-bn-reestimate",)])


@case("train-out-holds-run", "lead", "train --out X over a finished run, without --resume")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X"], [("X",), ("resume",)])


@case("train-data-dir-is-file", "data", "train --dataset mnist --data-dir FILE")
def _(ctx):
    ctx.write("afile.bin", b"\0" * 100)
    return ctx.error_case(["train", *MLP, "--dataset", "mnist", "--data-dir", "afile.bin",
                           *MNIST_TINY, "--out", "run"],
                          [("afile.bin",)])


@case("train-data-dir-empty", "data", "train --dataset mnist --data-dir EMPTY_FOLDER (offline)")
def _(ctx):
    (ctx.root / "empty").mkdir()
    return ctx.error_case(["train", *MLP, "--dataset", "mnist", "--data-dir", "empty",
                           *MNIST_TINY, "--out", "run"],
                          [("empty",)], ignore_new=["empty"])


@case("train-data-dir-relative", "data",
      "train --data-dir RELATIVE: config.json stores an absolute path", accept=OK)
def _(ctx):
    data = ctx.fx.run("mnist")
    (ctx.root / "rel").symlink_to(data, target_is_directory=True)
    before = ctx.snap()
    res = ctx.cli("train", *MLP, "--dataset", "mnist", "--data-dir", "rel", *MNIST_TINY,
                  "--out", "run")

    def check():
        cfg = json.loads((ctx.root / "run" / "config.json").read_text())
        stored = cfg.get("data_dir")
        ok = stored is not None and Path(stored).is_absolute()
        return ok, f"config.json data_dir = {stored!r}"
    return judge_ok(res, diff(before, ctx.snap()), check)


# ---- resume -----------------------------------------------------------------------------
@case("resume-no-checkpoint", "lead", "train --resume into an empty folder")
def _(ctx):
    (ctx.root / "X").mkdir()
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X", "--resume"],
                          [("checkpoint", "config.json", "not a run")])


@case("resume-missing-folder", "lead", "train --out NOPE --resume (no such folder)")
def _(ctx):
    return ctx.error_case(["train", *MLP, *TINY, "--out", "nope", "--resume"], [("nope",)])


def _bad_checkpoint(id, what, make):
    def fn(ctx):
        run = ctx.fx.copy("partial", ctx.root / "X")
        make(ctx, run / "checkpoint.npz")
        return ctx.error_case(["train", *PARTIAL_ARGS, "--out", "X", "--resume"],
                              [("checkpoint",)])
    case(id, "lead", what)(fn)


_bad_checkpoint("resume-corrupt-checkpoint", "train --resume with checkpoint.npz = random bytes",
                lambda ctx, p: p.write_bytes(os.urandom(4096)))
_bad_checkpoint("resume-truncated-checkpoint", "train --resume with a truncated checkpoint.npz",
                lambda ctx, p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))
_bad_checkpoint("resume-empty-checkpoint", "train --resume with an empty checkpoint.npz",
                lambda ctx, p: p.write_bytes(b""))
_bad_checkpoint("resume-checkpoint-other-arch",
                "train --resume with the checkpoint of a bc_cifar10 run in an mlp_tfc run",
                lambda ctx, p: shutil.copy(ctx.fx.run("bc") / "checkpoint.npz", p))
_bad_checkpoint("resume-checkpoint-other-run",
                "train --resume with the checkpoint of another mlp_tfc run (seed 1) copied in",
                lambda ctx, p: shutil.copy(ctx.fx.run("mlp_seed1") / "checkpoint.npz", p))


@case("resume-corrupt-config", "lead", "train --resume with config.json = invalid JSON")
def _(ctx):
    run = ctx.fx.copy("partial", ctx.root / "X")
    (run / "config.json").write_text("{not json")
    return ctx.error_case(["train", *PARTIAL_ARGS, "--out", "X", "--resume"],
                          [("config.json",)])


@case("resume-only-out", "lead", "train --out X --resume (no other flag: reads config.json)",
      accept=OK)
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    before = ctx.snap()
    res = ctx.cli("train", "--out", "X", "--resume", "--no-progress")

    def check():
        rows = metrics_rows(ctx.root / "X")
        last = rows[-1]["epoch"] if rows else None
        return last == 2, f"last metrics epoch {last} (2 expected)"
    return judge_ok(res, diff(before, ctx.snap(), may_change=["X"]), check)


@case("resume-extend-epochs", "lead",
      "train --out X --resume --epochs 3 on a finished 2-epoch run: one more epoch", accept=OK)
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    first = ctx.cli("train", *PARTIAL_ARGS, "--out", "X", "--resume")
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"finishing the run failed: {first.last_line()!r}")
    before = ctx.snap()
    res = ctx.cli("train", "--out", "X", "--resume", "--epochs", "3", "--no-progress")

    def check():
        epochs = [r["epoch"] for r in metrics_rows(ctx.root / "X")]
        return epochs == [1, 2, 3], f"metrics epochs {epochs} ([1, 2, 3] expected)"
    return judge_ok(res, diff(before, ctx.snap(), may_change=["X"]), check)


@case("resume-finished-run", "lead",
      "train --out X --resume on a finished run: nothing retrained or lost",
      accept=("correct", "clear error"))
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X")

    def check():
        epochs = [r["epoch"] for r in metrics_rows(ctx.root / "X")]
        return epochs == [1], f"metrics epochs {epochs}"
    return ctx.error_or_ok(["train", "--out", "X", "--resume", "--no-progress"],
                           [("X", "finished", "epoch")], check)


@case("resume-conflicting-override", "lead",
      "train --out X --resume --lr 0.1 (saved lr 0.003): refused naming both values")
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    return ctx.error_case(["train", "--out", "X", "--resume", "--lr", "0.1", "--no-progress"],
                          [("lr",), ("0.1",), ("0.003",)])


# ---- files and signals (subprocesses) --------------------------------------------------
@case("files-umask-022", "lead",
      "train, sweep, walk --run, report under umask 022: files 0644, folders 0755", accept=OK)
def _(ctx):
    old = os.umask(0o022)
    try:
        before = ctx.snap()
        for argv in (["train", *MLP, *TINY, "--out", "run"],
                     ["sweep", "run", "--distortion", "addnorm", "--levels", "0,0.5", *SWEEP_TINY],
                     ["walk", "--run", "run", "--out", "w", *WALK_TINY],
                     ["report", "run", "--out", "rep", "--no-analyses"]):
            res = ctx.cli(*argv)
            if res.rc != 0 or res.traceback:
                break
    finally:
        os.umask(old)

    def check():
        bad = []
        for p in sorted(ctx.root.rglob("*")):
            mode = p.stat().st_mode & 0o777
            want = 0o755 if p.is_dir() else 0o644
            if mode != want:
                bad.append(f"{p.relative_to(ctx.root)} {oct(mode)}")
        return not bad, (("modes not from the umask: " + ", ".join(bad[:6])
                          + (f" (+{len(bad) - 6})" if len(bad) > 6 else ""))
                         if bad else "0644/0755")
    return judge_ok(res, diff(before, ctx.snap()), check)


@case("signal-sigterm", "lead",
      "SIGTERM during training: checkpoint saved, exit 130/143, no traceback; resume finishes",
      accept=OK, slow=True)
def _(ctx):
    before = ctx.snap()
    p, _ = start_training(ctx, "run")
    if p.poll() is not None:
        out, err = p.communicate()
        return Outcome("unclear error", f"training ended before the signal (exit {p.returncode})")
    time.sleep(0.15)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Outcome("unclear error", "did not stop within 30 s of SIGTERM")
    res = Result(["train"], p.returncode, out, err, 0.0)
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if p.returncode not in (130, 143):
        return Outcome("unclear error", f"SIGTERM not handled like Ctrl-C: exit {p.returncode}, "
                                        f"stderr {res.last_line()[:100]!r}")
    if not (ctx.root / "run" / "checkpoint.npz").exists():
        return Outcome("data loss", "no checkpoint after SIGTERM")
    res2 = ctx.sub("train", *LONG_TRAIN, "--out", "run", "--resume")
    return judge_ok(res2, diff(before, ctx.snap()), lambda: (
        bool(metrics_rows(ctx.root / "run")) and metrics_rows(ctx.root / "run")[-1]["epoch"] == 6,
        f"after resume: last epoch {(metrics_rows(ctx.root / 'run') or [{}])[-1].get('epoch')}"))


# an evaluation of ~1 s or more (600 single-image forward passes) after two fast steps
EVAL_HEAVY_TRAIN = MLP + ["--dataset", "synthetic", "--val-size", "0", "--train-subset", "40",
                          "--batch-size", "20", "--epochs", "1", "--eval-batch-size", "1",
                          "--test-projections", "none,sign,round", "--bn-images", "all"]


@case("signal-sigterm-in-evaluation", "lead",
      "SIGTERM while the evaluation scores: it stops there (not at its end), exit 130/143, the "
      "checkpoint marks it pending and --resume writes its row", accept=OK, slow=True)
def _(ctx):
    import threading
    before = ctx.snap()
    # progress on (the "evaluating:" line), unbuffered, both pipes drained by threads
    p = subprocess.Popen(sub_argv(["train", *EVAL_HEAVY_TRAIN, "--out", "run"]), cwd=ctx.root,
                         env=sub_env({"PYTHONUNBUFFERED": "1"}), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = [], []
    readers = [threading.Thread(target=lambda f, into: into.extend(iter(f.readline, "")),
                                args=(f, into), daemon=True)
               for f, into in ((p.stdout, out), (p.stderr, err))]
    for r in readers:
        r.start()
    wait_for(p, lambda: any(line.startswith("evaluating:") for line in out), 60, 0.005)
    if p.poll() is not None:
        return Outcome("unclear error", f"training ended before the evaluation (exit "
                                        f"{p.returncode})")
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return Outcome("unclear error", "did not stop within 30 s of SIGTERM")
    for r in readers:
        r.join(5)
    res = Result(["train"], p.returncode, "".join(out), "".join(err), 0.0)
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if p.returncode not in (130, 143):
        return Outcome("unclear error", f"SIGTERM not handled like Ctrl-C: exit {p.returncode}, "
                                        f"stderr {res.last_line()[:100]!r}")
    ckpt = ctx.root / "run" / "checkpoint.npz"
    if not ckpt.exists():
        return Outcome("data loss", "no checkpoint after SIGTERM")
    if metrics_rows(ctx.root / "run"):
        return Outcome("silently wrong", "the evaluation ran to its end after SIGTERM")
    from tinyproj.runs.files import load_checkpoint
    pending = load_checkpoint(ckpt)[2]["pos"].get("pending_eval")
    if pending != "epoch":
        return Outcome("silently wrong", f"the checkpoint's pending evaluation: {pending!r}")
    res2 = ctx.sub("train", "--out", "run", "--resume", "--no-progress")
    return judge_ok(res2, diff(before, ctx.snap()), lambda: (
        [r["step"] for r in metrics_rows(ctx.root / "run")] == [2],
        f"rows after the resume at steps {[r['step'] for r in metrics_rows(ctx.root / 'run')]}"))


@case("signal-kill9-tmp", "lead",
      "kill -9 during training, then --resume: no .tmp files left in the run folder",
      accept=OK, slow=True)
def _(ctx):
    before = ctx.snap()
    p, caught = start_training(ctx, "run", poll_tmp=True)
    p.kill()
    p.communicate()
    run = ctx.root / "run"
    if not (run / "checkpoint.npz").exists():
        return Outcome("unclear error", "no checkpoint to resume from after kill -9")
    if not caught:   # what a kill -9 during a checkpoint write leaves (the writer's own name)
        (run / ".checkpoint.npz.hostile1.tmp").write_bytes(
            (run / "checkpoint.npz").read_bytes())
    res = ctx.sub("train", *LONG_TRAIN, "--out", "run", "--resume")

    def check():
        left = [str(q.relative_to(run)) for q in run.rglob("*") if q.name.endswith(".tmp")]
        how = "a real .tmp caught at the kill" if caught else "a .tmp planted as a kill leaves it"
        return not left, (f"{how}; left after resume: {left}" if left else how + "; cleaned")
    return judge_ok(res, diff(before, ctx.snap()), check)


@case("debug-traceback", "lead",
      "an error without --debug: no traceback; with --debug: the traceback", accept=OK)
def _(ctx):
    argv = ["train", *MLP, *TINY, "--projection", "sgin", "--out", "run"]
    plain = ctx.sub(*argv)
    if plain.traceback:
        return Outcome("traceback", "plain run: " + plain.last_line())
    if plain.rc == 0:
        return Outcome("silently wrong", "plain run exit 0")
    debug = ctx.sub("--debug", *argv)
    if debug.rc == 2 and re.search(r"unrecognized arguments|invalid choice", debug.err):
        debug = ctx.sub(*argv, "--debug")
    if debug.rc == 2 and re.search(r"unrecognized arguments|invalid choice", debug.err):
        return Outcome("unclear error", "no --debug flag (before or after the sub-command)")
    if not debug.traceback:
        return Outcome("unclear error", f"--debug shows no traceback: {debug.last_line()!r}")
    return Outcome("correct", "traceback only with --debug")


@case("console-exit-status", "lead",
      "python -m tinyproj.cli train --batch-size 0: exit 2, one error line, no traceback")
def _(ctx):
    return ctx.error_case(["train", *MLP, *TINY, "--batch-size", "0", "--out", "run"],
                          [("batch-size", "batch_size")], via=ctx.sub)


# ---- sweep ------------------------------------------------------------------------------
def _sweep_error(id, argv, names, what=None, fixture="mlp"):
    def fn(ctx):
        if fixture:
            ctx.fx.copy(fixture, ctx.root / "run")
        return ctx.error_case(["sweep"] + [a.format(root=ctx.root) for a in argv], names)
    case(id, "grid", what or "sweep " + " ".join(argv))(fn)


# An AddNorm sweep long enough (40 levels, one draw each) to be interrupted while it runs
N_LONG_SWEEP = 40
LONG_SWEEP = ["sweep", "run", "--distortion", "addnorm", "--levels",
              ",".join(f"{i / 100:g}" for i in range(N_LONG_SWEEP)), "--draws", "1",
              "--test-subset", "200", "--bn-batches", "0", "--no-progress", "--quiet"]


def _sweep_rows(run):
    """The rows of every sweep file of a run so far (a line cut short by a kill is skipped)."""
    out = []
    for f in Path(run).rglob("*.jsonl"):
        if f.name != "metrics.jsonl":
            for line in f.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def _sigterm_like_ctrl_c(p, timeout):
    """Send SIGTERM to the running ``p``; None when it stopped as on Ctrl-C (exit 130/143, no
    traceback), else the outcome that says how it did not."""
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=timeout)
    first = Result([], p.returncode, out, err, 0.0)
    if first.traceback:
        return Outcome("traceback", first.last_line())
    if p.returncode not in (130, 143):
        return Outcome("unclear error", f"SIGTERM not handled like Ctrl-C: exit {p.returncode}")
    return None


_sweep_error("sweep-missing-run", ["nope", "--distortion", "addnorm"] + SWEEP_TINY, [("nope",)],
             fixture=None)


@case("sweep-run-is-file", "grid", "sweep FILE --distortion addnorm")
def _(ctx):
    ctx.write("afile.txt")
    return ctx.error_case(["sweep", "afile.txt", "--distortion", "addnorm"] + SWEEP_TINY,
                          [("afile.txt",)])


_sweep_error("sweep-unknown-distortion", ["run", "--distortion", "addnoise"] + SWEEP_TINY,
             [("addnoise",)])
_sweep_error("sweep-distortion-typo-lists-table2",
             ["run", "--distortion", "table,power"] + SWEEP_TINY,
             [("--distortion",), ("'table'",), ("table2",)],
             what="sweep --distortion table,power: the message names the flag and table2 too")
_sweep_error("sweep-bad-levels", ["run", "--distortion", "addnorm", "--levels", "0,x"]
             + SWEEP_TINY, [("level",)])
_sweep_error("sweep-levels-out-of-range", ["run", "--distortion", "multunif", "--levels", "2"]
             + SWEEP_TINY, [("gamma", "γ", "level")])
_sweep_error("sweep-bad-shard", ["run", "--distortion", "addnorm", "--shard", "3/2"]
             + SWEEP_TINY, [("shard",)])
_sweep_error("sweep-shard-garbage", ["run", "--distortion", "addnorm", "--shard", "abc"]
             + SWEEP_TINY, [("shard",)])
_sweep_error("sweep-test-subset-0", ["run", "--distortion", "addnorm", "--draws", "1",
                                     "--test-subset", "0", "--no-progress"],
             [("test-subset", "test_subset")])
_sweep_error("sweep-draws-0", ["run", "--distortion", "addnorm", "--draws", "0",
                               "--test-subset", "32", "--bn-batches", "0", "--no-progress"],
             [("draws",)])
_sweep_error("sweep-bn-batches-neg", ["run", "--distortion", "addnorm", "--bn-batches", "-1",
                                      "--draws", "1", "--test-subset", "32", "--no-progress"],
             [("bn-batches", "bn_batches")])
_sweep_error("sweep-jobs-0", ["run", "--distortion", "addnorm", "--jobs", "0"] + SWEEP_TINY,
             [("jobs",)])
_sweep_error("sweep-unknown-layer", ["run", "--distortion", "addnorm", "--layer", "conv9.weight"]
             + SWEEP_TINY, [("conv9",)])


@case("sweep-corrupt-checkpoint", "grid", "sweep RUN whose checkpoint.npz is random bytes")
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    (run / "checkpoint.npz").write_bytes(os.urandom(4096))
    return ctx.error_case(["sweep", "run", "--distortion", "addnorm", "--levels", "0,0.5"]
                          + SWEEP_TINY, [("checkpoint",)])


@case("sweep-stale-after-retrain", "grid",
      "sweep, retrain in the same folder (another network), sweep again: no old rows reused",
      accept=("clear error", "correct"))
def _(ctx):
    args = ["--distortion", "addnorm", "--levels", "0,0.5,1"] + SWEEP_TINY
    run = ctx.fx.copy("mlp", ctx.root / "run")
    first = ctx.cli("sweep", "run", *args)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"first sweep failed: {first.last_line()!r}")
    for name in ("checkpoint.npz", "config.json", "metrics.jsonl"):     # the retrained network
        shutil.copy(ctx.fx.run("mlp_seed1") / name, run / name)
    ctx.fx.copy("mlp_seed1", ctx.root / "fresh")                   # the same, swept afresh
    ref = ctx.cli("sweep", "fresh", *args)
    before = ctx.snap()
    again = ctx.cli("sweep", "run", *args)
    d = diff(before, ctx.snap(), may_change=["run/sweeps"])
    if again.rc != 0:
        return judge_error(again, d, [("sweep", "stale", "network", "checkpoint")])
    return judge_ok(again, d, lambda: (
        table_lines(again.out) == table_lines(ref.out),
        "rows equal a fresh sweep of the new network" if table_lines(again.out)
        == table_lines(ref.out) else f"stale rows: {table_lines(again.out)[:2]} vs fresh "
                                      f"{table_lines(ref.out)[:2]}"))


N_PARALLEL = 60


@case("sweep-parallel-writers", "grid",
      "two `sweep --layer` processes at once on one run: every row kept",
      accept=("correct", "clear error"), slow=True)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    levels = ",".join(f"{i / 100:g}" for i in range(N_PARALLEL))
    procs = []
    for layer in ("fc1.weight", "fc2.weight"):
        argv = ["sweep", "run", "--distortion", "addnorm", "--layer", layer, "--levels", levels,
                "--draws", "1", "--test-subset", "4", "--bn-batches", "0", "--no-progress",
                "--quiet"]
        procs.append(ctx.popen(*argv))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append(Result([], p.returncode, out, err, 0.0))
    for r in results:
        if r.traceback:
            return Outcome("traceback", r.last_line())
    rows = []
    for f in run.rglob("*.jsonl"):
        if f.name == "metrics.jsonl":
            continue
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    have = {}
    for r in rows:
        have.setdefault(r.get("layer"), set()).add(r.get("level"))
    counts = {layer: len(have.get(layer, ())) for layer in ("fc1.weight", "fc2.weight")}
    rcs = [r.rc for r in results]
    if rcs == [0, 0]:
        if all(v == N_PARALLEL for v in counts.values()):
            return Outcome("correct", f"rows per layer {counts}")
        return Outcome("data loss", f"both exit 0, rows per layer {counts} ({N_PARALLEL} each expected)")
    refused = [r for r in results if r.rc != 0]
    if len(refused) == 1 and refused[0].rc == 2 and "error" in refused[0].err.lower() \
            and N_PARALLEL in counts.values():
        return Outcome("clear error", "second writer refused: " + refused[0].last_line())
    return Outcome("unclear error", f"exits {rcs}, rows {counts}: "
                                    f"{[r.last_line() for r in refused]}")


# ---- walk -------------------------------------------------------------------------------
WALK_TRAIN = ["--dataset", "synthetic", "--train-subset", "64", "--epochs", "1"]
simple_error("walk-unknown-model", "grid",
              ["walk", "--model", "resnet", "--out", "w"] + WALK_TRAIN + WALK_TINY, [("resnet",)])
simple_error("walk-sigmas-negative", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sigmas", "0,-1", "--test-subset",
               "32", "--no-progress"] + WALK_TRAIN, [("sigma",)])
simple_error("walk-sigmas-garbage", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sigmas", "abc", "--test-subset",
               "32", "--no-progress"] + WALK_TRAIN, [("sigma",)])
simple_error("walk-noise-typo", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--noise", "addtive"] + WALK_TRAIN
              + WALK_TINY, [("addtive",)])
simple_error("walk-bad-shard", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--shard", "2/2"] + WALK_TRAIN
              + WALK_TINY, [("shard",)])
simple_error("walk-site-typo", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sites", "relu99"] + WALK_TRAIN
              + WALK_TINY, [("relu99",)],
              what="walk --sites relu99 (checked before the model is trained)")
simple_error("walk-missing-run", "grid", ["walk", "--run", "nope", "--out", "w"] + WALK_TINY,
              [("nope",)])
simple_error("walk-data-dir-missing", "grid",
              ["walk", "--out", "w", "--data-dir", "nodata", "--sigmas", "0.1", "--epochs", "1",
               "--train-subset", "64", "--test-subset", "32", "--no-progress"],
              [("--data-dir", "nodata")],
              what="walk --data-dir MISSING (refused before the folder is made or a download)")


@case("walk-run-data-dir-missing", "grid", "walk --run A --data-dir MISSING (A: an MNIST run)")
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "A")
    cfg = json.loads((run / "config.json").read_text())       # a run of real data (synthetic
    cfg["dataset"] = "mnist"                                   # data needs no folder at all)
    (run / "config.json").write_text(json.dumps(cfg))
    return ctx.error_case(["walk", "--run", "A", "--out", "w", "--data-dir", "nodata",
                           *WALK_TINY], [("--data-dir", "nodata")])


@case("walk-run-with-training-flags", "grid",
      "walk --run A --epochs 3 --setup legacy: flags that would change nothing are refused")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    return ctx.error_case(["walk", "--run", "A", "--out", "w", "--epochs", "3", "--setup",
                           "legacy", *WALK_TINY], [("--run",), ("--epochs",), ("--setup",)])


@case("walk-quiet", "grid", "walk --run A --quiet (no --no-progress): prints nothing at all",
      accept=OK)
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    before = ctx.snap()
    res = ctx.cli("walk", "--run", "A", "--out", "w", "--sigmas", "0.1,1", "--test-subset",
                  "32", "--quiet")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (res.out == "" and res.err == "",
                             f"stdout {len(res.out)} chars, stderr {len(res.err)} chars"))


@case("report-same-run-twice", "reporting", "report A ./A: one run given twice")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    return ctx.error_case(["report", "A", "./A", "--out", "rp", "--no-analyses"],
                          [("RUN_DIR",), ("again",)])


@case("report-data-dir-missing", "reporting", "report A --data-dir MISSING (analyses on)")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    return ctx.error_case(["report", "A", "--out", "rp", "--data-dir", "nodata"],
                          [("--data-dir", "nodata")])


@case("walk-lenet5-32x32", "grid", "walk --model lenet5 --dataset synthetic (32x32): trains, walks",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("walk", "--model", "lenet5", "--out", "w", *WALK_TRAIN, *WALK_TINY)
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: ((ctx.root / "w" / "midpoints.csv").exists(), "midpoints.csv"))


@case("walk-stale-other-run", "grid",
      "walk --run A --out X, then walk --run B --out X: B's midpoints only (or refused)",
      accept=("clear error", "correct"))
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    ctx.fx.copy("mlp_bn", ctx.root / "B")
    first = ctx.cli("walk", "--run", "A", "--out", "X", *WALK_TINY)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"first walk failed: {first.last_line()!r}")
    ref = ctx.cli("walk", "--run", "B", "--out", "Y", *WALK_TINY)
    before = ctx.snap()
    again = ctx.cli("walk", "--run", "B", "--out", "X", *WALK_TINY)
    d = diff(before, ctx.snap(), may_change=["X"])
    if again.rc != 0:
        d = diff(before, ctx.snap())
        return judge_error(again, d, [("X", "walk")])
    got, want = table_lines(again.out), table_lines(ref.out)

    def check():
        if got == want:
            return True, "same midpoints as a fresh walk of B"
        extra = [g for g in got if g not in want]
        return False, f"{len(got)} midpoint rows vs {len(want)} for a fresh walk of B; " \
                      f"not B's: {extra[:2]}"
    return judge_ok(again, d, check)


# ---- report ------------------------------------------------------------------------------
def _append_to_metrics(run, line):
    """Append ``line`` (a broken one: what a write cut short leaves) to run/metrics.jsonl."""
    with open(run / "metrics.jsonl", "a") as f:
        f.write(line)


@case("report-out-is-file", "reporting", "report RUN --out FILE")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["report", "run", "--out", "afile.txt", "--no-analyses"],
                          [("afile.txt",)])


simple_error("report-missing-run", "reporting", ["report", "nope", "--out", "rep",
                                                  "--no-analyses"], [("nope",)])


@case("report-run-is-file", "reporting", "report FILE --out rep")
def _(ctx):
    ctx.write("afile.txt")
    return ctx.error_case(["report", "afile.txt", "--out", "rep", "--no-analyses"],
                          [("afile.txt",)])


@case("report-corrupt-metrics", "reporting", "report RUN whose metrics.jsonl has a broken line")
def _(ctx):
    _append_to_metrics(ctx.fx.copy("mlp", ctx.root / "run"), '{"epoch": 2, "step": \n')
    return ctx.error_case(["report", "run", "--out", "rep", "--no-analyses"],
                          [("metrics.jsonl",)])


@case("report-bad-betas", "reporting", "report RUN --betas abc")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    return ctx.error_case(["report", "run", "--out", "rep", "--betas", "abc"], [("betas",)])


# ---- more faults --------------------------------------------------------------------------
@case("fault-disk-full", "lead",
      "resume with writes failing (file size limit 1 MB < checkpoint): error, old checkpoint "
      "intact, no .tmp", slow=True)
def _(ctx):
    run = ctx.fx.copy("partial", ctx.root / "X")
    before = ctx.snap()
    start = time.perf_counter()
    p = subprocess.run(sub_argv(["train", *PARTIAL_ARGS, "--out", "X", "--resume"]),
                       cwd=ctx.root, env=sub_env(), capture_output=True, text=True, timeout=60,
                       preexec_fn=limit_file_size(1 << 20))
    res = Result([], p.returncode, p.stdout, p.stderr, time.perf_counter() - start)
    d = diff(before, ctx.snap(), may_change=["X/metrics.jsonl", "X/config.json", "X/.lock"])
    left = [q.name for q in run.rglob("*.tmp")]
    if d.lost:
        return Outcome("data loss", d.short(d.lost))
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if res.rc == 0:
        return Outcome("silently wrong", "exit 0 although the checkpoint could not be written")
    if "error" not in res.err.lower() or left:
        return Outcome("unclear error", f"exit {res.rc}, .tmp left: {left}, {res.last_line()!r}")
    return Outcome("clear error", res.last_line())


@case("resume-while-running", "lead",
      "train --out X --resume while another process is training in X: refused")
def _(ctx):
    p, _ = start_training(ctx, "X")
    try:
        if p.poll() is not None:
            return Outcome("unclear error", f"the first training ended early (exit {p.returncode})")
        res = ctx.cli("train", *LONG_TRAIN, "--out", "X", "--resume")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    return judge_error(res, Diff([], [], []),
                       [("X", "another", "running", "lock", "in use", "busy")])


@case("signal-sigterm-sweep", "grid",
      "SIGTERM during a sweep: exit 130/143, no traceback; the same command again completes it",
      accept=OK, slow=True)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    p = ctx.popen(*LONG_SWEEP)
    wait_for(p, lambda: len(_sweep_rows(run)) >= 3, 40, 0.02)
    if p.poll() is not None:
        return Outcome("unclear error", f"the sweep ended before the signal (exit {p.returncode})")
    stopped = _sigterm_like_ctrl_c(p, timeout=30)
    if stopped is not None:
        return stopped
    before = ctx.snap()
    again = ctx.sub(*LONG_SWEEP)
    levels = {r.get("level") for r in _sweep_rows(run)}
    n = N_LONG_SWEEP
    return judge_ok(again, diff(before, ctx.snap(), may_change=["run"]), lambda: (
        len(levels) == n, f"{len(levels)} of {n} levels after the rerun"))


@case("walk-noisy-training", "grid",
      "walk --train-noise 0.5 --sites all on synthetic data (noisy training, then the walk)",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("walk", "--model", "mlp_tfc", "--out", "w", "--train-noise", "0.5", "--sites",
                  "all", *WALK_TRAIN, *WALK_TINY)
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: ((ctx.root / "w" / "midpoints.csv").exists(), "midpoints.csv"))


@case("data-default-location", "data",
      "train --dataset mnist without --data-dir or $TINYPROJ_DATA: finds ../shared/datasets "
      "beside the project", accept=OK)
def _(ctx):
    shared = Path(tinyproj_root()).parent / "shared" / "datasets" / "mnist"
    if not shared.is_dir():
        raise Skip(f"no {shared} beside this project")
    before = ctx.snap()
    res = ctx.cli("train", *MLP, "--dataset", "mnist", *MNIST_TINY, "--out", "run")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (bool(metrics_rows(ctx.root / "run")), "trained on the shared MNIST"))


# ---- misc ---------------------------------------------------------------------------------
simple_error("lessons-unknown", "lead", ["lessons", "99_nope"], [("99_nope",)])


# ---- variations: the same classes, other doors -------------------------------------------
simple_error("demo-alexnet-preset", "lead",
             ["demo", "--presets", "alexnet-stochm3-c", "--out", "demo", "--data-dir", "nodata"]
             + DEMO_TINY, [("alexnet-stochm3-c", "imagenet")],
             what="demo --presets alexnet-stochm3-c (an ImageNet preset; the demo is CIFAR-10)")
simple_error("demo-train-subset-neg", "lead",
             ["demo", "--out", "demo", "--train-subset", "-5", "--test-subset", "32", "--epochs",
              "1", "--width", "0.0625", "--no-progress"], [("train-subset", "train_subset")])
_train_error("train-test-projections-empty", ["--test-projections", ","],
             [("test-projections", "test_projections")])
_train_error("train-val-size-neg", ["--val-size", "-1"], [("val-size", "val_size")])
_train_error("train-train-subset-too-big", ["--train-subset", "5000"],
             [("train-subset", "train_subset")],
             what="train --train-subset 5000 on a dataset of 1000 training images")
_train_error("train-test-subset-too-big", ["--test-subset", "5000"],
             [("test-subset", "test_subset")],
             what="train --test-subset 5000 on a dataset of 200 test images")
_train_error("train-width-nan", ["--width", "nan"], [("width",)],
             base=["--model", "bc_cifar10"] + TINY)
simple_error("train-out-empty-string", "lead", ["train", *MLP, *TINY, "--out", ""],
             [("out",)], what="train --out ''")


def _trained_into(ctx, out):
    """The check of a training that was not refused: it wrote a metrics row into ``out``."""
    return lambda: (bool(metrics_rows(ctx.root / out)), "trained")


@case("train-bn-on-bc", "lead", "train --model bc_cifar10 --bn (batch norm is always on there)",
      accept=("clear error", "correct"))
def _(ctx):
    return ctx.error_or_ok(["train", "--model", "bc_cifar10", "--width", "0.0625", "--bn", *TINY,
                            "--out", "run"], [("bn",)], _trained_into(ctx, "run"))


@case("train-alexnet-32x32", "lead", "train --model alexnet_bn --width 0.0625 on 32x32 images: "
      "trains or is refused up front", accept=("clear error", "correct"))
def _(ctx):
    return ctx.error_or_ok(["train", "--model", "alexnet_bn", "--width", "0.0625", *TINY,
                            "--out", "run"], [("alexnet",)], _trained_into(ctx, "run"))


@case("train-out-empty-folder", "lead", "train --out X where X is an empty folder", accept=OK)
def _(ctx):
    (ctx.root / "X").mkdir()
    before = ctx.snap()
    res = ctx.cli("train", *MLP, *TINY, "--out", "X")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (bool(metrics_rows(ctx.root / "X")), "trained into the empty folder"))


def _edit_config(ctx, change):
    run = ctx.fx.copy("partial", ctx.root / "X")
    cfg = json.loads((run / "config.json").read_text())
    change(cfg)
    (run / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return run


@case("resume-config-unknown-key", "lead",
      "train --out X --resume where config.json has a setting this version does not know")
def _(ctx):
    _edit_config(ctx, lambda cfg: cfg.update(warp_factor=9))
    return ctx.error_case(["train", "--out", "X", "--resume", "--no-progress"],
                          [("warp_factor", "warp-factor")])


@case("resume-config-bad-value", "lead",
      "train --out X --resume where config.json was edited to batch_size -5")
def _(ctx):
    _edit_config(ctx, lambda cfg: cfg.update(batch_size=-5))
    return ctx.error_case(["train", "--out", "X", "--resume", "--no-progress"],
                          [("batch_size", "batch-size")])


@case("resume-corrupt-metrics", "lead", "train --out X --resume where metrics.jsonl is corrupt")
def _(ctx):
    _append_to_metrics(ctx.fx.copy("partial", ctx.root / "X"), '{"epoch": 2, "ste\n')
    return ctx.error_case(["train", "--out", "X", "--resume", "--no-progress"],
                          [("metrics.jsonl",)])


@case("resume-walk-folder", "lead", "train --out W --resume where W is a walk's folder")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    first = ctx.cli("walk", "--run", "A", "--out", "W", *WALK_TINY)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"the walk failed: {first.last_line()!r}")
    return ctx.error_case(["train", "--out", "W", "--resume", "--no-progress"], [("W",)])


@case("sweep-restart-keeps-other-files", "grid",
      "sweep --restart addnorm: keeps the sweeps of other distortions and files of the user",
      accept=OK)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    args = ["--levels", "0,0.5"] + SWEEP_TINY
    for dist, levels in (("addnorm", "0,0.5"), ("power", "0,1")):
        res = ctx.cli("sweep", "run", "--distortion", dist, "--levels", levels, *SWEEP_TINY)
        if res.rc != 0 or res.traceback:
            return Outcome("unclear error", f"a first sweep failed: {res.last_line()!r}")
    ctx.write("run/sweeps/notes.txt", "my notes\n")
    ctx.write("run/notes.md", "# my run\n")
    before = ctx.snap()
    res = ctx.cli("sweep", "run", "--distortion", "addnorm", "--restart", *args)
    d = diff(before, ctx.snap())
    addnorm = [p for p in d.lost if "addnorm" in p]      # its own rows may be replaced
    d = Diff([p for p in d.lost if p not in addnorm], d.changed + addnorm, d.created)
    return judge_ok(res, d, lambda: ((run / "sweeps" / "notes.txt").exists(), "kept"))


@case("sweep-data-moved", "grid",
      "sweep RUN whose --data-dir has been moved away since training: clear error (or the "
      "same data found elsewhere)", accept=("clear error", "correct"))
def _(ctx):
    shutil.copytree(ctx.fx.run("mnist"), ctx.root / "data")
    res = ctx.cli("train", *MLP, "--dataset", "mnist", "--data-dir", "data", *MNIST_TINY,
                  "--out", "run")
    if res.rc != 0 or res.traceback:
        return Outcome("unclear error", f"training on MNIST failed: {res.last_line()!r}")
    (ctx.root / "data").rename(ctx.root / "moved")
    before = ctx.snap()
    res = ctx.cli("sweep", "run", "--distortion", "addnorm", "--levels", "0,0.5", *SWEEP_TINY)
    d = diff(before, ctx.snap())
    if res.rc != 0:     # (a download attempt into the old place may recreate it: not counted)
        return judge_error(res, d, [("data-dir", "data_dir")], ignore_new=["data"])
    return judge_ok(res, diff(before, ctx.snap(), may_change=["run"]))


@case("sweep-kill9-rerun", "grid",
      "kill -9 during a sweep, then the same command: completes, every level once, no .tmp",
      accept=OK, slow=True)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    n = N_LONG_SWEEP
    p = ctx.popen(*LONG_SWEEP)
    wait_for(p, lambda: len(_sweep_rows(run)) >= 5, 40, 0.005)
    p.kill()
    p.communicate()
    before = ctx.snap()
    again = ctx.sub(*LONG_SWEEP)

    def check():
        rows = _sweep_rows(run)
        levels = [r.get("level") for r in rows]
        left = [q.name for q in run.rglob("*.tmp")]
        ok = len(set(levels)) == n and not left
        return ok, f"{len(set(levels))} of {n} levels, {len(levels)} rows, .tmp left: {left}"
    return judge_ok(again, diff(before, ctx.snap(), may_change=["run"]), check)


@case("walk-out-is-file", "grid", "walk --run RUN --out FILE")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "A")
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["walk", "--run", "A", "--out", "afile.txt", *WALK_TINY],
                          [("afile.txt",)])


@case("walk-retrain-other-settings", "grid",
      "walk --out W --epochs 1, then walk --out W --epochs 2: refused (W holds another model)")
def _(ctx):
    first = ctx.cli("walk", "--model", "mlp_tfc", "--out", "W", *WALK_TRAIN, *WALK_TINY)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"the first walk failed: {first.last_line()!r}")
    argv = [a if a != "1" else "2" for a in WALK_TRAIN]
    return ctx.error_case(["walk", "--model", "mlp_tfc", "--out", "W", *argv, *WALK_TINY],
                          [("epochs",)])


@case("signal-sigterm-noisy-training", "grid",
      "SIGTERM during walk --train-noise (one network per site): exit 130/143; rerun completes",
      accept=OK, slow=True)
def _(ctx):
    argv = ["walk", "--model", "mlp_tfc", "--out", "w", "--dataset", "synthetic",
            "--train-subset", "1000", "--epochs", "2", "--train-noise", "0.5", *WALK_TINY]
    p = ctx.popen(*argv)
    w = ctx.root / "w"
    wait_for(p, lambda: w.exists() and any(q.suffix == ".npz" for q in w.rglob("*.npz")), 60,
             0.02)
    if p.poll() is not None:
        return Outcome("unclear error", f"the walk ended before the signal (exit {p.returncode})")
    stopped = _sigterm_like_ctrl_c(p, timeout=60)
    if stopped is not None:
        return stopped
    before = ctx.snap()
    again = ctx.sub(*argv, timeout=120)
    return judge_ok(again, diff(before, ctx.snap(), may_change=["w"]),
                    lambda: ((w / "midpoints.csv").exists(), "midpoints.csv after the rerun"))


@case("report-out-foreign-files", "reporting",
      "report RUN --out R where R/report.md is the user's own file: kept (or refused)",
      accept=("clear error", "correct"))
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    ctx.write("R/report.md", "# my own notes, not a tinyproj report\n")
    return ctx.error_or_ok(["report", "run", "--out", "R", "--no-analyses"], [("R",)])


@case("report-rerun-same-out", "reporting", "report RUN --out R twice (its own folder)",
      accept=OK)
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    first = ctx.cli("report", "run", "--out", "R", "--no-analyses")
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"the first report failed: {first.last_line()!r}")
    before = ctx.snap()
    res = ctx.cli("report", "run", "--out", "R", "--no-analyses")
    return judge_ok(res, diff(before, ctx.snap(), may_change=["R"]),
                    lambda: ((ctx.root / "R" / "report.md").exists(), "report.md"))


@case("report-hist-layer-typo", "reporting",
      "report RUN --hist-layer conv9: refused naming --hist-layer and the run's layers, before "
      "the report folder is made")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    return ctx.error_case(["report", "run", "--out", "R", "--hist-layer", "conv9"],
                          [("--hist-layer",), ("conv9",), ("fc1, fc2",)])


@case("data-corrupt-mnist", "data",
      "train --dataset mnist where train-images-idx3-ubyte.gz is truncated: error, file kept")
def _(ctx):
    data = ctx.root / "data"
    shutil.copytree(ctx.fx.run("mnist"), data)
    gz = data / "mnist" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100000])
    return ctx.error_case(["train", *MLP, "--dataset", "mnist", "--data-dir", "data",
                           *MNIST_TINY, "--out", "run"],
                          [("train-images",)], ignore_new=["data"])


@case("data-env-is-file", "data", "TINYPROJ_DATA=FILE train --dataset mnist")
def _(ctx):
    ctx.write("afile.bin", b"\0" * 10)
    old = os.environ.get("TINYPROJ_DATA")
    os.environ["TINYPROJ_DATA"] = str(ctx.root / "afile.bin")
    try:
        return ctx.error_case(["train", *MLP, "--dataset", "mnist", *MNIST_TINY, "--out", "run"],
                              [("afile.bin",)])
    finally:
        if old is None:
            os.environ.pop("TINYPROJ_DATA", None)
        else:
            os.environ["TINYPROJ_DATA"] = old


simple_error("data-preprocess-scale-synthetic", "data",
             ["train", *MLP, *TINY, "--preprocess", "scale", "--out", "run"], [("scale",)])


# ---- prepare-imagenet ----------------------------------------------------------------------
def _tiny_imagenet(root: Path) -> Path:
    """root/imagenet/{train,val}/n01/a.JPEG: the smallest folder prepare-imagenet accepts."""
    from PIL import Image
    for split in ("train", "val"):
        folder = root / "imagenet" / split / "n01"
        folder.mkdir(parents=True)
        Image.new("RGB", (400, 300), (90, 120, 30)).save(folder / "a.JPEG")
    return root


simple_error("prepare-imagenet-no-source", "data",
             ["prepare-imagenet", "nowhere", "--out", "small"], [("SRC", "nowhere")])


@case("prepare-imagenet-out-is-file", "data", "prepare-imagenet SRC --out afile.txt")
def _(ctx):
    _tiny_imagenet(ctx.root / "src")
    (ctx.root / "afile.txt").write_text("mine")
    return ctx.error_case(["prepare-imagenet", "src", "--out", "afile.txt"],
                          [("--out", "afile.txt")])


@case("prepare-imagenet-bad-side", "data", "prepare-imagenet SRC --out small --side 0")
def _(ctx):
    _tiny_imagenet(ctx.root / "src")
    return ctx.error_case(["prepare-imagenet", "src", "--out", "small", "--side", "0"],
                          [("--side",)])


@case("prepare-imagenet-into-source", "data", "prepare-imagenet SRC --out SRC/imagenet/train")
def _(ctx):
    _tiny_imagenet(ctx.root / "src")
    return ctx.error_case(["prepare-imagenet", "src", "--out", "src/imagenet/train"],
                          [("overlap", "source")])


# ---- the flag is named, and checked before anything is written or loaded -------------------
simple_error("walk-unknown-model-names-flag", "grid",
             ["walk", "--model", "nope", "--out", "w"] + WALK_TRAIN + WALK_TINY,
             [("nope",), ("--model",)])
_sweep_error("sweep-bad-levels-names-flag", ["run", "--distortion", "addnorm", "--levels", "a,b"]
             + SWEEP_TINY, [("'a'",), ("--levels",)])
_sweep_error("sweep-unknown-layer-names-flag",
             ["run", "--distortion", "addnorm", "--layer", "bogus"] + SWEEP_TINY,
             [("bogus",), ("--layer",), ("fc1",)])
simple_error("reproduce-data-dir-missing", "lead",
             ["reproduce", "table2", "--out", "X", "--data-dir", "nope", "--width", "0.0625",
              "--epochs", "1", "--distortions", "", "--train-subset", "64", "--test-subset",
              "32"], [("--data-dir",), ("nope",)],
             what="reproduce table2 --out X --data-dir NOPE: refused before X/reproduce.json")


@case("bench-json-foreign-file", "lead", "bench --json FILE where FILE is not a bench result")
def _(ctx):
    ctx.write("notes.json", '{"mine": true}\n')
    return ctx.error_case(["bench", "--json", "notes.json", "--only", "first"],
                          [("--json",), ("notes.json",)])


# ---------------------------------------------------------------------------
try:
    import pytest
except ImportError:        # --classify needs no pytest
    pytest = None


if pytest is not None:
    @pytest.fixture(scope="module")
    def hostile_fixtures(tmp_path_factory):
        scratch = tmp_path_factory.mktemp("hostile")
        env = hc.case_environment(scratch)
        saved = {k: os.environ.get(k) for k in list(env) + ["TINYPROJ_DATA"]}
        os.environ.update(env)
        os.environ.pop("TINYPROJ_DATA", None)
        numba_before = hc.one_numba_thread()
        yield hc.Fixtures(scratch / "_fixtures")
        numba.set_num_threads(numba_before)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    @pytest.mark.parametrize("hostile", hc.CASES, ids=[c.id for c in hc.CASES])
    def test_hostile(hostile, hostile_fixtures, tmp_path):
        outcome = hc.run_case(hostile, tmp_path / "case", hostile_fixtures)
        if outcome.cls == "skipped":
            pytest.skip(outcome.detail)
        assert outcome.cls in hostile.accept, (
            f"{hostile.what}\n  expected: {hostile.expect}\n  got: {outcome.cls}: "
            f"{outcome.detail}")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="classify every hostile case for the tinyproj "
                                                 "on PYTHONPATH")
    parser.add_argument("--classify", action="store_true", required=True)
    parser.add_argument("--only", default=None, help="comma-separated case ids")
    parser.add_argument("--details", action="store_true", help="detail of every case")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    hc.classify(only=set(args.only.split(",")) if args.only else None, details=args.details,
                keep=args.keep)
