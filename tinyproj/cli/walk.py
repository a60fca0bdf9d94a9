"""`tinyproj walk`: Walking Noise on a network — accuracy per noise site and σ, midpoints.

    tinyproj walk --model mlp_tfc --dataset mnist --out runs/wn-mlp
    tinyproj walk --model lenet5 --bn --noise multiplicative --sigmas 0.01,0.1,1,10 --out runs/wn
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --sites all          global noise
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --seeds 0,1,2        three models, spread
    tinyproj walk --run runs/mlp --out runs/wn-mlp                       an already trained run
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --train-noise 0.5    noisy training per site
    tinyproj walk --model mlp_tfc --out runs/wn-at --protocol train-at-sigma --grid add-mnist \
        --seeds 0,1                    the authors' protocol: a network per (site, σ, seed)
    tinyproj walk --model mlp_tfc --bn --out runs/wn-g --sites all-no-bn   BN-noNoise global
    tinyproj walk ... --repeat-at site --site-repeats 4,2,3,3,2,2,2,1,1,1,1   N per site
    tinyproj walk --model mlp_tfc --out runs/wn-mlp --shard $SLURM_ARRAY_TASK_ID/8

Without --run the network is trained first, cleanly, with the set-up of --setup, into
RUN_DIR/model (seed 0; RUN_DIR/model-seed<S> for other seeds), and reused when present. The
default set-up is the Walking Noise authors' for the model and dataset (PyTorch's initial
weights and biases, Adam 1e-3, cosine annealing per epoch, cross-entropy, batch 128, their
epochs — MNIST mlp_tfc 100, lenet5 50 —, normalisation and crop + flip); --setup legacy is
tinyproj's earlier one (Glorot, cosine per step, no augmentation, 5 epochs), with which the
committed results/wn-mnist-train-at-sigma* were made. --epochs overrides the set-up's. Every
row of a set-up other than legacy records it (``setup``), so a point is never reused for
another set-up.
With --train-noise SIGMA one network per site (or one for --sites all) is trained with that
noise at that site instead (RUN_DIR/noisy-models/, dynamics in RUN_DIR/dynamics.jsonl), and
walked over every test σ: a curve of its own, not the paper's noisy-training curve (that is
--protocol train-at-sigma).

With --protocol train-at-sigma (Walking Noise's noisy training, as the authors ran it) every
(site, σ, seed) gets its own network, trained with noise σ at that site and tested at that
same σ (RUN_DIR/trained-at-sigma/); the curve over σ of those networks and its midpoint μ are
the paper's noisy-training numbers. Resumable and shardable like the walk (one row per
network; a network trained but not yet tested is read back, not retrained).

Then every (site, σ) is scored with noise at evaluation. RUN_DIR/walk.jsonl gets one JSON
object per (seed, site, σ), stamped with the fingerprint of the network walked, and
RUN_DIR/midpoints.csv the midpoint μ per site (over seeds: geometric mean and spread, and
every seed's μ) and RUN_DIR/walk-points.csv the accuracy per (site, σ) over seeds (mean,
standard deviation, each seed) of the points of this command — rows of other commands stay
in walk.jsonl but are not in the table.
Two figures of the same points go beside them: RUN_DIR/walk-accuracy.png (test accuracy
against σ, one line per site, a dot at each site's μ) and RUN_DIR/walk-midpoints.png (μ per
site, input to logits); the last line printed names every result file.
Run the same command again to resume; shards write walk.shard-<i>-of-<n>.jsonl, and every
later run reads them all. With --shard train the models first (--train-only, once), so that
shards do not race. A point on file that was measured on another network (--run B into the
--out of a walk of run A, a model retrained) is refused, never shown: use another --out, or
--restart, which moves the walk's files to RUN_DIR/replaced/<time>/ (nothing is deleted).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UserError

def _seeds(text) -> list:
    out = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if not re.fullmatch(r"\d+", part):
            raise UserError(f"--seeds takes integers >= 0 separated by commas (e.g. 0,1,2); "
                            f"got {text!r}", flag="--seeds")
        if int(part) not in out:
            out.append(int(part))
    if not out:
        raise UserError("--seeds is empty; give e.g. 0 or 0,1,2", flag="--seeds")
    return out


def _sites(text):
    from ..walking_noise.sites import NO_BN_NAMES
    text = str(text).strip()
    if text.lower() in ("each", "all"):
        return text.lower()
    if text.lower() in NO_BN_NAMES:
        return "all-no-bn"
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError("--sites takes each, all, or site names/indices separated by commas",
                        flag="--sites")
    return [int(p) if re.fullmatch(r"-?\d+", p) else p for p in parts]


def _positive_int(value, flag):
    if value is not None and value < 1:
        raise UserError(f"{flag} must be >= 1; got {value}", flag=flag)


def _train_config(args, seed: int, folder: Path):
    """The clean training of one seed as a validated TrainConfig (the set-up of --setup for
    the model and dataset; --epochs, when given, overrides its epochs)."""
    from ..runs.config import TrainConfig, validate
    from ..walking_noise.setups import setup_settings
    settings = setup_settings(args.setup, args.model, args.dataset)
    return validate(TrainConfig.from_dict(dict(
        settings, model=args.model, bn=bool(args.bn), dataset=args.dataset,
        data_dir=args.data_dir, train_subset=args.train_subset,
        epochs=settings["epochs"] if args.epochs is None else args.epochs, seed=seed,
        out=str(folder))))


def _model_folder(out: Path, seed: int) -> Path:
    return out / ("model" if seed == 0 else f"model-seed{seed}")


def _clean_run(args, seed: int, out: Path, shard, log):
    """The trained clean model of ``seed``: trained now, resumed, or read back."""
    from ..runs.training import load_run, train
    folder = _model_folder(out, seed)
    cfg = _train_config(args, seed, folder)
    if (folder / "checkpoint.npz").exists():
        saved = json.loads((folder / "config.json").read_text())
        diff = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
                if k not in ("out", "data_dir") and saved.get(k) != v}
        if diff:
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{folder} holds a model trained with other settings ({said}); "
                            "use the same flags, or another --out")
        run = load_run(folder, data_dir=args.data_dir)
        if run.meta.get("pos", {}).get("epoch", 0) >= cfg.epochs:
            return run
        if shard is not None:
            raise UserError(f"the training in {folder} is unfinished; finish it first "
                            "(the same command with --train-only, without --shard)")
        log(f"resuming the training in {folder}")
        train(cfg, resume=True, progress=not args.no_progress, log=log)
    else:
        if shard is not None:
            raise UserError(f"no trained model in {folder}: with --shard, train it first "
                            "(the same command with --train-only, without --shard), so that "
                            "the shards do not all train it at once", flag="--shard")
        log(f"training {args.model}{' with BN' if args.bn else ''} on {args.dataset} "
            f"(seed {seed}, {args.epochs} epoch(s)) into {folder}")
        train(cfg, progress=not args.no_progress, log=log)
    return load_run(folder, data_dir=args.data_dir)


def _slug(spec, clamp) -> str:
    text = f"{spec.kind}{f'-r{spec.ratio:g}' if spec.kind == 'combined' else ''}" \
           f"-sigma{spec.sigma:g}{'' if clamp is None else f'-clamp{clamp:g}'}"
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def _noisy_model(args, spec, seed, site, site_name, out, data, dyn_file, log, train=True):
    """The network trained with noise ``spec`` at ``site`` (-1: all): trained now or read
    back (refused when it was trained with other settings); None when ``train`` is False and
    it does not exist yet."""
    from .. import backend
    from ..runs.files import load_checkpoint, save_checkpoint
    from ..runs.grid import append_row, read_rows
    from ..walking_noise import build_walk_model, train_noisy
    from ..walking_noise.setups import recorded_setup, setup_tag
    train_src, test_src, input_shape, num_classes = data
    path = out / "noisy-models" / f"{_slug(spec, args.clamp)}-{site_name}-seed{seed}.npz"
    made = {"model": args.model, "bn": bool(args.bn), "dataset": args.dataset,
            "train_subset": args.train_subset, "epochs": args.epochs, **setup_tag(args.setup)}
    model = build_walk_model(args.model, input_shape, num_classes, backend.make_rng(seed),
                             bn=bool(args.bn), setup=args.setup)
    if path.exists():
        state, _, meta = load_checkpoint(path)
        diff = {k: (meta[k], v) for k, v in made.items() if k in meta and meta[k] != v}
        if recorded_setup(meta) != args.setup:     # saved before set-ups had names: legacy
            diff["setup"] = (recorded_setup(meta), args.setup)
        if diff or set(state) != set(model.state_dict()):
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{path} holds a network trained with other settings "
                            f"({said or 'another architecture'}); use the same flags, or "
                            "another --out")
        model.load_state_dict(state)
        rows = meta.get("dynamics", [])
    elif not train:
        return None
    else:
        log(f"noisy training: {spec} at {site_name} (seed {seed}, {args.epochs} epoch(s))")
        model, rows = train_noisy(model, (train_src, test_src), spec,
                                  sites={-1: "all", -2: "all-no-bn"}.get(site, [site]),
                                  epochs=args.epochs,
                                  seed=seed, clamp=args.clamp, record_dynamics=True,
                                  test_subset=args.test_subset, progress=not args.no_progress,
                                  log=log, dataset=args.dataset, setup=args.setup)
        save_checkpoint(path, model.state_dict(), {"state": [], "hyper": {}, "t": 0},
                        dict(made, dynamics=rows, site=site, site_name=site_name, seed=seed,
                             noise=str(spec), clamp=args.clamp))
    if train:
        fields = ("site_name", "seed", "sigma", "clamp", "noise", "ratio", "epoch")
        have = {tuple(r.get(k) for k in fields) for r in read_rows(dyn_file)}
        for r in rows:
            r = dict(r, site=site, site_name=site_name)
            if tuple(r.get(k) for k in fields) not in have:
                append_row(dyn_file, r)          # one locked line: safe beside other shards
    model.eval()
    return model


def _train_at_sigma(args, spec, sigmas, seeds, shard, sites, out: Path, walk_file: Path, log):
    """The train-at-σ protocol: this shard's networks trained and tested; returns the rows
    of every unit on file (all shards) and the number of units."""
    from ..runs.build import build_data
    from ..walking_noise import walk_grid, walk_sites
    from ..walking_noise.protocol import protocol_units, train_at_sigma
    walk_sites(_skeleton(args), sites)          # a site typo stops here, before any data
    cfg = _train_config(args, seeds[0], out)
    train_src, _, test_src, _, num_classes = build_data(cfg)
    if args.restart:
        walk_grid(walk_file).move_aside()
    common = dict(epochs=args.epochs, out_file=walk_file, models_dir=out / "trained-at-sigma",
                  bn=bool(args.bn), clamp=args.clamp, test_subset=args.test_subset,
                  repeats=args.repeats, repeat_at=args.repeat_at,
                  site_repeats=args.site_repeats, num_classes=num_classes,
                  dataset=args.dataset, setup=args.setup)
    train_at_sigma(args.model, train_src, test_src, spec, sigmas, sites, seeds, shard=shard,
                   progress=not args.no_progress, log=log, **common)
    rows = train_at_sigma(args.model, train_src, test_src, spec, sigmas, sites, seeds,
                          compute=False, **common)
    total = len(protocol_units(walk_sites(_skeleton(args), sites), sigmas, seeds))
    return rows, total


def _print_table(table) -> None:
    if not table:
        return
    print(f"\n{'site':>4}  {'name':<9} {'noise':<26} {'midpoint σ':>12}  {'spread':>8}  "
          f"{'max acc':>7}  seeds (μ per seed)")
    for e in table:
        mu = ("beyond grid" if e["midpoint_sigma"] is None and e["beyond_grid"] else
              "-" if e["midpoint_sigma"] is None else f"{e['midpoint_sigma']:.4g}"
              + (" (+beyond)" if e["beyond_grid"] else ""))
        spread = "" if e.get("midpoint_log10_std") in (None, 0.0) or e["n_seeds"] == 1 else \
            f"±{e['midpoint_log10_std']:.2f} dec"
        noise = e["noise"] + ("" if e.get("ratio") is None else f" r={e['ratio']:g}")
        if e.get("train_sigma") == "sigma":
            noise += " trained at σ"
        elif e.get("train_sigma") is not None:
            noise += f" train σ {e['train_sigma']:g}"
        per_seed = e.get("midpoints_per_seed") or []
        seeds = str(e["n_seeds"]) if len(per_seed) < 2 else f"{e['n_seeds']}: " + ", ".join(
            "beyond" if m is None else f"{m:.3g}" for m in per_seed)
        print(f"{e['site']:>4}  {str(e['site_name']):<9} {noise:<26} {mu:>12}  {spread:>8}  "
              f"{100 * e['max_accuracy']:6.2f}%  {seeds}")


def _check_args(args):
    """Every flag checked before anything is trained, loaded or written."""
    from ..runs.grid import parse_shard
    from ..walking_noise import check_sigmas, default_sigmas, parse_noise
    from ..walking_noise.grids import grid_sigmas
    try:
        spec = parse_noise(args.noise)
    except ValueError as err:
        raise UserError(f"--noise: {err}", flag="--noise") from None
    if args.grid is not None and args.sigmas is not None:
        raise UserError("give either --grid NAME (a preset) or --sigmas LIST, not both",
                        flag="--grid")
    if args.grid is not None:
        sigmas = grid_sigmas(args.grid)
    else:
        sigmas = check_sigmas(args.sigmas, allow_zero=True) if args.sigmas is not None \
            else default_sigmas(spec)
    seeds, shard, sites = _seeds(args.seeds), parse_shard(args.shard), _sites(args.sites)
    _positive_int(args.repeats, "--repeats")
    if args.site_repeats is not None:
        try:
            args.site_repeats = [int(v) for v in args.site_repeats.split(",") if v.strip()]
        except ValueError:
            args.site_repeats = [0]
        if not args.site_repeats or min(args.site_repeats) < 1:
            raise UserError("--site-repeats takes one integer N >= 1 per noise site, separated "
                            "by commas (e.g. 4,2,3,3,2,2,2,1 for mlp_tfc's 8 sites)",
                            flag="--site-repeats")
        if args.repeat_at == "network":
            raise UserError("--site-repeats gives N per site: it needs --repeat-at site",
                            flag="--site-repeats")
        args.repeat_at = "site"
    if args.repeat_at is None:
        args.repeat_at = "network"
    if args.protocol == "train-at-sigma":
        for flag, value in (("--run", args.run), ("--train-noise", args.train_noise)):
            if value is not None:
                raise UserError(f"--protocol train-at-sigma trains its own networks (one per "
                                f"site, σ and seed, at that σ); it cannot be combined with "
                                f"{flag}", flag="--protocol")
        if args.bn_protocol != "running":
            raise UserError("--protocol train-at-sigma tests with the trained batch-norm "
                            "statistics (as the authors); leave --bn-protocol running",
                            flag="--bn-protocol")
        if args.train_only:
            raise UserError("--train-only does not apply to --protocol train-at-sigma (it "
                            "trains and tests each network in turn; shards share them out)",
                            flag="--train-only")
    _positive_int(args.epochs, "--epochs")
    _positive_int(args.test_subset, "--test-subset")
    _positive_int(args.train_subset, "--train-subset")
    if args.bn_batches < 0:
        raise UserError(f"--bn-batches must be >= 0; got {args.bn_batches}", flag="--bn-batches")
    if args.train_noise is not None and not args.train_noise > 0:
        raise UserError(f"--train-noise must be a noise level > 0; got {args.train_noise}",
                        flag="--train-noise")
    if args.clamp is not None:
        if args.train_noise is None and args.protocol != "train-at-sigma":
            raise UserError("--clamp applies to noisy training: give --train-noise SIGMA",
                            flag="--clamp")
        if not args.clamp > 0:
            raise UserError(f"--clamp must be > 0 (weights clipped to [-c, c]); got "
                            f"{args.clamp}", flag="--clamp")
    if args.run is not None and args.train_noise is not None:
        raise UserError("--train-noise trains new networks with noise; it cannot be combined "
                        "with --run (an already trained network)", flag="--train-noise")
    if args.restart and shard is not None:
        raise UserError("--restart moves every shard's file of the walk aside; run it once "
                        "without --shard, then start the shards", flag="--restart")
    if args.run is None:
        from ..models import MODELS
        key = args.model.strip().lower().replace("-", "_")
        if key not in MODELS:
            raise UserError(f"unknown model {args.model!r}; the models are: "
                            f"{', '.join(MODELS)} (Walking Noise: mlp_tfc, lenet5)",
                            flag="--model")
        args.model = key
        cfg = _train_config(args, seeds[0], Path(args.out) / "model")   # validated, no I/O
        args.dataset, args.epochs = cfg.dataset, cfg.epochs        # the set-up's, resolved
    return spec, sigmas, seeds, shard, sites


def _check_site_repeats(args, noisy) -> None:
    """--site-repeats must give one N per noise site of the model walked."""
    if args.site_repeats is not None and len(args.site_repeats) != noisy.num_sites:
        raise UserError(f"--site-repeats gives {len(args.site_repeats)} N(s), but the model has "
                        f"{noisy.num_sites} noise sites ({', '.join(noisy.site_names)}); give "
                        "one N per site, in that order", flag="--site-repeats")


def _skeleton(args):
    """An untrained NoisyModel of the command's architecture (its sites), built without data."""
    from .. import backend
    from ..data import DATASET_SHAPES
    from ..walking_noise import NoisyModel, build_walk_model
    shape, classes = DATASET_SHAPES[args.dataset]
    return NoisyModel(build_walk_model(args.model, shape, classes, backend.make_rng(0),
                                       bn=bool(args.bn)), None)


