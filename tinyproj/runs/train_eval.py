"""One evaluation of a training run: its metrics row, its generator, its printed line.

``runs/training.py``'s loop calls :func:`evaluation_row` every ``eval_every`` epochs (and
every ``eval_every_steps`` steps): per test projection, the projected weights are put in,
batch norm is re-estimated on training data (``--bn-batches`` minibatches, or exactly over
``--bn-images``), and the validation and test sets are scored (``runs.evaluation``). The
best-validation epoch is chosen here (a tie goes to the later epoch, as BinaryConnect).
:func:`summary_line` is the line the loop prints for the row.
"""
from __future__ import annotations

import math
import time

from .. import backend
from .config import reports_top5
from .evaluation import errors_by_projection

__all__ = ["evaluation_rng", "evaluation_row", "bn_words", "summary_line"]


def evaluation_rng(seed: int, step: int):
    """The generator of the evaluation at ``step``: seeded by (seed, step), apart from the run's.

    An evaluation that drew from the run's generator would shift every later draw of the
    training (shuffling, stochastic projections), so evaluating more often would train another
    network. Seeded by the step, an evaluation is also redrawn identically after a resume.
    """
    import numpy as np
    state = np.random.SeedSequence([int(seed), int(step), 0xE7A1]).generate_state(1)[0]
    return backend.make_rng(int(state))


def evaluation_row(cfg, model, optimizer, train_src, val_src, test_src, rng, pos,
              select_best: bool = True, stop=None) -> dict:
    """One metrics row; batch norm re-estimated per test projection when cfg says so.

    select_best: this evaluation may become the best-validation one (False inside an epoch).
    stop: checked between batches; a requested stop raises ``interrupts.EvaluationStopped``
    before ``pos`` is touched (``runs.evaluation.errors_by_projection``)."""
    start = time.perf_counter()
    row = {"epoch": pos["epoch"], "step": pos["step"], "lr": optimizer.lr,
           "train_loss": pos["loss_sum"] / pos["seen"] if pos["seen"] else None,
           "train_error": pos["wrong"] / pos["seen"] if pos["seen"] else None}
    # validation and test sets are scored the same way: per test projection, with batch
    # norm re-estimated for it (the running statistics of training belong to P, not W)
    sources = {"test": test_src} if test_src is not None else {}
    if val_src is not None:
        sources["val"] = val_src
    bn = cfg.bn_batches if cfg.bn_reestimate else 0
    errors = errors_by_projection(model, train_src, sources, cfg.test_projections, rng,
                                  bn_batches=bn, batch_size=cfg.batch_size,
                                  eval_batch_size=cfg.eval_batch_size, top5=reports_top5(cfg),
                                  bn_images=cfg.bn_images if cfg.bn_reestimate else None,
                                  stop=stop) if sources else {}
    errors.setdefault("test", {})
    if "test_top5" in errors:                          # ImageNet: top-5 beside top-1
        row["test_error_top5"] = errors["test_top5"]
    if val_src is not None:
        key = "none" if "none" in errors["val"] else cfg.test_projections[0]
        row["val_error"] = errors["val"][key]          # Te-None: selects the best epoch
        row["val_errors"] = errors["val"]
    row["test_error"] = errors["test"]
    if test_src is not None:            # how many images each error counts (its binomial SE)
        row["n_test"] = len(test_src)
    # a tie goes to the later epoch, as BinaryConnect's `if val_err <= best_val_err`
    if select_best and val_src is not None and (pos["best_val"] is None
                                                or row["val_error"] <= pos["best_val"][0]):
        pos["best_val"] = [row["val_error"], pos["epoch"], row["test_error"]]
    if pos["best_val"] is not None:
        row["best_val_epoch"] = pos["best_val"][1]
        row["test_error_at_best_val"] = pos["best_val"][2]
    row["train_seconds"] = round(pos["elapsed"], 2)
    row["eval_seconds"] = round(time.perf_counter() - start, 2)
    return row


def bn_words(cfg) -> str:
    """How the evaluation re-estimates batch norm, for its progress line."""
    if not cfg.bn_reestimate or (cfg.bn_images is None and not cfg.bn_batches):
        return ""
    if cfg.bn_images is None:
        return f", batch norm re-estimated for each ({cfg.bn_batches} minibatches)"
    amount = "every training image" if cfg.bn_images == "all" else \
        f"{cfg.bn_images} training images"
    return f", batch norm re-estimated exactly for each ({amount})"


def _percent(value) -> str:
    return "   –  " if value is None else f"{100 * value:5.2f}%"


def _with_se(value, n) -> str:
    """An error in percent with ± its binomial standard error over the n images scored (the
    bar Table 2 shows, reporting/single_eval.py): "35.20±0.48%"."""
    if value is None or not n:
        return _percent(value)
    se = math.sqrt(value * (1.0 - value) / n)   # binomial_se, whose package loads matplotlib
    return f"{100 * value:5.2f}±{100 * se:.2f}%"


def summary_line(row: dict) -> str:
    """One line per evaluation; every number is an error rate in percent, the test errors with
    ± their standard error over the test images scored."""
    n_test = row.get("n_test")
    tests = "  ".join(f"Te-{k.capitalize()} {_with_se(v, n_test)}"
                      for k, v in row["test_error"].items())
    val = f"  val {_percent(row['val_error'])}" if "val_error" in row else ""
    loss = "   –  " if row["train_loss"] is None else f"{row['train_loss']:.4f}"
    return (f"epoch {row['epoch']:>3}  step {row['step']:>6}  lr {row['lr']:.2e}  "
            f"loss {loss}  errors: train {_percent(row['train_error'])}{val}  test {tests}")
