"""`tinyproj walk`'s flags checked: every one before anything is trained, loaded or written.

:func:`check_args` turns the parsed flags into what the walk runs on::

    spec     the noise kind (NoiseSpec; its σ is set per grid point)
    sigmas   the σ grid: --grid NAME, --sigmas LIST (0 allowed: a linear grid), or the
             half-decade default of the noise kind
    seeds    [s, ...]: one network and one set of draws per seed
    shard    None or (i, n)
    sites    "each" | "all" | "all-no-bn" | [name or index, ...]

and resolves, in ``args``, the model's canonical name, the dataset's, the set-up's epochs
(``--epochs`` when given) and the repeated-execution flags. A mistake raises a
:class:`~tinyproj.errors.UserError` naming its flag.

:func:`check_site_repeats` checks --site-repeats against the sites of the model walked.
--out is checked by the library (``walking_noise.study_folder.check_out_folder``): walk
writes only into a folder of its own (rule 8 of docs/design.md).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from .walk_models import TRAINING_DEFAULTS, train_config

__all__ = ["check_args", "check_site_repeats"]


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


def _training_flags(args):
    """--run walks an already trained network: a training flag given with it would do
    nothing, so it is refused; otherwise the training flags' defaults are filled in."""
    given = [name for name, default in TRAINING_DEFAULTS.items()
             if getattr(args, name) not in (None, False)]
    if args.run is not None and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(f"--run walks a network that is trained already (its settings are in "
                        f"its config.json); {flags} would change nothing: leave "
                        f"{'it' if len(given) == 1 else 'them'} out, or drop --run to train "
                        "new networks", flag="--run")
    for name, default in TRAINING_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def check_args(args):
    """Every flag checked before anything is trained, loaded or written."""
    if args.quiet:
        args.no_progress = True          # "nothing but errors": no progress bars either
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
    flag = "--grid" if args.grid is not None else "--sigmas"
    try:
        if args.grid is not None:
            sigmas = grid_sigmas(args.grid)
        else:
            sigmas = check_sigmas(args.sigmas, allow_zero=True) if args.sigmas is not None \
                else default_sigmas(spec)
    except UserError:
        raise
    except ValueError as err:
        raise UserError(str(err), flag=flag) from None
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
    _training_flags(args)
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
        cfg = train_config(args, seeds[0], Path(args.out) / "model")   # validated, no I/O
        args.dataset, args.epochs = cfg.dataset, cfg.epochs        # the set-up's, resolved
    return spec, sigmas, seeds, shard, sites


def check_site_repeats(args, noisy) -> None:
    """--site-repeats must give one N per noise site of the model walked."""
    if args.site_repeats is not None and len(args.site_repeats) != noisy.num_sites:
        raise UserError(f"--site-repeats gives {len(args.site_repeats)} N(s), but the model has "
                        f"{noisy.num_sites} noise sites ({', '.join(noisy.site_names)}); give "
                        "one N per site, in that order", flag="--site-repeats")
