"""Training runs: epochs of Algorithm 1, evaluation, metrics, checkpoints, resume.

    from tinyproj.runs.config import make_config
    from tinyproj.runs.training import train
    cfg = make_config("tr-sign-c", width=0.25, epochs=1, train_subset=10000, out="runs/sign")
    train(cfg)                       # or: tinyproj train --preset tr-sign-c ...

A run folder (``cfg.out``) holds
    config.json       every setting (TrainConfig), enough to rerun
    metrics.jsonl     one JSON object per evaluation: epoch, step, lr, train_loss,
                      train_error, val_error, test_error {"none": .., "sign": .., "round": ..}
                      (validation and test sets scored alike: per test projection, batch
                      norm re-estimated on training data; val_error is the Te-None one)
    checkpoint.npz    weights, optimizer state, generator state, position in the epoch

Resuming (``resume=True``) continues from the checkpoint to the same weights as
an uninterrupted run: the checkpoint stores the generator's state and the
epoch's shuffled order, so the remaining minibatches and random draws are the
ones the uninterrupted run would have used. Ctrl-C is caught between two steps:
the run saves a checkpoint there and stops; a second Ctrl-C stops at once
(the previous checkpoint is still intact: files are written atomically).
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import algorithm1, backend, clipping, models, optim, projections
from .. import functional as F
from .files import (append_jsonl, atomic_write_text, load_checkpoint, read_jsonl,
                         rng_state, save_checkpoint, set_rng_state)
from ..data import load_dataset, train_val_split
from ..data.sources import ArraySource, FolderSource
from .evaluation import errors_by_projection
from .config import TrainConfig

__all__ = ["train", "TrainingInterrupted", "build_data", "build_model", "build_optimizer",
           "lr_schedule", "LOSSES", "LoadedRun", "load_run"]

LOSSES = {"square_hinge": F.square_hinge_loss, "cross_entropy": F.cross_entropy}


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C (or a requested stop) once a checkpoint has been saved."""


# ---------------------------------------------------------------------------
# Building the pieces of a run from its config
# ---------------------------------------------------------------------------
def build_data(cfg: TrainConfig):
    """``(train, val or None, test, input_shape, num_classes)``; sources with ``.batch(idx)``."""
    if cfg.dataset == "imagenet":
        from .data import ImageFolder
        root = Path(cfg.data_dir or "datasets/imagenet")
        train_src = FolderSource(ImageFolder(root / "train"))
        test_src = FolderSource(ImageFolder(root / "val"))
        return train_src, None, test_src, train_src.input_shape, len(train_src.folder.classes)
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, preprocess=cfg.preprocess or "default")
    x, y = ds.x_train, ds.y_train
    val = None
    if cfg.val_size:
        x, y, xv, yv = train_val_split(x, y, cfg.val_size)
        val = ArraySource(xv, yv)
    if cfg.train_subset:
        x, y = x[:cfg.train_subset], y[:cfg.train_subset]
    xt, yt = ds.x_test, ds.y_test
    if cfg.test_subset:
        xt, yt = xt[:cfg.test_subset], yt[:cfg.test_subset]
    return ArraySource(x, y), val, ArraySource(xt, yt), ds.input_shape, ds.num_classes


def build_model(cfg: TrainConfig, input_shape, num_classes, rng):
    """The network named by ``cfg.model`` for this input shape, initialized from ``rng``."""
    name = cfg.model
    if name == "bc_cifar10":
        return models.bc_cifar10(width=cfg.width, num_classes=num_classes, rng=rng)
    if name == "alexnet_bn":
        return models.alexnet_bn(num_classes=num_classes, input_size=input_shape[-1],
                                 width=cfg.width, rng=rng)
    if name == "mlp_tfc":
        return models.mlp_tfc(bn=cfg.bn, in_features=math.prod(input_shape),
                              num_classes=num_classes, rng=rng)
    if name == "lenet5":
        return models.lenet5(bn=cfg.bn, num_classes=num_classes, in_channels=input_shape[0],
                             rng=rng)
    raise ValueError(f"unknown model {name!r}; valid models: bc_cifar10, alexnet_bn, mlp_tfc, "
                     "lenet5")


