"""`tinyproj sweep`: test error of a trained run against AddNorm σ, MultUnif γ or Power β.

    tinyproj sweep runs/tr-sign-c --distortion addnorm                 Figure 2A grid, 3 draws
    tinyproj sweep runs/tr-sign-c --distortion addnorm,multunif,power  all three panels
    tinyproj sweep runs/tr-sign-c --distortion addnorm --levels 0,0.25,0.5 --draws 5
    tinyproj sweep runs/tr-sign-c --distortion addnorm --per-layer     one layer at a time
    tinyproj sweep runs/tr-sign-c --distortion addnorm --layer conv2.weight
    tinyproj sweep runs/tr-sign-c --distortion power --jobs 4          4 local processes
    tinyproj sweep runs/tr-sign-c --distortion addnorm --shard $SLURM_ARRAY_TASK_ID/8
    tinyproj sweep runs/tr-sign-c --distortion power --levels 0 --draws 5 --bn-images 5000
    tinyproj sweep runs/tr-sign-c --distortion addnorm --bn-batches 20   the old 20 x 50 protocol
    tinyproj sweep runs/tr-sign-c --distortion table2 --draws 5        Te-None/Sign/Round ± std

Batch norm is re-estimated for every draw from exact statistics of the whole training set by
default (--bn-images all; robustness/bn_estimate.py). The old protocol, 20 random batches of
50 averaged, moved test error by up to ~1.6 points between draws on the project's short runs.

Rows go to RUN_DIR/sweeps/<distortion>.jsonl (per-layer sweeps: layers-<distortion>.jsonl; a
shard: <name>.shard-<i>-of-<n>.jsonl), each stamped with the fingerprint of the run's network.
Run the same command again to resume an interrupted sweep. Rows of another network (the run
was retrained after them) or of other settings are refused, never mixed in: --restart moves
the sweep's files to RUN_DIR/sweeps/replaced/<time>/ and starts afresh (nothing is deleted).
Several processes may write to one sweep at once (e.g. one --layer each).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def _levels(text):
    return [v for v in (s.strip() for s in text.split(",")) if v]


def _print_summary(rows, per_layer: bool) -> None:
    from ..robustness import get_distortion, midpoints
    if not rows:
        return
    dist = get_distortion(rows[0]["distortion"])
    if per_layer:
        try:
            mids = midpoints(rows)
        except ValueError:
            print(f"(no midpoints: add {dist.param}={dist.identity:g}, the undistorted "
                  "level, to --levels to get them)")
            return
        print(f"layer-wise midpoint {dist.param} (error halfway from clean to chance, "
              f"going {dist.worse} from {dist.param}={dist.identity:g}):")
        for layer, m in mids.items():
            where = (f"{m.level:.4g}" if m.level is not None else
                     "beyond the grid" if m.beyond_grid else m.note)
            print(f"  {layer or 'all layers':<20} {where:<16} clean {100 * m.clean_error:.2f}%")
        return
    print(f"{dist.param:>8}  {'error %':>8}  {'± std':>6}  draws  bits/weight")
    for r in rows:
        bits = r.get("bits_per_weight", "")
        bits = "inf" if "bits_per_weight" in r and bits is None else (
            f"{bits:.3f}" if isinstance(bits, float) else "")
        print(f"{r['level']:>8g}  {100 * r['error_mean']:8.2f}  {100 * r['error_std']:6.2f}  "
              f"{r['draws']:>5}  {bits}")


_TABLE2 = "or table2 (Te-None, Te-Sign and Te-Round of the whole network)"


def _distortion_name(text: str) -> str:
    """One name of --distortion: table2, or a sweepable distortion (a typo names the flag
    and every valid name, table2 too)."""
    from ..robustness import get_distortion
    if text.strip().lower() == "table2":
        return "table2"
    try:
        return get_distortion(text).name
    except UserError as err:
        raise UserError(f"--distortion: {err}, {_TABLE2}", flag="--distortion") from None


def _check_args(args) -> list:
    """Every flag checked before the run is loaded or a file touched; returns the names."""
    from ..robustness import check_levels, parse_shard
    from ..robustness.bn_estimate import parse_bn_images
    names = [_distortion_name(d) for d in args.distortion.split(",") if d.strip()]
    if "table2" in names and (args.levels is not None or args.layer is not None
                              or args.per_layer or args.jobs is not None
                              or args.shard is not None):
        raise UserError("--distortion table2 scores Te-None, Te-Sign and Te-Round of the whole "
                        "network: it takes no --levels, --layer, --per-layer, --jobs or --shard",
                        flag="--distortion")
    if not names:
        raise UserError(f"--distortion is empty; give one or more of addnorm, multunif, power, "
                        f"{_TABLE2}", flag="--distortion")
    if args.levels is not None and len(names) > 1:
        raise UserError("--levels applies to one distortion; sweep them one at a time, or "
                        "leave out --levels to use each distortion's default grid",
                        flag="--levels")
    for name in names:
        if name != "table2":
            check_levels(name, args.levels)
    shard = parse_shard(args.shard)
    if args.layer is not None and args.per_layer:
        raise UserError("give either --layer NAME (one layer) or --per-layer (every layer)",
                        flag="--per-layer")
    if args.jobs is not None and shard is not None:
        raise UserError("give either --jobs N (all shards on this machine) or --shard i/n "
                        "(one shard, e.g. a SLURM array task), not both", flag="--jobs")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be >= 1 (parallel processes); got {args.jobs}",
                        flag="--jobs")
    if args.restart and shard is not None:
        raise UserError("--restart moves every shard's file of the sweep aside; run it once "
                        "without --shard, then start the shards", flag="--restart")
    if args.draws is not None and args.draws < 1:
        raise UserError(f"--draws must be >= 1 (random draws per level); got {args.draws}",
                        flag="--draws")
    if args.test_subset is not None and args.test_subset < 1:
        raise UserError(f"--test-subset must be >= 1; got {args.test_subset}",
                        flag="--test-subset")
    if args.bn_batches is not None and args.bn_batches < 0:
        raise UserError(f"--bn-batches must be >= 0 (0: keep the stored statistics); "
                        f"got {args.bn_batches}", flag="--bn-batches")
    if args.bn_batches is not None and args.bn_images is not None:
        raise UserError("give either --bn-images (exact re-estimation over that many training "
                        "images, default all) or --bn-batches (the old protocol: that many "
                        "batches of --bn-batch-size averaged), not both", flag="--bn-images")
    parse_bn_images(args.bn_images)
    for flag, value in (("--bn-batch-size", args.bn_batch_size),
                        ("--bn-pass-size", args.bn_pass_size),
                        ("--eval-batch-size", args.eval_batch_size)):
        if value < 1:
            raise UserError(f"{flag} must be >= 1; got {value}", flag=flag)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0; got {args.seed}", flag="--seed")
    return names


def _check_run(args) -> None:
    """What can be checked against the run before its data are loaded: --data-dir exists,
    and --layer names a weight of its network (built from config.json alone, in seconds,
    where loading the run and its data may take minutes)."""
    from ..robustness.scoring import select_weights
    from ..runs.folder import read_config, untrained_network
    if not (Path(args.run_dir) / "config.json").is_file():
        return                                       # not a run: loading it says what is wrong
    if args.data_dir is not None:
        from ..data.location import check_data_dir
        check_data_dir(args.data_dir, read_config(args.run_dir).dataset)
    if args.layer is not None:                       # UserError listing the weight names
        select_weights(untrained_network(args.run_dir), args.layer)


def bn_protocol(args):
    """The ``BNProtocol`` of the flags: --bn-batches K selects the old protocol, else exact."""
    from ..robustness.bn_estimate import protocol_from_settings
    return protocol_from_settings(args.bn_images, args.bn_pass_size, args.bn_batches,
                                  args.bn_batch_size)


def add_bn_flags(p, what: str = "batch norm is re-estimated per draw") -> None:
    """The batch-norm re-estimation flags every command shares (sweep, report): --bn-images,
    --bn-pass-size, and the old protocol's --bn-batches, --bn-batch-size."""
    p.add_argument("--bn-images", default=None,
                   help=f"{what} from exact statistics (float64 sums, no momentum) of this "
                        "many training images: 'all' (default, a full pass) or N (a random "
                        "subset)")
    p.add_argument("--bn-pass-size", type=int, default=1000,
                   help="images per forward pass of the exact re-estimation (default 1000)")
    p.add_argument("--bn-batches", type=int, default=None,
                   help="the old protocol instead: average the statistics of this many random "
                        "training batches of --bn-batch-size (the project's earlier sweeps: "
                        "20 x 50; 0: keep the stored statistics)")
    p.add_argument("--bn-batch-size", type=int, default=50,
                   help="images per batch of --bn-batches (default 50, the paper's batch)")