def _cmd_walk(args) -> int:
    from ..runs.build import build_data
    from ..runs.grid import shard_points
    from ..walking_noise import (NoisyModel, midpoints_table, walk, walk_grid, walk_path,
                                 walk_sites, write_midpoints_csv)
    from ..walking_noise.protocol import point_spread, write_point_spread_csv
    from ..walking_noise.setups import infer_setup, setup_tag
    log = (lambda text: None) if args.quiet else print
    spec, sigmas, seeds, shard, sites = _check_args(args)
    if args.run is None:
        walk_sites(_skeleton(args), sites)        # a site typo stops here, before training
        _check_site_repeats(args, _skeleton(args))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; give a folder for the walk",
                        flag="--out")
    walk_file = out / "walk.jsonl"
    options = dict(bn_protocol=args.bn_protocol, repeats=args.repeats,
                   test_subset=args.test_subset, bn_batches=args.bn_batches,
                   progress=not args.no_progress, tags={"train_sigma": args.train_noise,
                                                        "clamp": args.clamp,
                                                        **setup_tag(args.setup)},
                   repeat_at=args.repeat_at, site_repeats=args.site_repeats,
                   allow_zero=True)

    # calls: (seed, model, sites, train source, test source) — one walk() each
    if args.protocol == "train-at-sigma":
        rows, total = _train_at_sigma(args, spec, sigmas, seeds, shard, sites, out, walk_file,
                                      log)
    elif args.train_noise is None:
        if args.run is not None:
            from ..runs.training import load_run
            run = load_run(args.run, data_dir=args.data_dir)
            _check_site_repeats(args, NoisyModel(run.model, None))
            tags = {k: v for k, v in options["tags"].items() if k != "setup"}
            options["tags"] = dict(tags, **setup_tag(infer_setup(run.config.to_dict())))
            # ^ the set-up the given run was trained with, not --setup's
            runs = {seed: run for seed in seeds}
        else:
            runs = {seed: _clean_run(args, seed, out, shard, log) for seed in seeds}
        if args.train_only:
            log(f"trained: {', '.join(str(r.folder) for r in runs.values())}")
            return 0
        calls = [(seed, r.model, sites, r.train, r.test) for seed, r in runs.items()]
        total = len(calls) * len(sigmas) * len(walk_sites(NoisyModel(calls[0][1], None), sites))
        if args.restart:
            walk_grid(walk_file).move_aside()
        for seed, model, s, tr, te in calls:        # stale rows refused before any work
            walk(model, tr, te, spec, sigmas, s, seed=seed, out_file=walk_file,
                 compute=False, **options)
        for seed, model, s, tr, te in calls:
            walk(model, tr, te, spec, sigmas, s, seed=seed, out_file=walk_file, shard=shard,
                 **options)
    else:
        cfg = _train_config(args, seeds[0], out)
        train_src, _, test_src, input_shape, num_classes = build_data(cfg)
        data = (train_src, test_src, input_shape, num_classes)
        skeleton = _skeleton(args)
        units = [(seed, site) for seed in seeds for site in walk_sites(skeleton, sites)]
        total = len(units) * len(sigmas)
        train_spec = spec.with_sigma(args.train_noise)
        dyn_file = walk_path(out / "dynamics.jsonl", shard)
        if args.restart:
            walk_grid(walk_file).move_aside()

        def name(site):
            return {-1: "all", -2: "all-no-bn"}.get(site) or skeleton.sites[site].name
        for seed, site in shard_points(units, shard):      # shards share out the networks
            model = _noisy_model(args, train_spec, seed, site, name(site), out, data, dyn_file,
                                 log)
            if not args.train_only:
                walk(model, train_src, test_src, spec, sigmas, [site], seed=seed,
                     out_file=walk_file, out_shard=shard, **options)
        if args.train_only:
            return 0
        calls = []
        for seed, site in units:                  # every unit's network that exists by now
            model = _noisy_model(args, train_spec, seed, site, name(site), out, data, dyn_file,
                                 log, train=False)
            if model is not None:
                calls.append((seed, model, [site], train_src, test_src))

    if args.protocol != "train-at-sigma":
        # the table: this command's points only, each checked against its network
        rows = []
        for seed, model, s, tr, te in calls:
            rows += walk(model, tr, te, spec, sigmas, s, seed=seed, out_file=walk_file,
                         compute=False, **options)
    table = midpoints_table(rows)
    write_midpoints_csv(out / "midpoints.csv", table)
    write_point_spread_csv(out / "walk-points.csv", point_spread(rows))
    figures = _write_figures(rows, table, out)
    if not args.quiet:
        print(f"\n{len(rows)} of {total} point(s) of this walk done, in {walk_file}"
              f"{' and its shard files' if shard is not None else ''}; midpoints in "
              f"{out / 'midpoints.csv'}")
        if len(rows) < total:
            print("(the midpoints are of the points done so far; the other shards' points "
                  "follow when they finish)")
        _print_table(table)
        names = ["walk.jsonl", "midpoints.csv", "walk-points.csv"] + [f.name for f in figures]
        print(f"\nresults in {out}/: {', '.join(names)}")
    return 0


