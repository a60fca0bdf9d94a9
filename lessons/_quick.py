"""A tiny helper shared by the lessons (not a lesson itself: its name starts with ``_``).

* Importing it makes ``import tinyproj`` find *this* checkout, so a lesson runs
  with ``python lessons/01_autograd.py`` even before ``pip install -e .`` and a
  breakpoint you put in ``tinyproj/tensor.py`` is the one that gets hit.
* :func:`quick` says whether the lesson runs in quick mode (small sizes, a few
  seconds): ``TINYPROJ_QUICK=1`` in the environment or ``--quick`` on the
  command line.
* :func:`out_dir` is the folder where lessons save figures (``lessons/out/``,
  created on demand and ignored by git).
"""
from __future__ import annotations

import os
import sys

LESSONS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(LESSONS)

# Put the repository root first on the import path when it holds the package.
if os.path.isdir(os.path.join(ROOT, "tinyproj")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def quick() -> bool:
    """True in quick mode: ``TINYPROJ_QUICK=1`` or ``--quick`` among the arguments."""
    return os.environ.get("TINYPROJ_QUICK", "0") == "1" or "--quick" in sys.argv


def out_dir() -> str:
    """``lessons/out/``, created if missing; figures and other outputs go there."""
    path = os.path.join(LESSONS, "out")
    os.makedirs(path, exist_ok=True)
    return path
