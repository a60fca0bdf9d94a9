"""The networks `tinyproj walk` trains: clean ones per seed, noisy ones per (seed, site).

    RUN_DIR/model, RUN_DIR/model-seed<S>            clean networks (--protocol clean), one
                                                    ordinary run folder per seed
    RUN_DIR/noisy-models/<noise>-<site>-seed<S>.npz networks trained with --train-noise at a
                                                    site; their dynamics in dynamics.jsonl

Every network is trained with the set-up of ``--setup`` for the model and dataset
(``walking_noise/setups.py``: the authors' by default; ``--epochs`` overrides its epochs)
and read back when it is on disk — unless it was trained with other settings, which is
refused (UserError): another set-up never passes for this one.

Every row of dynamics.jsonl carries ``network``, the fingerprint of the noisy network it
describes (``runs/fingerprint.py``), as walk.jsonl's rows do: a row on file of the same
point (site, seed, noise, σ, clamp, epoch) but of another network (a network deleted and
trained again) is refused, never kept in place of the new one (--restart moves it aside).
Rows written before rows had a fingerprint are kept when they equal the network's own.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..errors import UserError

__all__ = ["train_config", "clean_run", "noisy_model", "skeleton", "run_skeleton",
           "DYNAMICS_KEY"]

DYNAMICS_KEY = ("site_name", "seed", "sigma", "clamp", "noise", "ratio", "epoch")
"""The fields that say which point of a noisy training a row of dynamics.jsonl is."""


def train_config(args, seed: int, folder: Path):
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


def clean_run(args, seed: int, out: Path, shard, log):
    """The trained clean model of ``seed``: trained now, resumed, or read back."""
    from ..runs.training import load_run, train
    from ..walking_noise.setups import setup_hint
    folder = _model_folder(out, seed)
    cfg = train_config(args, seed, folder)
    if (folder / "checkpoint.npz").exists():
        saved = json.loads((folder / "config.json").read_text())
        diff = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
                if k not in ("out", "data_dir") and saved.get(k) != v}
        if diff:
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{folder} holds a model trained with other settings ({said}); "
                            "use the same flags, or another --out." + setup_hint(diff))
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
            f"(seed {seed}, {cfg.epochs} epoch(s)) into {folder}")
        train(cfg, progress=not args.no_progress, log=log)
    return load_run(folder, data_dir=args.data_dir)


def _slug(spec, clamp) -> str:
    text = f"{spec.kind}{f'-r{spec.ratio:g}' if spec.kind == 'combined' else ''}" \
           f"-sigma{spec.sigma:g}{'' if clamp is None else f'-clamp{clamp:g}'}"
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def noisy_model(args, spec, seed, site, site_name, out, data, dyn_file, log, train=True):
    """The network trained with noise ``spec`` at ``site`` (-1: all): trained now or read
    back (refused when it was trained with other settings); None when ``train`` is False and
    it does not exist yet."""
    from .. import backend
    from ..runs.files import load_checkpoint, save_checkpoint
    from ..runs.fingerprint import network_fingerprint
    from ..walking_noise import build_walk_model, train_noisy
    from ..walking_noise.setups import recorded_setup, setup_hint, setup_tag
    train_src, test_src, input_shape, num_classes = data
    path = out / "noisy-models" / f"{_slug(spec, args.clamp)}-{site_name}-seed{seed}.npz"
    epochs = train_config(args, seed, out).epochs     # --epochs, or the set-up's: resolved
    made = {"model": args.model, "bn": bool(args.bn), "dataset": args.dataset,
            "train_subset": args.train_subset, "epochs": epochs, **setup_tag(args.setup)}
    model = build_walk_model(args.model, input_shape, num_classes, backend.make_rng(seed),
                             bn=bool(args.bn), setup=args.setup)
    if path.exists():
        state, _, meta = load_checkpoint(path)
        saved = dict(meta)
        if "epochs" in saved and saved["epochs"] is None:   # saved unresolved: the set-up's
            saved["epochs"] = train_config(argparse.Namespace(**dict(vars(args), epochs=None)),
                                           seed, out).epochs
        diff = {k: (saved[k], v) for k, v in made.items() if k in saved and saved[k] != v}
        if recorded_setup(meta) != args.setup:     # saved before set-ups had names: legacy
            diff["setup"] = (recorded_setup(meta), args.setup)
        if diff or set(state) != set(model.state_dict()):
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{path} holds a network trained with other settings "
                            f"({said or 'another architecture'}); use the same flags, or "
                            "another --out." + setup_hint(diff))
        model.load_state_dict(state)
        rows = meta.get("dynamics", [])
    elif not train:
        return None
    else:
        log(f"noisy training: {spec} at {site_name} (seed {seed}, {epochs} epoch(s))")
        model, rows = train_noisy(model, (train_src, test_src), spec,
                                  sites={-1: "all", -2: "all-no-bn"}.get(site, [site]),
                                  epochs=epochs,
                                  seed=seed, clamp=args.clamp, record_dynamics=True,
                                  test_subset=args.test_subset, progress=not args.no_progress,
                                  log=log, dataset=args.dataset, setup=args.setup)
        save_checkpoint(path, model.state_dict(), {"state": [], "hyper": {}, "t": 0},
                        dict(made, dynamics=rows, site=site, site_name=site_name, seed=seed,
                             noise=str(spec), clamp=args.clamp))
    if train:
        _record_dynamics(out / "dynamics.jsonl", dyn_file,
                         [dict(r, site=site, site_name=site_name) for r in rows],
                         network_fingerprint(model.state_dict()), path)
    model.eval()
    return model


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _record_dynamics(base: Path, dyn_file: Path, rows: list, network: str, source: Path):
    """Append the dynamics ``rows`` of the network ``source`` (fingerprint ``network``) to
    ``dyn_file``, each stamped with ``network``, unless on file already (in ``base`` or any of
    its shard files); a row on file of one of these points but of another network is refused
    (module docstring)."""
    from ..runs.grid import NETWORK_FIELD, append_row, grid_files, read_rows
    key = (lambda r: tuple(r.get(k) for k in DYNAMICS_KEY))
    mine = {key(r): json.loads(json.dumps(r)) for r in rows}
    have, stale = set(), {}
    for f in grid_files(base):
        for r in read_rows(f):
            k = key(r)
            if k not in mine:
                continue
            if r.get(NETWORK_FIELD) == network or (
                    not r.get(NETWORK_FIELD) and _same(r, mine[k])):   # an older row: its own
                have.add(k)
            else:
                stale.setdefault(f, []).append(r.get(NETWORK_FIELD) or "none: an older row "
                                               "that differs from this network's")
    if stale:
        f, nets = next(iter(stale.items()))
        raise UserError(
            f"{f} holds {len(nets)} dynamics row(s) of the network in {source} measured on "
            f"another network (fingerprint {', '.join(sorted(set(nets)))}) than the one there "
            f"now ({network}): the network was trained again. They are not used. Run again "
            f"with --restart, which moves the walk's files (walk.jsonl, dynamics.jsonl and "
            f"their shard files) to {base.parent / 'replaced'}/<time>/ (nothing is deleted), "
            "or write elsewhere (another --out).", flag="--restart")
    for k, r in mine.items():
        if k not in have:
            append_row(dyn_file, dict(r, **{NETWORK_FIELD: network}))   # one locked line


def run_skeleton(run_dir):
    """An untrained NoisyModel of the architecture of the trained run ``run_dir`` (its sites),
    built from its config.json alone: no data, no checkpoint (``walk --run``'s early checks)."""
    from ..runs.folder import untrained_network
    from ..walking_noise import NoisyModel
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


def skeleton(args):
    """An untrained NoisyModel of the command's architecture (its sites), built without data."""
    from .. import backend
    from ..data import DATASET_SHAPES
    from ..walking_noise import NoisyModel, build_walk_model
    shape, classes = DATASET_SHAPES[args.dataset]
    return NoisyModel(build_walk_model(args.model, shape, classes, backend.make_rng(0),
                                       bn=bool(args.bn)), None)
