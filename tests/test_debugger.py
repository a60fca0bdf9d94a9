"""The lessons' debugger recipes work as written.

Each recipe is read from the lesson's own output (the lesson prints it with the paths and
line numbers of the source being run), typed into pdb through its standard input, and the
test checks that pdb stops where the recipe says — inside the function while it runs, not
at its ``def`` line at import — and that printing a local variable there works:

* lesson 04: breakpoints by function name on the five parts of Algorithm 1 (project,
  forward, backward, update, clip), then breakpoints on the body lines the lesson prints,
  and the ``%%debug`` recipe for Jupyter (IPython's debugger, as a notebook runs it);
* lesson 01: the conditional breakpoint in ``Tensor.backward``'s loop, and
  ``TINYPROJ_BREAK=1`` stopping in the lesson's own ``Sigmoid.backward``.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyproj import algorithm1

ROOT = Path(__file__).resolve().parents[1]
LESSON01 = ROOT / "lessons" / "01_autograd.py"
LESSON04 = ROOT / "lessons" / "04_algorithm1.py"
TIMEOUT_S = 180
PARTS = ("project", "forward", "backward", "update", "clip")
PROMPT = re.compile(r"^\s*\(Pdb\) (.+?)\s*$")
# where pdb stops in a lesson's lines does not depend on the backend; the lessons themselves
# run on the stand-in in tests/test_lessons.py
pytestmark = pytest.mark.numpy_only("pdb's stops in the lessons' lines are the same on any "
                                    "backend")


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.update(TINYPROJ_QUICK="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    for name in ("TINYPROJ_BREAK", "PYTHONBREAKPOINT"):
        env.pop(name, None)
    env.update(extra)
    return env


def _run(args, stdin: str = "", **extra) -> str:
    """Run ``python ARGS`` in the repository root with ``stdin``; stdout and stderr together."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(**extra), input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    return proc.stdout + proc.stderr


def _tail(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


def body_line(fn) -> int:
    """The first statement of ``fn``'s body after its docstring (computed here, independently
    of the lesson): the line where pdb stops when ``fn`` is called."""
    source, first = inspect.getsourcelines(fn)
    body = ast.parse(textwrap.dedent("".join(source))).body[0].body
    doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
           and isinstance(body[0].value.value, str))
    return first + (body[1] if doc and len(body) > 1 else body[0]).lineno - 1


def stops(output: str, filename: str) -> list:
    """``[(line, function)]`` of every place pdb stopped in ``filename``, in order."""
    pattern = re.compile(r"> \S*" + re.escape(filename) + r"\((\d+)\)(\S+)\(\)")
    return [(int(m.group(1)), m.group(2)) for m in pattern.finditer(output)]


def pdb_errors(output: str) -> list:
    """pdb's error lines (``*** ...``): a command of the recipe that pdb did not accept."""
    return [line for line in output.splitlines() if "*** " in line]


@pytest.fixture(scope="module")
def lesson04_output() -> str:
    out = _run([str(LESSON04)])
    assert "lesson 4 done" in out, f"lesson 04 did not run to its end:\n{_tail(out)}"
    return out


def _recipe04(output: str) -> list:
    """The commands of lesson 04's pdb recipe, as printed: every ``(Pdb) ...`` line."""
    start = output.index("$ python -m pdb lessons/04_algorithm1.py")
    commands = []
    for line in output[start:].splitlines()[1:]:
        m = PROMPT.match(line)
        if m:
            commands.append(m.group(1))
            if m.group(1) == "q":
                return commands
    raise AssertionError("lesson 04 prints no pdb recipe ending in `(Pdb) q`")


def test_lesson04_recipe_by_function_stops_in_each_part_while_it_runs(lesson04_output):
    commands = _recipe04(lesson04_output)
    assert [c for c in commands if c.startswith("b ")] == \
        [f"b tinyproj.algorithm1.{name}" for name in PARTS]
    out = _run(["-m", "pdb", "lessons/04_algorithm1.py"], "\n".join(commands) + "\n")
    assert not pdb_errors(out), f"pdb refused a command of the recipe:\n{_tail(out)}"
    got = stops(out, "tinyproj/algorithm1.py")
    want = [(body_line(getattr(algorithm1, name)), name) for name in PARTS]
    # one stop in each part, at its first body line (never at a def line), then one `n` in update
    assert got[:4] == want[:4] and got[-1] == want[-1], f"stops {got}, want {want}\n{_tail(out)}"
    assert len(got) == 6 and got[4][1] == "update" and got[4][0] > want[3][0]
    # the values the recipe prints at each stop
    assert "('sign', ['conv1.weight', 'conv2.weight', 'conv3.weight'])" in out
    assert re.search(r"\(Pdb\) \(\(\d+, 3, 32, 32\), array\(\[", out), "x.shape, y[:10] in forward"
    assert re.search(r"\(Pdb\) \d+\.\d+\n", out), "loss.item() in backward"
    assert "(Pdb) True" in out, "after `n` in update the model holds W again"
    assert re.search(r"\(Pdb\) \(0\.0\d+, ", out), "c_k and max |W| in clip"