def _cmd_sweep(args) -> int:
    from ..robustness import run_sweep, run_sweep_jobs
    from ..runs.training import load_run
    names = _check_args(args)
    _check_run(args)
    per_layer = args.per_layer or args.layer is not None
    options = dict(draws=args.draws, seed=args.seed, bn=bn_protocol(args),
                   test_subset=args.test_subset,
                   eval_batch_size=args.eval_batch_size, progress=not args.no_progress)
    run = None if args.jobs is not None else load_run(args.run_dir, data_dir=args.data_dir)
    for name in names:
        if name == "table2":
            from ..robustness.te_scores import run_test_scores
            scores = run_test_scores(run, draws=args.draws or 3, bn=options["bn"],
                                     seed=args.seed, test_subset=args.test_subset,
                                     eval_batch_size=args.eval_batch_size,
                                     restart=args.restart)
            if not args.quiet:
                print(f"\nTable 2 ({len(scores)} tests) in {Path(args.run_dir) / 'sweeps'}")
                for test, r in scores.items():
                    print(f"  Te-{test.capitalize():<6} {100 * r['error_mean']:6.2f} % ± "
                          f"{100 * r['error_std']:.2f}  (n = {r['draws']} draws)")
            continue
        if args.jobs is not None:
            rows = run_sweep_jobs(args.run_dir, name, args.levels, jobs=args.jobs,
                                  layer=args.layer, per_layer=args.per_layer,
                                  restart=args.restart, data_dir=args.data_dir, **options)
        else:
            rows = run_sweep(run, name, args.levels, layer=args.layer, per_layer=args.per_layer,
                             shard=args.shard, restart=args.restart, **options)
        if not args.quiet:
            print(f"\n{name}: {len(rows)} point(s) in {Path(args.run_dir) / 'sweeps'}")
            _print_summary(rows, per_layer=per_layer)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="test error against a weight distortion (Figure 2A-C)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="a run folder made by `tinyproj train --out`")
    p.add_argument("--distortion", required=True,
                   help="addnorm | multunif | power, or several separated by commas; table2: "
                        "Table 2's Te-None, Te-Sign, Te-Round, K draws each "
                        "(RUN_DIR/sweeps/table2.jsonl)")
    p.add_argument("--levels", type=_levels, default=None,
                   help="comma-separated levels (σ, γ or β); default: the paper's range "
                        "(addnorm 0..1, multunif 1..0.05, power 0..2)")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per level: random noise and re-estimation images (default 3 for "
                        "addnorm / multunif, 1 for power; give it for an error bar on power)")
    add_bn_flags(p, "batch norm re-estimated per draw")
    p.add_argument("--test-subset", type=int, default=None,
                   help="score only the first N test images (faster, noisier)")
    p.add_argument("--eval-batch-size", type=int, default=500,
                   help="images per batch when scoring (default 500; larger is faster on a GPU)")
    p.add_argument("--data-dir", default=None,
                   help="where the run's dataset is, if not where it was trained")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--layer", default=None,
                       help="distort this weight only (e.g. conv2.weight), the others exact")
    where.add_argument("--per-layer", action="store_true",
                       help="every weight layer in turn, the others exact "
                            "(layers-<distortion>.jsonl)")
    p.add_argument("--shard", default=None,
                   help="i/n: do grid points i, i+n, ... only (0 <= i < n), e.g. "
                        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-<n-1>")
    p.add_argument("--jobs", type=int, default=None,
                   help="run N shards in N local processes (one BLAS thread each)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random draws and batch-norm batches (default 0)")
    p.add_argument("--restart", action="store_true",
                   help="move this sweep's files (all shards) to RUN_DIR/sweeps/replaced/<time>/ "
                        "and start afresh (for rows of a retrained network or other settings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no summary table at the end")
    p.set_defaults(func=_cmd_sweep)
