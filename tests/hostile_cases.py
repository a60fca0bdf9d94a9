"""Bad-input and fault cases of the command line, tried as a hostile user would (issue 10).

Each case is a small scenario against ``tinyproj`` (synthetic data, tiny settings, a few
seconds at most) that ends in one of six outcomes:

    clear error     exit 2, an ``error: ...`` line naming the flag/file/value, no traceback,
                    nothing created, changed or deleted (the right outcome of a user error)
    unclear error   non-zero, but the message does not name what is wrong, the exit status
                    is not 2, or the error came late (after files were created); also a
                    valid command that was refused or a fault that was not handled
    traceback       a raw Python traceback for an ordinary mistake (or the wrapper's
                    "internal error ... a bug in tinyproj", which is one hidden)
    silently wrong  exit 0 with nonsense accepted or a wrong/stale result
    data loss       a file the command did not create was deleted or overwritten, or
                    results were dropped
    correct         the right outcome of a valid command

Most cases call ``tinyproj.cli.main(argv)`` in this process (the console script and
``python -m tinyproj.cli`` call the same function, and the error wrapper lives there); an
exception that escapes ``main`` is what a user sees as a traceback. Signals, kill -9,
``--debug``, the real exit status and concurrent writers run in subprocesses
(``sys.executable -m tinyproj.cli``) of the same ``tinyproj`` as the one imported here.

This file is the harness (running, snapshots, judging, shared trained runs, the table);
the cases themselves are in ``tests/test_cli_hostile.py``, where pytest asserts each case's
accepted outcomes, and whose ``--classify`` mode prints the outcome of every case for the
``tinyproj`` on ``PYTHONPATH``::

    PYTHONPATH=/tmp/before .venv/bin/python tests/test_cli_hostile.py --classify
    .venv/bin/python tests/test_cli_hostile.py --classify [--only ID,ID] [--details]
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CLASSES = ("clear error", "unclear error", "traceback", "silently wrong", "data loss", "correct")
ERROR_OK = ("clear error",)
OK = ("correct",)
OWNERS = {
    "lead": "cli/train.py, runs/config.py, runs/training.py, runs/files.py (lead)",
    "grid": "robustness/, walking_noise/, runs/grid.py (grid dev)",
    "reporting": "reporting/ (reporting dev)",
    "data": "data/ (data dev)",
}

# Tiny runs: synthetic data (1000 train / 200 test images of 3x32x32), 64 training images
TINY = ["--dataset", "synthetic", "--val-size", "0", "--train-subset", "64",
        "--test-subset", "32", "--epochs", "1", "--no-progress"]
MLP = ["--model", "mlp_tfc"]
SWEEP_TINY = ["--draws", "1", "--test-subset", "32", "--bn-batches", "0", "--no-progress"]
WALK_TINY = ["--sigmas", "0.1,1,10,100", "--test-subset", "32", "--no-progress"]

# Environment for every case: no downloads reach the network, caches in the scratch folder,
# one thread per library (2 cores shared by several agents). NUMBA_NUM_THREADS is not among
# them: Numba reads it again at every compile and raises ("Cannot set NUMBA_NUM_THREADS to a
# different value once the threads have been launched") when it differs from the thread pool
# this process already started, so an in-process case only caps the pool's use
# (``one_numba_thread``) and the subprocess cases get it in their own environment (sub_env).
_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_SUB_THREADS = {"NUMBA_NUM_THREADS": "1"}
_NO_NET = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "ALL_PROXY": "http://127.0.0.1:9"}


def case_environment(scratch: Path) -> dict:
    """Environment variables the cases run under (set in os.environ by the caller)."""
    env = dict(_THREADS, **_NO_NET, TINYPROJ_CACHE=str(scratch / "_cache"), MPLBACKEND="Agg")
    return env


def one_numba_thread() -> int:
    """Cap this process's Numba kernels at one thread; returns the count before (to restore
    with ``numba.set_num_threads``). The pool itself keeps its size: see ``_THREADS``."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    return before


# ---------------------------------------------------------------------------
# Running the command line
# ---------------------------------------------------------------------------
class _CaseTimeout(BaseException):
    pass


