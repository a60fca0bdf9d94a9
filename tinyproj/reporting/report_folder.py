"""The folder a report writes into (``tinyproj report --out``): which files a report
writes, the mark it leaves, and the check that a report overwrites only what a report wrote
(rule 8 of docs/design.md)."""
from __future__ import annotations

from pathlib import Path

from .. import robustness
from ..errors import UserError
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
    user can fix, said before any work."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "" if folder == out else f" ({folder} is a file)"
                raise UserError(f"report --out {out}: not a folder{what}; give a folder for "
                                "report.md, table2.* and the figures (it is created if it "
                                "does not exist)", flag="--out")
            break
    if out.is_dir() and not is_report_folder(out):
        taken = [name for name in output_names() if (out / name).exists()]
        if taken:
            raise UserError(f"report --out {out}: the folder already holds {', '.join(taken)}, "
                            "which tinyproj report did not write (the folder is not a report "
                            "folder), and a report would overwrite them; give another --out "
                            "folder, or move those files away", flag="--out")