def build_optimizer(cfg: TrainConfig, model):
    if cfg.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid: adam, sgd")


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """A function ``(epoch, step) -> learning rate`` for the configured schedule.

    exponential: per epoch, from lr to lr_final over cfg.epochs (BinaryConnect);
    cosine: per step over the whole run; step: drops by lr_factor at lr_milestones
    (iterations); constant.
    """
    kind = cfg.lr_schedule
    if kind == "exponential":
        s = optim.ExponentialDecay(cfg.lr, cfg.lr_final, max(1, cfg.epochs))
        return lambda epoch, step: s(min(epoch, cfg.epochs))
    if kind == "cosine":
        total = cfg.iterations or cfg.epochs * steps_per_epoch
        s = optim.Cosine(cfg.lr, total, cfg.lr_final)
        return lambda epoch, step: s(min(step, total))
    if kind == "step":
        s = optim.StepDrops(cfg.lr, cfg.lr_milestones, cfg.lr_factor)
        return lambda epoch, step: s(step)
    if kind == "constant":
        return lambda epoch, step: cfg.lr
    raise ValueError(f"unknown lr_schedule {kind!r}; valid: exponential, cosine, step, constant")


def clip_schedule(cfg: TrainConfig, model):
    """A function ``step -> {param name: c_k}`` (empty dict: no clipping)."""
    if clipping.no_clipping(cfg.clip):
        return lambda step: {}
    sched = clipping.ClipSchedule(float(cfg.clip), cfg.clip_factor, cfg.clip_milestones)
    cache = {}

    def bounds(step):
        f = sched.f_at(step)
        if f not in cache:                 # recompute only when the schedule changes f
            cache.clear()
            cache[f] = clipping.clip_bounds(model, f)
        return cache[f]
    return bounds