def test_lesson04_breakpoints_on_the_printed_body_lines(lesson04_output):
    printed = re.findall(r"^\s+b (/\S+\.py):(\d+)\s*$", lesson04_output, re.M)
    assert len(printed) == len(PARTS), f"lesson 04 prints {len(printed)} file:line breakpoints"
    source = Path(inspect.getsourcefile(algorithm1)).resolve()
    for (path, line), name in zip(printed, PARTS):
        assert Path(path).is_absolute() and Path(path).resolve() == source
        fn = getattr(algorithm1, name)
        assert int(line) == body_line(fn), f"{name}: line {line} is not its first body line"
        assert int(line) != inspect.getsourcelines(fn)[1], f"{name}: a def line"
    show = {"project": "p len(weights)", "forward": "p x.shape", "backward": "p loss.item()",
            "update": "p sorted(saved_W)[0]", "clip": "p sorted(bounds)[0]"}
    commands = [f"b {path}:{line}" for path, line in printed]
    for name in PARTS:
        commands += ["c", show[name]]
    out = _run(["-m", "pdb", "lessons/04_algorithm1.py"], "\n".join(commands + ["q"]) + "\n")
    assert not pdb_errors(out), f"pdb refused a command:\n{_tail(out)}"
    assert stops(out, "tinyproj/algorithm1.py") == [(int(line), name)
                                            for (_, line), name in zip(printed, PARTS)]
    assert "(Pdb) 9\n" in out and "(Pdb) 'conv1.weight'" in out


def test_a_breakpoint_on_a_def_line_fires_at_import_only(tmp_path):
    """Why the recipes avoid ``def`` lines: there pdb stops once, while the module is imported,
    and never when the function runs (the old recipe of lesson 04)."""
    path = inspect.getsourcefile(algorithm1)
    def_line = inspect.getsourcelines(algorithm1.update)[1]
    script = tmp_path / "def_line.py"
    script.write_text("import tinyproj.algorithm1 as a\n"
                      "a.update({}, {}, type('O', (), {'step': lambda self: None})())\n"
                      "print('update ran')\n")
    out = _run(["-m", "pdb", str(script)], f"b {path}:{def_line}\nc\nc\n",
               PYTHONPATH=str(ROOT))
    hits = stops(out, "tinyproj/algorithm1.py")
    assert hits == [(def_line, "<module>")], f"{hits}\n{_tail(out)}"
    assert "update ran" in out


def test_lesson04_jupyter_recipe_with_debug_magic(tmp_path):
    """The ``%%debug`` cell of lesson 04's Jupyter recipe, run by IPython's shell as a notebook
    kernel runs it: ``b algorithm1.update`` names the function through the notebook's import."""
    pytest.importorskip("IPython")
    script = textwrap.dedent("""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance(colors="NoColor")
        shell.run_cell("import numpy as np\\n"
                       "from tinyproj import algorithm1, backend, clipping, models, optim\\n"
                       "import tinyproj.functional as F\\n"
                       "model2 = models.bc_cifar10(width=1 / 16, rng=backend.make_rng(0))\\n"
                       "bounds = clipping.clip_bounds(model2, f=0.5)\\n"
                       "optimizer2 = optim.Adam(model2.parameters(), lr=0.003)\\n"
                       "loss_fn = F.square_hinge_loss\\n"
                       "x = np.random.default_rng(0).standard_normal((4, 3, 32, 32))"
                       ".astype(np.float32)\\n"
                       "y = np.arange(4)")
        shell.run_cell('%%debug\\nalgorithm1.train_step(model2, x, y, loss_fn, optimizer2, '
                       '"sign", bounds, backend.make_rng(1))\\n')
    """)
    (tmp_path / "debug_magic.py").write_text(script)
    out = _run([str(tmp_path / "debug_magic.py")],
               "b algorithm1.update\nc\np sorted(saved_W)[0]\nn\nq\n", PYTHONPATH=str(ROOT))
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    line = body_line(algorithm1.update)
    assert re.search(rf"algorithm1\.py\({line}\)update\(\)", out), _tail(out)
    assert "'conv1.weight'" in out, _tail(out)


def _recipe01(output: str) -> list:
    return [m.group(1) for line in output.splitlines() if (m := PROMPT.match(line))]


@pytest.fixture(scope="module")
def lesson01_output() -> str:
    out = _run([str(LESSON01)])
    assert "Lesson 1 done" in out, f"lesson 01 did not run to its end:\n{_tail(out)}"
    return out


def test_lesson01_conditional_breakpoint_in_the_backward_loop(lesson01_output):
    commands = _recipe01(lesson01_output)
    assert commands and commands[0].startswith("b /") and 'func.name == "Sigmoid"' in commands[0]
    stdin = "\n".join(commands + ["p func.name", "p gys[0].shape", "q"]) + "\n"
    out = _run(["-m", "pdb", "lessons/01_autograd.py"], stdin)
    assert not pdb_errors(out), f"pdb refused a command:\n{_tail(out)}"
    import tinyproj as tp
    path, line = commands[0].split(",")[0][2:].rsplit(":", 1)
    line = int(line)
    assert Path(path).resolve() == Path(inspect.getsourcefile(tp.Tensor.backward)).resolve()
    lines, first = inspect.getsourcelines(tp.Tensor.backward)
    assert first < line < first + len(lines), "the printed line is inside Tensor.backward"
    assert "func.backward(" in lines[line - first], "... on the loop's call of func.backward"
    assert stops(out, "tinyproj/tensor.py") == [(line, "backward")], _tail(out)
    assert "(Pdb) 'Sigmoid'" in out


def test_lesson01_tinyproj_break_stops_in_sigmoid_backward():
    out = _run([str(LESSON01)], "p gy.shape\np self.y.shape\nc\n", TINYPROJ_BREAK="1")
    assert "Lesson 1 done" in out, _tail(out)
    assert re.search(r"01_autograd\.py\(\d+\)backward\(\)", out), _tail(out)
    assert "(Pdb) (2,)" in out
