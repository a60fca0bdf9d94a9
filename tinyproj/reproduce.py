"""The papers' full experiments as one resumable plan: ``tinyproj reproduce table2|alexnet``.

A reproduction is a list of steps, each an ordinary ``tinyproj`` command that a user could
type::

    tinyproj train --preset tr-sign-c --out DIR/runs/tr-sign-c          (or --resume)
    tinyproj sweep DIR/runs/tr-sign-c --distortion table2,addnorm,multunif,power
    ...                                                                  (six networks)
    tinyproj report DIR/runs/tr-none-nc ... --out DIR/report

Every step is resumable by itself — ``train --resume`` continues a run from its last
checkpoint (and says so when it has finished), a sweep skips the grid points it already has,
the report is rebuilt from the files — so the plan is resumable by running the same
``tinyproj reproduce`` command again: finished steps return at once, an interrupted one
continues where it stopped. Nothing here trains or scores by itself; it only orders commands
(read :func:`plan`), which keeps one code path for every number.

Layout of ``--out DIR``::

    DIR/reproduce.json           what this folder reproduces (kind, width, seeds, ...)
    DIR/runs/<preset>[-seed<k>]/ one run folder per network and seed (config, metrics, sweeps/)
    DIR/report/                  report.md, table2.md/.csv, the figures

``reproduce.json`` guards against mixing: the same folder with another width, seed count or
sweep setting is refused (those results would belong to other networks); only ``--epochs``
may grow, as with ``train --resume``.

``--bn-images all|N`` sets the batch-norm re-estimation of every step that evaluates: it is
passed to each ``train`` (exact statistics of every / N random training image(s) at each
evaluation, instead of train's default average of 20 random minibatches), ``sweep`` and
``report`` (whose default is already every image). Left out, each step keeps its own default
and the commands are those of a reproduction without it. It is part of the folder's identity
(its runs were scored under that protocol; ``train --resume`` refuses another); a
``reproduce.json`` without it means "not given". ``train`` refuses ``--bn-images`` for a
preset that turns re-estimation off; no preset of :data:`KINDS` does (only the Walking Noise
ones), and ``ReproduceSettings`` refuses it up front should one ever do.

On a cluster, ``--slurm FILE`` writes a SLURM job-array script instead of running: array task
i runs network i (``--network i``: its training, then its sweeps), and a dependent job builds
the report (``--report-only``); the script's header gives both ``sbatch`` lines. The tasks'
logs go beside the script, in a folder that exists when SLURM opens them (so the script's
path may not contain whitespace: :func:`check_slurm_target`). The data folder is checked
before a script is written, with ``--dry-run`` too.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .runs.files import atomic_write_text
from .runs.folder import is_run_folder

__all__ = ["KINDS", "Step", "ReproduceSettings", "plan", "check_out_folder", "run_plan",
           "check_slurm_target", "slurm_script", "select", "networks", "write_marker"]

# The networks of each reproduction: Table 2's six rows (sweeps: Figures 2A-C for all of
# them, as the paper draws every network in each panel), and the AlexNet benchmark run.
KINDS = {
    "table2": ("tr-none-nc", "tr-none-c", "tr-sign-c", "tr-stoch-c", "tr-power-c",
               "tr-stochm-c"),
    "alexnet": ("alexnet-stochm3-c",),
}
# table2: Te-None/Sign/Round over --draws re-estimations (Table 2 with error bars), then the
# three sweeps of Figures 2A-C
SWEEPS = {"table2": "table2,addnorm,multunif,power", "alexnet": ""}
MARKER = "reproduce.json"


@dataclass
class ReproduceSettings:
    """What a reproduction was asked for; the identity of its folder (see ``MARKER``).

    width: channel multiplier (1.0 is the paper's network); epochs: None keeps each preset's
    own; seeds: networks per row (seed 0, 1, ...; error bars over seeds in the report);
    distortions: the sweeps per network ("" for none); draws: random draws per sweep level.
    train_subset / test_subset: the first N images only (trials; None: all of them).
    bn_images: ``"all"`` or N, the batch-norm re-estimation of every evaluating step (a string
    is parsed; None: each step's own default).
    """
    kind: str
    width: float = 1.0
    epochs: int | None = None
    seeds: int = 1
    distortions: str | None = None
    draws: int = 3
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    bn_images: int | str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"reproduce: unknown experiment {self.kind!r}; choose one of "
                            f"{', '.join(KINDS)}", flag="reproduce")
        if self.distortions is None:
            self.distortions = SWEEPS[self.kind]
        if not self.width > 0:
            raise UserError(f"--width must be > 0 (1.0 is the paper's network), got "
                            f"{self.width!r}", flag="--width")
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"--epochs must be >= 1, got {self.epochs!r}", flag="--epochs")
        if not 1 <= self.seeds <= 100:
            raise UserError(f"--seeds must be between 1 and 100, got {self.seeds!r}",
                            flag="--seeds")
        for flag, n in (("--train-subset", self.train_subset),
                        ("--test-subset", self.test_subset)):
            if n is not None and n < 1:
                raise UserError(f"{flag} must be >= 1 (leave it out for all images), got "
                                f"{n!r}", flag=flag)
            if n is not None and self.kind == "alexnet":     # as `train` refuses them there
                raise UserError(f"{flag} does not apply to ImageNet, whose images are read "
                                "from class folders; for a short trial, point --data-dir at a "
                                "smaller copy holding a few images of every class", flag=flag)
        if self.draws < 1:
            raise UserError(f"--draws must be >= 1, got {self.draws!r}", flag="--draws")
        if self.bn_images is not None:
            self.bn_images = _check_bn_images(self.kind, self.bn_images)
        if self.distortions:
            from .robustness import get_distortion
            names = [d.strip() for d in self.distortions.split(",") if d.strip()]
            for name in names:
                if name.lower() == "table2":         # not a distortion: Table 2 over draws
                    continue
                try:
                    get_distortion(name)
                except (KeyError, ValueError) as err:
                    raise UserError(f"--distortions: {err}", flag="--distortions") from None
            self.distortions = ",".join(names)

    def check_data(self) -> None:
        """The data folder checked before anything is written: a --data-dir that does not
        exist is refused (CIFAR-10 is downloaded into an existing one); ImageNet must be
        there (it is never downloaded). Raises UserError / DatasetNotFoundError."""
        from .data.location import check_data_dir
        check_data_dir(self.data_dir, "imagenet" if self.kind == "alexnet" else "cifar10")

    def identity(self) -> dict:
        """The settings a folder's results depend on (epochs may grow; data_dir may move)."""
        return {"kind": self.kind, "width": self.width, "seeds": self.seeds,
                "distortions": self.distortions, "draws": self.draws,
                "train_subset": self.train_subset, "test_subset": self.test_subset,
                "bn_images": self.bn_images}


def _check_bn_images(kind: str, value):
    """``--bn-images`` as the plan passes it on: ``"all"`` or a positive int.

    The empty string is refused (train reads it as "not given", sweep as "all"); so is a kind
    whose preset turns re-estimation off (its ``train`` would refuse the flag mid-plan).
    """
    from .robustness.bn_estimate import parse_bn_images
    from .runs.presets import PRESETS
    if isinstance(value, bool) or not str(value).strip():
        raise UserError(f"--bn-images must be 'all' or a positive number of training images; "
                        f"got {value!r} (leave it out for each step's own default)",
                        flag="--bn-images")
    n = parse_bn_images(value)                  # UserError naming --bn-images
    off = [p for p in KINDS[kind] if PRESETS[p].get("bn_reestimate", True) is False]
    if off:
        raise UserError(f"--bn-images: the preset(s) {', '.join(off)} of {kind} turn batch-norm "
                        "re-estimation off, so their training would refuse it; leave out "
                        "--bn-images", flag="--bn-images")
    return "all" if n is None else n


@dataclass
class Step:
    """One command of the plan: ``argv`` for ``tinyproj``; ``network`` the index it belongs to
    (None for the report); ``what`` a few words for the progress line."""
    argv: list
    what: str
    network: int | None = None

    def command(self) -> str:
        return "tinyproj " + " ".join(shlex.quote(a) for a in self.argv)


def networks(settings: ReproduceSettings) -> list:
    """(preset, seed, folder name) of every network, in array-task order."""
    out = []
    for preset in KINDS[settings.kind]:
        for seed in range(settings.seeds):
            name = preset if settings.seeds == 1 else f"{preset}-seed{seed}"
            out.append((preset, seed, name))
    return out


def plan(settings: ReproduceSettings, out) -> list:
    """The steps, in order: per network its training then its sweeps; the report last.

    A network whose folder already holds a run is continued (``--resume``), else started.
    """
    out = Path(out)
    steps = []
    data = ["--data-dir", settings.data_dir] if settings.data_dir else []
    bn = [] if settings.bn_images is None else ["--bn-images", str(settings.bn_images)]
    for i, (preset, seed, name) in enumerate(networks(settings)):
        folder = out / "runs" / name
        epochs = ["--epochs", str(settings.epochs)] if settings.epochs else []
        if is_run_folder(folder):
            argv = (["train", "--out", str(folder), "--resume", "--no-progress"] + epochs + bn
                    + data)
        else:
            subsets = [f for flag, n in (("--train-subset", settings.train_subset),
                                         ("--test-subset", settings.test_subset))
                       if n is not None for f in (flag, str(n))]
            argv = (["train", "--preset", preset, "--out", str(folder), "--no-progress",
                     "--width", repr(settings.width), "--seed", str(seed)]
                    + epochs + subsets + bn + data)
        steps.append(Step(argv, f"train {name}", i))
        if settings.distortions:
            steps.append(Step(["sweep", str(folder), "--distortion", settings.distortions,
                               "--draws", str(settings.draws), "--no-progress", "--quiet"]
                              + bn + data, f"sweep {name} ({settings.distortions})", i))
    folders = [str(out / "runs" / name) for _, _, name in networks(settings)]
    steps.append(Step(["report"] + folders + ["--out", str(out / "report")] + bn + data,
                      "report"))
    return steps


def check_out_folder(settings: ReproduceSettings, out) -> Path:
    """``out`` must be new, empty, or a reproduction of the same experiment and settings.

    Nothing is written here. A folder with other files is refused (never overwrite what this
    command did not create); one made for other settings is refused with both named.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the reproduction",
                        flag="--out")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    marker = out / MARKER
    if not marker.is_file():
        raise UserError(f"--out {out} is not empty and was not made by `tinyproj reproduce` "
                        f"(no {MARKER}); choose a new folder", flag="--out")
    try:
        saved = json.loads(marker.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{marker} is not valid JSON ({err}); this folder's settings are "
                        "unknown — choose a new --out folder", flag="--out") from None
    mine = settings.identity()       # a key missing from an older reproduce.json: None
    differ = [f"{k}: the folder has {saved.get(k)!r}, you asked for {v!r}"
              for k, v in mine.items() if saved.get(k) != v and k != "bn_images"]
    if saved.get("bn_images") != settings.bn_images:
        had, fix = _bn_text(saved.get("bn_images"))
        if not differ:      # the same networks, evaluated another way: say how to continue
            raise UserError(
                f"--out {out} holds a reproduction made with {had}, you asked for "
                f"{_bn_text(settings.bn_images)[0]}; its runs and sweeps were scored with that "
                f"batch-norm re-estimation, and two protocols would mix in one report. Run it "
                f"again {fix} to continue it, or choose a new --out folder",
                flag="--bn-images")
        differ.append(f"--bn-images: the folder has {had}, you asked for "
                      f"{_bn_text(settings.bn_images)[0]}")
    if differ:
        raise UserError(f"--out {out} holds a reproduction with other settings ("
                        + "; ".join(differ) + "); its runs belong to other networks. Use its "
                        "settings to continue it, or choose a new --out folder", flag="--out")
    return out


def _bn_text(value) -> tuple:
    """(how a reproduce.json's bn_images reads, how to run the same command with it)."""
    if value is None:
        return "no --bn-images (each step's own default)", "without --bn-images"
    return f"--bn-images {value}", f"with --bn-images {value}"


def write_marker(settings: ReproduceSettings, out) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, json.dumps(settings.identity(), indent=2) + "\n")


def run_plan(steps, execute, log=print) -> int:
    """Run ``steps`` in order through ``execute(argv) -> exit status``; stop at the first
    failure and return its status (0 when all succeed)."""
    for k, step in enumerate(steps, 1):
        log(f"[{k}/{len(steps)}] {step.what}: {step.command()}")
        status = execute(step.argv)
        if status:
            log(f"step {k} ({step.what}) stopped with exit status {status}; run the same "
                "`tinyproj reproduce` command again to continue from there")
            return status
    return 0


def check_slurm_target(target) -> Path:
    """Check ``--slurm FILE`` before anything is written; return the tasks' log prefix.

    The logs go beside the script (``t2.sh``: ``t2-<job>_<task>.out``), in a folder that exists
    when SLURM opens them. Refused (UserError naming --slurm): a FILE that exists (nothing is
    overwritten), a folder that does not exist, and a path with whitespace — the log prefix
    goes into an ``#SBATCH --output=`` line, which SLURM cuts at the first space and does not
    reliably unquote, so every task would log to a wrong file or fail to start.
    """
    target = Path(target)
    if target.exists():
        raise UserError(f"--slurm {target} exists; choose a new file name (nothing is "
                        "overwritten)", flag="--slurm")
    if not target.parent.is_dir():
        raise UserError(f"--slurm {target}: the folder {target.parent} does not exist",
                        flag="--slurm")
    logs = target.resolve().with_suffix("")
    if any(c.isspace() for c in str(logs)) or "%" in str(logs):
        raise UserError(f"--slurm {str(target)!r}: the path {str(logs)!r} contains whitespace "
                        "or '%', which SLURM's '#SBATCH --output=' line (the tasks' logs, beside "
                        "the script) cannot hold ('%' starts a pattern there); give a script "
                        "path without them", flag="--slurm")
    return logs


def slurm_script(settings: ReproduceSettings, argv_tail: list, logs) -> str:
    """A SLURM job-array script: task i trains and sweeps network i; see the header.

    ``logs``: the prefix of the tasks' log files, in a folder that exists now and without
    whitespace (:func:`check_slurm_target`). SLURM opens ``--output`` before the script runs,
    so a folder the script would make comes too late: every task would fail without a log."""
    n = len(networks(settings))
    base = "tinyproj reproduce " + " ".join(shlex.quote(a) for a in argv_tail)
    return f"""#!/bin/bash
# tinyproj reproduce {settings.kind}: {n} network(s), one SLURM array task each.
# Submit the networks, then the report once they have all finished:
#   jid=$(sbatch --parsable THIS_SCRIPT)
#   sbatch --dependency=afterok:$jid --wrap "{base} --report-only"
# A task stopped by its time limit continues when resubmitted (`sbatch --array=3 THIS_SCRIPT`):
# training resumes from its checkpoint and the sweeps skip their finished points.
#SBATCH --job-name=tinyproj-{settings.kind}
#SBATCH --array=0-{n - 1}
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --output={logs}-%A_%a.out
# On a GPU partition add, for example:
##SBATCH --gres=gpu:1
##SBATCH --partition=gpu
set -euo pipefail
# Activate the environment that has tinyproj installed, e.g.
# source .venv/bin/activate
srun {base} --network "$SLURM_ARRAY_TASK_ID"
"""


def select(steps, settings: ReproduceSettings, network=None, report_only=False) -> list:
    """The steps of one network (``--network i``), of the report only, or all of them."""
    if network is not None and report_only:
        raise UserError("--network and --report-only exclude each other: a network's task "
                        "trains and sweeps, the report runs once after all of them",
                        flag="--network")
    if network is not None:
        n = len(networks(settings))
        if not 0 <= network < n:
            raise UserError(f"--network must be in 0..{n - 1} ({n} networks: "
                            + ", ".join(name for _, _, name in networks(settings)) + f"), got "
                            f"{network}", flag="--network")
        return [s for s in steps if s.network == network]
    if report_only:
        return [s for s in steps if s.network is None]
    return list(steps)
