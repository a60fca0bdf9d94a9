"""Noisy training: train a network with activation noise on at chosen sites.

A named training set-up (``setups.py``; default: the authors', docs/papers.md §2.6 — PyTorch's
initial weights and biases, Adam with learning rate 1e-3, cosine annealing per epoch down to 0,
cross-entropy, batch 128, their epochs and augmentation per dataset) — with the noise of a
:class:`~tinyproj.walking_noise.noise.NoiseSpec` switched on in *training-mode* passes at
the chosen sites (``sites.NoisyModel``). Backpropagation goes through the drawn noise
(``noise.Noise``).

There is no second training loop here: :func:`train_noisy` describes the run as a
:class:`~tinyproj.runs.config.TrainConfig` (the noise, sites and clamp in its ``extra``)
and hands it to THE loop, ``runs.training.train``, with the model wrapped in a
``NoisyModel`` (``wrap=``). So noisy training gets what every run gets: checkpoints,
exact resume, Ctrl-C/SIGTERM, NaN stops — when given a run folder (``out=``). One epoch::

    lr ← ½·lr₀·(1 + cos(π·epoch/epochs))     (the authors'; legacy: the same per step)
    for each minibatch (x, y), shuffled with the run's generator [cropped and flipped]:
        scores = noisy_model(x)              # noise drawn fresh at the active sites
        loss = cross_entropy(scores, y); backward; Adam step
        [clamp: every conv/linear weight w ← min(max(w, −c), c)]   (Algorithm 1's clip)

The optional clamp (weights only, not biases or batch-norm parameters) tests the
signal-to-noise explanation of the robustness gained under additive noise: with
``clamp=1.0`` the weights cannot grow past 1.

Per epoch (and once before the first step, epoch 0) a dynamics row is recorded: loss,
training accuracy (under the noise), clean and noisy test accuracy (when a test source is
given; noisy = the training noise on at evaluation), and with ``record_dynamics`` the weight
statistics and self-binarization measures of ``dynamics.py``.

The paper's noisy-training curves train one such network per (site, σ, seed) and test it at
its own σ: ``protocol.train_at_sigma`` (``tinyproj walk --protocol train-at-sigma``).

One seeded generator per run (rule 5) draws the initial weights, the shuffling and the
noise; the noisy evaluations draw from their own generators, so recording them does not
change the training.
"""
from __future__ import annotations

import math

from .. import backend
from ..errors import UserError
from ..nn import Module
from ..runs.config import TrainConfig
from ..runs.evaluation import error_rate
from ..runs.training import build_model, train
from .dynamics import dynamics_row
from .noise import parse_noise
from .setups import DEFAULT_SETUP, LEGACY, model_settings, setup_settings, setup_tag
from .sites import NoisyModel

__all__ = ["train_noisy", "clamp_weights", "build_walk_model", "SETUP", "LEGACY_SETUP"]

SETUP = {k: v for k, v in setup_settings(DEFAULT_SETUP, "mlp_tfc", "synthetic").items()
         if k not in ("epochs", "augment")}
"""The walk's default training recipe, the authors' (``setups.py``), as TrainConfig settings
without the ones that depend on the data (epochs, normalisation, augmentation): PyTorch's
init and biases, Adam 1e-3, cosine per epoch to 0, cross-entropy, batch 128, no validation
split, no projection, no clipping. For one (model, dataset): ``setups.setup_settings``."""

LEGACY_SETUP = {k: v for k, v in setup_settings(LEGACY).items() if k != "epochs"}
"""tinyproj's earlier recipe (``--setup legacy``): Glorot, cosine per step, the rest as SETUP."""


def clamp_weights(model, c: float) -> None:
    """Every conv/linear weight clipped in place to [−c, c] (what ``clamp=c`` does per step)."""
    from ..algorithm1 import clip, weight_params
    weights = weight_params(model)
    clip(weights, {name: float(c) for name in weights})


