"""THE training loop: epochs of Algorithm 1, evaluation, metrics, checkpoints, exact resume.

    from tinyproj.runs.config import make_config
    from tinyproj.runs.training import train
    cfg = make_config("tr-sign-c", width=0.25, epochs=1, train_subset=10000, out="runs/sign")
    model, rows = train(cfg)            # or: tinyproj train --preset tr-sign-c ...

Every training in tinyproj goes through :func:`train`: the paper's runs, Walking Noise's
clean and noisy training (a noisy model is just a wrapped model here: ``wrap=``), the
lessons. One epoch::

    order ← a permutation of the training images, drawn with the run's generator
    for each minibatch b of that order:
        x, y ← source.batch(order[b·B:(b+1)·B], epoch, b)   (augmentation: data/sources.py)
        λ ← lr_schedule(epoch, step)
        loss = algorithm1.train_step(model, x, y, loss, optimizer, projection, c_k(step), rng)
    evaluate (every eval_every epochs, every eval_every_steps steps, at the end) → metrics.jsonl
    save checkpoint.npz (atomically)

Rows of ``metrics.jsonl``: epoch, step, lr, train_loss, train_error, val_error, test_error
{"none": .., "sign": .., "round": ..} (ImageNet: also test_error_top5, the same per
projection) — fractions in [0, 1] (validation and test sets scored
alike: per test projection, batch norm re-estimated on training data; val_error is the
Te-None one), n_test (test images scored), epoch_progress (steps / steps per epoch: 0.25 for an evaluation a quarter into
the first epoch), train_seconds, eval_seconds, and what ``on_eval`` adds. Evaluations inside an
epoch (``eval_every_steps``) take no part in choosing the best-validation epoch.

Evaluation draws its random numbers (the re-estimation's batches) from a generator of its own,
seeded by (seed, step) (``train_eval.evaluation_rng``), never from the run's: how often a run is
evaluated does not change what it trains.

Resuming (``resume=True``) continues from the checkpoint to the same weights as an
uninterrupted run: the checkpoint stores the generator's state and the epoch's shuffled
order, so the remaining minibatches and random draws are the ones the uninterrupted run
would have used. Ctrl-C and SIGTERM (a cluster's time limit) are caught between two
steps: the run saves a checkpoint there and stops; a second one stops at once (the
previous checkpoint is still intact: files are written atomically). During an evaluation
they are caught between two of its batches: the evaluation is dropped, the checkpoint marks
it pending, and ``--resume`` runs it first — the same row, since the weights and the
evaluation's generator are the same (runs/interrupts.py). A NaN loss stops the
run with the last checkpoint intact.

On a device (CuPy, or the counting stand-in) a step makes no device→host sync and no
host→device copy: the training set is copied to the device once (``ResidentSource``), each
epoch's shuffled order once, and every minibatch is gathered there, at a position kept in
device memory (``device_batches.py``), so that the whole step — gather, Algorithm 1, error
count — can be captured once as a CUDA graph and replayed (``graph="auto"``,
``tinyproj train --graph``; tinyproj/graphs.py; a source that draws per epoch, such as
``--augment crop_flip``, runs its steps eagerly). The loss and the
number of training errors of each step stay on the device and are read together every
:data:`READ_EVERY` steps (for the progress bar), and always before an evaluation or a
checkpoint. A non-finite loss is therefore noticed up to READ_EVERY − 1 steps late: the
run stops then, naming the step whose loss was not finite, and **writes no checkpoint** —
the weights in memory have taken the later steps, the last checkpoint on disk is the last
state known to be finite. (On NumPy the loss is read at every step, which costs nothing,
and Algorithm 1 stops before the bad update.)
"""
from __future__ import annotations

import json
import time
from concurrent.futures import BrokenExecutor
from pathlib import Path

from .. import algorithm1, backend, graphs, projections
from ..data.sources import ArraySource, ResidentSource
from ..errors import UserError
from ..functional.losses import check_labels
from .build import (LOSSES, build_data, build_model, build_optimizer, clip_schedule,
                    lr_schedule, resolve_data_dir, training_source)
from .device_batches import DeviceBatches
from .config import RESUMABLE_CHANGES, TrainConfig, check_last_batch, validate
from .train_eval import bn_words, evaluation_rng, evaluation_row, summary_line
from .files import (append_jsonl, atomic_write_text, folder_lock, read_jsonl,
                    remove_stale_temps, rng_state, save_checkpoint, set_rng_state)
from .folder import (LoadedRun, check_checkpoint, check_new_folder, load_run, read_config,
                     resume_config)
