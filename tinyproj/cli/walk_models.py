"""`tinyproj walk`'s flags as the library's settings: the networks it trains, how it scores.

    training(args)   Training (walking_noise/study_networks.py): --model, --bn, --dataset,
                     --data-dir, --setup, --epochs, --train-subset
    scoring(args)    Scoring (walking_noise/study.py): --bn-protocol, --bn-batches,
                     --repeats, --repeat-at, --site-repeats, --test-subset

and the library's network functions called with the parsed flags (``train_config``,
``clean_run``, ``noisy_model``, ``skeleton``): the networks themselves — clean ones per seed
in RUN_DIR/model..., noisy ones per (seed, site) in RUN_DIR/noisy-models/, trained or read
back, refused when trained with other settings — are the library's.
"""
from __future__ import annotations

from ..walking_noise import study_networks, study_noisy_networks
from ..walking_noise.study import Scoring
from ..walking_noise.study_networks import Training

__all__ = ["TRAINING_DEFAULTS", "training", "scoring", "train_config", "clean_run", "noisy_model",
           "skeleton"]


# walk's training flags and what each is when not given (None in the parser, so that --run,
# which walks a network trained already, can tell that one was given and refuse it)
TRAINING_DEFAULTS = {"model": "mlp_tfc", "dataset": "mnist", "setup": "authors", "bn": False,
                     "epochs": None, "train_subset": None}


def training(args) -> Training:
    """How the command's networks are trained, from its flags (a training flag not given:
    its default in TRAINING_DEFAULTS)."""
    given = {name: getattr(args, name) for name in TRAINING_DEFAULTS}
    values = {name: default if given[name] is None else given[name]
              for name, default in TRAINING_DEFAULTS.items()}
    return Training(model=values["model"], bn=bool(values["bn"]), dataset=values["dataset"],
                    data_dir=args.data_dir, setup=values["setup"], epochs=values["epochs"],
                    train_subset=values["train_subset"])


def scoring(args) -> Scoring:
    """How the command scores each point, from its flags (--site-repeats as check_args
    parsed it: a list)."""
    return Scoring(bn_protocol=args.bn_protocol, bn_batches=args.bn_batches,
                   repeats=args.repeats, repeat_at=args.repeat_at,
                   site_repeats=args.site_repeats, test_subset=args.test_subset)


def train_config(args, seed: int, folder):
    """The clean training of one seed as a validated TrainConfig (no I/O)."""
    return study_networks.train_config(training(args), seed, folder)


def clean_run(args, seed: int, out, shard, log):
    """The trained clean run of ``seed`` in ``out``: trained now, resumed, or read back."""
    return study_networks.clean_run(training(args), seed, out, shard, log,
                                    progress=not args.no_progress)


def noisy_model(args, spec, seed, site, site_name, out, data, dyn_file, log, train=True):
    """The network trained with noise ``spec`` at ``site``: trained now or read back; None
    when ``train`` is False and it does not exist yet."""
    return study_noisy_networks.noisy_model(
        training(args), spec, seed, site, site_name, out, data, dyn_file, log,
        clamp=args.clamp, test_subset=args.test_subset, progress=not args.no_progress,
        train=train)


def skeleton(args):
    """An untrained NoisyModel of the command's architecture (its sites), built without data."""
    return study_networks.skeleton(training(args))
