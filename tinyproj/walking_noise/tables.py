"""Summaries of walk rows: the midpoint μ per site, the accuracy per point over seeds, as CSV.

Rows are grouped by their settings without site, σ and seed (:func:`group_settings`); a
``train_sigma`` of a train-at-σ row reads as :data:`SAME_SIGMA`, so the networks of the
train-at-σ protocol (one per σ, ``protocol.py``) form one curve per site. Per group and site:

    midpoints_table   μ per seed (``midpoint.midpoint_sigma``: halfway from max accuracy to
                      chance), their geometric mean and spread in decades  -> midpoints.csv
    point_spread      per σ, the accuracy's mean, std (ddof 1), min, max over seeds
                                                                          -> walk-points.csv
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..runs.files import atomic_write_text
from .midpoint import midpoint_sigma, summarize_midpoints
from .walk_store import MEASURED_FIELDS, key_value

__all__ = ["SAME_SIGMA", "MIDPOINT_COLUMNS", "group_settings", "midpoints_table", "csv_value",
           "write_midpoints_csv", "point_spread", "write_point_spread_csv"]

MIDPOINT_COLUMNS = ("site", "site_name", "noise", "midpoint_sigma", "beyond_grid",
                    "max_accuracy")
"""The first columns of midpoints.csv (more follow: ratio, bn_protocol, repeats, seeds, ...)."""

_NOT_GROUP = set(MEASURED_FIELDS) | {"site", "sigma", "seed"}

SAME_SIGMA = "sigma"
"""The ``train_sigma`` of a midpoints-table entry whose networks were each trained at the σ
they were tested at (the train-at-σ protocol, ``protocol.py``)."""


def group_settings(row) -> tuple:
    """A row's settings without site, σ and seed; in a row of the train-at-σ protocol
    (``protocol="train-at-sigma"``, one network per σ) ``train_sigma`` reads as
    :data:`SAME_SIGMA`, so that those networks form one curve. A walk of *one* network trained
    at σ_t (``--train-noise``) keeps σ_t in every row, the row at σ = σ_t too: one curve."""
    train_at_sigma = row.get("protocol") == "train-at-sigma"
    out = []
    for k, v in row.items():
        if k in _NOT_GROUP:
            continue
        if k == "train_sigma" and train_at_sigma and v is not None:
            v = SAME_SIGMA
        out.append((k, key_value(v)))
    return tuple(sorted(out))


def midpoints_table(rows, chance: float | None = None) -> list:
    """One dict per (settings, site): the midpoint μ, over seeds when there are several.

    rows: walk rows (several seeds, noise kinds or protocols may be mixed: they are grouped
    by every setting except the seed; rows trained at the σ they were tested at form one
    group per site, with ``train_sigma`` "sigma"). chance: the chance accuracy (default: the rows'
    ``chance``, else 0.1). Each dict has the :data:`MIDPOINT_COLUMNS` —

        midpoint_sigma  μ of the one seed, or the geometric mean over the seeds that cross
        beyond_grid     True when (some) seed's accuracy stays above the threshold up to the
                        largest σ (then midpoint_sigma is over the other seeds, or None)
        max_accuracy    the maximum accuracy of the walk (mean over seeds)

    — then ratio, bn_protocol, repeats, the tags, n_seeds, n_midpoints, n_beyond,
    midpoint_log10_std (decades, ddof 1), seeds and midpoints_per_seed.
    """
    groups = {}
    for row in rows:
        settings = group_settings(row)
        site = int(row["site"])
        groups.setdefault((settings, site), {}).setdefault(int(row.get("seed", 0)), []).append(row)
    table, settings_order = [], {}
    for (settings, site), by_seed in groups.items():
        settings_order.setdefault(settings, len(settings_order))
        first = next(iter(by_seed.values()))[0]
        mids = []
        for seed in sorted(by_seed):
            seed_rows = by_seed[seed]
            c = chance if chance is not None else float(seed_rows[0].get("chance", 0.1))
            mids.append(midpoint_sigma([r["sigma"] for r in seed_rows],
                                       [r["accuracy"] for r in seed_rows], c))
        summary = summarize_midpoints(mids)
        entry = {"site": site, "site_name": first.get("site_name"), "noise": first.get("noise"),
                 "midpoint_sigma": summary.geo_mean if len(mids) > 1 else mids[0].sigma,
                 "beyond_grid": summary.n_beyond > 0,
                 "max_accuracy": math.fsum(m.max_accuracy for m in mids) / len(mids)}
        entry.update({k: first.get(k) for k in first if k not in _NOT_GROUP and k not in entry})
        if dict(settings).get("train_sigma") == SAME_SIGMA:
            entry["train_sigma"] = SAME_SIGMA
        entry.update(n_seeds=len(mids), n_midpoints=summary.n, n_beyond=summary.n_beyond,
                     midpoint_log10_std=summary.log10_std,
                     threshold=mids[0].threshold if len(mids) == 1 else None,
                     seeds=sorted(by_seed), midpoints_per_seed=[m.sigma for m in mids])
        table.append((settings_order[settings], site, entry))
    table.sort(key=lambda t: (t[0], t[1]))      # settings in first-seen order, then site
    return [entry for _, _, entry in table]


def csv_value(value):
    """One CSV cell: None empty, booleans true/false, floats to 6 digits, lists joined by ';'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ";".join(csv_value(v) or "none" for v in value)
    return str(value)