@dataclass
class Result:
    argv: list
    rc: int | None                 # None: timed out
    out: str
    err: str
    seconds: float
    exc: str | None = None         # traceback text of an exception that escaped main

    @property
    def traceback(self) -> bool:
        """A traceback, or the wrapper's "internal error" (an unhandled exception, hidden)."""
        return (self.exc is not None or "Traceback (most recent call last)" in self.out + self.err
                or self.internal)

    @property
    def internal(self) -> bool:
        return "internal error" in self.err.lower()

    def last_line(self) -> str:
        if self.exc:
            return self.exc.strip().splitlines()[-1]
        if self.internal and "Traceback (most recent" not in self.err:
            line = next(x for x in self.err.splitlines() if "internal error" in x.lower())
            return "(traceback hidden) " + line.strip()
        text = (self.err.strip() or self.out.strip()).splitlines()
        return text[-1] if text else ""


def cli(argv, cwd, timeout: float = 60) -> Result:
    """``tinyproj.cli.main(argv)`` in this process, in ``cwd``, output captured."""
    import tinyproj.cli
    argv = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    exc = None
    rc = None

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    saved_handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    old_alarm = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(timeout))
    start = time.perf_counter()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                value = tinyproj.cli.main(argv)
                rc = 0 if value is None else int(value)
            except SystemExit as e:
                if e.code is None:
                    rc = 0
                elif isinstance(e.code, int):
                    rc = e.code
                else:
                    print(e.code, file=sys.stderr)
                    rc = 1
    except _CaseTimeout:
        rc, exc = None, None
        err.write(f"\n[timed out after {timeout} s]\n")
    except BaseException:  # noqa: BLE001 - anything escaping main is a traceback for the user
        rc, exc = 1, traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler)
        os.chdir(old_cwd)
    return Result(argv, rc, out.getvalue(), err.getvalue(), time.perf_counter() - start, exc)


def tinyproj_root() -> str:
    import tinyproj
    return str(Path(tinyproj.__file__).resolve().parents[1])


def sub_env(extra=None) -> dict:
    env = dict(os.environ, **_SUB_THREADS)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tinyproj_root(), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def sub_argv(argv) -> list:
    return [sys.executable, "-m", "tinyproj.cli"] + [str(a) for a in argv]