from .interrupts import EvaluationStopped, StopFlag, TrainingInterrupted
from .progress import progress_bar
from .tally import Tally

__all__ = ["train", "TrainingInterrupted", "evaluation_rng", "LoadedRun", "load_run", "resume_config",
           "build_data", "build_model", "build_optimizer", "lr_schedule", "LOSSES"]

_WRITTEN = ("config.json", "metrics.jsonl", "checkpoint.npz")

READ_EVERY = 50
"""On a device: steps between two reads of the losses and error counts (one sync each)."""


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          stop_at_step: int | None = None, log=print, *, data=None, model=None, wrap=None,
          on_eval=None, eval_at_start: bool = False, graph: str = "off"):
    """Run (or resume) the training described by ``cfg``; returns ``(model, metrics rows)``.

    cfg.out: the run folder (None: nothing is written, no resume — lessons, tests).
    stop_at_step: stop after that many steps exactly as Ctrl-C would (the resume tests).
    data: ``(train, val or None, test, input_shape, num_classes)`` instead of loading
    ``cfg.dataset`` (sources with ``len`` and ``.batch(indices, epoch, minibatch)``,
    tinyproj/data/sources.py; test may be None: no scoring).
    model: an already built network, trained in place (default: built from cfg). wrap: ``wrap(model, rng)``
    returns the module that is trained in place of the model (Walking Noise: a NoisyModel
    with noise at its sites); the checkpoint holds the model's own state. on_eval:
    ``on_eval(model, row)`` adds fields to each metrics row. eval_at_start: a row at epoch 0,
    before the first step. graph: ``"off"``, ``"on"`` or ``"auto"`` — capture the step as a
    CUDA graph and replay it (tinyproj/graphs.py; CuPy only, the stand-in checks the step as
    if captured, NumPy runs eagerly). The weights are the same either way, so it is a way of
    running, not a setting of the run: it is not saved in config.json.

    Raises :class:`TrainingInterrupted` after saving a checkpoint on a stop,
    ``FloatingPointError`` naming the step when the loss is not finite, and
    :class:`~tinyproj.errors.UserError` for a bad setting or folder — before any file is
    written or data is loaded.
    """
    validate(cfg, None if data is None else (tuple(data[3]), data[4]))
    try:
        graph = graphs.check_mode(graph)
    except ValueError as err:
        raise UserError(f"{err}: on, off or auto (auto = on with CuPy)", flag="--graph") from None
    out = None
    if cfg.out is not None:
        out = Path(cfg.out)
        if resume:
            resume_config(out, {k: v for k, v in cfg.to_dict().items()})   # conflicts → error
        else:
            check_new_folder(out)
    elif resume:
        raise UserError("resume needs the run folder (--out)", flag="--out")
    if data is None:
        cfg.data_dir = resolve_data_dir(cfg.data_dir)
        data = build_data(cfg)
    train_src, val_src, test_src, input_shape, num_classes = data
    if len(train_src) < 1:
        raise UserError("the training set is empty; check --train-subset and --val-size")
    check_last_batch(cfg, len(train_src))
    rng = backend.make_rng(cfg.seed)
    if model is None:
        model = build_model(cfg, input_shape, num_classes, rng)
    if out is None:
        return _loop(cfg, None, model, rng, data, resume, progress, stop_at_step, log, wrap,
                     on_eval, eval_at_start, graph)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "a training run"):
        remove_stale_temps(out, _WRITTEN)
        if not resume:
            check_new_folder(out)           # again, under the lock
            atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
        return _loop(cfg, out, model, rng, data, resume, progress, stop_at_step, log, wrap,
                     on_eval, eval_at_start, graph)


def _where(pos: dict) -> str:
    """Where a run stands, with epochs counted from 1 as the progress bar does."""
    if pos["order"] is None:                 # between two epochs
        return f"after epoch {pos['epoch']}" if pos["epoch"] else "before the first epoch"
    return f"in epoch {pos['epoch'] + 1}"


def _save_resume_changes(out: Path, cfg: TrainConfig) -> None:
    """Record in config.json what a resume changed (``--epochs 5``...), so that a later plain
    ``--resume`` (the command printed on Ctrl-C) continues to the same end."""
    saved = read_config(out).to_dict()
    changed = {k: v for k, v in cfg.to_dict().items()
               if k in RESUMABLE_CHANGES and k != "out" and v is not None and saved.get(k) != v}
    if changed:
        atomic_write_text(out / "config.json",
                          json.dumps({**saved, **changed}, indent=2) + "\n")


