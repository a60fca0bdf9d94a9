"""Every lesson runs to the end in quick mode.

Each ``lessons/NN_*.py`` is run as a student would run it — ``python lessons/NN_name.py`` from
the repository root — in a fresh interpreter with ``TINYPROJ_QUICK=1`` (small sizes) and
``MPLBACKEND=Agg`` (no screen). A new lesson is picked up by the glob without touching this file.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 120


def _tail(text: str, n: int = 6000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_in_quick_mode(lesson: Path):
    env = dict(os.environ)
    env.update(TINYPROJ_QUICK="1", MPLBACKEND="Agg", PYTHONBREAKPOINT="0")
    env.pop("TINYPROJ_BREAK", None)          # never stop in the debugger under pytest
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run([sys.executable, str(lesson)], cwd=ROOT, env=env,
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
