"""Every lesson runs top to bottom as a Jupyter notebook, through a real kernel, in quick mode.

Each ``lessons/NN_*.py`` (jupytext percent format, the source of the course) is read with
jupytext into an nbformat notebook and executed by nbclient in the ``python3`` kernel of this
interpreter (ipykernel), from the ``lessons/`` folder as Jupyter would, with
``TINYPROJ_QUICK=1``. A test fails on the first cell that raises, with that cell's source and
traceback; a lesson that draws figures (it calls ``_quick.show``) must also produce inline
images (``image/png`` outputs) and save them. Figures and runs go to a temporary folder
(``TINYPROJ_LESSONS_OUT``), so tests can run in parallel and never touch ``lessons/out/``.
A new lesson is picked up by the glob without touching this file.

The tests skip (saying why) when the ``course`` extra is not installed:
``pip install -e ".[course]"``. Run this file as a script to print a table per lesson
(cells, errors, inline images, seconds)::

    TINYPROJ_QUICK=1 python tests/test_notebooks.py [01 03 ...]
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

from _helpers import with_worker_threads

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 600          # one cell (generous: a loaded CI machine); a quick lesson takes 3–110 s

try:
    import ipykernel  # noqa: F401  (the kernel nbclient starts)
    import jupytext
    import nbformat  # noqa: F401
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    MISSING = None
except ImportError as err:                      # the `course` extra is not installed
    MISSING = (f"{err.name or err} is not installed: the notebook tests need jupytext, nbformat, "
               f"nbclient and ipykernel (pip install -e \".[course]\")")

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plots(lesson: Path) -> bool:
    """Whether a lesson draws figures: it shows them through ``_quick.show``."""
    return "_quick.show(" in lesson.read_text(encoding="utf-8")


def kernel_env(out_dir: str) -> dict:
    """The kernel's environment: quick mode, no debugger stops, outputs in ``out_dir``."""
    env = dict(os.environ)
    env.update(TINYPROJ_QUICK="1", PYTHONBREAKPOINT="0", TINYPROJ_LESSONS_OUT=str(out_dir),
               JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("TINYPROJ_BREAK", None)         # never stop in the debugger under a test
    env.pop("MPLBACKEND", None)             # a student's kernel: ipykernel's inline backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return with_worker_threads(env)


def execute(lesson: Path, out_dir: str, cwd: Path = LESSONS_DIR) -> dict:
    """Run ``lesson`` as a notebook (kernel working folder ``cwd``, Jupyter's default the lesson's
    folder); returns cells, errors, images, seconds and the error text."""
    nb = jupytext.read(lesson)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            allow_errors=False, resources={"metadata": {"path": str(cwd)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=kernel_env(out_dir))
    except (CellExecutionError, CellTimeoutError) as err:
        error = _ANSI.sub("", str(err))
    seconds = time.perf_counter() - start
    code = [c for c in nb.cells if c.cell_type == "code"]
    run = [c for c in code if c.get("execution_count") is not None]
    errors = sum(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    if error is not None:
        errors = max(errors, 1)
        failed = next((i for i, c in enumerate(code)
                       if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                      len(run) - 1)
        error = f"code cell {failed + 1} of {len(code)}:\n{error}"
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    saved = sorted(p.name for p in Path(out_dir).rglob("*.png"))
    return dict(lesson=lesson.name, cells=len(code), executed=len(run), errors=errors,
                images=images, saved=saved, seconds=seconds, error=error, notebook=nb)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_notebook(lesson: Path, tmp_path):
    result = execute(lesson, str(tmp_path / "out"))
    print(f"{lesson.name}: {result['cells']} code cells, {result['errors']} errors, "
          f"{result['images']} inline images, {result['seconds']:.1f} s")
    if result["error"] is not None:
        pytest.fail(f"{lesson.name} fails as a notebook (TINYPROJ_QUICK=1, kernel python3, "
                    f"working folder lessons/) in {result['error']}", pytrace=False)
    assert result["executed"] == result["cells"], (
        f"{lesson.name}: only {result['executed']} of {result['cells']} code cells ran")
    if plots(lesson):
        assert result["images"] > 0, (
            f"{lesson.name} draws figures (_quick.show) but the notebook shows none inline "
            f"(no image/png output)")
        assert result["saved"], f"{lesson.name} shows figures but saved no PNG in its out folder"


def test_lesson_runs_from_the_repository_root(tmp_path):
    """A kernel started at the repository root (VS Code, `jupyter lab` there) finds lessons/."""
    lesson = LESSONS_DIR / "01_autograd.py"            # the quickest lesson, a few seconds
    if not lesson.exists():
        pytest.skip("no lesson 01")
    result = execute(lesson, str(tmp_path / "out"), cwd=ROOT)
    assert result["error"] is None, f"{lesson.name} from the repository root: {result['error']}"


def test_notebook_tests_see_every_lesson():
    assert LESSONS, f"no lessons matching [0-9][0-9]_*.py in {LESSONS_DIR}"


def main(argv: list) -> int:
    """Print cells, errors, inline images and seconds per lesson (all, or those named)."""
    if MISSING:
        print(MISSING)
        return 2
    chosen = [p for p in LESSONS if not argv or any(p.name.startswith(a) for a in argv)]
    print(f"{'lesson':28s} {'cells':>5s} {'errors':>6s} {'images':>6s} {'saved':>5s} {'seconds':>8s}")
    failed = 0
    for lesson in chosen:
        with tempfile.TemporaryDirectory() as out:
            r = execute(lesson, os.path.join(out, "out"))
        print(f"{r['lesson']:28s} {r['cells']:5d} {r['errors']:6d} {r['images']:6d} "
              f"{len(r['saved']):5d} {r['seconds']:8.1f}", flush=True)
        if r["error"]:
            failed += 1
            print(r["error"][-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
