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

Used by ``tests/test_cli_hostile.py`` (pytest asserts each case's accepted outcomes) and
by its ``--classify`` mode, which prints the outcome of every case for the ``tinyproj``
on ``PYTHONPATH``::

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
from dataclasses import dataclass, field
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
# one thread per library (2 cores shared by several agents)
_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1"}
_NO_NET = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "ALL_PROXY": "http://127.0.0.1:9"}


def case_environment(scratch: Path) -> dict:
    """Environment variables the cases run under (set in os.environ by the caller)."""
    env = dict(_THREADS, **_NO_NET, TINYPROJ_CACHE=str(scratch / "_cache"), MPLBACKEND="Agg")
    return env


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


def _tinyproj_root() -> str:
    import tinyproj
    return str(Path(tinyproj.__file__).resolve().parents[1])


def sub_env(extra=None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_tinyproj_root(), env.get("PYTHONPATH")]))
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

    def error_case(self, argv, names=(), ignore_new=(), via=None) -> Outcome:
        before = self.snap()
        res = (via or self.cli)(*argv)
        return judge_error(res, diff(before, self.snap()), names, ignore_new)


# ---------------------------------------------------------------------------
# The catalog
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


def _simple_error(id, owner, argv, names, what=None, ignore_new=()):
    """A one-command case that must be refused as a user error."""
    def fn(ctx: Ctx):
        return ctx.error_case([a.format(root=ctx.root) for a in argv], names, ignore_new)
    case(id, owner, what or " ".join(argv))(fn)


def _metrics(folder: Path) -> list:
    p = Path(folder) / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _table_lines(text: str) -> list:
    """The rows of a printed results table (lines that start with a number)."""
    return [re.sub(r"\s+", " ", line.strip()) for line in text.splitlines()
            if re.match(r"\s*-?\d", line) and "point" not in line and "/" not in line]


# ---- demo --------------------------------------------------------------------------------
DEMO_TINY = ["--width", "0.0625", "--train-subset", "64", "--test-subset", "32", "--epochs", "1",
             "--no-progress"]


@case("demo-presets-abs-dir", "lead", "demo --presets /abs/folder (a folder with files)")
def _(ctx):
    victim = ctx.root / "victim"
    ctx.write("victim/a.txt"), ctx.write("victim/sub/b.txt")
    return ctx.error_case(["demo", "--presets", victim, "--out", "demo"] + DEMO_TINY,
                          [("preset",)])


@case("demo-presets-dotdot", "lead",
      "demo --presets .. --out work/demo (an earlier demo in work/demo; work/ holds files)")
def _(ctx):
    ctx.write("work/keep.txt"), ctx.write("work/notes/n.md")
    ctx.write("work/demo/tr-none-nc/config.json", "{}\n")       # an earlier demo
    return ctx.error_case(["demo", "--presets", "..", "--out", "work/demo"] + DEMO_TINY,
                          [("preset",)])


@case("demo-out-holds-run", "lead",
      "demo --out X where X/tr-none-nc is a train run (demo then fails: no CIFAR-10 in --data-dir)")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X" / "tr-none-nc")
    (ctx.root / "nodata").mkdir()
    return ctx.error_case(["demo", "--out", "X", "--data-dir", "nodata"] + DEMO_TINY,
                          [("tr-none-nc", "nodata", "cifar")], ignore_new=["nodata"])


@case("demo-out-is-file", "lead", "demo --out FILE")
def _(ctx):
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["demo", "--out", "afile.txt"] + DEMO_TINY, [("afile.txt",)])


_simple_error("demo-unknown-preset", "lead",
              ["demo", "--presets", "tr-bogus", "--out", "demo"] + DEMO_TINY, [("tr-bogus",)])


@case("demo-width-0", "lead", "demo --width 0 (checked before the data is looked for)")
def _(ctx):
    (ctx.root / "nodata").mkdir()
    argv = ["demo", "--out", "demo", "--data-dir", "nodata", "--width", "0", "--train-subset",
            "64", "--test-subset", "32", "--epochs", "1", "--no-progress"]
    return ctx.error_case(argv, [("width",)])


# ---- train: values checked before anything is touched ------------------------------------
def _train_error(id, extra, names, base=None, what=None):
    base = MLP + TINY if base is None else base
    _simple_error(id, "lead", ["train"] + base + extra + ["--out", "run"], names,
                  what=what or "train " + " ".join(extra))


_train_error("train-unknown-preset", ["--preset", "tr-bogus"], [("tr-bogus",)])
_train_error("train-unknown-model", ["--model", "resnet"], [("resnet",)])
_train_error("train-batch-size-0", ["--batch-size", "0"], [("batch-size", "batch_size")])
_train_error("train-batch-size-neg", ["--batch-size", "-5"], [("batch-size", "batch_size")])
_train_error("train-train-subset-neg", ["--train-subset", "-100"],
             [("train-subset", "train_subset")])