def build_walk_model(model_name: str, input_shape, num_classes: int, rng, bn: bool = False,
                     width: float = 1.0, setup: str = DEFAULT_SETUP):
    """The network ``model_name`` for this input shape (the one model factory), with the
    initial weights and biases of ``setup`` (the authors': PyTorch's U(±1/√fan_in), a bias
    in every layer; legacy: Glorot, biases only without batch norm)."""
    key = str(model_name).strip().lower().replace("-", "_")
    cfg = TrainConfig(model=key, bn=bn, width=width, **model_settings(setup, key))
    return build_model(cfg, tuple(input_shape), num_classes, rng)


def source_classes(source) -> int:
    """The number of classes of a data source: its largest label + 1 (10 without labels)."""
    y = getattr(source, "y", None)
    if y is None:
        return 10
    return int(backend.to_numpy(y).max()) + 1 if len(y) else 10


_BUILT = {"MLPTFC": "mlp_tfc", "LeNet5": "lenet5", "BCCifar10": "bc_cifar10",
          "AlexNetBN": "alexnet_bn"}
"""Model class -> factory name (a model handed in already built)."""


class _First:
    """The first ``n`` examples of a source (``test_subset``)."""

    def __init__(self, source, n):
        self.source, self.n = source, min(n, len(source))
        self.input_shape = getattr(source, "input_shape", None)

    def __len__(self):
        return self.n

    def batch(self, indices):
        return self.source.batch(indices)


