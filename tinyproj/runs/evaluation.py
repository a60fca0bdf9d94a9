"""Scoring a model: error rate, batch-norm re-estimation, test projections.

Merolla et al.'s test protocol (docs/papers.md §1.6): for every test projection Te-X,
put the projected weights into the network, **re-estimate the batch-norm
statistics on training data** with those weights (the statistics of the
activations change when the weights do), then score the test set. The model's
own weights and statistics are restored afterwards.
"""
from __future__ import annotations

import contextlib

from .. import backend
from ..algorithm1 import project_weights
from ..nn.batchnorm import BatchNormBase
from ..projections import parse
from ..tensor import no_grad
from .bn_exact import DEFAULT_PASS_SIZE, reestimate_exact
from .interrupts import check as check_stop

__all__ = ["error_rate", "error_rates", "reestimate_batchnorm", "errors_by_projection",
           "test_errors", "batch_indices", "batches", "saved_batchnorm_stats"]


def batch_indices(n: int, batch_size: int):
    """Consecutive index ranges covering 0..n-1 (the last one may be shorter)."""
    for start in range(0, n, batch_size):
        yield range(start, min(n, start + batch_size))


def batches(source, index_lists):
    """``source.batch(idx)`` for each index list in turn. A source that can decode ahead
    (``prefetch``: ImageNet's FolderSource) is told the next list before the current batch is
    handed out, so its decoding overlaps the model's work on the current one."""
    index_lists = list(index_lists)
    ahead = getattr(source, "prefetch", None)
    for i, idx in enumerate(index_lists):
        batch = source.batch(idx)
        if ahead is not None and i + 1 < len(index_lists):
            ahead(index_lists[i + 1])
        yield batch


def error_rate(model, source, batch_size: int = 500, limit: int | None = None) -> float:
    """Fraction of misclassified examples of ``source`` with the model in evaluation mode."""
    return error_rates(model, source, batch_size, limit)[1]


def error_rates(model, source, batch_size: int = 500, limit: int | None = None,
                top=(1,), stop=None) -> dict:
    """``{k: top-k error}`` of ``source`` with the model in evaluation mode, in one pass.

    top-1: the arg-max score is not the label. top-k (k > 1): the label's score is beaten
    by at least k others, i.e. rank = #{j : s_j > s_label} ≥ k (ties count in the label's
    favour). ImageNet reports top-1 and top-5. stop: checked between batches
    (``interrupts.check``: a requested stop raises ``EvaluationStopped``).
    """
    n = len(source) if limit is None else min(limit, len(source))
    was_training = model.training
    model.eval()
    wrong = {k: [] for k in top}             # per batch, left on the device until the end
    try:
        with no_grad():
            for x, y in batches(source, batch_indices(n, batch_size)):
                check_stop(stop)
                scores = model(x).data
                for k in top:
                    if k == 1:
                        wrong[k].append((scores.argmax(axis=1) != y).sum())
                    else:
                        xp = backend.xp_of(scores)
                        own = scores[xp.arange(len(y)), y][:, None]
                        wrong[k].append(((scores > own).sum(axis=1) >= k).sum())
    finally:
        model.train(was_training)
    if not n:
        return {k: 0.0 for k in top}
    xp = backend.xp_of(wrong[top[0]][0])
    totals = backend.to_numpy(xp.stack([xp.stack(wrong[k]).sum() for k in top]))   # one sync
    return {k: int(t) / n for k, t in zip(top, totals)}


@contextlib.contextmanager
def saved_batchnorm_stats(model):
    """Restore every batch-norm layer's running statistics on exit."""
    layers = [m for m in model.modules() if isinstance(m, BatchNormBase)]
    saved = [(m.running_mean.copy(), m.running_var.copy(), m.num_batches_tracked.copy())
             for m in layers]
    try:
        yield layers
    finally:
        for m, (mean, var, count) in zip(layers, saved):
            m.running_mean[...] = mean
            m.running_var[...] = var
            m.num_batches_tracked[...] = count
            m.stop_reestimation()


