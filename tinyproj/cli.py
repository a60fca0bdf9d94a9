"""The ``tinyproj`` command line.

    tinyproj train --preset tr-sign-c --width 0.25 --epochs 1 --out runs/sign
    tinyproj info                 versions, backend, kernels, where data is looked for
    tinyproj lessons [--quick]    run the lessons in lessons/ one after another

Further sub-commands (train, sweep, walk, report, bench) are added by the
modules that implement them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cmd_info(args) -> int:
    from importlib import metadata

    from . import __version__, backend, kernels
    print(f"tinyproj {__version__}")
    print(f"python   {sys.version.split()[0]}")
    for package in ("numpy", "numba", "cupy-cuda12x", "torch"):
        try:
            print(f"{package:<8} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            print(f"{package:<8} not installed")
    print(f"backend  {backend.name()} (cupy usable: {backend.cupy_available()})")
    print(f"kernels  {kernels.mode()} (TINYPROJ_KERNELS)")
    print(f"data     {os.environ.get('TINYPROJ_DATA', 'datasets/ (set TINYPROJ_DATA to change)')}")
    return 0


def _cmd_lessons(args) -> int:
    folder = ROOT / "lessons"
    files = sorted(folder.glob("[0-9][0-9]_*.py"))
    if args.names:
        files = [f for f in files if any(f.name.startswith(n) for n in args.names)]
    if not files:
        print(f"no lessons found in {folder} matching {args.names or 'any name'}", file=sys.stderr)
        return 2
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    if args.quick:
        env["TINYPROJ_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    failed = []
    for f in files:
        print(f"\n=== {f.name}{' (quick mode)' if args.quick else ''} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(f)], cwd=ROOT, env=env)
        print(f"--- {f.name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(f.name)
    if failed:
        print(f"\nfailed lessons: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


_HELP = {
    "preset": "one of the paper's runs (see `tinyproj train --list-presets`)",
    "model": "bc_cifar10 | alexnet_bn | mlp_tfc | lenet5",
    "width": "channel/unit multiplier of bc_cifar10 and alexnet_bn",
    "bn": "batch norm in mlp_tfc / lenet5",
    "dataset": "cifar10 | mnist | fashion-mnist | synthetic | imagenet",
    "data_dir": "folder holding cifar-10-batches-py/, mnist/, ... (default $TINYPROJ_DATA)",
    "preprocess": "none | scale | gcn | gcn_zca (default: the dataset's)",
    "train_subset": "train on the first N training images only",
    "val_size": "validation images split off the end of the training set (0: none)",
    "test_subset": "score only the first N test images",
    "projection": "training projection spec, e.g. sign, stoch, power:beta=U(0,2)",
    "clip": "clip factor f (c_k = f * Glorot std) or NC for no clipping",
    "clip_factor": "multiply f by this at each clip milestone",
    "clip_milestones": "iterations at which f is multiplied, e.g. 5000,10000",
    "loss": "square_hinge | cross_entropy",
    "optimizer": "adam | sgd",
    "lr_schedule": "exponential | cosine | step | constant",
    "lr_final": "final learning rate (exponential) or minimum (cosine)",
    "lr_milestones": "iterations of the step drops, e.g. 100000,125000",
    "iterations": "stop after this many steps",
    "test_projections": "comma-separated test projections (default none,sign,round)",
    "bn_reestimate": "re-estimate batch norm per test projection (--no-bn-reestimate: faster)",
    "bn_batches": "training batches used to re-estimate batch norm",
    "out": "run folder (metrics.jsonl, checkpoint.npz, config.json)",
}


def _list_of(kind):
    def parse(text):
        return [kind(v) for v in text.split(",") if v.strip()]
    return parse


def _clip_value(text):
    return "NC" if text.strip().upper() == "NC" else float(text)


def _add_config_flags(parser):
    """One flag per TrainConfig field (every setting of a run can be overridden)."""
    import dataclasses

    from .presets import TrainConfig
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = _HELP.get(f.name, "")
        default_value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name == "clip":
            parser.add_argument(flag, type=_clip_value, default=None, help=help_text)
        elif isinstance(default_value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif isinstance(default_value, list):
            kind = str if f.name == "test_projections" else int
            parser.add_argument(flag, type=_list_of(kind), default=None, help=help_text)
        else:
            kind = {"width": float, "lr": float, "lr_final": float, "lr_factor": float,
                    "momentum": float, "clip_factor": float}.get(f.name)
            if kind is None:
                kind = int if isinstance(default_value, int) or f.name in (
                    "train_subset", "test_subset", "iterations") else str
            parser.add_argument(flag, type=kind, default=None,
                                help=f"{help_text} (default {default_value!r})".strip())


def _cmd_train(args) -> int:
    import dataclasses

    from .presets import PRESETS, TrainConfig, make_config
    from .training import TrainingInterrupted, train
    if args.list_presets:
        for name, values in PRESETS.items():
            print(f"{name:<20} " + " ".join(f"{k}={v}" for k, v in values.items()))
        return 0
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    cfg = make_config(**overrides)
    if cfg.out is None:
        cfg.out = str(Path("runs") / (cfg.preset or f"{cfg.model}-{cfg.projection}"))
    try:
        train(cfg, resume=args.resume, progress=not args.no_progress)
    except TrainingInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyproj", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a network with Algorithm 1 (a run folder)")
    _add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("info", help="show versions, backend and kernel settings")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("lessons", help="run the lessons (quick mode with --quick)")
    p.add_argument("names", nargs="*", help="lesson prefixes to run, e.g. 01 02 (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds per lesson")
    p.set_defaults(func=_cmd_lessons)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