def _not_finite(err: FloatingPointError, out) -> FloatingPointError:
    """The error of a non-finite loss, with what it means for the run folder: a resume with
    the same settings meets the same loss, so the way on is a new run (smaller --lr, --clip)."""
    text = str(err)
    if out is None:
        return FloatingPointError(text)
    ckpt = Path(out) / "checkpoint.npz"
    if ckpt.is_file():
        where = (f" The last checkpoint, {ckpt}, is intact, but resuming it with the same "
                 "settings meets the same loss: start a new run in another --out folder with a "
                 "smaller --lr or with --clip.")
    else:
        where = (f" No checkpoint was saved yet (one is written at the end of each epoch), so "
                 f"{out} holds only this run's config.json and metrics: remove it or choose "
                 "another --out, and train again with a smaller --lr or with --clip.")
    return FloatingPointError(text + where)


def _loop(cfg, out, model, rng, data, resume, progress, stop_at_step, log, wrap, on_eval,
          eval_at_start, graph="off"):
    train_src, val_src, test_src, _, _ = data
    optimizer = build_optimizer(cfg, model)
    loss_fn = LOSSES[cfg.loss]
    projection = projections.parse(cfg.projection)
    n, bs = len(train_src), cfg.batch_size
    steps_per_epoch = -(-n // bs)
    lr_at = lr_schedule(cfg, steps_per_epoch)
    bounds_at = clip_schedule(cfg, model)
    trained = model if wrap is None else wrap(model, rng)
    rows = []
    on_device = backend.on_device()
    read_every = READ_EVERY if on_device else 1
    tally = Tally(read_every)
    resident = None                         # the training set and the order on the device
    feed = train_src                        # what training batches are read from
    if on_device and isinstance(train_src, ArraySource):
        feed = ResidentSource(train_src)
        resident = {"order": None, "batches": DeviceBatches(feed, bs)}
        check_labels(feed.y, data[4], "training labels")     # once: one sync
    # per-epoch draws (crop/flip) are the source's, by (seed, epoch, ...): resumable
    feed = training_source(cfg, feed, data[3])
    current = {}                            # this step's clip bounds, for the device step
    device_step = _device_step(cfg, resident, feed, trained, loss_fn, optimizer, projection,
                               rng, current, graph, log)
    ckpt_path = out / "checkpoint.npz" if out is not None else None
    metrics_path = out / "metrics.jsonl" if out is not None else None

    # position in the run: epoch, global step, batch within the epoch and its order
    # pending_eval: "epoch" or "inside" when a stop cut that evaluation short (redone on resume)
    pos = dict(epoch=0, step=0, batch=0, order=None, loss_sum=0.0, wrong=0, seen=0,
               best_val=None, elapsed=0.0, pending_eval=None)
    if resume:
        optim_state, meta = check_checkpoint(ckpt_path, cfg, model)
        optimizer.load_state_dict(optim_state)
        try:
            restored = set_rng_state(rng, meta["rng"])
        except ValueError as err:
            raise UserError(f"checkpoint {ckpt_path} is corrupt ({err}); it cannot be resumed — "
                            "move it aside (e.g. rename it to checkpoint.bad.npz) and start the "
                            "run again in a new --out folder") from None
        if not restored:
            log(f"warning: the checkpoint holds no generator state this backend can take "
                f"(saved: {meta['rng'].get('kind')!r}; a checkpoint of another backend, or of a "
                f"version before the device generator); random draws after the resume differ "
                f"from an uninterrupted run")
        pos.update(meta["pos"])
        # the checkpoint is loaded and belongs to this run: only now may the resume's
        # changes (--epochs 5 ...) reach config.json
        _save_resume_changes(out, cfg)
        # evaluations logged after the checkpoint was written are redone, and so is the
        # evaluation a stop cut short (it logged nothing; a row at its step is not its own)
        rows = [r for r in read_jsonl(metrics_path) if r["step"] < pos["step"]
                or (r["step"] == pos["step"] and not pos["pending_eval"])]
        atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
        log(f"resumed {out} at step {pos['step']} ({_where(pos)})")

    def record(row):
        rows.append(row)
        if metrics_path is not None:
            append_jsonl(metrics_path, row)

    def read_tally():
        """Bring the losses and error counts up to date (NaN: stop, no checkpoint)."""
        try:
            return tally.read(pos, optimizer.lr, late=on_device)
        except FloatingPointError as err:
            bar.close()
            raise _not_finite(err, out) from None

    def checkpoint():
        read_tally()                          # never a checkpoint of a non-finite run
        if ckpt_path is not None:
            meta = {"pos": pos, "rng": rng_state(rng), "config": cfg.to_dict()}
            save_checkpoint(ckpt_path, model.state_dict(), optimizer.state_dict(), meta)

    def done():
        return pos["epoch"] >= cfg.epochs or (cfg.iterations is not None
                                               and pos["step"] >= cfg.iterations)

    if resume and done() and not pos["pending_eval"] and not any(r["step"] == pos["step"]
                                                                  for r in rows):
        # a finished run always has its final row; one stopped during its last step by an
        # earlier tinyproj has none: that evaluation runs now, after the epoch's end if the
        # step ended one (as in the run that was not stopped)
        if pos["batch"] >= steps_per_epoch:
            pos.update(epoch=pos["epoch"] + 1, order=None)
        pos["pending_eval"] = "epoch"
    if resume and done() and not pos["pending_eval"]:
        by_steps = cfg.iterations is not None and pos["step"] >= cfg.iterations
        log("the run has already trained its "
            + (f"{cfg.iterations} steps; add --iterations N" if by_steps else
               f"{cfg.epochs} epoch(s); add --epochs N") + " (more than that) to train longer")

    def stopped(stop, during: str = "") -> TrainingInterrupted:
        """Save the checkpoint of a stop; the exception that says where and how to go on."""
        checkpoint()
        bar.close()
        where = (f"checkpoint saved in {ckpt_path} — continue with "
                 f"`tinyproj train --out {out} --resume`" if ckpt_path else
                 "no run folder, nothing saved")
        return TrainingInterrupted(f"stopped at step {pos['step']}, {_where(pos)} "
                                   f"({stop.requested or 'requested'}{during}); {where}")

    def evaluate(stop, inside_epoch: bool = False):
        """One metrics row. A stop requested meanwhile ends the evaluation at its next batch
        (weights and statistics restored): the checkpoint marks it pending, a resume redoes
        it first — same weights, same generator (seeded by the step), so the same row."""
        read_tally()
        if stop.requested:     # a stop came before it began (in a run's last step): nothing
            pos["pending_eval"] = "inside" if inside_epoch else "epoch"      # read or undone
            raise stopped(stop, " before the evaluation, which runs first on resume")
        if progress:
            scored = len(test_src or ()) + len(val_src or ())
            log(f"evaluating: {scored} images under {len(cfg.test_projections)} test "
                "projection(s)" + bn_words(cfg) + " ...")
        try:
            row = evaluation_row(cfg, model, optimizer, train_src, val_src, test_src,
                                 evaluation_rng(cfg.seed, pos["step"]), pos,
                                 select_best=not inside_epoch, stop=lambda: stop.requested)
        except EvaluationStopped:
            pos["pending_eval"] = "inside" if inside_epoch else "epoch"
            raise stopped(stop, " during the evaluation, which runs again first on resume"
                          ) from None
        pos["pending_eval"] = None
        row["epoch_progress"] = round(pos["step"] / steps_per_epoch, 4)
        if on_eval is not None:
            on_eval(model, row)
        record(row)
        log(summary_line(row))

    bar = progress_bar(False, steps_per_epoch)
    with StopFlag(log) as stop:
        if eval_at_start and not resume:
            evaluate(stop)
        if pos["pending_eval"]:             # the evaluation a stop cut short, then on
            log(f"first the evaluation at step {pos['step']} that the stop cut short")
            evaluate(stop, inside_epoch=pos["pending_eval"] == "inside")
            checkpoint()
        bar = progress_bar(progress, steps_per_epoch)
        while not done():
            if pos["order"] is None:       # a new epoch: shuffle with the run's generator
                pos["order"] = backend.permutation(rng, n).tolist()
                pos.update(batch=0, loss_sum=0.0, wrong=0, seen=0)
            if resident is not None and resident["order"] is None:
                resident["batches"].start_epoch(pos["order"], pos["batch"])  # one copy
                resident["order"] = resident["batches"].order
            start = time.perf_counter()
            bar.reset(f"epoch {pos['epoch'] + 1}", pos["batch"])
            trained.train()
            while pos["batch"] < steps_per_epoch and not done():
                first = pos["batch"] * bs
                size = min(n, first + bs) - first
                optimizer.lr = lr_at(pos["epoch"], pos["step"])
                if device_step is not None and size == bs:   # position, lr... on the device
                    current["bounds"] = bounds_at(pos["step"])
                    loss, wrong = device_step(signature=bs)
                    tally.add(pos["step"], loss, wrong, size)
                else:
                    # the device's copy of the order where the set is resident (no copy up)
                    order = pos["order"] if resident is None else resident["batches"].order
                    try:
                        x, y = feed.batch(order[first:first + bs], epoch=pos["epoch"],
                                          minibatch=pos["batch"])
                    except BrokenExecutor:
                        if not stop.requested:
                            raise
                        # the SIGTERM that asked for the stop (a cluster's time limit, sent to
                        # every process) ended the decoding workers too: stop before this step
                        pos["elapsed"] += time.perf_counter() - start
                        raise stopped(stop, ", which also ended the image decoding workers"
                                      ) from None
                    if hasattr(feed, "prefetch") and pos["batch"] + 1 < steps_per_epoch:
                        # decode the next minibatch in worker processes while this step runs
                        feed.prefetch(order[first + bs:first + 2 * bs], epoch=pos["epoch"],
                                      minibatch=pos["batch"] + 1)
                    try:
                        loss, scores = algorithm1.train_step(
                            trained, x, y, loss_fn, optimizer, projection, bounds_at(pos["step"]),
                            rng, step=pos["step"], return_scores=True, sync=not on_device)
                    except FloatingPointError as err:
                        bar.close()
                        raise _not_finite(err, out) from None
                    tally.add(pos["step"], loss, (scores.argmax(axis=1) != y).sum(), size)
                pos["step"] += 1
                pos["batch"] += 1
                bar.update()
                if len(tally) >= read_every:
                    bar.update(0, loss=f"{read_tally():.4f}")
                if (cfg.eval_every_steps and pos["step"] % cfg.eval_every_steps == 0
                        and pos["batch"] < steps_per_epoch and not done()):
                    bar.close()                      # inside the epoch (its end evaluates below)
                    pos["elapsed"] += time.perf_counter() - start   # train_seconds up to here
                    evaluate(stop, inside_epoch=True)
                    start = time.perf_counter()              # the evaluation is not training
                    trained.train()
                    bar.reset(f"epoch {pos['epoch'] + 1}", pos["batch"])
                if stop_at_step is not None and pos["step"] >= stop_at_step:
                    stop.requested = stop.requested or "requested"      # as Ctrl-C would
                # a stop after the last step of a run that ends by --iterations (done() holds
                # already) goes on to the final evaluation below, which marks itself pending
                # before it reads anything: a resume then writes its row
                if stop.requested and not done():
                    pos["elapsed"] += time.perf_counter() - start
                    raise stopped(stop)
            pos["elapsed"] += time.perf_counter() - start
            if pos["batch"] >= steps_per_epoch:
                pos.update(epoch=pos["epoch"] + 1, order=None)
                if resident is not None:
                    resident["order"] = None
            if pos["epoch"] % cfg.eval_every == 0 or done():
                bar.close()
                evaluate(stop)
            checkpoint()
    bar.close()
    model.eval()
    return model, rows


def _device_step(cfg, resident, feed, trained, loss_fn, optimizer, projection, rng,
                 current, graph, log):
    """The step of a full minibatch on the device as a :class:`graphs.StepGraph`: gather at the
    device offset, Algorithm 1 with ``current["bounds"]``, the loss and the error count — all
    read and moved on the device, so it can be captured and replayed (``graph``). None where
    batches are not gathered on the device (NumPy, a folder source) or are drawn anew each
    epoch from host-side numbers (``feed.per_epoch``): then every step runs eagerly."""
    if resident is None:
        if graph == "on":
            log("CUDA graph: the training set is not on a device (NumPy backend or a folder "
                "source): every step runs eagerly.")
        return None
    if feed.per_epoch:
        if graph == "on":
            log("CUDA graph: the crop/flip augmentation is drawn from host-side (epoch, batch) "
                "numbers: every step runs eagerly.")
        return None
    batches = resident["batches"]

    def step():
        x, y = batches.next_full()
        loss, scores = algorithm1.train_step(trained, x, y, loss_fn, optimizer, projection,
                                             current["bounds"], rng, return_scores=True,
                                             sync=False)
        return loss, (scores.argmax(axis=1) != y).sum()

    def prepare():                          # outside the captured region: host-decided scalars
        optimizer.write_step_scalars()
        algorithm1.write_clip_bounds(trained, current["bounds"])

    # a U(..) parameter drawn on the host (all but Power's beta) cannot be captured: say why
    return graphs.capture_step(step, optimizer=optimizer, prepare=prepare, mode=graph, log=log,
                               eager_reason=projection.eager_reason())