_train_error("train-test-subset-neg", ["--test-subset", "-5"], [("test-subset", "test_subset")])
_train_error("train-epochs-0", ["--epochs", "0"], [("epochs",)])
_train_error("train-epochs-abc", ["--epochs", "abc"], [("epochs",)])
_train_error("train-iterations-0", ["--iterations", "0"], [("iterations",)])
_train_error("train-bn-batches-neg", ["--bn-batches", "-3"], [("bn-batches", "bn_batches")])
_train_error("train-eval-every-0", ["--eval-every", "0"], [("eval-every", "eval_every")])
_train_error("train-eval-batch-size-0", ["--eval-batch-size", "0"],
             [("eval-batch-size", "eval_batch_size")])
_train_error("train-width-0", ["--width", "0"], [("width",)],
             base=["--model", "bc_cifar10"] + TINY)
_train_error("train-test-projections-typo", ["--test-projections", "none,sgn"], [("sgn",)])
_train_error("train-projection-typo", ["--projection", "sgin"], [("sgin",)])
_train_error("train-lr-nan", ["--lr", "nan"], [("lr",)])
_train_error("train-lr-negative", ["--lr", "-0.1"], [("lr",)])
_train_error("train-clip-negative", ["--clip", "-0.5"], [("clip",)])
_train_error("train-seed-negative", ["--seed", "-1"], [("seed",)])
_train_error("train-dataset-typo", ["--dataset", "cifar100"], [("cifar100",)])
_train_error("train-optimizer-typo", ["--optimizer", "adamm"], [("adamm",)])
_train_error("train-loss-typo", ["--loss", "hinge"], [("hinge",)])
_train_error("train-lr-schedule-typo", ["--lr-schedule", "cosnie"], [("cosnie",)])
_train_error("train-preprocess-typo", ["--preprocess", "zca"], [("zca",)])
_train_error("train-val-size-too-big", ["--val-size", "5000"], [("val-size", "val_size")],
             base=MLP + [a for a in TINY if a not in ("--val-size", "0")])


@case("train-width-mlp", "lead", "train --model mlp_tfc --width 0.5 (honoured or refused)",
      accept=("clear error", "correct"))
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("train", *MLP, *TINY, "--width", "0.5", "--out", "run")
    d = diff(before, ctx.snap())
    if res.rc != 0:
        return judge_error(res, d, [("width",)])

    def check():
        import numpy as np
        def count(p):
            with np.load(p) as f:
                return sum(f[k].size for k in f.files if k.startswith("model/"))
        n_half = count(ctx.root / "run" / "checkpoint.npz")
        n_one = count(ctx.fx.run("mlp") / "checkpoint.npz")
        return (n_half < n_one, f"{n_half} weights at width 0.5 vs {n_one} at width 1"
                + ("" if n_half < n_one else ": --width ignored"))
    return judge_ok(res, d, check)


@case("train-bn-last-batch-of-1", "lead",
      "train mlp_tfc --bn, 65 images, batch 32 (last minibatch 1 image): refused or handled",
      accept=("clear error", "correct"))
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("train", *MLP, "--bn", *[a if a != "64" else "65" for a in TINY],
                  "--batch-size", "32", "--out", "run")
    d = diff(before, ctx.snap())
    if res.rc != 0:
        return judge_error(res, d, [("batch", "train-subset")])

    def check():
        import math
        rows = _metrics(ctx.root / "run")
        if not rows:
            return False, "exit 0 but no metrics row"
        vals = list(rows[-1]["test_error"].values()) + [rows[-1]["train_loss"]]
        ok = all(math.isfinite(v) for v in vals)
        return ok, f"last row {rows[-1]['test_error']} loss {rows[-1]['train_loss']}"
    return judge_ok(res, d, check)


@case("train-lenet5-32x32", "lead", "train --model lenet5 on a 32x32 dataset (synthetic)",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("train", "--model", "lenet5", *TINY, "--out", "run")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (bool(_metrics(ctx.root / "run")), "metrics row written"))


# ---- train: folders ------------------------------------------------------------------
@case("train-out-is-file", "lead", "train --out FILE")
def _(ctx):
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "afile.txt"], [("afile.txt",)])


@case("train-out-foreign-folder", "lead",
      "train --out X where X holds other files (not a run): refuse, keep them")
def _(ctx):
    ctx.write("X/notes.txt"), ctx.write("X/data.csv", "a,b\n1,2\n")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X"], [("X",)])


@case("train-out-config-no-checkpoint", "lead",
      "train --out X where X holds config.json + metrics.jsonl but no checkpoint",
      accept=("clear error", "correct"))
