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

Batch norm for the weight columns (and the clean recalibration) is re-estimated as in
``tinyproj sweep`` (:mod:`tinyproj.robustness.bn_estimate`): exact statistics of every
training image by default (``bn_images="all"`` or N, in passes of ``bn_pass_size``), or
``bn_batches=K`` for **the old protocol** (K random batches of ``bn_batch_size`` averaged,
20 × 50 before). ``CrossTable.settings`` and every CSV row say which (``bn_reestimation``).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from .. import backend
from ..errors import UserError
from ..robustness.bn_estimate import BNProtocol, protocol_from_settings, reestimate
from ..runs.evaluation import error_rate, saved_batchnorm_stats
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
    settings         how the table was measured (draws, seed, bn_reestimation: the weight
                     columns' batch-norm protocol and its bn_images / bn_pass_size /
                     bn_batches / bn_batch_size; bn_protocol: the activation walks')
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
def _recalibrated(model, data, enabled, bn: BNProtocol, seed):
    """Inside: batch norm re-estimated on clean training data with ``bn``; the trained
    statistics are put back on exit (a no-op for a model without batch norm, when not
    enabled, or for the protocol that keeps the stored statistics)."""
    if not enabled or bn.kind == "none" or not hasattr(model, "modules"):
        yield model
        return
    with saved_batchnorm_stats(model):
        reestimate(model, data.train, bn, backend.make_rng([seed, 31]))
        yield model


def protocol_settings(bn: BNProtocol, n_train: int | None) -> dict:
    """What a table records about its weight columns' re-estimation: ``bn_reestimation`` (the
    protocol in words: ``exact over all 60000 training images, passes of 1000`` or ``average
    of 20 batches of 50``) and its settings (``BNProtocol.settings``)."""
    if n_train is None:                     # no training source (a test's stand-in data)
        fields = {"bn_batches": bn.num_batches, "bn_batch_size": bn.batch_size,
                  "bn_images": None, "bn_pass_size": None} if bn.kind != "exact" else \
            {"bn_batches": None, "bn_batch_size": None, "bn_images": bn.images,
             "bn_pass_size": bn.pass_size}
    else:
        fields = bn.settings(n_train)
    return {"bn_reestimation": bn.describe(n_train), **fields}


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
                     seed: int = 0, bn_images=None, bn_pass_size: int | None = None,
                     bn_batches: int | None = None, bn_batch_size: int = 50,
                     bn: BNProtocol | None = None, walk_bn_batches: int | None = None,
                     test_subset: int | None = None, bn_protocol: str = "running",
                     repeats: int = 1, recalibrate_bn: bool = True,
                     labels: dict | None = None, progress: bool = True,
                     log=print) -> CrossTable:
    """Every regime's midpoint under every perturbation: the cross-robustness table.

    regimes: ``{name: trained model}`` (from :func:`train_regimes`). perturbations: the
    columns (:func:`default_perturbations`). data: the :class:`CrossData` the models were
    trained on (training images re-estimate batch norm; test images are scored).
    draws: random draws per weight-distortion level (the mean error is used).
    bn_images, bn_pass_size, bn_batches, bn_batch_size: how batch norm is re-estimated for
    the weight columns (every draw) and the recalibration, in ``tinyproj sweep``'s words
    (``bn_estimate.protocol_from_settings``): exact over every training image by default;
    ``bn_batches=K`` is the old protocol (K batches of ``bn_batch_size`` averaged); or pass a
    ready ``bn`` (a ``BNProtocol``). bn_protocol: activation walks keep the trained
    statistics (``"running"``, Walking Noise's protocol) or re-estimate them with noise on
    (``"reestimate"``, on ``walk_bn_batches`` batches of 50: Walking Noise's own protocol;
    default: ``bn_batches`` when given, else 20). repeats: noisy passes averaged per
    activation-noise evaluation. test_subset: score only the first N test images.
    recalibrate_bn: before measuring a model, re-estimate its batch-norm statistics once on
    clean training data with its own full-precision weights (``bn_batches`` batches), and
    put the trained statistics back afterwards. Training left statistics that belong to
    something else — Algorithm 1 collects them with the *projected* weights P = Sign(W)
    (Merolla et al. re-estimate for every test, Te-None included), noisy training with the
    noise on — so without this the clean accuracy and the activation walks of those rows
    would be scored with mismatched statistics. labels: ``{name: row heading}``.
    Returns a :class:`CrossTable`. A bad re-estimation setting raises a UserError naming
    its flag, before any model is measured.
    """
    if bn is None:
        bn = protocol_from_settings(bn_images, bn_pass_size, bn_batches, bn_batch_size)
    if walk_bn_batches is None:
        walk_bn_batches = bn_batches if bn_batches is not None else 20
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
        with _recalibrated(model, data, recalibrate_bn, bn, seed):
            clean[name] = 1.0 - error_rate(model, data.test, limit=test_subset)
            for p in perturbations:
                start = time.perf_counter()
                cell = measure_cell(name, model, p, data, draws=draws, seed=seed, bn=bn,
                                    walk_bn_batches=walk_bn_batches,
                                    test_subset=test_subset, bn_protocol=bn_protocol,
                                    repeats=repeats)
                cells[(name, p.name)] = cell
                log(f"{name:22s} {p.label:32s} midpoint {format_cell(cell, p):>9s}  "
                    f"({time.perf_counter() - start:.1f} s)")
    n_train = len(data.train) if data.train is not None else None
    settings = dict(draws=draws, seed=seed, **protocol_settings(bn, n_train),
                    test_subset=test_subset, bn_protocol=bn_protocol,
                    walk_bn_batches=walk_bn_batches, repeats=repeats,
                    recalibrate_bn=recalibrate_bn, chance_accuracy=data.chance_accuracy)
    return CrossTable([n for n, _ in named], perturbations, cells, dict(labels or {}), clean,
                      settings)
