"""A tiny helper shared by the lessons (not a lesson itself: its name starts with ``_``).

It works the same whether a lesson runs as a script (``python lessons/03_projections.py``) or as
a notebook (Jupyter, VS Code), where a lesson has no ``__file__``:

* Importing it makes ``import tinyproj`` find *this* checkout, so a lesson runs
  with ``python lessons/01_autograd.py`` even before ``pip install -e .`` and a
  breakpoint you put in ``tinyproj/tensor.py`` is the one that gets hit. The checkout is
  ``$TINYPROJ_ROOT`` if set, else the folder above this file, else the first folder at or above
  the working folder that holds ``lessons/_quick.py`` and ``tinyproj/``.
* :func:`quick` says whether the lesson runs in quick mode (small sizes, a few
  seconds): ``TINYPROJ_QUICK=1`` in the environment or ``--quick`` on the
  command line.
* :func:`out_dir` is the folder where lessons save figures (``lessons/out/``, or
  ``$TINYPROJ_LESSONS_OUT``; created on demand and ignored by git).
* :func:`show` saves a figure there and, in a notebook, shows it inline as well.

A lesson imports it with a fallback for a notebook whose working folder is not ``lessons/``::

    try:
        import _quick
    except ModuleNotFoundError:        # a kernel started elsewhere, e.g. at the repository root
        sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
        import _quick
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

__all__ = ["ROOT", "LESSONS", "quick", "out_dir", "in_notebook", "show"]


def _is_root(path: str) -> bool:
    return (os.path.isfile(os.path.join(path, "lessons", "_quick.py"))
            and os.path.isdir(os.path.join(path, "tinyproj")))


def _find_root() -> str:
    """The repository root: $TINYPROJ_ROOT, this module's parent folder, or one above the cwd."""
    candidates = []
    if os.environ.get("TINYPROJ_ROOT"):
        candidates.append(os.path.abspath(os.environ["TINYPROJ_ROOT"]))
    here = os.path.dirname(os.path.abspath(__file__))        # a module always has a __file__
    candidates.append(os.path.dirname(here))
    cwd = os.path.abspath(os.getcwd())
    while True:
        candidates.append(cwd)
        parent = os.path.dirname(cwd)
        if parent == cwd:
            break
        cwd = parent
    for path in candidates:
        if _is_root(path):
            return path
    return os.path.dirname(here)


ROOT = _find_root()
LESSONS = os.path.join(ROOT, "lessons")

# Put the repository root first on the import path when it holds the package.
if os.path.isdir(os.path.join(ROOT, "tinyproj")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def quick() -> bool:
    """True in quick mode: ``TINYPROJ_QUICK=1`` or ``--quick`` among the arguments."""
    return os.environ.get("TINYPROJ_QUICK", "0") == "1" or "--quick" in sys.argv


def out_dir() -> str:
    """``lessons/out/`` (or ``$TINYPROJ_LESSONS_OUT``), created if missing; outputs go there."""
    path = os.environ.get("TINYPROJ_LESSONS_OUT") or os.path.join(LESSONS, "out")
    os.makedirs(path, exist_ok=True)
    return path


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, the notebook, VS Code, nbclient)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _relative(path) -> str:
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def show(figure, name: str | None = None, dpi: int = 110):
    """Save ``figure`` under :func:`out_dir` as ``name`` and, in a notebook, show it inline.

    ``figure`` is a matplotlib ``Figure`` or the path of an image a plot function has already
    saved (then it is only shown). With ``name=None`` a Figure is shown but not saved (a plot
    function that was given a path has saved it already). The figure is closed afterwards, so a
    script does not keep it in memory and Jupyter does not draw it a second time. Returns None,
    so that a cell ending with ``show(...)`` shows the figure and no ``Out[]`` line.
    """
    png = None
    if isinstance(figure, (str, os.PathLike)):
        path = Path(figure)
    elif hasattr(figure, "savefig"):
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=dpi)
        png = buf.getvalue()
        path = None
        if name is not None:
            path = Path(out_dir()) / name
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(png)
            os.replace(tmp, path)                 # whole files only, even with parallel runs
        if "matplotlib.pyplot" in sys.modules:    # a pyplot figure: forget it now it is drawn
            sys.modules["matplotlib.pyplot"].close(figure)
    else:
        raise TypeError(f"show() takes a matplotlib Figure or an image path, not {type(figure)!r}")
    if path is not None:      # "saved" only for what show() wrote; a plot function's file may be old
        print("saved" if png is not None else "image", _relative(path))
    if in_notebook():
        from IPython.display import Image, display
        display(Image(data=png) if png is not None else Image(filename=str(path)))