def _(ctx):
    ctx.write("X/config.json", json.dumps({"model": "mlp_tfc", "note": "my old run"}) + "\n")
    ctx.write("X/metrics.jsonl", json.dumps({"epoch": 1, "step": 9, "test_error": {"none": 0.5}})
              + "\n")
    before = ctx.snap()
    res = ctx.cli("train", *MLP, *TINY, "--out", "X")
    d = diff(before, ctx.snap())
    if res.rc != 0:
        return judge_error(res, d, [("X",)])
    return judge_ok(res, d)


@case("train-out-holds-run", "lead", "train --out X over a finished run, without --resume")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X")
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X"], [("X",), ("resume",)])


@case("train-data-dir-is-file", "data", "train --dataset mnist --data-dir FILE")
def _(ctx):
    ctx.write("afile.bin", b"\0" * 100)
    return ctx.error_case(["train", *MLP, "--dataset", "mnist", "--data-dir", "afile.bin",
                           "--train-subset", "64", "--test-subset", "32", "--epochs", "1",
                           "--val-size", "0", "--no-progress", "--out", "run"],
                          [("afile.bin",)])


@case("train-data-dir-empty", "data", "train --dataset mnist --data-dir EMPTY_FOLDER (offline)")
def _(ctx):
    (ctx.root / "empty").mkdir()
    return ctx.error_case(["train", *MLP, "--dataset", "mnist", "--data-dir", "empty",
                           "--train-subset", "64", "--test-subset", "32", "--epochs", "1",
                           "--val-size", "0", "--no-progress", "--out", "run"],
                          [("empty",)], ignore_new=["empty"])


@case("train-data-dir-relative", "data",
      "train --data-dir RELATIVE: config.json stores an absolute path", accept=OK)
def _(ctx):
    data = ctx.fx.run("mnist")
    (ctx.root / "rel").symlink_to(data, target_is_directory=True)
    before = ctx.snap()
    res = ctx.cli("train", *MLP, "--dataset", "mnist", "--data-dir", "rel", "--train-subset",
                  "64", "--test-subset", "32", "--epochs", "1", "--val-size", "0",
                  "--no-progress", "--out", "run")

    def check():
        cfg = json.loads((ctx.root / "run" / "config.json").read_text())
        stored = cfg.get("data_dir")
        ok = stored is not None and Path(stored).is_absolute()
        return ok, f"config.json data_dir = {stored!r}"
    return judge_ok(res, diff(before, ctx.snap()), check)


# ---- resume -----------------------------------------------------------------------------
@case("resume-no-checkpoint", "lead", "train --resume into an empty folder")
def _(ctx):
    (ctx.root / "X").mkdir()
    return ctx.error_case(["train", *MLP, *TINY, "--out", "X", "--resume"],
                          [("checkpoint", "config.json", "not a run")])


@case("resume-missing-folder", "lead", "train --out NOPE --resume (no such folder)")
def _(ctx):
    return ctx.error_case(["train", *MLP, *TINY, "--out", "nope", "--resume"], [("nope",)])


def _bad_checkpoint(id, what, make):
    def fn(ctx):
        run = ctx.fx.copy("partial", ctx.root / "X")
        make(ctx, run / "checkpoint.npz")
        return ctx.error_case(["train", *PARTIAL_ARGS, "--out", "X", "--resume"],
                              [("checkpoint",)])
    case(id, "lead", what)(fn)


_bad_checkpoint("resume-corrupt-checkpoint", "train --resume with checkpoint.npz = random bytes",
                lambda ctx, p: p.write_bytes(os.urandom(4096)))
_bad_checkpoint("resume-truncated-checkpoint", "train --resume with a truncated checkpoint.npz",
                lambda ctx, p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))
_bad_checkpoint("resume-empty-checkpoint", "train --resume with an empty checkpoint.npz",
                lambda ctx, p: p.write_bytes(b""))
_bad_checkpoint("resume-checkpoint-other-arch",
                "train --resume with the checkpoint of a bc_cifar10 run in an mlp_tfc run",
                lambda ctx, p: shutil.copy(ctx.fx.run("bc") / "checkpoint.npz", p))
_bad_checkpoint("resume-checkpoint-other-run",
                "train --resume with the checkpoint of another mlp_tfc run (seed 1) copied in",
                lambda ctx, p: shutil.copy(ctx.fx.run("mlp_seed1") / "checkpoint.npz", p))


@case("resume-corrupt-config", "lead", "train --resume with config.json = invalid JSON")
def _(ctx):
    run = ctx.fx.copy("partial", ctx.root / "X")
    (run / "config.json").write_text("{not json")
    return ctx.error_case(["train", *PARTIAL_ARGS, "--out", "X", "--resume"],
                          [("config.json",)])


