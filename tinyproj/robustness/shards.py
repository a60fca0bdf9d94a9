"""Sweep files, shards and merging them back.

A sweep is a grid of points (layer, level); each finished point is one JSON line::

    RUN_DIR/sweeps/<name>.jsonl                      an unsharded sweep
    RUN_DIR/sweeps/<name>.shard-<i>-of-<n>.jsonl     shard i of n (0 <= i < n)

with ``<name>`` = ``addnorm`` | ``multunif`` | ``power`` for the whole network and
``walk-<distortion>`` for layer-by-layer sweeps (``--walk`` or ``--layer NAME``).

Shard i of n takes the grid points i, i+n, i+2n, … (round robin over the full grid, in grid
order: layers in model order, then levels as given), so every shard gets a similar mix of
cheap and costly levels and the split does not depend on what is already done. Indices are
0-based, as SLURM hands them out with ``#SBATCH --array=0-<n-1>``::

    tinyproj sweep RUN_DIR --distortion addnorm --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT

:func:`merge_sweep_files` reads the unsharded file and every shard file of a name, drops
repeated points and returns the rows sorted. Because every draw's random numbers depend only
on (seed, spec, layer, draw) (see ``scoring.draw_generators``), merged shards equal one
unsharded run number for number.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..runs.files import read_jsonl

__all__ = ["parse_shard", "shard_points", "sweep_path", "sweep_files", "merge_sweep_files",
           "row_key", "SETTINGS_KEYS"]

SETTINGS_KEYS = ("distortion", "seed", "bn_batches", "bn_batch_size", "test_subset",
                 "checkpoint_step", "draws")
"""Row fields that must agree across all rows of one sweep (resuming or merging with other
settings would mix incomparable numbers)."""

_SHARD_FILE = re.compile(r"\.shard-(\d+)-of-(\d+)\.jsonl$")


def parse_shard(text) -> tuple | None:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n (0-based, like ``$SLURM_ARRAY_TASK_ID``).

    None and ``(i, n)`` tuples pass through (checked). Raises ValueError with the usage.
    """
    if text is None:
        return None
    if isinstance(text, tuple):
        i, n = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not match:
            raise ValueError(f"--shard takes i/n (shard i of n, 0 <= i < n), e.g. 0/4 ... 3/4 "
                             f"or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; got {text!r}")
        i, n = int(match.group(1)), int(match.group(2))
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard i/n needs n >= 1 and 0 <= i < n (shards are numbered from 0, "
                         f"like #SBATCH --array=0-{max(n, 1) - 1}); got {i}/{n}")
    return i, n


def shard_points(points: list, shard) -> list:
    """The grid points of shard ``(i, n)``: ``points[i::n]`` (all of them for None)."""
    shard = parse_shard(shard)
    if shard is None:
        return list(points)
    i, n = shard
    return list(points)[i::n]


def sweep_path(run_dir, name: str, shard=None) -> Path:
    """``RUN_DIR/sweeps/<name>.jsonl`` or, for shard (i, n), ``<name>.shard-<i>-of-<n>.jsonl``."""
    folder = Path(run_dir) / "sweeps"
    shard = parse_shard(shard)
    if shard is None:
        return folder / f"{name}.jsonl"
    return folder / f"{name}.shard-{shard[0]}-of-{shard[1]}.jsonl"


def sweep_files(run_dir, name: str) -> list:
    """The existing files of sweep ``name``: the unsharded one first, then shards by (n, i)."""
    folder = Path(run_dir) / "sweeps"
    files = []
    main = folder / f"{name}.jsonl"
    if main.exists():
        files.append(main)
    shards = []
    for path in folder.glob(f"{name}.shard-*-of-*.jsonl"):
        match = _SHARD_FILE.search(path.name)
        if match and path.name == f"{name}.shard-{match.group(1)}-of-{match.group(2)}.jsonl":
            shards.append(((int(match.group(2)), int(match.group(1))), path))
    return files + [p for _, p in sorted(shards)]


def row_key(row: dict) -> tuple:
    """A row's grid point: ``(layer or None, level)``."""
    return (row.get("layer"), float(row["level"]))


def _sort_key(row: dict):
    index = row.get("layer_index")
    return (-1 if row.get("layer") is None else (index if index is not None else 10**9),
            str(row.get("layer") or ""), float(row["level"]))


def merge_sweep_files(run_dir, name: str, check_settings: bool = True) -> list:
    """All rows of sweep ``name`` (unsharded file and shard files), one per (layer, level).

    A point found in several files is kept once (the first: the unsharded file, then the
    shards in order). Rows are sorted by layer (whole network first, then model order) and
    then by level, ascending. With ``check_settings`` a ValueError is raised when rows
    disagree on a setting of :data:`SETTINGS_KEYS` (e.g. different seeds or test subsets).
    Returns [] when there is no file.
    """
    rows, seen = [], set()
    reference = None
    for path in sweep_files(run_dir, name):
        for row in read_jsonl(path):
            if check_settings:
                settings = {k: row.get(k) for k in SETTINGS_KEYS}
                if reference is None:
                    reference = (settings, path)
                elif settings != reference[0]:
                    diff = ", ".join(f"{k}: {reference[0][k]} vs {settings[k]}"
                                     for k in SETTINGS_KEYS if reference[0][k] != settings[k])
                    raise ValueError(
                        f"sweep {name!r}: {path.name} has rows made with other settings than "
                        f"{reference[1].name} ({diff}); "
                        "they cannot be merged. Remove the files of one of the two settings "
                        f"from {Path(run_dir) / 'sweeps'}.")
            key = row_key(row)
            if key in seen:
                continue
            seen.add(key)
            rows.append(row)
    return sorted(rows, key=_sort_key)