# ---------------------------------------------------------------------------
# Ctrl-C between steps
# ---------------------------------------------------------------------------
class _StopFlag:
    """Turns the first Ctrl-C into a flag checked between steps; the second one interrupts."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this step and saving a checkpoint "
              "(press again to stop at once)", flush=True)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
_RESUMABLE_CHANGES = {"epochs", "iterations", "out", "data_dir", "eval_every"}


def _prepare_folder(cfg: TrainConfig, resume: bool) -> Path:
    if not cfg.out:
        raise ValueError("no run folder: set cfg.out (tinyproj train --out RUN_DIR)")
    out = Path(cfg.out)
    saved_cfg = out / "config.json"
    if resume:
        if not (out / "checkpoint.npz").exists():
            raise FileNotFoundError(f"--resume: no checkpoint in {out}; start the run without "
                                    "--resume")
        old = json.loads(saved_cfg.read_text())
        new = cfg.to_dict()
        diff = {k: (old.get(k), new[k]) for k in new
                if k not in _RESUMABLE_CHANGES and old.get(k) != new[k]}
        if diff:
            lines = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"--resume: settings differ from the saved run in {out} ({lines}); "
                             "resume with the same settings or start a new --out folder")
    elif (out / "checkpoint.npz").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or "
                              "choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved_cfg, json.dumps(cfg.to_dict(), indent=2) + "\n")
    return out


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          stop_at_step: int | None = None, log=print):
    """Run (or resume) the training described by ``cfg``; returns ``(model, metrics rows)``.

    ``stop_at_step`` stops after that many steps exactly as Ctrl-C would (used by the
    resume tests). Raises :class:`TrainingInterrupted` after saving a checkpoint on a
    stop, and ``FloatingPointError`` naming the step when the loss is not finite.
    """
    out = _prepare_folder(cfg, resume)
    ckpt_path, metrics_path = out / "checkpoint.npz", out / "metrics.jsonl"
    rng = backend.make_rng(cfg.seed)
    train_src, val_src, test_src, input_shape, num_classes = build_data(cfg)
    model = build_model(cfg, input_shape, num_classes, rng)
    optimizer = build_optimizer(cfg, model)
    loss_fn = LOSSES.get(cfg.loss)
    if loss_fn is None:
        raise ValueError(f"unknown loss {cfg.loss!r}; valid: {', '.join(LOSSES)}")
    projection = projections.parse(cfg.projection)
    n, bs = len(train_src), cfg.batch_size
    steps_per_epoch = -(-n // bs)
    lr_at = lr_schedule(cfg, steps_per_epoch)
    bounds_at = clip_schedule(cfg, model)

    # position in the run: epoch, global step, batch within the epoch and its order
    pos = dict(epoch=0, step=0, batch=0, order=None, loss_sum=0.0, wrong=0, seen=0,
               best_val=None, elapsed=0.0)
    if resume:
        model_state, optim_state, meta = load_checkpoint(ckpt_path)
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        if not set_rng_state(rng, meta["rng"]):
            log("warning: this backend's generator cannot be restored; random draws after "
                "the resume differ from an uninterrupted run")
        pos.update(meta["pos"])
        # evaluations logged after the checkpoint was written are redone
        rows = [r for r in read_jsonl(metrics_path) if r["step"] <= pos["step"]]
        atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
        log(f"resumed {out} at epoch {pos['epoch']}, step {pos['step']}")
    elif metrics_path.exists():
        metrics_path.unlink()

    def checkpoint():
        meta = {"pos": pos, "rng": rng_state(rng), "config": cfg.to_dict()}
        save_checkpoint(ckpt_path, model.state_dict(), optimizer.state_dict(), meta)

    def done():
        return pos["epoch"] >= cfg.epochs or (cfg.iterations is not None
                                               and pos["step"] >= cfg.iterations)

    bar = _progress(progress, steps_per_epoch)
    with _StopFlag() as stop:
        while not done():
            if pos["order"] is None:       # a new epoch: shuffle with the run's generator
                pos["order"] = backend.permutation(rng, n).tolist()
                pos.update(batch=0, loss_sum=0.0, wrong=0, seen=0)
            start = time.perf_counter()
            bar.reset(pos["epoch"], pos["batch"])
            model.train()
            while pos["batch"] < steps_per_epoch and not done():
                idx = pos["order"][pos["batch"] * bs:(pos["batch"] + 1) * bs]
                x, y = train_src.batch(idx)
                optimizer.lr = lr_at(pos["epoch"], pos["step"])
                loss, scores = algorithm1.train_step(
                    model, x, y, loss_fn, optimizer, projection, bounds_at(pos["step"]), rng,
                    step=pos["step"], return_scores=True)
                pos["loss_sum"] += loss * len(idx)
                pos["wrong"] += int((scores.argmax(axis=1) != y).sum())
                pos["seen"] += len(idx)
                pos["step"] += 1
                pos["batch"] += 1
                bar.update(loss)
                if stop.requested or (stop_at_step is not None and pos["step"] >= stop_at_step):
                    pos["elapsed"] += time.perf_counter() - start
                    checkpoint()
                    bar.close()
                    raise TrainingInterrupted(
                        f"stopped at epoch {pos['epoch']}, step {pos['step']}; checkpoint saved "
                        f"in {ckpt_path} — continue with --resume")
            pos["elapsed"] += time.perf_counter() - start
            if pos["batch"] >= steps_per_epoch:
                pos.update(epoch=pos["epoch"] + 1, order=None)
            if pos["epoch"] % cfg.eval_every == 0 or done():
                row = _evaluate(cfg, model, optimizer, train_src, val_src, test_src, rng, pos)
                append_jsonl(metrics_path, row)
                log(_summary(row))
            checkpoint()
    bar.close()
    return model, read_jsonl(metrics_path)


@dataclass
class LoadedRun:
    """A trained run read back from its folder: settings, model (checkpoint weights), data."""

    config: TrainConfig
    model: object
    train: object          # ArraySource / FolderSource of the training images used
    val: object            # or None
    test: object
    meta: dict             # the checkpoint's position (epoch, step, ...)
    folder: Path


def load_run(run_dir, data_dir=None) -> LoadedRun:
    """Rebuild the model of ``run_dir`` with its checkpoint weights, and its data sources.

    ``data_dir`` overrides the saved data folder (the run may have been trained elsewhere).
    The model is returned in evaluation mode.
    """
    folder = Path(run_dir)
    if not (folder / "config.json").exists() or not (folder / "checkpoint.npz").exists():
        raise FileNotFoundError(f"{folder} is not a run folder: it needs config.json and "
                                "checkpoint.npz (made by `tinyproj train --out`)")
    cfg = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    train_src, val_src, test_src, input_shape, num_classes = build_data(cfg)
    model = build_model(cfg, input_shape, num_classes, backend.make_rng(cfg.seed))
    model_state, _, meta = load_checkpoint(folder / "checkpoint.npz")
    model.load_state_dict(model_state)
    model.eval()
    return LoadedRun(cfg, model, train_src, val_src, test_src, meta, folder)


def _evaluate(cfg, model, optimizer, train_src, val_src, test_src, rng, pos) -> dict:
    """One metrics row; batch norm re-estimated per test projection when cfg says so."""
    start = time.perf_counter()
    row = {"epoch": pos["epoch"], "step": pos["step"], "lr": optimizer.lr,
           "train_loss": pos["loss_sum"] / max(1, pos["seen"]),
           "train_error": pos["wrong"] / max(1, pos["seen"])}
    # validation and test sets are scored the same way: per test projection, with batch
    # norm re-estimated for it (the running statistics of training belong to P, not W)
    sources = {"test": test_src} if val_src is None else {"val": val_src, "test": test_src}
    bn = cfg.bn_batches if cfg.bn_reestimate else 0
    errors = errors_by_projection(model, train_src, sources, cfg.test_projections, rng,
                                  bn_batches=bn, batch_size=cfg.batch_size,
                                  eval_batch_size=cfg.eval_batch_size)
    if val_src is not None:
        key = "none" if "none" in errors["val"] else cfg.test_projections[0]
        row["val_error"] = errors["val"][key]          # Te-None: selects the best epoch
        row["val_errors"] = errors["val"]
    row["test_error"] = errors["test"]
    if val_src is not None and (pos["best_val"] is None or row["val_error"] < pos["best_val"][0]):
        pos["best_val"] = [row["val_error"], pos["epoch"], row["test_error"]]
    if pos["best_val"] is not None:
        row["best_val_epoch"] = pos["best_val"][1]
        row["test_error_at_best_val"] = pos["best_val"][2]
    row["train_seconds"] = round(pos["elapsed"], 2)
    row["eval_seconds"] = round(time.perf_counter() - start, 2)
    return row


def _summary(row: dict) -> str:
    tests = "  ".join(f"Te-{k.capitalize()} {100 * v:.2f}%" for k, v in row["test_error"].items())
    val = f"  val {100 * row['val_error']:.2f}%" if "val_error" in row else ""
    return (f"epoch {row['epoch']:>3}  step {row['step']:>6}  lr {row['lr']:.2e}  "
            f"loss {row['train_loss']:.4f}  train {100 * row['train_error']:.2f}%{val}  {tests}")


class _progress:
    """A tqdm bar per epoch (silent when tqdm is missing or progress is off)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.bar = enabled, total, None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self._tqdm = tqdm
            except ImportError:
                self.enabled = False

    def reset(self, epoch, done):
        if not self.enabled:
            return
        self.close()
        self.bar = self._tqdm(total=self.total, initial=done, desc=f"epoch {epoch + 1}",
                              leave=False, dynamic_ncols=True)

    def update(self, loss):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