@case("resume-only-out", "lead", "train --out X --resume (no other flag: reads config.json)",
      accept=OK)
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    before = ctx.snap()
    res = ctx.cli("train", "--out", "X", "--resume", "--no-progress")

    def check():
        rows = _metrics(ctx.root / "X")
        last = rows[-1]["epoch"] if rows else None
        return last == 2, f"last metrics epoch {last} (2 expected)"
    return judge_ok(res, diff(before, ctx.snap(), may_change=["X"]), check)


@case("resume-extend-epochs", "lead",
      "train --out X --resume --epochs 3 on a finished 2-epoch run: one more epoch", accept=OK)
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    first = ctx.cli("train", *PARTIAL_ARGS, "--out", "X", "--resume")
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"finishing the run failed: {first.last_line()!r}")
    before = ctx.snap()
    res = ctx.cli("train", "--out", "X", "--resume", "--epochs", "3", "--no-progress")

    def check():
        epochs = [r["epoch"] for r in _metrics(ctx.root / "X")]
        return epochs == [1, 2, 3], f"metrics epochs {epochs} ([1, 2, 3] expected)"
    return judge_ok(res, diff(before, ctx.snap(), may_change=["X"]), check)


@case("resume-finished-run", "lead",
      "train --out X --resume on a finished run: nothing retrained or lost",
      accept=("correct", "clear error"))
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "X")
    before = ctx.snap()
    res = ctx.cli("train", "--out", "X", "--resume", "--no-progress")
    d = diff(before, ctx.snap())
    if res.rc != 0:
        return judge_error(res, d, [("X", "finished", "epoch")])
    rows = _metrics(ctx.root / "X")
    return judge_ok(res, d, lambda: ([r["epoch"] for r in rows] == [1],
                                     f"metrics epochs {[r['epoch'] for r in rows]}"))


@case("resume-conflicting-override", "lead",
      "train --out X --resume --lr 0.1 (saved lr 0.003): refused naming both values")
def _(ctx):
    ctx.fx.copy("partial", ctx.root / "X")
    return ctx.error_case(["train", "--out", "X", "--resume", "--lr", "0.1", "--no-progress"],
                          [("lr",), ("0.1",), ("0.003",)])


# ---- files and signals (subprocesses) --------------------------------------------------
@case("files-umask-022", "lead",
      "train, sweep, walk --run, report under umask 022: files 0644, folders 0755", accept=OK)
def _(ctx):
    old = os.umask(0o022)
    try:
        before = ctx.snap()
        for argv in (["train", *MLP, *TINY, "--out", "run"],
                     ["sweep", "run", "--distortion", "addnorm", "--levels", "0,0.5", *SWEEP_TINY],
                     ["walk", "--run", "run", "--out", "w", *WALK_TINY],
                     ["report", "run", "--out", "rep", "--no-analyses"]):
            res = ctx.cli(*argv)
            if res.rc != 0 or res.traceback:
                break
    finally:
        os.umask(old)

    def check():
        bad = []
        for p in sorted(ctx.root.rglob("*")):
            mode = p.stat().st_mode & 0o777
            want = 0o755 if p.is_dir() else 0o644
            if mode != want:
                bad.append(f"{p.relative_to(ctx.root)} {oct(mode)}")
        return not bad, (("modes not from the umask: " + ", ".join(bad[:6])
                          + (f" (+{len(bad) - 6})" if len(bad) > 6 else ""))
                         if bad else "0644/0755")
    return judge_ok(res, diff(before, ctx.snap()), check)


LONG_TRAIN = MLP + ["--dataset", "synthetic", "--val-size", "0", "--train-subset", "1000",
                    "--batch-size", "20", "--epochs", "6", "--test-subset", "32",
                    "--test-projections", "none", "--no-progress"]


