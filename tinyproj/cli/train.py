"""`tinyproj train` (one run of Algorithm 1) and `tinyproj demo` (a few short runs compared)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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

    from ..runs.config import TrainConfig
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

    from ..runs.config import PRESETS, TrainConfig, make_config
    from ..runs.training import TrainingInterrupted, train
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


def _cmd_demo(args) -> int:
    """Train a few presets briefly and print their test errors side by side."""
    import shutil

    from ..runs.config import make_config
    from ..runs.training import train
    presets = [p for p in args.presets.split(",") if p]
    results = {}
    start = time.perf_counter()
    for preset in presets:
        out = Path(args.out) / preset
        if out.exists():
            shutil.rmtree(out)            # demo runs are disposable: start afresh each time
        cfg = make_config(preset, width=args.width, epochs=args.epochs,
                          train_subset=args.train_subset, test_subset=args.test_subset or None,
                          val_size=args.val_size, data_dir=args.data_dir, out=str(out),
                          seed=args.seed)
        print(f"\n=== {preset}: bc_cifar10 width {args.width}, {args.epochs} epoch(s) on "
              f"{args.train_subset} images ===", flush=True)
        _, rows = train(cfg, progress=not args.no_progress)
        results[preset] = rows[-1]
    names = list(next(iter(results.values()))["test_error"])
    n_test = args.test_subset or 10000
    print(f"\nCIFAR-10 test error (%) on {n_test} test images after {args.epochs} epoch(s) on "
          f"{args.train_subset} training images; batch norm re-estimated per test projection:")
    print(f"{'network':<14}" + "".join(f"{'Te-' + n.capitalize():>10}" for n in names)
          + f"{'train s':>10}")
    for preset, row in results.items():
        print(f"{preset:<14}" + "".join(f"{100 * row['test_error'][n]:10.2f}" for n in names)
              + f"{row['train_seconds']:10.1f}")
    print(f"total {time.perf_counter() - start:.0f} s; run folders in {args.out}/")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a network with Algorithm 1 (a run folder)")
    _add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("demo", help="train small Tr-None-NC and Tr-Sign-C nets briefly, compare")
    p.add_argument("--presets", default="tr-none-nc,tr-sign-c",
                   help="comma-separated presets (default tr-none-nc,tr-sign-c)")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-subset", type=int, default=10000)
    p.add_argument("--test-subset", type=int, default=2000,
                   help="score the first N test images (default 2000; 0: all 10,000)")
    p.add_argument("--val-size", type=int, default=0,
                   help="validation images split off the training set (default 0: none)")
    p.add_argument("--data-dir", default=None, help="default $TINYPROJ_DATA or datasets/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)
