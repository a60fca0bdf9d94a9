"""The clean networks of a walk study: one ordinary run folder per seed, trained or read back.

    OUT/model, OUT/model-seed<S>        the clean network of seed 0, of seed S

:class:`Training` says how a study's networks are trained (clean here, with noise in
``study_noisy_networks.py``): the set-up of ``setups.py`` for the model and dataset (the
authors' by default), ``epochs`` overriding its epochs. A network on disk is read back —
unless it was trained with other settings, which is refused (UserError): another set-up
never passes for this one. :func:`skeleton` and :func:`run_skeleton` give a study's sites
without data, so that a site typo stops a study before anything loads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .setups import DEFAULT_SETUP

__all__ = ["Training", "train_config", "model_folder", "clean_run", "skeleton", "run_skeleton"]


@dataclass(frozen=True)
class Training:
    """How a study's networks are trained (``tinyproj walk``'s --model, --bn, --dataset,
    --data-dir, --setup, --epochs, --train-subset).

    model: "mlp_tfc" | "lenet5" (a name of ``tinyproj.models``); setup: a name of
    ``setups.SETUPS``; epochs: None takes the set-up's for (model, dataset); train_subset:
    train on the first N training images (None: all)."""

    model: str = "mlp_tfc"
    bn: bool = False
    dataset: str = "mnist"
    data_dir: str | None = None
    setup: str = DEFAULT_SETUP
    epochs: int | None = None
    train_subset: int | None = None


def train_config(training: Training, seed: int, folder):
    """The clean training of one seed as a validated TrainConfig (the set-up of
    ``training.setup`` for the model and dataset; ``training.epochs``, when given, overrides
    its epochs). No I/O."""
    from ..runs.config import TrainConfig, validate
    from .setups import setup_settings
    t = training
    settings = setup_settings(t.setup, t.model, t.dataset)
    return validate(TrainConfig.from_dict(dict(
        settings, model=t.model, bn=bool(t.bn), dataset=t.dataset, data_dir=t.data_dir,
        train_subset=t.train_subset, epochs=settings["epochs"] if t.epochs is None else t.epochs,
        seed=seed, out=str(folder))))


def model_folder(out, seed: int) -> Path:
    """Where the clean network of ``seed`` lives in the study folder ``out``."""
    return Path(out) / ("model" if seed == 0 else f"model-seed{seed}")


def clean_run(training: Training, seed: int, out, shard=None, log=print,
              progress: bool = True):
    """The trained clean run of ``seed`` in the study folder ``out``: trained now, resumed,
    or read back (``runs.training.load_run``'s Run). With ``shard`` (i, n) a network is never
    trained here (shards would race): its training must be finished first."""
    from ..runs.training import load_run, train
    from .setups import setup_hint
    folder = model_folder(out, seed)
    cfg = train_config(training, seed, folder)
    if (folder / "checkpoint.npz").exists():
        saved = json.loads((folder / "config.json").read_text())
        diff = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
                if k not in ("out", "data_dir") and saved.get(k) != v}
        if diff:
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{folder} holds a model trained with other settings ({said}); "
                            "use the same flags, or another --out." + setup_hint(diff))
        run = load_run(folder, data_dir=training.data_dir)
        if run.meta.get("pos", {}).get("epoch", 0) >= cfg.epochs:
            return run
        if shard is not None:
            raise UserError(f"the training in {folder} is unfinished; finish it first "
                            "(the same command with --train-only, without --shard)")
        log(f"resuming the training in {folder}")
        train(cfg, resume=True, progress=progress, log=log)
    else:
        if shard is not None:
            raise UserError(f"no trained model in {folder}: with --shard, train it first "
                            "(the same command with --train-only, without --shard), so that "
                            "the shards do not all train it at once", flag="--shard")
        log(f"training {training.model}{' with BN' if training.bn else ''} on "
            f"{training.dataset} (seed {seed}, {cfg.epochs} epoch(s)) into {folder}")
        train(cfg, progress=progress, log=log)
    return load_run(folder, data_dir=training.data_dir)


def skeleton(training: Training):
    """An untrained NoisyModel of the study's architecture (its sites), built without data."""
    from .. import backend
    from ..data import DATASET_SHAPES
    from .noisy_training import build_walk_model
    from .sites import NoisyModel
    shape, classes = DATASET_SHAPES[training.dataset]
    return NoisyModel(build_walk_model(training.model, shape, classes, backend.make_rng(0),
                                       bn=bool(training.bn)), None)


def run_skeleton(run_dir):
    """An untrained NoisyModel of the architecture of the trained run ``run_dir`` (its sites),
    built from its config.json alone: no data, no checkpoint (``walk --run``'s early checks).
    UserError naming --run when ``run_dir`` is not a run folder."""
    from ..runs.folder import untrained_network
    from .sites import NoisyModel
    folder = Path(run_dir)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(f"--run {folder} {what}; give a run folder made by `tinyproj train "
                        "--out`", flag="--run")
    try:
        network = untrained_network(folder)
    except UserError as err:
        raise UserError(str(err), flag="--run") from None
    return NoisyModel(network, None)