def _start_and_wait_first_epoch(ctx, out: str, poll_tmp: bool = False):
    p = subprocess.Popen(sub_argv(["train"] + LONG_TRAIN + ["--out", out]), cwd=ctx.root,
                         env=sub_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    ckpt = ctx.root / out / "checkpoint.npz"      # the first epoch's checkpoint is written
    deadline = time.time() + 40
    while time.time() < deadline and p.poll() is None and not ckpt.exists():
        time.sleep(0.01)
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


@case("signal-sigterm", "lead",
      "SIGTERM during training: checkpoint saved, exit 130/143, no traceback; resume finishes",
      accept=OK, slow=True)
def _(ctx):
    before = ctx.snap()
    p, _ = _start_and_wait_first_epoch(ctx, "run")
    if p.poll() is not None:
        out, err = p.communicate()
        return Outcome("unclear error", f"training ended before the signal (exit {p.returncode})")
    time.sleep(0.15)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Outcome("unclear error", "did not stop within 30 s of SIGTERM")
    res = Result(["train"], p.returncode, out, err, 0.0)
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if p.returncode not in (130, 143):
        return Outcome("unclear error", f"SIGTERM not handled like Ctrl-C: exit {p.returncode}, "
                                        f"stderr {res.last_line()[:100]!r}")
    if not (ctx.root / "run" / "checkpoint.npz").exists():
        return Outcome("data loss", "no checkpoint after SIGTERM")
    res2 = ctx.sub("train", *LONG_TRAIN, "--out", "run", "--resume")
    return judge_ok(res2, diff(before, ctx.snap()), lambda: (
        bool(_metrics(ctx.root / "run")) and _metrics(ctx.root / "run")[-1]["epoch"] == 6,
        f"after resume: last epoch {(_metrics(ctx.root / 'run') or [{}])[-1].get('epoch')}"))


@case("signal-kill9-tmp", "lead",
      "kill -9 during training, then --resume: no .tmp files left in the run folder",
      accept=OK, slow=True)
def _(ctx):
    before = ctx.snap()
    p, caught = _start_and_wait_first_epoch(ctx, "run", poll_tmp=True)
    p.kill()
    p.communicate()
    run = ctx.root / "run"
    if not (run / "checkpoint.npz").exists():
        return Outcome("unclear error", "no checkpoint to resume from after kill -9")
    if not caught:   # what a kill -9 during a checkpoint write leaves (the writer's own name)
        (run / ".checkpoint.npz.hostile1.tmp").write_bytes(
            (run / "checkpoint.npz").read_bytes())
    res = ctx.sub("train", *LONG_TRAIN, "--out", "run", "--resume")

    def check():
        left = [str(q.relative_to(run)) for q in run.rglob("*") if q.name.endswith(".tmp")]
        how = "a real .tmp caught at the kill" if caught else "a .tmp planted as a kill leaves it"
        return not left, (f"{how}; left after resume: {left}" if left else how + "; cleaned")
    return judge_ok(res, diff(before, ctx.snap()), check)


@case("debug-traceback", "lead",
      "an error without --debug: no traceback; with --debug: the traceback", accept=OK)
def _(ctx):
    argv = ["train", *MLP, *TINY, "--projection", "sgin", "--out", "run"]
    plain = ctx.sub(*argv)
    if plain.traceback:
        return Outcome("traceback", "plain run: " + plain.last_line())
    if plain.rc == 0:
        return Outcome("silently wrong", "plain run exit 0")
    debug = ctx.sub("--debug", *argv)
    if debug.rc == 2 and re.search(r"unrecognized arguments|invalid choice", debug.err):
        debug = ctx.sub(*argv, "--debug")
    if debug.rc == 2 and re.search(r"unrecognized arguments|invalid choice", debug.err):
        return Outcome("unclear error", "no --debug flag (before or after the sub-command)")
    if not debug.traceback:
        return Outcome("unclear error", f"--debug shows no traceback: {debug.last_line()!r}")
    return Outcome("correct", "traceback only with --debug")


@case("console-exit-status", "lead",
      "python -m tinyproj.cli train --batch-size 0: exit 2, one error line, no traceback")
def _(ctx):
    return ctx.error_case(["train", *MLP, *TINY, "--batch-size", "0", "--out", "run"],
                          [("batch-size", "batch_size")], via=ctx.sub)


# ---- sweep ------------------------------------------------------------------------------
def _sweep_error(id, argv, names, what=None, fixture="mlp"):
    def fn(ctx):
        if fixture:
            ctx.fx.copy(fixture, ctx.root / "run")
        return ctx.error_case(["sweep"] + [a.format(root=ctx.root) for a in argv], names)
    case(id, "grid", what or "sweep " + " ".join(argv))(fn)


_sweep_error("sweep-missing-run", ["nope", "--distortion", "addnorm"] + SWEEP_TINY, [("nope",)],
             fixture=None)


@case("sweep-run-is-file", "grid", "sweep FILE --distortion addnorm")
def _(ctx):
    ctx.write("afile.txt")
    return ctx.error_case(["sweep", "afile.txt", "--distortion", "addnorm"] + SWEEP_TINY,
                          [("afile.txt",)])


_sweep_error("sweep-unknown-distortion", ["run", "--distortion", "addnoise"] + SWEEP_TINY,
             [("addnoise",)])
_sweep_error("sweep-bad-levels", ["run", "--distortion", "addnorm", "--levels", "0,x"]
             + SWEEP_TINY, [("level",)])
_sweep_error("sweep-levels-out-of-range", ["run", "--distortion", "multunif", "--levels", "2"]
             + SWEEP_TINY, [("gamma", "γ", "level")])
_sweep_error("sweep-bad-shard", ["run", "--distortion", "addnorm", "--shard", "3/2"]
             + SWEEP_TINY, [("shard",)])
_sweep_error("sweep-shard-garbage", ["run", "--distortion", "addnorm", "--shard", "abc"]
             + SWEEP_TINY, [("shard",)])
_sweep_error("sweep-test-subset-0", ["run", "--distortion", "addnorm", "--draws", "1",
                                     "--test-subset", "0", "--no-progress"],
             [("test-subset", "test_subset")])
_sweep_error("sweep-draws-0", ["run", "--distortion", "addnorm", "--draws", "0",
                               "--test-subset", "32", "--bn-batches", "0", "--no-progress"],
             [("draws",)])
_sweep_error("sweep-bn-batches-neg", ["run", "--distortion", "addnorm", "--bn-batches", "-1",
                                      "--draws", "1", "--test-subset", "32", "--no-progress"],
             [("bn-batches", "bn_batches")])
_sweep_error("sweep-jobs-0", ["run", "--distortion", "addnorm", "--jobs", "0"] + SWEEP_TINY,
             [("jobs",)])
_sweep_error("sweep-unknown-layer", ["run", "--distortion", "addnorm", "--layer", "conv9.weight"]
             + SWEEP_TINY, [("conv9",)])


@case("sweep-corrupt-checkpoint", "grid", "sweep RUN whose checkpoint.npz is random bytes")
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    (run / "checkpoint.npz").write_bytes(os.urandom(4096))
    return ctx.error_case(["sweep", "run", "--distortion", "addnorm", "--levels", "0,0.5"]
                          + SWEEP_TINY, [("checkpoint",)])


@case("sweep-stale-after-retrain", "grid",
      "sweep, retrain in the same folder (another network), sweep again: no old rows reused",
      accept=("clear error", "correct"))
def _(ctx):
    args = ["--distortion", "addnorm", "--levels", "0,0.5,1"] + SWEEP_TINY
    run = ctx.fx.copy("mlp", ctx.root / "run")
    first = ctx.cli("sweep", "run", *args)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"first sweep failed: {first.last_line()!r}")
    for name in ("checkpoint.npz", "config.json", "metrics.jsonl"):     # the retrained network
        shutil.copy(ctx.fx.run("mlp_seed1") / name, run / name)
    fresh = ctx.fx.copy("mlp_seed1", ctx.root / "fresh")
    ref = ctx.cli("sweep", "fresh", *args)
    before = ctx.snap()
    again = ctx.cli("sweep", "run", *args)
    d = diff(before, ctx.snap(), may_change=["run/sweeps"])
    if again.rc != 0:
        return judge_error(again, d, [("sweep", "stale", "network", "checkpoint")])
    return judge_ok(again, d, lambda: (
        _table_lines(again.out) == _table_lines(ref.out),
        "rows equal a fresh sweep of the new network" if _table_lines(again.out)
        == _table_lines(ref.out) else f"stale rows: {_table_lines(again.out)[:2]} vs fresh "
                                      f"{_table_lines(ref.out)[:2]}"))