FIGURES = ("walk-accuracy.png", "walk-midpoints.png")
"""The figures `tinyproj walk` writes into its --out folder (rewritten by every run)."""


def _mean_over_seeds(rows) -> list:
    """One row per (site, noise, ratio, σ, training): the accuracy averaged over seeds, so
    that each site is one line of the figure (the seeds' spread is in midpoints.csv)."""
    groups = {}
    for r in rows:
        key = (r.get("site"), r.get("site_name"), str(r.get("noise")), r.get("ratio"),
               r.get("sigma"), r.get("train_sigma"))
        groups.setdefault(key, []).append(r)
    out = []
    for g in groups.values():
        acc = [float(r["accuracy"]) for r in g]
        mean = sum(acc) / len(acc)
        std = (sum((a - mean) ** 2 for a in acc) / (len(acc) - 1)) ** 0.5 if len(acc) > 1 \
            else None
        out.append(dict(g[0], accuracy=mean, accuracy_std=std))
    return out


def _write_figures(rows, table, out: Path) -> list:
    """Accuracy against σ per site (μ marked) and μ per site, drawn by tinyproj.reporting
    into ``out``; the paths written (none while no point is done)."""
    from .. import reporting
    if not rows:
        return []
    chance = rows[0].get("chance")
    title = None
    if any(r.get("protocol") == "train-at-sigma" for r in rows):
        kind = str(rows[0].get("noise"))
        title = (f"{kind} noise: a network per (site, σ), trained and tested at σ"
                 + (" (mean ± sd over seeds)" if len({r.get("seed") for r in rows}) > 1
                    else ""))
    reporting.accuracy_vs_sigma(_mean_over_seeds(rows), out / FIGURES[0], title=title,
                                chance=chance if chance is not None else 0.1)
    written = [out / FIGURES[0]]
    if any(e.get("midpoint_sigma") is not None or e.get("beyond_grid") for e in table):
        edge = max(float(r["sigma"]) for r in rows)
        reporting.midpoints_plot(table, out / FIGURES[1], grid_max=edge)
        written.append(out / FIGURES[1])
    return written