def write_midpoints_csv(path, table) -> Path:
    """Write :func:`midpoints_table`'s dicts as CSV (atomically); returns the path.

    Columns: site, site_name, noise, midpoint_sigma, beyond_grid, max_accuracy, then every
    other key in first-seen order. Empty cells are None; lists (seeds, midpoints_per_seed)
    are joined with ';' ("none" for a seed without a midpoint).
    """
    columns = list(MIDPOINT_COLUMNS)
    for entry in table:
        for k in entry:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for entry in table:
        writer.writerow([csv_value(entry.get(k)) for k in columns])
    return atomic_write_text(path, buf.getvalue())


def point_spread(rows) -> list:
    """Accuracy over seeds per (settings, site, σ): one dict each, in first-seen order.

    Fields: site, site_name, noise, sigma, n_seeds, accuracy_mean, accuracy_std (ddof 1; 0
    for one seed), accuracy_min, accuracy_max, seeds, accuracies (per seed), then the other
    settings (protocol, train_sigma, ...).
    """
    groups = {}
    for r in rows:
        k = (group_settings(r), int(r["site"]), float(r["sigma"]))
        groups.setdefault(k, []).append(r)
    out = []
    for (_, site, sigma), rs in groups.items():
        rs = sorted(rs, key=lambda r: int(r.get("seed", 0)))
        acc = [float(r["accuracy"]) for r in rs]
        mean = math.fsum(acc) / len(acc)
        std = math.sqrt(math.fsum((a - mean) ** 2 for a in acc) / (len(acc) - 1)) \
            if len(acc) > 1 else 0.0
        first = rs[0]
        entry = {"site": site, "site_name": first.get("site_name"), "noise": first.get("noise"),
                 "sigma": sigma, "n_seeds": len(acc), "accuracy_mean": mean,
                 "accuracy_std": std, "accuracy_min": min(acc), "accuracy_max": max(acc),
                 "seeds": [int(r.get("seed", 0)) for r in rs], "accuracies": acc}
        for k in ("ratio", "order", "repeats", "repeat_at", "protocol", "train_sigma",
                  "epochs", "clamp", "bn_protocol"):
            if k in first:
                entry[k] = first[k]
        out.append(entry)
    return out


def write_point_spread_csv(path, entries) -> Path:
    """:func:`point_spread`'s dicts as CSV (atomically); lists joined with ';'."""
    columns = []
    for e in entries:
        columns += [k for k in e if k not in columns]
    lines = [",".join(columns)]
    for e in entries:
        lines.append(",".join(csv_value(e.get(k)) for k in columns))
    return atomic_write_text(path, "\n".join(lines) + "\n")