def reestimate_batchnorm(model, source, num_batches: int, batch_size: int, rng=None, stop=None) -> int:
    """Recompute every batch-norm layer's running statistics from training batches.

    The statistics are reset and become the plain average over ``num_batches``
    random training batches (momentum 1/(k+1) for batch k), computed with the
    weights the model holds now. Only the batch-norm layers run in training
    mode; dropout and everything else stay in evaluation mode. Returns the
    number of batches used (0 if the model has no batch norm). stop: as in :func:`error_rates`.
    """
    layers = [m for m in model.modules() if isinstance(m, BatchNormBase)]
    if not layers or num_batches <= 0:
        return 0
    rng = rng if rng is not None else backend.global_rng()
    order = backend.permutation(rng, len(source))
    was_training = model.training
    model.eval()
    for m in layers:
        m.start_reestimation()
        m.train()
    used = 0
    try:
        with no_grad():
            count = min(num_batches, -(-len(source) // batch_size))
            for x, _ in batches(source, (order[b * batch_size:(b + 1) * batch_size]
                                         for b in range(count))):
                check_stop(stop)
                model(x)
                used += 1
    finally:
        for m in layers:
            m.stop_reestimation()
        model.train(was_training)
    return used


def errors_by_projection(model, train_source, sources: dict, projections, rng=None,
                         bn_batches: int = 20, batch_size: int = 50, eval_batch_size: int = 500,
                         limit=None, top5: bool = False, bn_images=None,
                         stop=None) -> dict:
    """``{source name: {spec: error}}``: every source scored under every projection.

    Merolla's protocol, once per projection: swap the projected weights in,
    re-estimate batch norm on training data, score each source (e.g.
    ``{"val": ..., "test": ...}``) with those weights and statistics, then restore the
    weights and the batch-norm statistics exactly. The re-estimation is

    - ``bn_images=None``: the average of ``bn_batches`` random batches of ``batch_size``
      (skipped when ``bn_batches`` is 0) — cheap, but its draws spread by up to a point of
      test error on small networks (robustness/bn_estimate.py);
    - ``bn_images="all"`` or N: exact, over every (or N random) training image(s) in passes
      of ``DEFAULT_PASS_SIZE`` (runs/bn_exact.py) — about one forward pass over the
      training set per projection.

    ``top5=True`` adds ``{"<name>_top5": {spec: top-5 error}}`` for each source (the
    ImageNet figures), from the same forward passes.

    ``stop``: a callable checked between two batches of every pass; when it returns true the
    evaluation raises ``interrupts.EvaluationStopped`` with the model's weights and
    statistics restored (the training loop then saves a checkpoint and redoes the evaluation
    on resume).
    """
    rng = rng if rng is not None else backend.global_rng()
    exact = bn_images is not None
    images = None if bn_images in (None, "all") else int(bn_images)
    errors = {name: {} for name in sources}
    for spec in projections:
        proj = parse(spec)
        with saved_batchnorm_stats(model), project_weights(model, proj, rng):
            if exact:
                reestimate_exact(model, train_source, images, DEFAULT_PASS_SIZE, rng, stop)
            elif bn_batches:
                reestimate_batchnorm(model, train_source, bn_batches, batch_size, rng, stop)
            for name, source in sources.items():
                rates = error_rates(model, source, eval_batch_size, limit,
                                    (1, 5) if top5 else (1,), stop)
                errors[name][str(spec)] = rates[1]
                if top5:
                    errors.setdefault(f"{name}_top5", {})[str(spec)] = rates[5]
    return errors


def test_errors(model, train_source, test_source, projections, rng=None, bn_batches: int = 20,
                batch_size: int = 50, eval_batch_size: int = 500, test_limit=None) -> dict:
    """``{spec: test error}`` for each test projection (see :func:`errors_by_projection`)."""
    return errors_by_projection(model, train_source, {"test": test_source}, projections, rng,
                                bn_batches, batch_size, eval_batch_size, test_limit)["test"]
