"""The one plot style of tinyproj's figures: colours, a bare figure, atomic PNG files.

Every figure module of :mod:`tinyproj.reporting` draws through these few functions, so all
figures look alike and none of them touches pyplot's global state: :func:`figure` builds
a ``matplotlib.figure.Figure`` with the Agg canvas (no screen needed, safe in threads and
tests) and :func:`save` writes it as a PNG atomically (rule 7 of DESIGN.md)::

    from tinyproj.reporting import style
    fig, (ax,) = style.figure()
    for color, ys in zip(style.colors(3), curves):
        ax.plot(ys, color=color)
    style.save(fig, "curves.png")          # -> Path("curves.png")
"""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..runs.files import atomic_write_bytes

__all__ = ["PANEL_WIDTH", "PANEL_HEIGHT", "DPI", "SEQUENTIAL_CMAP", "DIVERGING_CMAP", "colors",
           "figure", "save", "percent"]

PANEL_WIDTH, PANEL_HEIGHT = 6.4, 4.4
"""Size of one panel in inches (matplotlib's default width, a little taller)."""

DPI = 110
"""Resolution of the PNGs: sharp on a screen, small enough for a Markdown page."""

SEQUENTIAL_CMAP, DIVERGING_CMAP = "viridis", "RdBu"
"""Colour maps of heat maps: one for "more is better" values, one for signed differences
(red below zero, blue above); both readable by colour-blind readers."""


def colors(n: int) -> list:
    """``n`` RGBA colours of the ``tab10`` palette, one per line (repeats after 10)."""
    from matplotlib import colormaps
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def figure(ncols: int = 1, nrows: int = 1, width: float = PANEL_WIDTH,
           height: float = PANEL_HEIGHT):
    """``(fig, axes)``: a figure of ``nrows × ncols`` panels, each ``width × height`` inches.

    ``axes`` is a flat list, row by row, even for a single panel (``fig, (ax,) = figure()``).
    """
    fig = Figure(figsize=(width * ncols, height * nrows))
    FigureCanvasAgg(fig)          # attaches itself to fig: savefig works without pyplot
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
    return fig, axes


def save(fig, path, dpi: int = DPI):
    """Write ``fig`` as a PNG to ``path`` atomically; returns the path."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def percent(value):
    """A fraction as a percentage (0.123 → 12.3); None stays None (a missing value)."""
    return None if value is None else 100.0 * float(value)