N_PARALLEL = 60


@case("sweep-parallel-writers", "grid",
      "two `sweep --layer` processes at once on one run: every row kept",
      accept=("correct", "clear error"), slow=True)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    levels = ",".join(f"{i / 100:g}" for i in range(N_PARALLEL))
    procs = []
    for layer in ("fc1.weight", "fc2.weight"):
        argv = ["sweep", "run", "--distortion", "addnorm", "--layer", layer, "--levels", levels,
                "--draws", "1", "--test-subset", "4", "--bn-batches", "0", "--no-progress",
                "--quiet"]
        procs.append(subprocess.Popen(sub_argv(argv), cwd=ctx.root, env=sub_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append(Result([], p.returncode, out, err, 0.0))
    for r in results:
        if r.traceback:
            return Outcome("traceback", r.last_line())
    rows = []
    for f in run.rglob("*.jsonl"):
        if f.name == "metrics.jsonl":
            continue
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    have = {}
    for r in rows:
        have.setdefault(r.get("layer"), set()).add(r.get("level"))
    counts = {layer: len(have.get(layer, ())) for layer in ("fc1.weight", "fc2.weight")}
    rcs = [r.rc for r in results]
    if rcs == [0, 0]:
        if all(v == N_PARALLEL for v in counts.values()):
            return Outcome("correct", f"rows per layer {counts}")
        return Outcome("data loss", f"both exit 0, rows per layer {counts} ({N_PARALLEL} each expected)")
    refused = [r for r in results if r.rc != 0]
    if len(refused) == 1 and refused[0].rc == 2 and "error" in refused[0].err.lower() \
            and N_PARALLEL in counts.values():
        return Outcome("clear error", "second writer refused: " + refused[0].last_line())
    return Outcome("unclear error", f"exits {rcs}, rows {counts}: "
                                    f"{[r.last_line() for r in refused]}")


# ---- walk -------------------------------------------------------------------------------
WALK_TRAIN = ["--dataset", "synthetic", "--train-subset", "64", "--epochs", "1"]
_simple_error("walk-unknown-model", "grid",
              ["walk", "--model", "resnet", "--out", "w"] + WALK_TRAIN + WALK_TINY, [("resnet",)])
_simple_error("walk-sigmas-negative", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sigmas", "0,-1", "--test-subset",
               "32", "--no-progress"] + WALK_TRAIN, [("sigma",)])
_simple_error("walk-sigmas-garbage", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sigmas", "abc", "--test-subset",
               "32", "--no-progress"] + WALK_TRAIN, [("sigma",)])
