"""The folder a report writes into (``tinyproj report --out``): which files a report
writes, the mark it leaves, and the check that a report overwrites only what a report wrote
(rule 8 of docs/design.md)."""
from __future__ import annotations

from pathlib import Path

from .. import robustness
from ..runs.folder import check_output_folder
from . import figures

__all__ = ["REPORT_MARKER", "TITLE", "FIGURE_ORDER", "output_names", "is_report_folder",
           "check_out_folder"]

FIGURE_ORDER = ("fig1b", "fig1c", "fig1d", "fig2a", "fig2b", "fig2c", "fig2d")
"""The paper's figures in the order the page shows them."""

REPORT_MARKER = ".tinyproj-report"
"""The file that marks a folder as a report folder of ``tinyproj report`` (written first):
its report.md, table2.* and figures may be rewritten by the next report there."""

TITLE = "# Robustness report"
"""The first line of every report.md."""


def output_names() -> list:
    """Every file name a report may write into its folder."""
    per_layer = [robustness.sweep_name(d, per_layer=True) for d in figures.DISTORTIONS]
    return (["report.md", "table2.md", "table2.csv"]
            + [f"{name}.png" for name in (*FIGURE_ORDER, *per_layer)])


def is_report_folder(out: Path) -> bool:
    """True when a report wrote ``out`` before: the marker, or (reports made before the
    marker existed) a report.md that starts with the report's title."""
    if (out / REPORT_MARKER).is_file():
        return True
    try:
        with open(out / "report.md", encoding="utf-8") as f:
            return f.readline().rstrip("\n") == TITLE
    except (OSError, UnicodeDecodeError):
        return False


def check_out_folder(out: Path) -> None:
    """``out`` must be a folder or not exist yet (then it is created), and so must the
    folders above it; and a report overwrites only files that a report wrote. Mistakes the
    user can fix, said before any work (``runs.folder.check_output_folder``)."""
    check_output_folder(out, "report", "report.md, table2.* and the figures", is_report_folder,
                        lambda o: [name for name in output_names() if (o / name).exists()])