def sub(argv, cwd, timeout: float = 60, env=None) -> Result:
    """``python -m tinyproj.cli argv`` in a subprocess."""
    start = time.perf_counter()
    try:
        p = subprocess.run(sub_argv(argv), cwd=cwd, env=sub_env(env), capture_output=True,
                           text=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = ((e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) \
            + f"\n[timed out after {timeout} s]"
    return Result([str(a) for a in argv], rc, out, err, time.perf_counter() - start)


# ---------------------------------------------------------------------------
# Files before and after
# ---------------------------------------------------------------------------
def snapshot(root: Path) -> dict:
    """{relative path: ('d',) for folders, ('f', size, mtime_ns, sha1) for files}."""
    snap = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts and rel.parts[0] == "_cache":
            continue
        for d in dirnames:
            snap[str(rel / d)] = ("d",)
        for f in filenames:
            p = Path(dirpath) / f
            try:
                st = p.lstat()
                digest = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "-"
            except OSError:
                continue
            snap[str(rel / f)] = ("f", st.st_size, st.st_mtime_ns, digest)
            if f == "config.json" and st.st_size < 65536:
                _CONFIG_TEXT[digest] = p.read_text(errors="replace")
    return snap


_CONFIG_TEXT: dict = {}
_WHERE_KEYS = ("out", "data_dir")     # may be rewritten when a copied run is resumed


def _same_config(digest_a: str, digest_b: str) -> bool:
    """Two config.json versions with the same settings apart from where the run lives."""
    try:
        a, b = (json.loads(_CONFIG_TEXT[d]) for d in (digest_a, digest_b))
    except (KeyError, ValueError):
        return False
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    return ({k: v for k, v in a.items() if k not in _WHERE_KEYS}
            == {k: v for k, v in b.items() if k not in _WHERE_KEYS})


@dataclass
class Diff:
    lost: list          # deleted or overwritten (not in may_change)
    changed: list       # changed but allowed
    created: list       # new paths

    def short(self, items, n=4):
        return ", ".join(items[:n]) + (f" (+{len(items) - n})" if len(items) > n else "")


def diff(before: dict, after: dict, may_change=()) -> Diff:
    def allowed(path):
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in may_change)
    lost, changed = [], []
    for path, info in before.items():
        now = after.get(path)
        if now == info:
            continue
        if now is not None and info[0] == "f" and now[0] == "f" and now[3] == info[3]:
            continue      # same content (mtime touched only)
        if now is not None and info[0] == "f" and now[0] == "f" and \
                path.endswith("config.json") and _same_config(info[3], now[3]):
            continue      # the same settings, only out/data_dir rewritten
        verb = "deleted" if now is None else "overwritten"
        if now is not None and info[0] == "d":
            continue
        (changed if allowed(path) else lost).append(f"{path} {verb}")
    created = sorted(p for p in after if p not in before)
    return Diff(lost, changed, created)


# ---------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------
@dataclass
class Outcome:
    cls: str
    detail: str


def _err_lines(res: Result) -> str:
    return res.err


def judge_error(res: Result, d: Diff, names=(), ignore_new=()) -> Outcome:
    """The outcome of a command that should be refused as a user error.

    names: groups of alternatives; the message must contain one of each group
    (case-insensitive). ignore_new: path prefixes where new files do not count as late.
    """
    if d.lost:
        return Outcome("data loss", d.short(d.lost) + f" (exit {res.rc})")
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if res.rc is None:
        return Outcome("unclear error", "timed out")
    if res.rc == 0:
        tail = (res.out.strip().splitlines() or [""])[-1]
        return Outcome("silently wrong", f"exit 0 (accepted){': ' + tail[:140] if tail else ''}")
    text = _err_lines(res).lower()
    problems = []
    if res.rc != 2:
        problems.append(f"exit {res.rc}, not 2")
    if "error" not in text:
        problems.append("no 'error' line on stderr")
    for group in names:
        if not any(n.lower() in text for n in group):
            problems.append(f"message does not name {group[0]!r}")
    created = [p for p in d.created
               if not any(p == i or p.startswith(i.rstrip("/") + "/") for i in ignore_new)]
    if created:
        problems.append(f"late: created {d.short(created, 3)}")
    msg = res.last_line()[:160]
    if problems:
        return Outcome("unclear error", "; ".join(problems) + f" — {msg!r}")
    return Outcome("clear error", msg)


def judge_ok(res: Result, d: Diff, check: Callable[[], tuple] | None = None) -> Outcome:
    """The outcome of a valid command: exit 0 and ``check() -> (ok, detail)``."""
    if d.lost:
        return Outcome("data loss", d.short(d.lost))
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if res.rc is None:
        return Outcome("unclear error", "timed out")
    if res.rc != 0:
        return Outcome("unclear error", f"refused/failed a valid command (exit {res.rc}): "
                                        f"{res.last_line()[:160]!r}")
    if check is not None:
        ok, detail = check()
        if not ok:
            return Outcome("silently wrong", detail)
        return Outcome("correct", detail)
    return Outcome("correct", "")


# ---------------------------------------------------------------------------
# Shared trained runs (made once per session, copied into each case)
# ---------------------------------------------------------------------------
class SetupFailed(Exception):
    pass


class Fixtures:
    """Trained runs made once with the ``tinyproj`` under test, copied into cases."""

    SPECS = {
        "mlp": MLP + TINY,
        "mlp_seed1": MLP + TINY + ["--seed", "1"],
        "mlp_bn": MLP + TINY + ["--bn"],
        "bc": ["--model", "bc_cifar10", "--width", "0.0625"] + TINY,
    }

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._made = {}

    def run(self, name: str) -> Path:
        if name in self._made:
            if isinstance(self._made[name], Exception):
                raise self._made[name]
            return self._made[name]
        out = self.folder / name
        try:
            if name == "partial":
                self._partial(out)
            elif name == "mnist":
                out.mkdir(parents=True, exist_ok=True)
                src = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
                if not src.is_dir():
                    raise SetupFailed(f"no MNIST files at {src}")
                shutil.copytree(src, out / "mnist")
                for p in (out / "mnist").iterdir():
                    p.chmod(0o644)
            else:
                res = cli(["train"] + self.SPECS[name] + ["--out", out], self.folder)
                if res.rc != 0 or not (out / "checkpoint.npz").exists():
                    raise SetupFailed(f"fixture run {name} failed: {res.last_line()}")
        except Exception as e:  # noqa: BLE001
            err = e if isinstance(e, SetupFailed) else SetupFailed(f"fixture {name}: {e!r}")
            self._made[name] = err
            raise err
        self._made[name] = out
        return out

    @staticmethod
    def _partial(out: Path):
        """An interrupted run: mlp_tfc, 64 images, batch 16, 2 epochs, stopped at step 5."""
        import tinyproj
        # (the editable install would find a missing tinyproj.runs in /work/main: look first)
        if (Path(tinyproj.__file__).parent / "runs").is_dir():
            from tinyproj.runs.config import make_config
            from tinyproj.runs.training import train
        else:
            from tinyproj.presets import make_config
            from tinyproj.training import train
        cfg = make_config(model="mlp_tfc", dataset="synthetic", val_size=0, train_subset=64,
                          test_subset=32, batch_size=16, epochs=2, out=str(out))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                train(cfg, progress=False, stop_at_step=5, log=lambda *a, **k: None)
        except Exception as e:  # noqa: BLE001
            if "Interrupted" not in type(e).__name__:
                raise
        if not (out / "checkpoint.npz").exists():
            raise SetupFailed("partial run: no checkpoint after stop_at_step")

    def copy(self, name: str, dest: Path) -> Path:
        shutil.copytree(self.run(name), dest)
        return dest


PARTIAL_ARGS = MLP + ["--dataset", "synthetic", "--val-size", "0", "--train-subset", "64",
                      "--test-subset", "32", "--batch-size", "16", "--epochs", "2",
                      "--no-progress"]


@dataclass
class Ctx:
    root: Path                # the case's own empty folder (cwd of the commands)
    fx: Fixtures

    def snap(self):
        return snapshot(self.root)

    def write(self, rel, data="x\n") -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        return p

    def cli(self, *argv, **kw) -> Result:
        return cli(list(argv), self.root, **kw)

    def sub(self, *argv, **kw) -> Result:
        return sub(list(argv), self.root, **kw)

    def popen(self, *argv) -> subprocess.Popen:
        """``python -m tinyproj.cli argv`` started in a subprocess, output piped (as text),
        for a case that signals, kills or races it."""
        return subprocess.Popen(sub_argv(argv), cwd=self.root, env=sub_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def error_case(self, argv, names=(), ignore_new=(), via=None) -> Outcome:
        before = self.snap()
        res = (via or self.cli)(*argv)
        return judge_error(res, diff(before, self.snap()), names, ignore_new)

    def error_or_ok(self, argv, names=(), check=None) -> Outcome:
        """A command that may be refused (then judged as a user error naming ``names``) or
        may work (then judged as a valid command, with ``check``)."""
        before = self.snap()
        res = self.cli(*argv)
        d = diff(before, self.snap())
        if res.rc != 0:
            return judge_error(res, d, names)
        return judge_ok(res, d, check)


# ---------------------------------------------------------------------------
# The catalog (filled by tests/test_cli_hostile.py)
# ---------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    owner: str
    what: str
    fn: Callable[[Ctx], Outcome]
    accept: tuple = ERROR_OK
    slow: bool = False

    @property
    def expect(self) -> str:
        return " or ".join(self.accept)


CASES: list[Case] = []


def case(id, owner, what, accept=ERROR_OK, slow=False):
    def register(fn):
        CASES.append(Case(id, owner, what, fn, tuple(accept), slow))
        return fn
    return register


def simple_error(id, owner, argv, names, what=None, ignore_new=()):
    """A one-command case that must be refused as a user error."""
    def fn(ctx: Ctx):
        return ctx.error_case([a.format(root=ctx.root) for a in argv], names, ignore_new)
    case(id, owner, what or " ".join(argv))(fn)


def metrics_rows(folder: Path) -> list:
    p = Path(folder) / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def table_lines(text: str) -> list:
    """The rows of a printed results table (lines that start with a number)."""
    return [re.sub(r"\s+", " ", line.strip()) for line in text.splitlines()
            if re.match(r"\s*-?\d", line) and "point" not in line and "/" not in line]


# ---------------------------------------------------------------------------
# Helpers of several cases
# ---------------------------------------------------------------------------
LONG_TRAIN = MLP + ["--dataset", "synthetic", "--val-size", "0", "--train-subset", "1000",
                    "--batch-size", "20", "--epochs", "6", "--test-subset", "32",
                    "--test-projections", "none", "--no-progress"]


def wait_for(p: subprocess.Popen, ready: Callable[[], bool], seconds: float, poll: float):
    """Wait until ``ready()`` while ``p`` runs, checking every ``poll`` s; at most ``seconds``
    (the caller looks at ``p.poll()`` to tell a process that ended early)."""
    deadline = time.time() + seconds
    while time.time() < deadline and p.poll() is None and not ready():
        time.sleep(poll)


def start_training(ctx, out: str, poll_tmp: bool = False):
    p = ctx.popen("train", *LONG_TRAIN, "--out", out)
    ckpt = ctx.root / out / "checkpoint.npz"      # the first epoch's checkpoint is written
    wait_for(p, ckpt.exists, 40, 0.01)
    caught_tmp = False
    if poll_tmp:       # kill -9 while a temporary file is being written, if we can catch one
        folder = ctx.root / out
        end = time.time() + 3
        while time.time() < end and p.poll() is None:
            try:
                if any(n.endswith(".tmp") for n in os.listdir(folder)):
                    caught_tmp = True
                    break
            except OSError:
                pass
    return p, caught_tmp


def limit_file_size(limit):
    def set_limit():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


class Skip(Exception):
    pass


# ---------------------------------------------------------------------------
def run_case(c: Case, root: Path, fx: Fixtures) -> Outcome:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        return c.fn(Ctx(root, fx))
    except SetupFailed as e:
        return Outcome("unclear error", f"setup failed: {e}")
    except Skip as e:
        return Outcome("skipped", str(e))


def classify(only=None, details=False, keep=False, stream=sys.stdout) -> dict:
    """Run every case (or ``only``) and print a table; returns {id: Outcome}."""
    import tempfile
    import tinyproj
    scratch = Path(tempfile.mkdtemp(prefix="tinyproj-hostile-"))
    os.environ.update(case_environment(scratch))
    os.environ.pop("TINYPROJ_DATA", None)
    one_numba_thread()
    fx = Fixtures(scratch / "_fixtures")
    cases = [c for c in CASES if not only or c.id in only]
    print(f"tinyproj from {Path(tinyproj.__file__).parent}; {len(cases)} cases; scratch {scratch}",
          file=stream)
    outcomes = {}
    start = time.perf_counter()
    for i, c in enumerate(cases):
        t = time.perf_counter()
        o = run_case(c, scratch / f"{i:02d}-{c.id}", fx)
        outcomes[c.id] = o
        mark = "ok  " if o.cls in c.accept else "skip" if o.cls == "skipped" else "FAIL"
        line = f"{mark} {c.owner:<9} {c.id:<32} {o.cls:<15} {time.perf_counter() - t:5.1f}s"
        if details or mark == "FAIL":
            line += f"  {o.detail[:220]}"
        print(line, file=stream, flush=True)
    counts = {k: sum(o.cls == k for o in outcomes.values()) for k in CLASSES}
    good = sum(outcomes[c.id].cls in c.accept for c in cases)
    skipped = sum(o.cls == "skipped" for o in outcomes.values())
    late = sum(o.cls == "unclear error" and o.detail.startswith("late:")
               for o in outcomes.values())
    print(f"\n{len(cases)} cases in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{v} {k}" + (f" ({late} of them clear but late)" if
                                    k == "unclear error" and late else "")
                      for k, v in counts.items())
          + (f", {skipped} skipped" if skipped else "")
          + f"; as expected: {good}/{len(cases) - skipped}", file=stream)
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return outcomes
