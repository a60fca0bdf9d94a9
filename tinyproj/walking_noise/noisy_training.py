"""Noisy training: train a network with activation noise on at chosen sites.

Walking Noise's setup (PAPERS.md §2): Adam with learning rate 1e-3, cosine annealing over the
whole run (per step, down to 0), cross-entropy, batch 128 — with the noise of a
:class:`~tinyproj.walking_noise.noise.NoiseSpec` switched on in *training-mode* passes at the
chosen sites (``sites.NoisyModel``). Backpropagation goes through the drawn noise
(``noise.Noise``). One epoch::

    for each minibatch (x, y), shuffled with the run's generator:
        lr ← cosine(step)
        scores = noisy_model(x)              # noise drawn fresh at the active sites
        loss = cross_entropy(scores, y); backward; Adam step
        [clamp: every conv/linear weight w ← min(max(w, −c), c)]

The optional clamp (weights only, not biases or batch-norm parameters) tests the
signal-to-noise explanation of the robustness gained under additive noise: with
``clamp=1.0`` the weights cannot grow past 1.

Per epoch (and once before the first step, epoch 0) a dynamics row is recorded: loss,
training accuracy (under the noise), clean and noisy test accuracy (when a test source is
given; noisy = the training noise on at evaluation), and with ``record_dynamics`` the weight
statistics and self-binarization measures of ``dynamics.py``.

One seeded generator per run (rule 5) draws the initial weights, the shuffling and the
noise; the evaluations draw from their own generators, so recording them does not change
the training.
"""
from __future__ import annotations

import math
import time

from .. import backend, optim
from .. import functional as F
from ..algorithm1 import weight_params
from ..runs.evaluation import error_rate
from ..nn import Module
from .dynamics import dynamics_row
from .noise import parse_noise
from .sites import NoisyModel

__all__ = ["train_noisy", "clamp_weights", "build_walk_model"]


def clamp_weights(model, c: float) -> None:
    """Every conv/linear weight clipped in place to [−c, c]."""
    for p in weight_params(model).values():
        xp = backend.xp_of(p.data)
        xp.clip(p.data, -c, c, out=p.data)


def build_walk_model(model_name: str, input_shape, num_classes: int, rng, bn: bool = False,
                     width: float = 1.0):
    """The network ``model_name`` for this input shape (as ``training.build_model`` does)."""
    from ..models import MODELS
    from ..runs.config import TrainConfig
    from ..runs.training import build_model
    key = str(model_name).strip().lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; the models are: {', '.join(MODELS)} "
                         "(Walking Noise uses mlp_tfc and lenet5)")
    cfg = TrainConfig(model=key, bn=bn, width=width)
    return build_model(cfg, tuple(input_shape), num_classes, rng)


def _num_classes(source) -> int:
    y = getattr(source, "y", None)
    if y is None:
        return 10
    return int(backend.to_numpy(y).max()) + 1 if len(y) else 10


