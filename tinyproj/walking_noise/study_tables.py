"""A walk study's tables: μ per site and accuracy per point over seeds, from its rows.

    OUT/midpoints.csv      μ per site (over seeds: geometric mean, spread, every seed's μ)
    OUT/walk-points.csv    accuracy per (site, σ) over seeds: mean, standard deviation, each

Both are rewritten from the rows of the study that wrote them (``study.py``); rows of other
studies in the same walk.jsonl stay there but are not in the tables. :func:`mean_over_seeds`
gives the accuracy figure its one curve per site (drawn by ``tinyproj.reporting``).
"""
from __future__ import annotations

from pathlib import Path

from .tables import midpoints_table, point_spread, write_midpoints_csv, write_point_spread_csv

__all__ = ["write_study_tables", "mean_over_seeds"]


def write_study_tables(out, rows) -> list:
    """Write OUT/midpoints.csv and OUT/walk-points.csv from ``rows``; the midpoint table
    (``tables.midpoints_table``: one dict per site and setting)."""
    out = Path(out)
    table = midpoints_table(rows)
    write_midpoints_csv(out / "midpoints.csv", table)
    write_point_spread_csv(out / "walk-points.csv", point_spread(rows))
    return table


def mean_over_seeds(rows) -> list:
    """One row per (site, noise, ratio, σ, training): the accuracy averaged over seeds, so
    that each site is one line of the figure (the seeds' spread is in midpoints.csv).

    accuracy = mean over the group's n rows; accuracy_std = sample standard deviation
    (ddof 1), None for one row. The other fields are the group's first row's."""
    groups = {}
    for r in rows:
        key = (r.get("site"), r.get("site_name"), str(r.get("noise")), r.get("ratio"),
               r.get("sigma"), r.get("train_sigma"))
        groups.setdefault(key, []).append(r)
    out = []
    for g in groups.values():
        acc = [float(r["accuracy"]) for r in g]
        mean = sum(acc) / len(acc)
        std = (sum((a - mean) ** 2 for a in acc) / (len(acc) - 1)) ** 0.5 if len(acc) > 1 \
            else None
        out.append(dict(g[0], accuracy=mean, accuracy_std=std))
    return out
