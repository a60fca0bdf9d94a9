"""The result grid (runs/grid.py) and the one midpoint rule (runs/midpoint.py).

Resume, shards, several writers at once, killed writers, network fingerprints (a row of
another network is never reused: a sweep in a retrained run folder, `walk --run B` over a walk
of run A), other settings refused, and the crossing rule both papers' midpoints use.
"""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tinyproj import robustness
from tinyproj import walking_noise as wn
from tinyproj.cli import main
from tinyproj.errors import UserError
from tinyproj.runs import grid as G
from tinyproj.runs.config import make_config
from tinyproj.runs.files import load_checkpoint, save_checkpoint
from tinyproj.runs.fingerprint import checkpoint_fingerprint, network_fingerprint
from tinyproj.runs.midpoint import crossing, halfway, midpoint
from tinyproj.runs.training import load_run, train

from _helpers import copy_run, train_tiny_run

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(bn_batches=0, test_subset=40, draws=1, progress=False)


def key(row):
    return (row["layer"], float(row["level"]))


def points(n):
    return [(layer, float(level)) for layer in ("a", "b") for level in range(n)]


def row_of(point, **extra):
    return {"layer": point[0], "level": point[1], "value": point[1] * 10, **extra}


# ---------------------------------------------------------------------------------------------
# Fingerprints, shards, resume
# ---------------------------------------------------------------------------------------------
def test_fingerprint_names_names_dtypes_shapes_and_bytes():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    base = network_fingerprint({"w": w, "b": np.zeros(2, np.float32)})
    assert len(base) == 16 and base == network_fingerprint({"b": np.zeros(2, np.float32),
                                                            "w": w.copy()})
    bumped = w.copy()
    bumped[1, 2] = np.nextafter(bumped[1, 2], np.float32(np.inf))       # one ulp
    changed = [{"w": bumped, "b": np.zeros(2, np.float32)},                                # bytes
               {"w": w.astype(np.float64), "b": np.zeros(2, np.float32)},              # dtype
               {"w": w.reshape(3, 2), "b": np.zeros(2, np.float32)},                   # shape
               {"v": w, "b": np.zeros(2, np.float32)}]                                 # name
    assert len({base, *(network_fingerprint(s) for s in changed)}) == 5


def test_resume_skips_done_points_and_shards_merge(tmp_path):
    path = tmp_path / "g.jsonl"
    full = points(5)
    grid = G.Grid(path, key)
    for p in full[:3]:                                  # an interrupted run: 3 of 10 done
        grid.append(row_of(p), "net")
    done = G.Grid(path, key).finished("net")
    assert list(done) == full[:3]
    assert [p for p in full if p not in done] == full[3:]
    # shards: round robin over the full grid, each in its own file, merged after the main one
    assert G.shard_points(list(range(7)), "1/3") == [1, 4]
    for i in (2, 0, 1):
        g = G.Grid(path, key, shard=f"{i}/3")
        for p in g.mine(full):
            if p not in g.finished("net"):
                g.append(row_of(p), "net")
    assert [p.name for p in G.grid_files(path)] == ["g.jsonl"] + [
        f"g.shard-{i}-of-3.jsonl" for i in range(3)]
    rows = G.Grid(path, key).rows()
    assert sorted(key(r) for r in rows) == sorted(full)          # every point once
    assert all(r["network"] == "net" for r in rows)
    for bad in ("3/3", "1/0", "x", "-1/2"):
        with pytest.raises(UserError, match="shard"):
            G.parse_shard(bad)


# ---------------------------------------------------------------------------------------------
# Several writers, killed writers
# ---------------------------------------------------------------------------------------------
def _writer(path, who, n):
    grid = G.Grid(path, key)
    pad = "x" * (3000 + 500 * who)       # long lines: more than one page, several sizes
    for i in range(n):
        grid.append({"layer": f"w{who}", "level": float(i), "pad": pad}, "net")


