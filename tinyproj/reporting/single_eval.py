"""Error bars for errors measured once: over seeds when there are seeds, else the test set's SE.

A training-time error (a row of ``metrics.jsonl``: Table 2's single-evaluation columns,
Figure 1B's points) is one evaluation of one network. Two honest uncertainties exist:

* **over seeds** — networks trained alike except for the seed (``errorbars.seed_groups``):
  mean ± sample std (ddof = 1), with n = the number of seeds. This is the spread a reader
  usually wants: how much the number moves when the whole experiment is repeated.
* **the test set's sampling error** — one network, one evaluation on n_test images: the
  observed error p is a proportion, whose binomial standard error is ::

      SE(p) = sqrt(p·(1 − p) / n_test)

  (10,000 test images at p = 0.65: 0.48 points). It says how far p could be from the same
  network's error on unlimited test data; it is **not** a spread over seeds, nor over
  batch-norm re-estimations (those are in "Table 2 with error bars"), so it is always
  labelled "SE" and never written with an n of seeds.

Precision follows the bar (``errorbars.format_error``): "60.6 ± 0.5 (SE)".
"""
from __future__ import annotations

import math

from .errorbars import decimals_for, over_seeds

__all__ = ["binomial_se", "images_scored", "ErrorBar", "single_error", "seed_error",
           "format_bar", "SE_LABEL", "SE_NOTE"]

SE_LABEL = "SE"
"""The tag of a binomial standard error in a table cell: "60.6 ± 0.5 (SE)"."""

SE_NOTE = ("± (SE): the binomial standard error of one evaluation on the test set, "
           "sqrt(p(1 − p)/n_test) — the test set's sampling error, not a spread over seeds or "
           "over batch-norm re-estimations; ± (n = k seeds): mean ± std over k networks that "
           "differ only in seed.")
"""The legend that goes under every table or figure showing these bars."""


def binomial_se(p: float, n: int) -> float:
    """sqrt(p·(1 − p)/n): the standard error of a proportion p measured on n items.

    p in [0, 1] (a fraction, not %), n ≥ 1. SE(0) = SE(1) = 0: a formula, not a claim that an
    error of 0 is exact.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"binomial_se: p must be a fraction in [0, 1]; got {p!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"binomial_se: n must be an integer >= 1; got {n!r}")
    return math.sqrt(p * (1.0 - p) / n)


def images_scored(row: dict, config: dict) -> int | None:
    """How many test images a metrics row's errors count: the row's ``n_test`` (written since
    runs record it), else the config's ``test_subset`` capped by the dataset's published test
    size, else that size; None when unknown (then no SE is given)."""
    if row.get("n_test"):
        return int(row["n_test"])
    from ..data.dataset import DATASET_SIZES
    full = DATASET_SIZES.get(str(config.get("dataset", "")).lower(), (None, None))[1]
    subset = config.get("test_subset")
    if subset and full:
        return min(int(subset), full)
    return int(subset) if subset else full


class ErrorBar:
    """One error with its bar, in %: ``value`` ± ``bar`` of ``kind`` "seeds" (n seeds) or "SE"
    (binomial, n = test images), or no bar (``bar`` None)."""

    __slots__ = ("value", "bar", "kind", "n")

    def __init__(self, value, bar=None, kind=None, n=None):
        self.value, self.bar, self.kind, self.n = value, bar, kind, n

    def __repr__(self):
        return f"ErrorBar({self.value!r}, {self.bar!r}, {self.kind!r}, {self.n!r})"


def single_error(p: float | None, n_test: int | None) -> ErrorBar:
    """One network's single evaluation: p (fraction) → value in % ± binomial SE in %."""
    if p is None:
        return ErrorBar(None)
    if not n_test:
        return ErrorBar(100.0 * p)
    return ErrorBar(100.0 * p, 100.0 * binomial_se(float(p), int(n_test)), SE_LABEL,
                    int(n_test))


def seed_error(ps) -> ErrorBar:
    """Several seeds' errors (fractions; None dropped) → mean ± std over seeds, in %.
    One seed left: no seed spread exists, so the value comes back without a bar."""
    mean, std, n = over_seeds(None if p is None else 100.0 * p for p in ps)
    if n < 2:
        return ErrorBar(mean)
    return ErrorBar(mean, std, "seeds", n)


def format_bar(e: ErrorBar) -> str:
    """``"60.6 ± 0.5 (SE)"``, ``"60.62 ± 0.07 (n = 3 seeds)"``, ``"60.62"``, ``"—"``."""
    if e.value is None or not math.isfinite(e.value):
        return "—"
    if e.bar is None:
        return f"{e.value:.2f}"
    d = decimals_for(e.bar)
    tag = f"n = {e.n} seeds" if e.kind == "seeds" else e.kind
    return f"{e.value:.{d}f} ± {e.bar:.{d}f} ({tag})"


def curve_with_bars(members) -> tuple:
    """Figure 1B's rows of one run, or of a seed group, each with ``error_bar`` per test.

    members: ``[(metrics rows, config)]`` — one run, or several that differ only in seed.
    One run: every row's errors with their binomial SE (fractions). Several: at every step
    that all of them evaluated, the mean error over the seeds and its std (ddof = 1).
    Returns ``(rows, kind)`` with kind "SE" or "seeds" (None when no row has errors).
    """
    members = [(rows, cfg) for rows, cfg in members if rows]
    if not members:
        return [], None
    if len(members) == 1:
        rows, cfg = members[0]
        out = []
        for r in rows:
            n = images_scored(r, cfg)
            bars = {t: (binomial_se(float(p), n) if p is not None and n else None)
                    for t, p in (r.get("test_error") or {}).items()}
            out.append(dict(r, error_bar=bars))
        return out, SE_LABEL
    by_step = [{int(r.get("step", 0)): r for r in rows} for rows, _ in members]
    steps = sorted(set.intersection(*(set(d) for d in by_step)))
    out = []
    for step in steps:
        rows = [d[step] for d in by_step]
        tests = [t for t in (rows[0].get("test_error") or {})
                 if all((r.get("test_error") or {}).get(t) is not None for r in rows)]
        mean, bars = {}, {}
        for t in tests:
            m, sd, _ = over_seeds(r["test_error"][t] for r in rows)
            mean[t], bars[t] = m, sd
        out.append(dict(rows[0], test_error=mean, error_bar=bars, seeds=len(rows)))
    return out, "seeds"
