"""Where a walk's rows live: a result grid of ``runs/grid.py``, resumable and shardable.

Files::

    OUT/walk.jsonl                     every finished point, one JSON line each
    OUT/walk.shard-<i>-of-<n>.jsonl    shard i of n (``shard="i/n"``, 0-based), beside it
    OUT/replaced/<time>/               the files a restart moved aside

A point's *key* is its row without the measured fields (:data:`MEASURED_FIELDS`): every
setting — site, noise, σ, batch-norm protocol, repeats, seed, test subset, and the tags a
caller adds (train σ, the training's settings, its set-up). Several processes may append to
one file at once (each row is one locked line). Running a walk again skips every point whose
key is on file (resume). A point on file that was measured on *another network* (another run
walked into the same file, a retrained model: the row's ``network`` fingerprint differs) is
refused, never reused: a UserError says to write elsewhere or to restart (``restart=True`` /
``--restart`` moves the old files aside). One file may hold walks of several networks (one
per seed, or per site in noisy training); each row's ``network`` says which.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..runs.grid import Grid, grid_files, shard_path

__all__ = ["MEASURED_FIELDS", "key_value", "row_key", "walk_path", "walk_files", "walk_grid",
           "read_walk"]

MEASURED_FIELDS = ("accuracy", "n_test", "chance", "seconds", "site_name", "site_kind",
                   "network")
"""Row fields that are results, not settings: every other field is part of a point's key.
(``network`` is checked instead: a point measured on another network is refused.)"""


def key_value(value):
    """A row value as a key can hold it: lists and dicts as sorted JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def row_key(row: dict) -> tuple:
    """A row's point: every field except :data:`MEASURED_FIELDS`, σ as a float."""
    return tuple(sorted((k, float(v) if k == "sigma" else key_value(v))
                        for k, v in row.items() if k not in MEASURED_FIELDS))


def walk_path(out_file, shard=None) -> Path:
    """``out_file`` itself, or for shard (i, n) ``<stem>.shard-<i>-of-<n><suffix>`` beside it."""
    return shard_path(out_file, shard)


def walk_files(out_file) -> list:
    """The existing files of a walk: ``out_file`` first, then its shard files by (n, i)."""
    return grid_files(out_file)


def walk_grid(out_file, shard=None) -> Grid:
    """The :class:`~tinyproj.runs.grid.Grid` of a walk file (its shards beside it)."""
    out_file = Path(out_file)
    fix = (f"Write this walk elsewhere (another --out / out_file), or run again with --restart "
           f"(in Python: restart=True), which moves the walk's files to "
           f"{out_file.parent / 'replaced'}/<time>/ (nothing is deleted).")
    return Grid(out_file, row_key, shard=shard, fix=fix, network_source="the network walked now")


def _sort_key(row):
    settings = tuple((k, str(v)) for k, v in row_key(row) if k not in ("site", "sigma"))
    return (settings, int(row["site"]), float(row["sigma"]))


def read_walk(out_file) -> list:
    """Every row of a walk (``out_file`` and its shard files), one per point, sorted by
    settings, then site (-1 = all first), then σ. [] when there is no file.

    Unchecked: the rows may come from several networks (their ``network`` field says which).
    To get the points of one walk checked against its network, use ``walk(..., compute=False)``.
    """
    return sorted(walk_grid(out_file).rows(), key=_sort_key)