_simple_error("walk-noise-typo", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--noise", "addtive"] + WALK_TRAIN
              + WALK_TINY, [("addtive",)])
_simple_error("walk-bad-shard", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--shard", "2/2"] + WALK_TRAIN
              + WALK_TINY, [("shard",)])
_simple_error("walk-site-typo", "grid",
              ["walk", "--model", "mlp_tfc", "--out", "w", "--sites", "relu99"] + WALK_TRAIN
              + WALK_TINY, [("relu99",)],
              what="walk --sites relu99 (checked before the model is trained)")
_simple_error("walk-missing-run", "grid", ["walk", "--run", "nope", "--out", "w"] + WALK_TINY,
              [("nope",)])


@case("walk-lenet5-32x32", "grid", "walk --model lenet5 --dataset synthetic (32x32): trains, walks",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("walk", "--model", "lenet5", "--out", "w", *WALK_TRAIN, *WALK_TINY)
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: ((ctx.root / "w" / "midpoints.csv").exists(), "midpoints.csv"))


@case("walk-stale-other-run", "grid",
      "walk --run A --out X, then walk --run B --out X: B's midpoints only (or refused)",
      accept=("clear error", "correct"))
def _(ctx):
    a = ctx.fx.copy("mlp", ctx.root / "A")
    b = ctx.fx.copy("mlp_bn", ctx.root / "B")
    first = ctx.cli("walk", "--run", "A", "--out", "X", *WALK_TINY)
    if first.rc != 0 or first.traceback:
        return Outcome("unclear error", f"first walk failed: {first.last_line()!r}")
    ref = ctx.cli("walk", "--run", "B", "--out", "Y", *WALK_TINY)
    before = ctx.snap()
    again = ctx.cli("walk", "--run", "B", "--out", "X", *WALK_TINY)
    d = diff(before, ctx.snap(), may_change=["X"])
    if again.rc != 0:
        d = diff(before, ctx.snap())
        return judge_error(again, d, [("X", "walk")])
    got, want = _table_lines(again.out), _table_lines(ref.out)

    def check():
        if got == want:
            return True, "same midpoints as a fresh walk of B"
        extra = [g for g in got if g not in want]
        return False, f"{len(got)} midpoint rows vs {len(want)} for a fresh walk of B; " \
                      f"not B's: {extra[:2]}"
    return judge_ok(again, d, check)


# ---- report ------------------------------------------------------------------------------
@case("report-out-is-file", "reporting", "report RUN --out FILE")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    ctx.write("afile.txt", "mine\n")
    return ctx.error_case(["report", "run", "--out", "afile.txt", "--no-analyses"],
                          [("afile.txt",)])


_simple_error("report-missing-run", "reporting", ["report", "nope", "--out", "rep",
                                                  "--no-analyses"], [("nope",)])


@case("report-run-is-file", "reporting", "report FILE --out rep")
def _(ctx):
    ctx.write("afile.txt")
    return ctx.error_case(["report", "afile.txt", "--out", "rep", "--no-analyses"],
                          [("afile.txt",)])


@case("report-corrupt-metrics", "reporting", "report RUN whose metrics.jsonl has a broken line")
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "step": \n')
    return ctx.error_case(["report", "run", "--out", "rep", "--no-analyses"],
                          [("metrics.jsonl",)])


@case("report-bad-betas", "reporting", "report RUN --betas abc")
def _(ctx):
    ctx.fx.copy("mlp", ctx.root / "run")
    return ctx.error_case(["report", "run", "--out", "rep", "--betas", "abc"], [("betas",)])


# ---- more faults --------------------------------------------------------------------------
def _limit_file_size(limit):
    def set_limit():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


@case("fault-disk-full", "lead",
      "resume with writes failing (file size limit 1 MB < checkpoint): error, old checkpoint "
      "intact, no .tmp", slow=True)
