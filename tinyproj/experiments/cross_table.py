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

Rows are training regimes (:mod:`.regimes`), columns test perturbations
(:mod:`.perturbations`), each cell one midpoint (:mod:`.cells`). Larger σ (smaller γ for
MultUnif, whose noise grows as γ falls) = more robust. A cell whose accuracy never fell
halfway on the grid has no number: it lies *beyond the grid* (``> max σ``; ``< min γ``).
Units differ between columns (σ of AddNorm is relative to α = max |w| of each layer; σ of
activation noise is absolute), so compare numbers *down* a column, not across a row.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from .. import backend
from ..errors import UserError
from ..runs.evaluation import error_rate, reestimate_batchnorm, saved_batchnorm_stats
from .cells import Cell, format_cell, measure_cell
from .cross_data import CrossData
from .cross_files import cross_rows

__all__ = ["CrossTable", "cross_robustness"]


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
        raise UserError("cross_robustness: need at least one regime and one perturbation")
    names = [p.name for p in perturbations]
    if len(set(names)) != len(names):
        raise UserError(f"cross_robustness: perturbation names must differ; got {names}")
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