def _setups() -> dict:
    from ..walking_noise.setups import SETUPS
    return SETUPS


def _grid_names() -> str:
    from ..walking_noise.grids import grid_help
    return grid_help()


def add_parsers(sub) -> None:
    p = sub.add_parser("walk", help="Walking Noise: accuracy per noise site and sigma, midpoints",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="folder for model(s), walk.jsonl, midpoints.csv and the figures "
                        "walk-accuracy.png, walk-midpoints.png")
    p.add_argument("--run", default=None, metavar="TRAINED_RUN_DIR",
                   help="walk this trained run (`tinyproj train --out`) instead of training")
    p.add_argument("--model", default="mlp_tfc", help="mlp_tfc (default) or lenet5")
    p.add_argument("--bn", action="store_true", help="the model with batch norm")
    p.add_argument("--dataset", default="mnist",
                   help="mnist (default), fashion-mnist, cifar10, synthetic")
    p.add_argument("--data-dir", default=None, help="where the dataset is (default "
                   "$TINYPROJ_DATA, else ../shared/datasets, else datasets/)")
    p.add_argument("--protocol", default="clean", choices=["clean", "train-at-sigma"],
                   help="clean (default): walk cleanly trained network(s); train-at-sigma: "
                        "the authors' noisy training, one network per (site, sigma, seed) "
                        "trained and tested at that sigma")
    p.add_argument("--noise", default="additive",
                   help="additive (default) | multiplicative | combined[:ratio=R] (combined "
                        "multiplies then adds; combined:ratio=R,order=add-mul adds first)")
    p.add_argument("--sigmas", default=None,
                   help="comma-separated noise levels >= 0 (default: a half-decade log grid, "
                        "additive 1e-2..1e10, multiplicative 1e-3..1e3, combined 1e-2..1e4); "
                        "with 0 in it the grid is linear: mu is interpolated in sigma, not "
                        "log sigma")
    p.add_argument("--grid", default=None, metavar="NAME",
                   help="a preset sigma grid of the authors instead of --sigmas: "
                        + _grid_names())
    p.add_argument("--sites", default="each",
                   help="each (one site at a time, default), all (every site at once), "
                        "all-no-bn (every site but those after batch norm: the authors' "
                        "BN-noNoise), or names/indices separated by commas (e.g. input,relu2)")
    p.add_argument("--bn-protocol", default="running", choices=["running", "reestimate"],
                   help="batch norm under noise: keep the trained statistics (running, "
                        "Walking Noise) or re-estimate them under the noise (Merolla)")
    p.add_argument("--bn-batches", type=int, default=20,
                   help="training batches to re-estimate batch norm (reestimate; default 20)")
    p.add_argument("--repeats", type=int, default=1,
                   help="average N noisy executions per evaluation (effective sigma / sqrt N)")
    p.add_argument("--repeat-at", default=None, choices=["network", "site"],
                   help="where --repeats averages: network (rerun the whole network, "
                        "average the scores; default) or site (average N draws at each noisy "
                        "site, as the authors)")
    p.add_argument("--site-repeats", default=None, metavar="N1,N2,...",
                   help="one N per noise site in site order (the authors' N per layer); "
                        "implies --repeat-at site")
    p.add_argument("--seeds", default="0",
                   help="seeds separated by commas: one trained model and one set of draws each")
    p.add_argument("--setup", default="authors", choices=list(_setups()),
                   help="the training set-up: authors (default: the Walking Noise authors' for "
                        "the model and dataset, PyTorch init and biases, cosine per epoch, "
                        "their epochs, normalisation and crop+flip) or legacy (tinyproj's "
                        "earlier: Glorot, cosine per step, 5 epochs; the committed "
                        "results/wn-mnist-train-at-sigma*)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the set-up's; authors: MNIST mlp_tfc 100, "
                        "lenet5 50; Fashion-MNIST 250/200; SVHN 300/200; CIFAR-10 200/300; "
                        "legacy: 5)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on the first N training images (quick runs)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="score the first N test images (faster, noisier)")
    p.add_argument("--train-noise", type=float, default=None, metavar="SIGMA",
                   help="train with this noise (same kind) at the walked site, one network "
                        "per site (or one for --sites all)")
    p.add_argument("--clamp", type=float, default=None, metavar="C",
                   help="with --train-noise or --protocol train-at-sigma: clip weights to "
                        "[-C, C] after every step")
    p.add_argument("--train-only", action="store_true",
                   help="train the model(s) and stop (before sharding a walk)")
    p.add_argument("--shard", default=None,
                   help="i/n: do grid points i, i+n, ... only (0 <= i < n)")
    p.add_argument("--restart", action="store_true",
                   help="move the walk's files (walk.jsonl and its shards) to "
                        "RUN_DIR/replaced/<time>/ and walk afresh (for rows of another network)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_cmd_walk)
