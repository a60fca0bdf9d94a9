"""The one plot style of tinyproj's figures: colours, a bare figure, atomic PNG files.

Every figure module of :mod:`tinyproj.reporting` draws through these few functions, so all
figures look alike and none of them touches pyplot's global state: :func:`figure` builds
a ``matplotlib.figure.Figure`` with the Agg canvas (no screen needed, safe in threads and
tests) and :func:`finish` wraps its titles to fit, saves it as a PNG atomically when given a
path (rule 7 of docs/design.md) and returns the Figure, which Jupyter shows inline::

    from tinyproj.reporting import style
    fig, (ax,) = style.figure()
    for color, ys in zip(style.colors(3), curves):
        ax.plot(ys, color=color)
    style.finish(fig, "curves.png")        # -> fig (saved as curves.png)

Every plot function of :mod:`tinyproj.reporting` ends with :func:`finish`: it returns the
Figure, and saves it when given a path. Figures use matplotlib's constrained layout, and
titles are wrapped to the width of their panel, so no title or label is cut at an edge.
"""
from __future__ import annotations

import io
import textwrap

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..runs.files import atomic_write_bytes

__all__ = ["PANEL_WIDTH", "PANEL_HEIGHT", "DPI", "SEQUENTIAL_CMAP", "DIVERGING_CMAP", "colors",
           "figure", "save", "finish", "wrap_titles", "percent"]

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
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)          # attaches itself to fig: savefig works without pyplot
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
    return fig, axes


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` with each of its lines wrapped to fit ``width_in`` inches at ``fontsize``."""
    chars = max(20, int(width_in * 72 / (0.5 * fontsize)))    # ~0.5 em per character
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if len(line) > chars else line
                     for line in text.split("\n"))


def wrap_titles(fig) -> None:
    """Wrap every panel title (to its panel's width) and the figure's suptitle (to the
    figure's width), so that constrained layout can make room and no title is cut."""
    width = fig.get_figwidth()
    for ax in fig.axes:
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                title.set_text(_wrap(title.get_text(), ax.get_position().width * width,
                                     title.get_fontsize()))
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        suptitle.set_text(_wrap(suptitle.get_text(), 0.96 * width, suptitle.get_fontsize()))


def save(fig, path, dpi: int = DPI):
    """Write ``fig`` as a PNG to ``path`` atomically; returns the path."""
    buf = io.BytesIO()
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def finish(fig, path=None, dpi: int = DPI):
    """The last step of every plot function: wrap the titles, save ``fig`` as a PNG at
    ``path`` when one is given (atomically), and return ``fig`` (a matplotlib Figure,
    shown inline when a notebook cell ends with it)."""
    wrap_titles(fig)
    if path is not None:
        save(fig, path, dpi=dpi)
    return fig


def percent(value):
    """A fraction as a percentage (0.123 → 12.3); None stays None (a missing value)."""
    return None if value is None else 100.0 * float(value)