def test_concurrent_writers_lose_no_row(tmp_path):
    path = tmp_path / "sweeps" / "layers-addnorm.jsonl"
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    procs = [ctx.Process(target=_writer, args=(path, who, 60)) for who in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    lines = path.read_text().splitlines()
    assert len(lines) == 240                               # the read-and-rewrite append kept ~half
    rows = [json.loads(line) for line in lines]           # every line whole
    assert {(r["layer"], r["level"]) for r in rows} == {
        (f"w{who}", float(i)) for who in range(4) for i in range(60)}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_torn_last_line_is_ignored_then_cut_off(tmp_path):
    path = tmp_path / "walk.jsonl"
    grid = G.Grid(path, key)
    grid.append(row_of(("a", 0.0)), "net")
    with open(path, "ab") as f:                           # a writer killed inside its write
        f.write(b'{"layer": "a", "level": 1.0, "val')
    assert [key(r) for r in G.read_rows(path)] == [("a", 0.0)]
    grid.append(row_of(("a", 2.0)), "net")
    assert [key(json.loads(x)) for x in path.read_text().splitlines()] == [("a", 0.0), ("a", 2.0)]
    # a whole last row whose newline is missing (written by hand) is kept, not cut
    with open(path, "ab") as f:
        f.write(json.dumps(row_of(("b", 0.0), network="net")).encode())
    assert len(G.read_rows(path)) == 3
    grid.append(row_of(("b", 1.0)), "net")
    assert len(G.read_rows(path)) == 4 and path.read_bytes().endswith(b"\n")
    # a broken line in the middle is the user's to see
    path.write_text('{"layer": "a", "level": 0}\nnot json\n{"layer": "a", "level": 1}\n')
    with pytest.raises(UserError, match=r"walk.jsonl:2"):
        G.read_rows(path)


def test_stale_temp_files_of_the_old_appends_are_removed(tmp_path):
    path = tmp_path / "addnorm.jsonl"
    stale = tmp_path / ".addnorm.jsonl.k3j_x9q2.tmp"      # left by a kill -9 of the old writer
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / ".metrics.jsonl.k3j_x9q2.tmp"      # not this grid's: kept
    other.write_bytes(b"x")
    G.Grid(path, key).append(row_of(("a", 0.0)), "net")
    assert not stale.exists() and other.exists()


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from tinyproj import backend
    from tinyproj import walking_noise as wn
    from tinyproj.data.sources import ArraySource
    rng = np.random.default_rng(0)
    src = ArraySource(rng.random((64, 1, 28, 28)).astype(np.float32),
                      (np.arange(64) % 10).astype(np.int64))
    model = wn.build_walk_model("mlp_tfc", (1, 28, 28), 10, backend.make_rng(0))
    sigmas = [float(10 ** (k / 8)) for k in range(-16, 80)]
    wn.walk(model, None, src, "additive", sigmas, sites="each", out_file=sys.argv[1],
            progress=False, repeats=4)
""")


def test_kill_9_mid_walk_leaves_no_tmp_and_resumes(tmp_path):
    out = tmp_path / "walk.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_bytes().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    rows = G.read_rows(out)                      # whole rows only; a torn one would be skipped
    assert len(rows) >= 5 and all("accuracy" in r and "network" in r for r in rows)
    assert len({json.dumps(sorted(wn.row_key(r))) for r in rows}) == len(rows)


# ---------------------------------------------------------------------------------------------
# Stale rows: another network, no fingerprint, other settings
# ---------------------------------------------------------------------------------------------
def test_rows_of_another_network_or_without_one_are_refused(tmp_path):
    path = tmp_path / "g.jsonl"
    grid = G.Grid(path, key, fix="Use --restart.")
    grid.append(row_of(("a", 0.0)), "old")
    with pytest.raises(UserError, match=r"g\.jsonl holds 1 row\(s\) measured on another "
                                        r"network \(fingerprint old\).*Use --restart"):
        grid.finished("new")
    assert list(grid.finished("old")) == [("a", 0.0)]
    # a walk file holds several networks: only the points of this call are its concern
    grid.append(row_of(("b", 0.0)), "new")
    assert list(grid.finished("new", keys=[("b", 0.0)])) == [("b", 0.0)]
    with pytest.raises(UserError, match="another network"):
        grid.finished("new", keys=[("a", 0.0), ("b", 0.0)])
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text(json.dumps(row_of(("a", 0.0))) + "\n")
    with pytest.raises(UserError, match="without a network fingerprint"):
        G.Grid(legacy, key).finished("new")


def test_rows_with_other_settings_are_refused(tmp_path):
    path = tmp_path / "g.jsonl"
    G.Grid(path, key, settings={"seed": 0, "draws": 2}).append(
        row_of(("a", 0.0), seed=0, draws=2), "net")
    with pytest.raises(UserError, match=r"other settings: draws=2 \(now 3\)"):
        G.Grid(path, key, settings={"seed": 0, "draws": 3}).finished("net")
    G.Grid(path, key, shard="0/2").append(row_of(("a", 1.0), seed=1, draws=2), "net")
    with pytest.raises(UserError, match=r"cannot be merged"):       # merge: rows disagree
        G.Grid(path, key, settings_keys=("seed", "draws")).finished("net")


def test_restart_moves_files_aside_never_deletes(tmp_path):
    path = tmp_path / "g.jsonl"
    G.Grid(path, key).append(row_of(("a", 0.0)), "old")
    G.Grid(path, key, shard="1/2").append(row_of(("a", 1.0)), "old")
    dest = G.Grid(path, key).move_aside()
    assert dest.parent == tmp_path / "replaced"
    assert sorted(p.name for p in dest.iterdir()) == ["g.jsonl", "g.shard-1-of-2.jsonl"]
    assert G.Grid(path, key).files() == [] and G.Grid(path, key).move_aside() is None


# ---------------------------------------------------------------------------------------------
# A sweep in a retrained run folder
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("grid") / "trained", train_subset=80)


def _retrain(folder):
    """Another network in the same folder, same settings and step (only the weights differ)."""
    state, optim, meta = load_checkpoint(folder / "checkpoint.npz")
    name = next(k for k, v in state.items() if v.ndim == 4)
    state[name] = -state[name]
    save_checkpoint(folder / "checkpoint.npz", state, optim, meta)


def numbers(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_sweep_in_a_retrained_run_never_reuses_old_rows(trained, tmp_path):
    run = copy_run(trained, tmp_path / "run")
    first = robustness.run_sweep(run, "addnorm", [0.0, 0.5], **FAST)
    assert {r["network"] for r in first} == {checkpoint_fingerprint(run / "checkpoint.npz")}
    _retrain(run)
    fresh_run = copy_run(run, tmp_path / "fresh")
    fresh = robustness.run_sweep(fresh_run, "addnorm", [0.0, 0.5, 1.0], **FAST)
    assert numbers(fresh)[:2] != numbers(first)        # the two networks do differ
    before = (run / "sweeps" / "addnorm.jsonl").read_bytes()
    with pytest.raises(UserError, match=r"another network.*checkpoint\.npz.*--restart"):
        robustness.run_sweep(run, "addnorm", [0.0, 0.5, 1.0], **FAST)
    with pytest.raises(UserError, match="another network"):
        robustness.merge_sweep_files(run, "addnorm")          # Table 2 and the report too
    assert (run / "sweeps" / "addnorm.jsonl").read_bytes() == before       # nothing touched
    rows = robustness.run_sweep(run, "addnorm", [0.0, 0.5, 1.0], restart=True, **FAST)
    assert numbers(rows) == numbers(fresh)                    # the new network's numbers only
    (old,) = (run / "sweeps" / "replaced").iterdir()
    assert (old / "addnorm.jsonl").read_bytes() == before     # moved aside, not deleted


def test_cli_sweep_refuses_stale_rows_and_parallel_layers_keep_every_row(trained, tmp_path,
                                                                         capsys):
    run = copy_run(trained, tmp_path / "run")
    args = ["--levels", "0,0.3", "--draws", "1", "--bn-batches", "0", "--test-subset", "20",
            "--no-progress", "--quiet"]
    assert main(["sweep", str(run), "--distortion", "power"] + args) == 0
    _retrain(run)
    assert main(["sweep", str(run), "--distortion", "power"] + args) == 2
    err = capsys.readouterr().err
    assert "another network" in err and "--restart" in err and "Traceback" not in err
    # two `--layer` processes appending to one file at once
    levels = ",".join(f"{i / 20:g}" for i in range(12))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "tinyproj.cli", "sweep", str(run),
                               "--distortion", "addnorm", "--layer", layer, "--levels", levels,
                               "--draws", "1", "--bn-batches", "0", "--test-subset", "4",
                               "--no-progress", "--quiet"], env=env, stderr=subprocess.PIPE)
             for layer in ("conv1.weight", "conv2.weight")]
    errs = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    rows = robustness.merge_sweep_files(run, "layers-addnorm")
    assert len(rows) == 24 and len((run / "sweeps" / "layers-addnorm.jsonl")
                                   .read_text().splitlines()) == 24


# ---------------------------------------------------------------------------------------------
# `walk --run B` over a walk of run A
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walk_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("walkruns")
    for name, bn in (("A", False), ("B", True)):
        cfg = make_config("wn-mlp-mnist", dataset="synthetic", train_subset=64, epochs=1,
                          bn=bn, out=str(root / name))
        train(cfg, progress=False, log=lambda *a: None)
    return root


def test_walk_of_another_run_is_refused_never_printed(walk_runs, tmp_path, capsys):
    a, b = walk_runs / "A", walk_runs / "B"
    tiny = ["--sigmas", "0.1,10", "--test-subset", "32", "--no-progress"]
    x = tmp_path / "X"
    assert main(["walk", "--run", str(a), "--out", str(x)] + tiny) == 0
    capsys.readouterr()
    assert main(["walk", "--run", str(b), "--out", str(tmp_path / "Y")] + tiny) == 0
    fresh = capsys.readouterr().out
    before = {p.name: p.read_bytes() for p in x.iterdir()}
    assert main(["walk", "--run", str(b), "--out", str(x)] + tiny) == 2
    out, err = capsys.readouterr()
    assert "walk.jsonl" in err and "another network" in err and "--restart" in err
    assert "midpoint" not in out                                   # no stale table
    assert {p.name: p.read_bytes() for p in x.iterdir()} == before  # nothing touched
    # --restart: A's rows moved aside, the table is B's, as in a fresh walk of B
    assert main(["walk", "--run", str(b), "--out", str(x), "--restart"] + tiny) == 0
    table = capsys.readouterr().out
    def numbers(text):     # the table without its header and its "results in <folder>" line
        return [line for line in text.split("\n")[2:] if not line.startswith("results in")]
    assert numbers(table) == numbers(fresh)
    assert (next((x / "replaced").iterdir()) / "walk.jsonl").read_bytes() == before["walk.jsonl"]
    assert {r["network"] for r in wn.read_walk(x / "walk.jsonl")} == {
        network_fingerprint(load_run(b).model.state_dict())}


def test_walk_rows_of_other_networks_never_reused_by_the_library(walk_runs, tmp_path):
    ra, rb = load_run(walk_runs / "A"), load_run(walk_runs / "B")
    out = tmp_path / "walk.jsonl"
    kw = dict(sites=["input", "fc1"], out_file=out, progress=False, test_subset=32)
    rows_a = wn.walk(ra.model, None, ra.test, "additive", [0.1, 10], **kw)
    with pytest.raises(UserError, match="another network"):
        wn.walk(rb.model, None, rb.test, "additive", [0.1, 10], **kw)
    # other points of B are fine, and compute=False shows B its own points only
    rows_b = wn.walk(rb.model, None, rb.test, "additive", [1.0], **kw)
    assert wn.walk(rb.model, None, rb.test, "additive", [1.0], compute=False, **kw) == rows_b
    assert wn.walk(ra.model, None, ra.test, "additive", [0.1, 10], compute=False,
                   **kw) == rows_a
    with pytest.raises(UserError, match="another network"):     # and the other way round
        wn.walk(ra.model, None, ra.test, "additive", [1.0], compute=False, **kw)
    assert len(wn.read_walk(out)) == 6                  # the file keeps both, each named


# ---------------------------------------------------------------------------------------------
# The midpoint rule
# ---------------------------------------------------------------------------------------------
def test_one_crossing_rule_for_errors_and_accuracies():
    assert halfway(0.1, 0.9) == pytest.approx(0.5)
    # errors, linear: 0.2 at 0.2, 0.6 at 0.4 -> 0.5 is reached at 0.35
    c = crossing([0, 0.2, 0.4, 0.6], [0.1, 0.2, 0.6, 0.9], 0.5, start=0, side="up")
    assert c.level == pytest.approx(0.35) and not c.beyond_grid
    # walking down from γ = 1
    c = crossing([1, 0.5, 0.25], [0.1, 0.3, 0.7], 0.4, start=1, side="down")
    assert c.level == pytest.approx(0.5 - 0.25 * 0.25)
    # accuracies on log σ: 0.8 at 0.1, 0.3 at 1 -> 0.5 at 10^(-1 + 0.6)
    m = midpoint([0.01, 0.1, 1, 10], [0.9, 0.8, 0.3, 0.1], clean=0.9, chance=0.1, start=0.01,
                 kind="accuracy", scale="log")
    assert m.level == pytest.approx(10 ** -0.4) and m.threshold == pytest.approx(0.5)
    beyond = midpoint([0.1, 1], [0.9, 0.8], clean=0.9, chance=0.1, start=0.1, kind="accuracy",
                      scale="log")
    assert beyond.level is None and beyond.beyond_grid
    dead = midpoint([0, 1], [0.9, 0.9], clean=0.9, chance=0.9, start=0)
    assert dead.level is None and not dead.beyond_grid and "chance" in dead.note
    with pytest.raises(ValueError, match="> 0"):
        midpoint([0, 1], [0.9, 0.1], clean=0.9, chance=0.1, start=0, kind="accuracy",
                 scale="log")
    # the two papers' public names are layers over it
    assert wn.midpoint_sigma([0.01, 0.1, 1, 10], [0.9, 0.8, 0.3, 0.1]).sigma == \
        pytest.approx(m.level)
    assert robustness.midpoint_level([0, 0.2, 0.4, 0.6], [0.1, 0.2, 0.6, 0.9], 0.5, 0) == \
        (pytest.approx(0.35), False)


@pytest.mark.parametrize("array_env,task,expected", [
    ({"SLURM_ARRAY_TASK_COUNT": "8"}, "5", "5/8"),
    ({"SLURM_ARRAY_TASK_COUNT": "1"}, "3", "3/8"),        # `sbatch --array=3`: one task rerun
    ({"SLURM_ARRAY_TASK_COUNT": "4", "SHARDS": "4"}, "2", "2/4")])
def test_slurm_sweep_script_keeps_each_tasks_shard_when_one_task_is_resubmitted(
        tmp_path, array_env, task, expected):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "slurm_sweep.sh"
    text = script.read_text()
    assert "#SBATCH --output=tinyproj-sweep-%A_%a.out" in text   # a folder that exists: "."
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("srun", "tinyproj"):        # srun runs its command; tinyproj says its argv
        stub = bin_dir / name
        stub.write_text('#!/bin/bash\n' + ('exec "$@"\n' if name == "srun" else
                                            'echo "$@"\n'))
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "SLURM_ARRAY_TASK_ID": task, **array_env}
    res = subprocess.run(["bash", str(script), "runs/x", "addnorm"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["sweep", "runs/x", "--distortion", "addnorm", "--shard",
                                  expected, "--draws", "5", "--no-progress"]