def _(ctx):
    run = ctx.fx.copy("partial", ctx.root / "X")
    before = ctx.snap()
    start = time.perf_counter()
    p = subprocess.run(sub_argv(["train", *PARTIAL_ARGS, "--out", "X", "--resume"]),
                       cwd=ctx.root, env=sub_env(), capture_output=True, text=True, timeout=60,
                       preexec_fn=_limit_file_size(1 << 20))
    res = Result([], p.returncode, p.stdout, p.stderr, time.perf_counter() - start)
    d = diff(before, ctx.snap(), may_change=["X/metrics.jsonl", "X/config.json", "X/.lock"])
    left = [q.name for q in run.rglob("*.tmp")]
    if d.lost:
        return Outcome("data loss", d.short(d.lost))
    if res.traceback:
        return Outcome("traceback", res.last_line())
    if res.rc == 0:
        return Outcome("silently wrong", "exit 0 although the checkpoint could not be written")
    if "error" not in res.err.lower() or left:
        return Outcome("unclear error", f"exit {res.rc}, .tmp left: {left}, {res.last_line()!r}")
    return Outcome("clear error", res.last_line())


@case("resume-while-running", "lead",
      "train --out X --resume while another process is training in X: refused")
def _(ctx):
    p, _ = _start_and_wait_first_epoch(ctx, "X")
    try:
        if p.poll() is not None:
            return Outcome("unclear error", f"the first training ended early (exit {p.returncode})")
        res = ctx.cli("train", *LONG_TRAIN, "--out", "X", "--resume")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    return judge_error(res, Diff([], [], []),
                       [("X", "another", "running", "lock", "in use", "busy")])


@case("signal-sigterm-sweep", "grid",
      "SIGTERM during a sweep: exit 130/143, no traceback; the same command again completes it",
      accept=OK, slow=True)
def _(ctx):
    run = ctx.fx.copy("mlp", ctx.root / "run")
    n = 40
    argv = ["sweep", "run", "--distortion", "addnorm", "--levels",
            ",".join(f"{i / 100:g}" for i in range(n)), "--draws", "1", "--test-subset", "200",
            "--bn-batches", "0", "--no-progress", "--quiet"]

    def rows():
        out = []
        for f in run.rglob("*.jsonl"):
            if f.name != "metrics.jsonl":
                for line in f.read_text().splitlines():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out
    p = subprocess.Popen(sub_argv(argv), cwd=ctx.root, env=sub_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 40
    while time.time() < deadline and p.poll() is None and len(rows()) < 3:
        time.sleep(0.02)
    if p.poll() is not None:
        return Outcome("unclear error", f"the sweep ended before the signal (exit {p.returncode})")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    first = Result([], p.returncode, out, err, 0.0)
    if first.traceback:
        return Outcome("traceback", first.last_line())
    if p.returncode not in (130, 143):
        return Outcome("unclear error", f"SIGTERM not handled like Ctrl-C: exit {p.returncode}")
    before = ctx.snap()
    again = ctx.sub(*argv)
    levels = {r.get("level") for r in rows()}
    return judge_ok(again, diff(before, ctx.snap(), may_change=["run"]), lambda: (
        len(levels) == n, f"{len(levels)} of {n} levels after the rerun"))


@case("walk-noisy-training", "grid",
      "walk --train-noise 0.5 --sites all on synthetic data (noisy training, then the walk)",
      accept=OK)
def _(ctx):
    before = ctx.snap()
    res = ctx.cli("walk", "--model", "mlp_tfc", "--out", "w", "--train-noise", "0.5", "--sites",
                  "all", *WALK_TRAIN, *WALK_TINY)
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: ((ctx.root / "w" / "midpoints.csv").exists(), "midpoints.csv"))


class Skip(Exception):
    pass


@case("data-default-location", "data",
      "train --dataset mnist without --data-dir or $TINYPROJ_DATA: finds ../shared/datasets "
      "beside the project", accept=OK)
def _(ctx):
    shared = Path(_tinyproj_root()).parent / "shared" / "datasets" / "mnist"
    if not shared.is_dir():
        raise Skip(f"no {shared} beside this project")
    before = ctx.snap()
    res = ctx.cli("train", *MLP, "--dataset", "mnist", "--train-subset", "64", "--test-subset",
                  "32", "--epochs", "1", "--val-size", "0", "--no-progress", "--out", "run")
    return judge_ok(res, diff(before, ctx.snap()),
                    lambda: (bool(_metrics(ctx.root / "run")), "trained on the shared MNIST"))


# ---- misc ---------------------------------------------------------------------------------
_simple_error("lessons-unknown", "lead", ["lessons", "99_nope"], [("99_nope",)])


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
