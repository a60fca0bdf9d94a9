"""A walk study's output folder: walk writes only into a folder of its own (rule 8 of
docs/design.md).

    OUT/.tinyproj-walk                       the mark (:data:`WALK_MARK`), written on claiming
    OUT/walk.jsonl, dynamics.jsonl           rows (shard files beside them, ``runs/grid.py``)
    OUT/midpoints.csv, walk-points.csv       tables (``study_tables.py``)
    OUT/walk-accuracy.png, walk-midpoints.png  figures (:data:`FIGURES`, drawn by reporting)

A folder may be written into when it is new, marked with :data:`WALK_MARK`, holds none of
the files of :data:`OUTPUT_NAMES`, or is the folder of a walk made before the mark existed
(recognised by its rows: :func:`is_walk_folder`). :func:`check_out_folder` checks that,
reading only; :func:`claim_folder` makes and marks the folder once a study starts writing.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..runs.grid import grid_files
from .tables import MIDPOINT_COLUMNS

__all__ = ["WALK_MARK", "FIGURES", "OUTPUT_NAMES", "output_files", "is_walk_folder",
           "check_out_folder", "claim_folder"]

WALK_MARK = ".tinyproj-walk"
"""The file that marks a folder as `tinyproj walk`'s (written when walk first writes there):
its walk.jsonl, dynamics.jsonl, midpoints.csv, walk-points.csv and figures are walk's own."""

FIGURES = ("walk-accuracy.png", "walk-midpoints.png")
"""The figures `tinyproj walk` writes into its --out folder (rewritten by every run)."""

OUTPUT_NAMES = ("walk.jsonl", "dynamics.jsonl", "midpoints.csv", "walk-points.csv", *FIGURES)
"""The files walk writes (appends to, or rewrites) at the top of its --out folder; the two
JSON lines files have shard files beside them (``walk.shard-<i>-of-<n>.jsonl``)."""

_ROW_FIELDS = {"walk.jsonl": ("site", "sigma", "noise", "accuracy"),
               "dynamics.jsonl": ("epoch", "site_name", "noise")}
"""The fields by which a row of walk's (or its noisy training's) is recognised."""


def output_files(out: Path) -> list:
    """The files of :data:`OUTPUT_NAMES` in ``out`` (shard files included) that exist."""
    found = []
    for name in OUTPUT_NAMES:
        if name.endswith(".jsonl"):
            found += grid_files(out / name)
        elif (out / name).exists():
            found.append(out / name)
    return found


def _first_row(path: Path):
    """The first line of a JSON lines file as a dict, or None (no file, not JSON, ...)."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    return row if isinstance(row, dict) else None
    except (OSError, ValueError):
        return None
    return None


def is_walk_folder(out: Path) -> bool:
    """True when ``out`` is a walk's folder: it has :data:`WALK_MARK`, or (walks made before
    the mark existed) its walk.jsonl, dynamics.jsonl or one of their shard files starts with
    a row of tinyproj's walk, or its midpoints.csv has the walk's header."""
    if (out / WALK_MARK).is_file():
        return True
    for name, fields in _ROW_FIELDS.items():
        for path in grid_files(out / name):
            row = _first_row(path)
            if row is not None and all(k in row for k in fields):
                return True
    try:
        with open(out / "midpoints.csv", encoding="utf-8") as f:
            return f.readline().rstrip("\r\n").split(",")[:len(MIDPOINT_COLUMNS)] == \
                list(MIDPOINT_COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def check_out_folder(out) -> None:
    """``out`` must be a folder or not exist yet (nor a file above it), and walk writes its
    files only into a folder of its own: a folder that holds files of walk's names
    (:data:`OUTPUT_NAMES`) which walk did not write is refused (UserError naming --out),
    before anything is written (``runs.folder.check_output_folder``). Reads only."""
    from ..runs.folder import check_output_folder
    check_output_folder(out, "walk", "the walk's rows, tables and figures", is_walk_folder,
                        lambda o: [p.name for p in output_files(o)])


def claim_folder(out) -> Path:
    """Make ``out`` (checked by :func:`check_out_folder`) and mark it as walk's; called once
    the data or the run is loaded, before the first file is written. Returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mark = out / WALK_MARK
    if not mark.is_file():
        mark.write_text("made by `tinyproj walk`, which may rewrite its files here "
                        "(walk.jsonl, dynamics.jsonl, midpoints.csv, walk-points.csv, "
                        "the figures)\n")
    return out
