"""Every lesson runs to the end in quick mode.

Each lesson runs once per test session, in one of two ways: as a notebook through a real kernel
(``tests/test_notebooks.py``, when the ``course`` extra — jupytext, nbclient, ipykernel — is
installed, as in CI), or else as a script, as a student would run it — ``python
lessons/NN_name.py`` from the repository root — in a fresh interpreter with ``TINYPROJ_QUICK=1``
(small sizes) and ``MPLBACKEND=Agg`` (no screen). Set ``TINYPROJ_LESSONS_AS_SCRIPTS=1`` to run the
scripts as well. A new lesson is picked up by the glob without touching this file.

The script mode of the lessons' helper (``lessons/_quick.py``: figures saved, nothing displayed,
the repository found without ``__file__`` in the lesson) is tested here in-process, and the
lessons are checked for what breaks a notebook (``__file__``, a forced backend).
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _helpers import with_worker_threads

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
STANDIN = os.environ.get("TINYPROJ_BACKEND", "").strip().lower() == "standin"
# the stand-in for the GPU (TINYPROJ_BACKEND=standin) counts every array operation in Python,
# which makes lesson 06's many small sweeps ~2× slower than on NumPy
TIMEOUT_S = 300 if STANDIN else 120
# On the stand-in a lesson checks what a GPU user's run of it would meet: device arrays only,
# nothing mixed with the host. Its kernels are the NumPy reference ones (TINYPROJ_KERNELS=
# reference), not the single-threaded C++ build of the CUDA sources that the rest of the
# stand-in suite checks: that build's im2col alone made lesson 06 take 132 s instead of 31 s.
# The two kernel lessons keep the CUDA build: it is what they show.
KERNEL_LESSONS = ("08_kernels.py", "09_gpu_kernels.py")


def _notebooks_run() -> bool:
    """Whether tests/test_notebooks.py executes the lessons (the `course` extra is installed)."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("jupytext", "nbformat", "nbclient", "ipykernel"))


SCRIPTS = os.environ.get("TINYPROJ_LESSONS_AS_SCRIPTS") == "1" or not _notebooks_run()


def _tail(text: str, n: int = 6000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


@pytest.mark.skipif(not SCRIPTS, reason="the lessons run as notebooks (tests/test_notebooks.py); "
                    "TINYPROJ_LESSONS_AS_SCRIPTS=1 runs them as scripts too")
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_in_quick_mode(lesson: Path, tmp_path):
    env = dict(os.environ)
    env.update(TINYPROJ_QUICK="1", MPLBACKEND="Agg", PYTHONBREAKPOINT="0",
               TINYPROJ_LESSONS_OUT=str(tmp_path / "out"))   # parallel runs never share a folder
    env.pop("TINYPROJ_BREAK", None)          # never stop in the debugger under pytest
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if STANDIN and lesson.name not in KERNEL_LESSONS:
        env.setdefault("TINYPROJ_KERNELS", "reference")
    try:
        proc = subprocess.run([sys.executable, str(lesson)], cwd=ROOT,
                              env=with_worker_threads(env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        pytest.fail(f"{lesson.name} did not finish within {TIMEOUT_S} s in quick mode "
                    f"(TINYPROJ_QUICK=1); its sizes are too big.\nlast output:\n{_tail(out)}")
    assert proc.returncode == 0, (
        f"`TINYPROJ_QUICK=1 python {lesson.relative_to(ROOT)}` exited with {proc.returncode}.\n"
        f"--- stderr ---\n{_tail(proc.stderr)}\n--- stdout (end) ---\n{_tail(proc.stdout, 2000)}")


def test_lessons_exist():
    assert LESSONS, f"no lessons matching [0-9][0-9]_*.py in {ROOT / 'lessons'}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_works_as_a_notebook_too(lesson: Path):
    """No ``__file__`` (a notebook has none) and no forced backend (figures must show inline)."""
    code = "\n".join(line.split("#")[0] for line in lesson.read_text(encoding="utf-8").splitlines())
    assert "__file__" not in code, f"{lesson.name} uses __file__, which a notebook does not define"
    assert not re.search(r"matplotlib\.use\(|plt\.switch_backend\(", code), (
        f"{lesson.name} forces a matplotlib backend; figures would not show inline in Jupyter")
    assert "savefig(" not in code, f"{lesson.name}: save figures with _quick.show(fig, name)"


def _load_quick(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYPROJ_LESSONS_OUT", str(tmp_path / "out"))
    spec = importlib.util.spec_from_file_location("lessons_quick_under_test",
                                                  ROOT / "lessons" / "_quick.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_show_saves_in_script_mode(monkeypatch, tmp_path, capsys):
    from matplotlib.figure import Figure
    quick = _load_quick(monkeypatch, tmp_path)
    assert quick.ROOT == str(ROOT) and not quick.in_notebook()
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert quick.show(fig, "line.png") is None            # a cell ending with it: no Out[] line
    path = tmp_path / "out" / "line.png"
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.startswith("saved ")
    quick.show(path)                                      # what a plot function returned
    assert capsys.readouterr().out.startswith("image ")   # not "saved": show() wrote nothing
    quick.show(fig)                                       # shown only: nothing saved
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["line.png"]
    with pytest.raises(TypeError):
        quick.show(42)


def test_quick_finds_the_checkout_from_env_or_cwd(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYPROJ_ROOT", str(ROOT))
    assert _load_quick(monkeypatch, tmp_path).ROOT == str(ROOT)
    monkeypatch.setenv("TINYPROJ_ROOT", str(tmp_path))   # not a checkout: ignored
    monkeypatch.chdir(ROOT / "lessons")
    quick = _load_quick(monkeypatch, tmp_path)
    assert quick.ROOT == str(ROOT) and quick.LESSONS == str(ROOT / "lessons")