def train_noisy(model_name, train_source, noise, sites="all", epochs: int = 1,
                lr: float = 1e-3, batch_size: int = 128, seed: int = 0, clamp=None,
                record_dynamics: bool = True, *, test_source=None, bn: bool = False,
                num_classes: int | None = None, eval_batch_size: int = 500,
                test_subset: int | None = None, progress: bool = False, log=None):
    """Train with noise at ``sites``; returns ``(model, rows)`` (module docstring).

    model_name: "mlp_tfc" | "lenet5" | ... (built with ``bn`` from the seed), or an already
    built model, trained in place. train_source: the training data (``len``, ``.batch(idx)``,
    ``input_shape``), or a pair ``(train_source, test_source)``. noise: a NoiseSpec or text
    with σ (``"additive:sigma=0.5"``; repeats are ignored in training). sites: "all", one
    site or a list (names or indices, see ``sites.NoisyModel``). epochs, lr, batch_size:
    Adam + cosine annealing per step + cross-entropy. seed: the run's generator. clamp: None
    or c > 0, weights clipped to [−c, c] after every step. record_dynamics: weight statistics
    and binarization in every row. test_source, test_subset: scored each epoch, clean and
    noisy. num_classes: default max label + 1 of the training source.

    The model is returned in evaluation mode, without noise (wrap it in ``NoisyModel`` to walk
    it). Raises FloatingPointError naming the step when the loss is not finite.
    """
    if isinstance(train_source, tuple):
        if len(train_source) != 2:
            raise ValueError("train_noisy: give a training source or a pair (train, test)")
        train_source, test_source = train_source
    spec = parse_noise(noise)
    if spec.sigma <= 0:
        raise ValueError(f"train_noisy: the training noise needs sigma > 0 (got {spec}); give "
                         "e.g. NoiseSpec('additive', 0.5) or 'additive:sigma=0.5'")
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1),
                             ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"train_noisy: {name} must be an integer >= {low}, got {value!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"train_noisy: lr must be > 0, got {lr!r}")
    if clamp is not None and not (isinstance(clamp, (int, float)) and clamp > 0):
        raise ValueError(f"train_noisy: clamp must be None or a number c > 0 (weights clipped "
                         f"to [-c, c]), got {clamp!r}")
    rng = backend.make_rng(seed)
    if isinstance(model_name, Module):
        model = model_name
    else:
        if num_classes is None:
            num_classes = _num_classes(train_source)
        model = build_walk_model(model_name, train_source.input_shape, num_classes, rng, bn=bn)
    train_spec = spec.replace(train=True, eval=False, repeats=1)
    noisy = NoisyModel(model, rng).set_noise(train_spec, sites)
    site_names = [noisy.sites[i].name for i in noisy.active]
    optimizer = optim.Adam(model.parameters(), lr=lr)
    n = len(train_source)
    if n < 1:
        raise ValueError("train_noisy: the training source is empty")
    steps_per_epoch = -(-n // batch_size)
    schedule = optim.Cosine(lr, epochs * steps_per_epoch, 0.0)
    log = log or (lambda text: None)
    common = {"noise": spec.kind, "ratio": spec.ratio if spec.kind == "combined" else None,
              "sigma": spec.sigma, "sites": site_names, "clamp": clamp, "seed": seed}

    def evaluate(row, epoch):
        if test_source is not None:
            row["test_accuracy"] = 1.0 - error_rate(model, test_source, eval_batch_size,
                                                    test_subset)
            noisy.set_noise(train_spec.replace(eval=True), noisy.active,
                            rng=backend.make_rng([seed, 21, epoch]))
            row["test_accuracy_noisy"] = 1.0 - error_rate(noisy, test_source, eval_batch_size,
                                                          test_subset)
            noisy.set_noise(train_spec, noisy.active, rng=rng)
        if record_dynamics:
            row.update(dynamics_row(model))
        return row

    rows = [evaluate({"epoch": 0, "step": 0, "lr": lr, "loss": None, "train_accuracy": None,
                      **common, "seconds": 0.0}, 0)]
    step = 0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = backend.permutation(rng, n)
        model.train()
        loss_sum, correct = 0.0, 0
        bar = _bar(progress, steps_per_epoch, f"epoch {epoch}")
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x, y = train_source.batch(idx)
            optimizer.lr = schedule(step)
            scores = noisy(x)
            loss = F.cross_entropy(scores, y)
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"train_noisy: the loss is {value} at epoch {epoch}, step {step} "
                    f"({spec} at {', '.join(site_names)}); the noise may be too strong for "
                    "this learning rate — lower sigma or lr, or clamp the weights")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if clamp is not None:
                clamp_weights(model, float(clamp))
            loss_sum += value * len(idx)
            correct += int((scores.data.argmax(axis=1) == y).sum())
            step += 1
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                bar.update(1)
        if bar is not None:
            bar.close()
        model.eval()
        row = {"epoch": epoch, "step": step, "lr": optimizer.lr, "loss": loss_sum / n,
               "train_accuracy": correct / n, **common,
               "seconds": round(time.perf_counter() - start, 3)}
        rows.append(evaluate(row, epoch))
        log(f"epoch {epoch}: loss {row['loss']:.4f}, train acc {100 * row['train_accuracy']:.2f}%"
            + (f", test {100 * row['test_accuracy']:.2f}% (noisy "
               f"{100 * row['test_accuracy_noisy']:.2f}%)" if "test_accuracy" in row else ""))
    model.eval()
    return model, rows


def _bar(enabled, total, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
