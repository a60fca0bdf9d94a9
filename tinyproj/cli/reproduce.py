"""`tinyproj reproduce`: a paper's full experiment as one resumable command.

    tinyproj reproduce table2 --out repro/table2                the six networks, sweeps, report
    tinyproj reproduce table2 --out repro/t2 --width 0.25 --epochs 1 --distortions ""   a trial
    tinyproj reproduce table2 --out repro/table2 --dry-run      print the plan, run nothing
    tinyproj reproduce table2 --out repro/table2 --slurm t2.sh  a SLURM job array instead
    tinyproj reproduce alexnet --out repro/alexnet --data-dir /data   (ImageNet layout)
    tinyproj reproduce table2 --out repro/t2x --bn-images all   exact batch norm in every step

Run the same command again to continue: each step is an ordinary `tinyproj` command that
resumes by itself (tinyproj/reproduce.py explains the plan and the folder layout).
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("reproduce", help="a paper's full experiment: runs, sweeps, report",
                       description="Train every network of an experiment, sweep it and write "
                       "the report, as one resumable plan of ordinary tinyproj commands.")
    p.add_argument("experiment", help="table2 (CIFAR-10, the six networks of Table 2 and "
                   "Figures 2A-C) or alexnet (ImageNet, the benchmark run)")
    p.add_argument("--out", required=True, help="folder of the reproduction (runs/, report/)")
    p.add_argument("--width", type=float, default=1.0,
                   help="channel multiplier (default 1.0, the paper's network)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per network (default: each preset's own, e.g. 500)")
    p.add_argument("--seeds", type=int, default=1,
                   help="networks per row, seeds 0..N-1 (default 1)")
    p.add_argument("--distortions", default=None,
                   help="sweeps per network, comma-separated (table2 default "
                        "addnorm,multunif,power; \"\" for none)")
    p.add_argument("--draws", type=int, default=3,
                   help="random draws per sweep level (default 3)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on the first N images only (a trial; default all)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="score the first N test images only (a trial; default all)")
    p.add_argument("--bn-images", default=None, metavar="all|N",
                   help="batch-norm re-estimation of every step that evaluates (train, sweep, "
                        "report): exact statistics of all (or N random) training images "
                        "(default: each step's own; train averages 20 random minibatches, "
                        "sweep and report use all)")
    p.add_argument("--data-dir", default=None, help="where the datasets are")
    p.add_argument("--network", type=int, default=None,
                   help="only network I's training and sweeps (a SLURM array task)")
    p.add_argument("--report-only", action="store_true",
                   help="only the report (after every network has finished)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and exit (with --slurm: write the script, run nothing)")
    p.add_argument("--slurm", default=None, metavar="FILE",
                   help="write a SLURM job-array script to FILE instead of running (a new "
                        "file; its path may not contain spaces)")
    p.set_defaults(func=_cmd_reproduce)


def _tail(args, settings) -> list:
    """The flags that identify the reproduction, for the SLURM script's command lines
    (``settings``: the checked ReproduceSettings, for values in their normal form)."""
    tail = [args.experiment, "--out", str(Path(args.out).resolve()), "--width",
            repr(args.width), "--seeds", str(args.seeds), "--draws", str(args.draws)]
    if args.epochs is not None:
        tail += ["--epochs", str(args.epochs)]
    if args.distortions is not None:
        tail += ["--distortions", args.distortions]
    for flag, n in (("--train-subset", args.train_subset), ("--test-subset", args.test_subset)):
        if n is not None:
            tail += [flag, str(n)]
    if settings.bn_images is not None:
        tail += ["--bn-images", str(settings.bn_images)]
    if args.data_dir:
        tail += ["--data-dir", str(Path(args.data_dir).resolve())]
    return tail


def _cmd_reproduce(args) -> int:
    from .. import reproduce as rp
    settings = rp.ReproduceSettings(args.experiment, width=args.width, epochs=args.epochs,
                                    seeds=args.seeds, distortions=args.distortions,
                                    draws=args.draws, data_dir=args.data_dir,
                                    train_subset=args.train_subset,
                                    test_subset=args.test_subset,
                                    bn_images=args.bn_images)
    out = rp.check_out_folder(settings, args.out)
    if args.slurm or not args.dry_run:
        # before reproduce.json or a SLURM script (--dry-run --slurm writes the script too, so
        # it is checked as well: a script pointing at missing data would fail on the cluster)
        settings.check_data()
    steps = rp.select(rp.plan(settings, out), settings, args.network, args.report_only)
    if args.slurm:
        target = Path(args.slurm)
        logs = rp.check_slurm_target(target)
        from ..runs.files import atomic_write_text
        atomic_write_text(target, rp.slurm_script(settings, _tail(args, settings), logs))
        print(f"wrote {target}: {len(rp.networks(settings))} array task(s), logs in "
              f"{logs}-<job>_<task>.out; its header has the two sbatch lines")
        return 0
    if args.dry_run:
        for k, step in enumerate(steps, 1):
            print(f"[{k}/{len(steps)}] {step.command()}")
        return 0
    rp.write_marker(settings, out)
    return rp.run_plan(steps, _execute)


def _execute(argv) -> int:
    """One step as the command line would run it; errors propagate to the CLI's handler."""
    from . import build_parser
    args = build_parser().parse_args(argv)
    status = args.func(args) or 0
    sys.stdout.flush()
    return status
