"""Cross-robustness: does robustness learned against one perturbation carry over to another?

Merolla et al. train with *weight* projections and clipping and test against weight
distortions; Walking Noise trains with *activation* noise and tests against activation
noise. This module puts both in one table::

                     weights:       weights:        activations:      activations:
                     AddNorm σ      MultUnif γ      additive σ        multiplicative σ
    tr-none-nc         μ               μ               μ                  μ
    tr-sign-c          μ               μ               μ                  μ
    tr-stoch-c         ...
    noisy-additive     ...
    noisy-mult.        ...

Rows are **training regimes** (:class:`Regime`): Algorithm 1 with a projection and
clipping (``"sign"`` + clip, ``"stoch"`` + clip, and the plain baseline ``"none"`` without
clipping), trained with :func:`tinyproj.runs.training.train`; and noisy training with additive or
multiplicative activation noise at every site, trained with
:func:`tinyproj.walking_noise.train_noisy`. All on the same network (``mlp_tfc``), data,
optimizer (Adam 1e-3, batch 128, cross-entropy) and number of epochs.

Columns are **test perturbations** (:class:`Perturbation`), each swept over a grid:

* weight distortions (Merolla's protocol): ``robustness.score_distortion`` per level
  (K draws, batch norm re-estimated on training data with the distorted weights), the
  midpoint from ``robustness.midpoints``: the level where the test error is halfway from
  the clean error (σ = 0 / γ = 1) to chance;
* activation noise at all sites at once (Walking Noise's global noise):
  ``walk(model, ..., sites="all")`` per σ, the midpoint from ``midpoint_sigma``: the σ
  where the accuracy is halfway from its best value on the grid to chance.

Each cell is one midpoint (:class:`Cell`). Larger σ (smaller γ for MultUnif, whose noise
grows as γ falls) = more robust. A cell whose accuracy never fell halfway on the grid has
no number: it lies *beyond the grid* (``> max σ``; ``< min γ``).

    from tinyproj.walking_noise import cross
    data = cross.load_data("mnist", data_dir="/path/to/datasets")
    models = cross.train_regimes(cross.DEFAULT_REGIMES, data, epochs=5, out_dir="runs/cross")
    table = cross.cross_robustness(models, cross.default_perturbations(), data)
    cross.write_cross_table(table, "runs/cross")      # cross_robustness.csv and .md

Units differ between columns (σ of AddNorm is relative to α = max |w| of each layer; σ of
activation noise is absolute), so compare numbers *down* a column, not across a row.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import backend, robustness
from ..runs import training
from ..runs.files import atomic_write_text
from ..data import load_dataset
from ..data.sources import ArraySource
from ..runs.evaluation import error_rate, reestimate_batchnorm, saved_batchnorm_stats
from ..runs.config import make_config
from .midpoint import midpoint_sigma
from .noise import parse_noise
from .noisy_training import train_noisy
from .walk import walk

__all__ = ["Regime", "DEFAULT_REGIMES", "Perturbation", "default_perturbations",
           "CrossData", "load_data", "train_regime", "train_regimes", "Cell", "CrossTable",
           "cross_robustness", "measure_cell", "format_cell", "cross_rows",
           "cross_markdown", "cross_csv", "write_cross_table", "CROSS_FILES"]

CROSS_FILES = ("cross_robustness.csv", "cross_robustness.md")
"""The files :func:`write_cross_table` writes."""


# ---------------------------------------------------------------------------
# Rows: training regimes
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Regime:
    """One way of training the network (a row of the table).

    name        row key and run-folder name, e.g. ``"tr-sign-c"``
    method      ``"algorithm1"`` (weight projection + clipping, ``training.train``) or
                ``"noisy"`` (activation noise at every site, ``train_noisy``)
    projection  algorithm1: the training projection (``"none"``, ``"sign"``, ``"stoch"``, ...)
    clip        algorithm1: f of the clip bounds c_k = f·std(Glorot init), ``"NC"`` for none
    noise       noisy: the training noise as text, e.g. ``"additive:sigma=0.3"``
    description what the row is, in words (the table's legend)
    """

    name: str
    method: str = "algorithm1"
    projection: str = "none"
    clip: float | str = "NC"
    noise: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.method not in ("algorithm1", "noisy"):
            raise ValueError(f"regime {self.name!r}: method must be 'algorithm1' (weight "
                             f"projection + clipping) or 'noisy' (activation noise); got "
                             f"{self.method!r}")
        if self.method == "noisy":
            if not self.noise:
                raise ValueError(f"regime {self.name!r}: noisy training needs noise=..., e.g. "
                                 "'additive:sigma=0.3'")
            if parse_noise(self.noise).sigma <= 0:
                raise ValueError(f"regime {self.name!r}: the training noise needs sigma > 0, "
                                 f"e.g. '{parse_noise(self.noise).label}:sigma=0.3'; got "
                                 f"{self.noise!r}")

    @property
    def label(self) -> str:
        """The row heading: the name, and the training noise for a noisy regime."""
        if self.method == "noisy":
            return f"{self.name} ({self.noise})"
        return self.name


DEFAULT_REGIMES = (
    Regime("tr-none-nc", "algorithm1", "none", "NC",
           description="plain backprop, no clipping (the baseline)"),
    Regime("tr-sign-c", "algorithm1", "sign", 0.5,
           description="Algorithm 1 with Sign(W) in the passes, clip f = 0.5"),
    Regime("tr-stoch-c", "algorithm1", "stoch", 0.5,
           description="Algorithm 1 with stochastic binarization, clip f = 0.5"),
    Regime("noisy-additive", "noisy", noise="additive:sigma=0.5",
           description="additive activation noise N(0, 0.5²) at every site during training"),
    Regime("noisy-multiplicative", "noisy", noise="multiplicative:sigma=0.5",
           description="multiplicative activation noise N(1, 0.5²) at every site during "
                       "training"),
)
"""The table's rows: Merolla's regimes (baseline, Sign-C, Stoch-C) and Walking Noise's
noisy training (additive, multiplicative)."""


# ---------------------------------------------------------------------------
# Columns: test perturbations
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Perturbation:
    """One test perturbation swept over a grid (a column of the table).

    name     column key: ``"addnorm"``, ``"multunif"``, ``"act-additive"``, ...
    family   ``"weight"`` (a Merolla distortion) or ``"activation"`` (Walking Noise)
    kind     the distortion (``"addnorm"``, ``"multunif"``) or noise kind
             (``"additive"``, ``"multiplicative"``, ``"combined"``)
    levels   the grid (σ, or γ for MultUnif)
    label    the column heading
    symbol   ``"σ"`` or ``"γ"``
    worse    ``"up"`` when more perturbation is a larger level, ``"down"`` when smaller (γ)
    """

    name: str
    family: str
    kind: str
    levels: tuple
    label: str = ""
    symbol: str = "σ"
    worse: str = "up"

    def __post_init__(self):
        if self.family not in ("weight", "activation"):
            raise ValueError(f"perturbation {self.name!r}: family must be 'weight' or "
                             f"'activation'; got {self.family!r}")
        if self.family == "weight":
            robustness.get_distortion(self.kind)            # raises for an unknown name
        if not self.levels:
            raise ValueError(f"perturbation {self.name!r}: no levels to sweep")
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def grid_edge(self) -> float:
        """The grid's most perturbing level: max σ (or min γ for a "down" perturbation)."""
        return max(self.levels) if self.worse == "up" else min(self.levels)


def _log_grid(lo_exp: int, hi_exp: int, per_decade: int) -> tuple:
    n = (hi_exp - lo_exp) * per_decade
    return tuple(float(f"{10 ** (lo_exp + k / per_decade):.4g}") for k in range(n + 1))


def default_perturbations(quick: bool = False) -> list:
    """The table's four columns with their grids (shorter grids in quick mode).

    AddNorm σ 0 … 2 and MultUnif γ 1 … 0.02 (Merolla's grids, extended so that robust
    networks still cross), additive and multiplicative activation noise σ on a log grid
    10^-2 … 10^3 (Walking Noise sweeps from 10^-2; an MNIST MLP breaks long before 10^10).
    """
    if quick:
        addnorm = (0.0, 0.25, 0.5, 1.0, 2.0)
        multunif = (1.0, 0.5, 0.2, 0.05)
        acts = _log_grid(-2, 3, 1)
    else:
        addnorm = (0.0, 0.1, 0.2, 0.3, 0.4, 0.55, 0.7, 0.85, 1.0, 1.5, 2.0)
        multunif = (1.0, 0.9, 0.75, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
        acts = _log_grid(-2, 3, 3)
    return [
        Perturbation("addnorm", "weight", "addnorm", addnorm, "weights: AddNorm σ", "σ", "up"),
        Perturbation("multunif", "weight", "multunif", multunif, "weights: MultUnif γ", "γ",
                     "down"),
        Perturbation("act-additive", "activation", "additive", acts,
                     "activations: additive σ", "σ", "up"),
        Perturbation("act-multiplicative", "activation", "multiplicative", acts,
                     "activations: multiplicative σ", "σ", "up"),
    ]


# ---------------------------------------------------------------------------
# Data and training
# ---------------------------------------------------------------------------
@dataclass
class CrossData:
    """What every regime is trained and tested on.

    train, test       sources with ``len()`` and ``.batch(indices) -> (x, y)``
    num_classes       10 for MNIST
    dataset, data_dir the dataset's name and folder (training.train loads it by name)
    train_subset, test_subset   first N images used (None: all)
    """

    train: object
    test: object
    num_classes: int = 10
    dataset: str = "mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.num_classes


def load_data(dataset: str = "mnist", data_dir=None, train_subset: int | None = None,
              test_subset: int | None = None, download: bool = False) -> CrossData:
    """The training and test sources of ``dataset`` (first N images when subsets are given).

    data_dir: the folder holding ``mnist/`` (default ``$TINYPROJ_DATA`` or ``./datasets``).
    ``"synthetic"``: the small made-up set of ``load_dataset("synthetic")`` (1000 training
    and 200 test images of 3×32×32), for trying things out without MNIST.
    """
    if str(dataset).lower() == "synthetic":
        ds = load_dataset("synthetic")        # exactly what training.train loads by name
    else:
        ds = load_dataset(dataset, data_dir=data_dir, download=download)
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if train_subset:
        x, y = x[:train_subset], y[:train_subset]
    if test_subset:
        xt, yt = xt[:test_subset], yt[:test_subset]
    return CrossData(ArraySource(x, y), ArraySource(xt, yt), ds.num_classes, str(dataset),
                     None if data_dir is None else str(data_dir), train_subset, test_subset)


def train_regime(regime: Regime, data: CrossData, *, epochs: int = 5, bn: bool = True,
                 out_dir=None, seed: int = 0, lr: float = 1e-3, batch_size: int = 128,
                 lr_schedule: str = "cosine", progress: bool = False, log=None):
    """Train ``mlp_tfc`` on ``data`` the way ``regime`` says; returns the model (eval mode).

    algorithm1 regimes go through :func:`tinyproj.runs.training.train` (a run folder
    ``out_dir/<name>``, made afresh; Adam, cross-entropy, the regime's projection and clip
    f); noisy regimes through :func:`tinyproj.walking_noise.train_noisy` with the regime's
    noise at every site. Both: Adam ``lr``, ``batch_size``, the same seed, ``epochs``,
    cosine annealing of the learning rate (Walking Noise's schedule) unless told otherwise.

    Algorithm-1 regimes load their images by name (``data.dataset``, ``data.data_dir``,
    ``data.train_subset``), noisy ones use ``data.train``: make ``data`` with
    :func:`load_data` so that both see the same images.

    bn: batch norm after every hidden layer (``mlp_tfc(bn=True)``, 11 noise sites). On by
    default: Merolla's networks all have it, and without it the clip bounds
    c_k = 0.5·std(Glorot) shrink the MLP's outputs so much that the clipped regimes
    hardly learn (about 17 % error on MNIST after 3 epochs, against 4 % with batch norm).
    """
    log = log or (lambda *a: None)
    if regime.method == "noisy":
        if lr_schedule != "cosine":
            raise ValueError(f"regime {regime.name!r}: train_noisy anneals the learning rate "
                             f"with a cosine (Walking Noise); lr_schedule={lr_schedule!r} is "
                             "not available for noisy regimes")
        spec = parse_noise(regime.noise).replace(train=True, eval=False)
        model, _ = train_noisy("mlp_tfc", data.train, spec, sites="all", epochs=epochs, lr=lr,
                               batch_size=batch_size, seed=seed, record_dynamics=False,
                               bn=bn, num_classes=data.num_classes, progress=progress,
                               log=log)
        model.eval()
        return model
    if out_dir is None:
        raise ValueError(f"regime {regime.name!r}: training.train needs a run folder; pass "
                         "out_dir=... (each regime gets out_dir/<name>)")
    folder = Path(out_dir) / regime.name
    shutil.rmtree(folder, ignore_errors=True)           # a cross-table run is disposable
    cfg = make_config(model="mlp_tfc", bn=bn, dataset=data.dataset, data_dir=data.data_dir,
                      train_subset=data.train_subset, test_subset=data.test_subset,
                      val_size=0, loss="cross_entropy", optimizer="adam", lr=lr,
                      lr_schedule=lr_schedule, lr_final=0.0, batch_size=batch_size,
                      epochs=epochs, seed=seed, projection=regime.projection,
                      clip=regime.clip, test_projections=["none"], eval_every=epochs,
                      out=str(folder))
    model, _ = training.train(cfg, progress=progress, log=log)
    model.eval()
    return model


def train_regimes(regimes, data: CrossData, *, log=print, **options) -> dict:
    """``{regime name: trained model}`` for every regime (see :func:`train_regime`).

    Logs one line per regime: its clean test accuracy and the time it took.
    """
    models = {}
    for regime in regimes:
        start = time.perf_counter()
        models[regime.name] = train_regime(regime, data, **options)
        acc = 1.0 - error_rate(models[regime.name], data.test)
        log(f"trained {regime.name:22s} clean test accuracy {100 * acc:6.2f} %  "
            f"({time.perf_counter() - start:.1f} s)")
    return models


# ---------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------
@dataclass
class Cell:
    """One midpoint: a regime under a perturbation.

    regime, perturbation   the row and column names
    level        the midpoint (σ or γ), None when not reached on the grid or undefined
    beyond_grid  True when accuracy never fell halfway to chance on the grid
    grid_edge    the grid's most perturbing level (max σ, min γ)
    clean_accuracy  accuracy without perturbation (weights: at σ = 0 / γ = 1, batch norm
                 re-estimated; activations: the best accuracy on the grid)
    threshold    the accuracy at the midpoint: halfway from clean_accuracy to chance
    levels, accuracies   the measured curve
    note         why there is no level, when there is none
    """

    regime: str
    perturbation: str
    level: float | None
    beyond_grid: bool
    grid_edge: float
    clean_accuracy: float
    threshold: float
    levels: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    note: str = ""


def _weight_cell(name, model, p: Perturbation, data: CrossData, *, draws, seed, bn_batches,
                 bn_batch_size, test_subset) -> Cell:
    dist = robustness.get_distortion(p.kind)
    levels = list(p.levels)
    if dist.identity not in levels:                 # the clean error is measured, not guessed
        levels.insert(0, dist.identity)
    chance_error = 1.0 - data.chance_accuracy
    rows = []
    for level in levels:
        s = robustness.score_distortion(model, data.train, data.test, dist.spec(level),
                                        draws=draws, seed=seed, bn_batches=bn_batches,
                                        bn_batch_size=bn_batch_size, test_subset=test_subset)
        rows.append({"distortion": dist.name, "layer": None, "level": float(level),
                     "error_mean": float(s.mean), "chance_error": chance_error})
    mid = robustness.midpoints(rows, dist.name, side=p.worse)[None]
    return Cell(name, p.name, mid.level, bool(mid.beyond_grid), p.grid_edge,
                1.0 - mid.clean_error, 1.0 - mid.threshold,
                [r["level"] for r in rows], [1.0 - r["error_mean"] for r in rows], mid.note)


def _activation_cell(name, model, p: Perturbation, data: CrossData, *, seed, bn_batches,
                     test_subset, bn_protocol, repeats) -> Cell:
    rows = walk(model, data.train, data.test, p.kind, list(p.levels), sites="all",
                bn_protocol=bn_protocol, repeats=repeats, seed=seed, test_subset=test_subset,
                bn_batches=bn_batches, progress=False)
    pts = sorted((float(r["sigma"]), float(r["accuracy"])) for r in rows)
    sigmas, accs = [s for s, _ in pts], [a for _, a in pts]
    mid = midpoint_sigma(sigmas, accs, chance=data.chance_accuracy)
    note = ""
    if mid.sigma is None:
        note = ("accuracy stays above the threshold on the whole grid" if mid.beyond_grid
                else "the best accuracy is already at chance")
    return Cell(name, p.name, mid.sigma, bool(mid.beyond_grid), p.grid_edge,
                float(mid.max_accuracy), float(mid.threshold), sigmas, accs, note)


def measure_cell(name, model, perturbation: Perturbation, data: CrossData, *, draws=3,
                 seed=0, bn_batches=20, bn_batch_size=50, test_subset=None,
                 bn_protocol="running", repeats=1) -> Cell:
    """Sweep one perturbation on one trained model and find its midpoint (a :class:`Cell`)."""
    if perturbation.family == "weight":
        return _weight_cell(name, model, perturbation, data, draws=draws, seed=seed,
                            bn_batches=bn_batches, bn_batch_size=bn_batch_size,
                            test_subset=test_subset)
    return _activation_cell(name, model, perturbation, data, seed=seed, bn_batches=bn_batches,
                            test_subset=test_subset, bn_protocol=bn_protocol, repeats=repeats)


@dataclass
class CrossTable:
    """The cross-robustness table: ``cells[(regime, perturbation name)] -> Cell``.

    regimes          row names in order
    perturbations    the :class:`Perturbation` columns in order
    regime_labels    ``{name: row heading}``
    clean_accuracy   ``{name: clean test accuracy}`` (no perturbation, stored statistics)
    settings         how the table was measured (draws, seed, bn_protocol, ...)
    """

    regimes: list
    perturbations: list
    cells: dict
    regime_labels: dict = field(default_factory=dict)
    clean_accuracy: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def cell(self, regime: str, perturbation: str) -> Cell:
        try:
            return self.cells[(regime, perturbation)]
        except KeyError:
            raise KeyError(f"no cell for regime {regime!r} and perturbation {perturbation!r}; "
                           f"regimes: {', '.join(self.regimes)}; perturbations: "
                           f"{', '.join(p.name for p in self.perturbations)}") from None

    @property
    def rows(self) -> list:
        """One flat dict per regime (see :func:`cross_rows`)."""
        return cross_rows(self)


@contextlib.contextmanager
def _recalibrated(model, data, enabled, bn_batches, bn_batch_size, seed):
    """Inside: batch norm re-estimated on clean training data; the trained statistics are
    put back on exit (a no-op for a model without batch norm, or when not enabled)."""
    if not enabled or not bn_batches or not hasattr(model, "modules"):
        yield model
        return
    with saved_batchnorm_stats(model):
        reestimate_batchnorm(model, data.train, bn_batches, bn_batch_size,
                             backend.make_rng([seed, 31]))
        yield model


def _named_models(regimes) -> list:
    """``[(name, model)]`` from a dict, (name, model) pairs, or objects with .name/.model."""
    if isinstance(regimes, dict):
        return list(regimes.items())
    out = []
    for item in regimes:
        if isinstance(item, tuple) and len(item) == 2:
            out.append(item)
        elif hasattr(item, "name") and hasattr(item, "model"):
            out.append((item.name, item.model))
        else:
            raise TypeError("cross_robustness: regimes must be {name: trained model} "
                            "(see train_regimes), (name, model) pairs or objects with .name "
                            f"and .model; got {type(item).__name__}")
    return out


def cross_robustness(regimes, perturbations, data: CrossData, *, draws: int = 3,
                     seed: int = 0, bn_batches: int = 20, bn_batch_size: int = 50,
                     test_subset: int | None = None, bn_protocol: str = "running",
                     repeats: int = 1, recalibrate_bn: bool = True,
                     labels: dict | None = None, progress: bool = True,
                     log=print) -> CrossTable:
    """Every regime's midpoint under every perturbation: the cross-robustness table.

    regimes: ``{name: trained model}`` (from :func:`train_regimes`). perturbations: the
    columns (:func:`default_perturbations`). data: the :class:`CrossData` the models were
    trained on (training images re-estimate batch norm; test images are scored).
    draws: random draws per weight-distortion level (the mean error is used).
    bn_batches: training batches for batch-norm re-estimation (weights: always, Merolla's
    protocol; activations: only with ``bn_protocol="reestimate"``). bn_protocol: activation
    walks keep the trained statistics (``"running"``, Walking Noise's protocol) or
    re-estimate them with noise on (``"reestimate"``). repeats: noisy passes averaged per
    activation-noise evaluation. test_subset: score only the first N test images.
    recalibrate_bn: before measuring a model, re-estimate its batch-norm statistics once on
    clean training data with its own full-precision weights (``bn_batches`` batches), and
    put the trained statistics back afterwards. Training left statistics that belong to
    something else — Algorithm 1 collects them with the *projected* weights P = Sign(W)
    (Merolla et al. re-estimate for every test, Te-None included), noisy training with the
    noise on — so without this the clean accuracy and the activation walks of those rows
    would be scored with mismatched statistics. labels: ``{name: row heading}``.
    Returns a :class:`CrossTable`.
    """
    named = _named_models(regimes)
    perturbations = list(perturbations)
    if not named or not perturbations:
        raise ValueError("cross_robustness: need at least one regime and one perturbation")
    names = [p.name for p in perturbations]
    if len(set(names)) != len(names):
        raise ValueError(f"cross_robustness: perturbation names must differ; got {names}")
    log = log if progress else (lambda *a: None)
    cells, clean = {}, {}
    for name, model in named:
        with _recalibrated(model, data, recalibrate_bn, bn_batches, bn_batch_size, seed):
            clean[name] = 1.0 - error_rate(model, data.test, limit=test_subset)
            for p in perturbations:
                start = time.perf_counter()
                cell = measure_cell(name, model, p, data, draws=draws, seed=seed,
                                    bn_batches=bn_batches, bn_batch_size=bn_batch_size,
                                    test_subset=test_subset, bn_protocol=bn_protocol,
                                    repeats=repeats)
                cells[(name, p.name)] = cell
                log(f"{name:22s} {p.label:32s} midpoint {format_cell(cell, p):>9s}  "
                    f"({time.perf_counter() - start:.1f} s)")
    settings = dict(draws=draws, seed=seed, bn_batches=bn_batches, bn_batch_size=bn_batch_size,
                    test_subset=test_subset, bn_protocol=bn_protocol, repeats=repeats,
                    recalibrate_bn=recalibrate_bn, chance_accuracy=data.chance_accuracy)
    return CrossTable([n for n, _ in named], perturbations, cells, dict(labels or {}), clean,
                      settings)


# ---------------------------------------------------------------------------
# Writing the table
# ---------------------------------------------------------------------------
def _number(v: float) -> str:
    """A midpoint in 3 significant digits (plain for 0.001 … 9999, else 1.2e+05)."""
    return f"{v:.3g}"


def format_cell(cell: Cell, perturbation: Perturbation) -> str:
    """The text of a cell: ``"0.42"``, ``"> 2"`` / ``"< 0.02"`` beyond the grid, ``"—"``."""
    if cell.level is not None:
        return _number(cell.level)
    if cell.beyond_grid:
        sign = ">" if perturbation.worse == "up" else "<"
        return f"{sign} {_number(cell.grid_edge)}"
    return "—"


def cross_rows(table: CrossTable) -> list:
    """One flat dict per regime, the CSV's rows.

    ``regime``, ``label``, ``clean_accuracy``, then per perturbation ``<name>`` (the
    midpoint, None when there is none), ``<name>_beyond_grid`` (bool) and
    ``<name>_grid_edge`` (the grid's max σ / min γ).
    """
    rows = []
    for regime in table.regimes:
        row = {"regime": regime, "label": table.regime_labels.get(regime, regime),
               "clean_accuracy": table.clean_accuracy.get(regime)}
        for p in table.perturbations:
            cell = table.cell(regime, p.name)
            row[p.name] = cell.level
            row[f"{p.name}_beyond_grid"] = bool(cell.beyond_grid)
            row[f"{p.name}_grid_edge"] = cell.grid_edge
        rows.append(row)
    return rows


def cross_csv(table: CrossTable) -> str:
    """The table as CSV text: midpoints as numbers, empty (and ``_beyond_grid`` = 1) when
    the grid was not enough, empty (``_beyond_grid`` = 0) when undefined."""
    rows = cross_rows(table)
    fields = list(rows[0]) if rows else ["regime"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        out = {}
        for k, v in row.items():
            if isinstance(v, bool):
                out[k] = int(v)
            elif isinstance(v, float):
                out[k] = repr(v) if math.isfinite(v) else ""
            else:
                out[k] = "" if v is None else v
        writer.writerow(out)
    return buf.getvalue()


def cross_markdown(table: CrossTable, title: str = "Cross-robustness") -> str:
    """The table as Markdown: one row per regime, one column per perturbation, with a
    legend explaining the numbers."""
    perts = table.perturbations
    head = ["training regime", "clean acc. (%)"] + [p.label for p in perts]
    lines = [f"## {title}", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for regime in table.regimes:
        acc = table.clean_accuracy.get(regime)
        cells = [format_cell(table.cell(regime, p.name), p) for p in perts]
        lines.append("| " + " | ".join([table.regime_labels.get(regime, regime),
                                        "" if acc is None else f"{100 * acc:.2f}"] + cells)
                     + " |")
    s = table.settings
    chance = f" ({100 * s['chance_accuracy']:g} %)" if "chance_accuracy" in s else ""
    lines += ["", "Each cell is the **midpoint**: the perturbation level at which test accuracy "
              f"has fallen halfway from its clean value to chance{chance}"
              ". Larger σ (smaller γ) = more robust. `> x` (`< x` for γ): accuracy never fell "
              "halfway on the grid, whose edge is x; `—`: no midpoint (the network is at "
              "chance without perturbation).", "",
              "* weights: AddNorm σ is relative to α = max |w| of each layer; MultUnif "
              "multiplies each weight by U(γ, 1/γ). Batch norm re-estimated on training data "
              "per draw (Merolla et al.'s protocol)"
              + (f", mean over {s['draws']} draw{'s' if s['draws'] != 1 else ''}."
                 if "draws" in s else "."),
              "* activations: noise at every site at once (Walking Noise's global noise), σ "
              "absolute; batch norm "
              + ("re-estimated with the noise on." if s.get("bn_protocol") == "reestimate"
                 else "statistics kept fixed under the noise (Walking Noise's protocol).")
              + (f" Scores averaged over {s['repeats']} noisy passes." if s.get("repeats", 1) > 1
                 else ""),
              "* compare numbers down a column; units differ between columns."]
    if s.get("recalibrate_bn"):
        lines.insert(-1, "* every network's batch-norm statistics were first re-estimated "
                         "once on clean training data with its full-precision weights (the "
                         "clean accuracy is measured with them).")
    return "\n".join(lines) + "\n"


def write_cross_table(table: CrossTable, out_dir) -> dict:
    """Write ``cross_robustness.csv`` and ``cross_robustness.md`` into ``out_dir``
    (atomically); returns ``{"csv": path, "md": path}``."""
    out = Path(out_dir)
    csv_path = atomic_write_text(out / CROSS_FILES[0], cross_csv(table))
    md_path = atomic_write_text(out / CROSS_FILES[1], cross_markdown(table))
    return {"csv": csv_path, "md": md_path}
