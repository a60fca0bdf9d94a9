"""The cross-robustness table as files: CSV for programs, Markdown for people.

``cross_robustness.csv`` has one row per regime with every midpoint as a number (empty,
with a ``_beyond_grid`` flag, when the grid was not enough); ``cross_robustness.md`` has
the cells as text (``0.42``, ``> 2``, ``—``) and a legend saying what they mean.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..runs.files import atomic_write_text
from .cells import format_cell

if TYPE_CHECKING:                        # only for the annotations: no import cycle
    from .cross_table import CrossTable

__all__ = ["CROSS_FILES", "cross_rows", "cross_csv", "cross_markdown", "write_cross_table"]

CROSS_FILES = ("cross_robustness.csv", "cross_robustness.md")
"""The files :func:`write_cross_table` writes."""


def cross_rows(table: CrossTable) -> list:
    """One flat dict per regime, the CSV's rows.

    ``regime``, ``label``, ``clean_accuracy``, ``bn_reestimation`` (the weight columns'
    batch-norm protocol in words, so a row never passes for one made with another), then per
    perturbation ``<name>`` (the midpoint, None when there is none), ``<name>_beyond_grid``
    (bool) and ``<name>_grid_edge`` (the grid's max σ / min γ).
    """
    rows = []
    for regime in table.regimes:
        row = {"regime": regime, "label": table.regime_labels.get(regime, regime),
               "clean_accuracy": table.clean_accuracy.get(regime),
               "bn_reestimation": table.settings.get("bn_reestimation")}
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
              "per draw (Merolla et al.'s protocol"
              + (f": {s['bn_reestimation']}" if s.get("bn_reestimation") else "")
              + (" — the old protocol" if s.get("bn_batches") else "") + ")"
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