def train_noisy(model_name, train_source, noise, sites="all", epochs: int | None = None,
                lr: float | None = None, batch_size: int | None = None, seed: int = 0,
                clamp=None,
                record_dynamics: bool = True, *, test_source=None, bn: bool = False,
                num_classes: int | None = None, eval_batch_size: int = 500,
                test_subset: int | None = None, progress: bool = False, log=None,
                out=None, resume: bool = False, dataset: str = "synthetic",
                allow_clean: bool = False, setup: str = DEFAULT_SETUP):
    """Train with noise at ``sites``; returns ``(model, rows)`` (module docstring).

    model_name: "mlp_tfc" | "lenet5" | ... (built with ``bn`` from the seed), or an already
    built model, trained in place. train_source: the training data (``len``, ``.batch(idx)``,
    ``input_shape``), or a pair ``(train_source, test_source)``. noise: a NoiseSpec or text
    with σ (``"additive:sigma=0.5"``; repeats are ignored in training). sites: "all", one
    site or a list (names or indices, see ``sites.NoisyModel``). setup: the training set-up
    (``setups.py``; default the authors'); epochs, lr, batch_size: None takes the set-up's for
    (model, ``dataset``). seed: the run's generator (weights, shuffling, noise). clamp: None
    or c > 0, weights clipped to [−c, c] after every step. record_dynamics: weight statistics
    and binarization in every row. test_source, test_subset: scored each epoch, clean and
    noisy. num_classes: default max label + 1 of the training source. out: a run folder
    (checkpoints, metrics.jsonl; ``resume=True`` continues it); dataset: the data's name,
    recorded in its config.json, and what the set-up is resolved for (its augmentation is
    applied to the training batches; its normalisation is the data's: load the data with
    it). A model handed in keeps its own initial weights. allow_clean: σ = 0 trains the network cleanly through the
    same loop (the σ = 0 point of a linear grid in the train-at-σ protocol, ``protocol.py``);
    otherwise σ must be > 0.

    The model is returned in evaluation mode, without noise (wrap it in ``NoisyModel`` to walk
    it). Raises FloatingPointError naming the step when the loss is not finite.
    """
    if isinstance(train_source, tuple):
        if len(train_source) != 2:
            raise UserError("train_noisy: give a training source or a pair (train, test)")
        train_source, test_source = train_source
    spec = parse_noise(noise)
    if spec.sigma <= 0 and not (allow_clean and spec.sigma == 0):
        raise UserError(f"train_noisy: the training noise needs sigma > 0 (got {spec}); give "
                        "e.g. NoiseSpec('additive', 0.5) or 'additive:sigma=0.5'")
    if clamp is not None and not (isinstance(clamp, (int, float)) and clamp > 0):
        raise UserError(f"train_noisy: clamp must be None or a number c > 0 (weights clipped "
                        f"to [-c, c]), got {clamp!r}")
    if len(train_source) < 1:
        raise UserError("train_noisy: the training source is empty")
    model = model_name if isinstance(model_name, Module) else None
    name = str(model_name)
    if model is not None:                  # a built model: its factory name, its batch norm
        from ..nn.batchnorm import BatchNormBase
        name = _BUILT.get(type(model).__name__, "mlp_tfc")
        bn = any(isinstance(m, BatchNormBase) for m in model.modules()) and \
            name in ("mlp_tfc", "lenet5")
    else:
        from .. import models
        key = name.strip().lower().replace("-", "_")
        if key not in models.MODELS:
            raise UserError(f"unknown model {model_name!r}; the models are: "
                            f"{', '.join(models.MODELS)} (Walking Noise uses mlp_tfc and lenet5)")
        name = key
    settings = setup_settings(setup, name, dataset)
    epochs, lr, batch_size = (settings[k] if v is None else v for k, v in
                              (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)))
    for label, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1),
                              ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UserError(f"train_noisy: {label} must be an integer >= {low}, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise UserError(f"train_noisy: lr must be > 0, got {lr!r}")
    if num_classes is None:
        num_classes = source_classes(train_source)
    if test_source is not None and test_subset is not None:
        test_source = _First(test_source, test_subset)
    train_spec = spec.replace(train=True, eval=False, repeats=1)
    probe = NoisyModel(model if model is not None else
                       build_walk_model(name, train_source.input_shape, num_classes,
                                        backend.make_rng(0), bn=bn, setup=setup), None)
    site_names = [probe.sites[i].name for i in probe.resolve_sites(sites)]
    common = {"noise": spec.kind, "ratio": spec.ratio if spec.kind == "combined" else None,
              "sigma": spec.sigma, "sites": site_names, "clamp": clamp, "seed": seed}
    cfg = TrainConfig(**dict(settings, model=name, bn=bn,
                             dataset=dataset, epochs=epochs, lr=lr, batch_size=batch_size,
                             seed=seed, eval_batch_size=eval_batch_size,
                             out=None if out is None else str(out),
                             extra={"noise": str(spec), "sites": site_names, "clamp": clamp,
                                    **setup_tag(setup)}))
    noisy = {}

    def wrap(m, rng):
        noisy["model"] = NoisyModel(m, rng).set_noise(train_spec, site_names)
        return noisy["model"]

    def on_eval(m, row):
        epoch = row["epoch"]
        row.update(loss=row["train_loss"],
                   train_accuracy=None if row["train_error"] is None else 1 - row["train_error"],
                   **common)
        if test_source is not None:
            row["test_accuracy"] = 1.0 - row["test_error"]["none"]
            checker = NoisyModel(m, backend.make_rng([seed, 21, epoch]))
            checker.set_noise(train_spec.replace(eval=True), site_names)
            row["test_accuracy_noisy"] = 1.0 - error_rate(checker, test_source, eval_batch_size)
        if record_dynamics:
            row.update(dynamics_row(m))
        previous = on_eval.last_seconds
        row["seconds"] = round(row["train_seconds"] - previous, 3)
        on_eval.last_seconds = row["train_seconds"]

    on_eval.last_seconds = 0.0
    say = log or (lambda text: None)
    trained, rows = train(cfg, resume=resume, progress=progress, log=say,
                          data=(train_source, None, test_source, tuple(train_source.input_shape),
                                num_classes),
                          model=model, wrap=wrap, on_eval=on_eval, eval_at_start=True)
    trained.eval()
    return trained, rows
