"""The run folder: what belongs in it, starting and resuming safely, reading a run back.

A run folder (``cfg.out``) holds::

    config.json       the TrainConfig (every setting; data_dir stored absolute)
    metrics.jsonl     one JSON object per evaluation
    checkpoint.npz    weights, optimizer and generator state, position in the epoch
    sweeps/, walk/    results measured on this run's network (stamped with its fingerprint)
    .lock             held while a process trains in the folder

Rules (docs/design.md, rule 8): a new run starts only in a new or empty folder; a folder that
holds anything else (another run, a run's sweeps, someone's files) is refused and left as
it is. ``--resume`` continues the run of the folder with the settings of its
``config.json``; an override is accepted only for the settings a resume may change
(:data:`~tinyproj.runs.config.RESUMABLE_CHANGES`), anything else is refused naming both
values. A checkpoint that does not belong to the folder's config (copied from another run,
another architecture) is refused, never resumed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import backend
from ..errors import UserError
from .config import RESUMABLE_CHANGES, TrainConfig, validate
from .files import load_checkpoint, load_checkpoint_meta

__all__ = ["check_new_folder", "resume_config", "read_config", "check_checkpoint",
           "LoadedRun", "load_run", "untrained_network", "is_run_folder", "RUN_FILES",
           "check_output_folder"]

RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.npz")
_BOOKKEEPING = (".lock", ".tinyproj-demo")     # the folder lock; the mark of a demo's folder


def is_run_folder(folder) -> bool:
    folder = Path(folder)
    return (folder / "config.json").is_file() and (folder / "checkpoint.npz").is_file()


def _listing(folder: Path, limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                   if p.name not in _BOOKKEEPING)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def check_new_folder(out) -> Path:
    """The folder of a new run: it must not exist, or be an empty folder. Nothing is written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder name for the run",
                        flag="--out")
    if out.is_dir() and any(p.name not in _BOOKKEEPING for p in out.iterdir()):
        if is_run_folder(out):
            raise UserError(f"--out {out} already holds a run; continue it with "
                            f"`tinyproj train --out {out} --resume`, or choose another --out "
                            "folder for a new run", flag="--out")
        raise UserError(f"--out {out} is not empty (it holds {_listing(out)}); a new run starts "
                        "only in a new or empty folder, so nothing there is overwritten — "
                        "choose another --out folder", flag="--out")
    return out


def read_config(folder) -> TrainConfig:
    """The TrainConfig saved in ``folder/config.json`` (a clear error if missing or corrupt)."""
    path = Path(folder) / "config.json"
    if not Path(folder).is_dir():
        raise UserError(f"{folder} is not a folder; give a run folder made by "
                        "`tinyproj train --out`", flag="--out")
    if not path.is_file():
        raise UserError(f"{folder} is not a run folder: it has no config.json (runs are made "
                        "by `tinyproj train --out FOLDER`)", flag="--out")
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); the run's settings are lost — "
                        "start a new run") from None
    return TrainConfig.from_dict(values)


def resume_config(out, overrides: dict | None = None) -> TrainConfig:
    """The saved config of the run in ``out`` with the overrides a resume may take.

    ``overrides`` holds only the settings given explicitly (flags typed on the command line);
    one that differs from the saved run and is not in RESUMABLE_CHANGES is refused, with
    both values named.
    """
    out = Path(out)
    saved = read_config(out)
    if not (out / "checkpoint.npz").is_file():
        raise UserError(f"--resume: {out} has no checkpoint.npz (the run never reached its "
                        "first checkpoint); start it afresh in a new --out folder",
                        flag="--resume")
    values = saved.to_dict()
    conflicts = []
    for key, value in (overrides or {}).items():
        if value is None or key == "out" or values.get(key) in (value,
                                                                 _canonical(values, key, value)):
            continue
        if key in RESUMABLE_CHANGES:
            values[key] = value
        else:
            conflicts.append(f"--{key.replace('_', '-')}: the run has "
                             f"{_flag_value(values.get(key))}, you gave {_flag_value(value)}")
    if conflicts:
        raise UserError("--resume continues the run with its own settings; these differ: "
                        + "; ".join(conflicts) + f". Leave them out (only "
                        f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES)} "
                        "may change), or start a new run in another --out folder",
                        flag="--resume")
    values["out"] = str(out)
    cfg = validate(TrainConfig.from_dict(values))
    # the checkpoint's own record, read before anything is loaded or written: a corrupt file,
    # one saved by another run, or an end before what was already trained is refused here
    meta = load_checkpoint_meta(out / "checkpoint.npz")
    _check_belongs(out / "checkpoint.npz", cfg, meta)
    _check_not_behind(cfg, meta.get("pos"))
    return cfg


def _canonical(values: dict, key: str, value):
    """``value`` of ``key`` as validate() writes it (``MLP_TFC`` → ``mlp_tfc``), so that a
    resume does not refuse a setting the run already has in another spelling; the value as
    given when it does not validate (the conflict is then named as typed). Spellings that
    validate() keeps as typed but means the same by: a preset in any case (the command line
    lower-cases it, ``TR-STOCH-C``), a projection spec in any case or spacing (``STOCH``,
    ``stochm: gamma=0.5``) — given so, the run's own value is returned."""
    saved = values.get(key)
    try:
        if key == "preset" and isinstance(value, str) and isinstance(saved, str):
            if value.strip().lower() == saved:
                return saved
        if key in ("projection", "test_projections") and saved is not None:
            from .. import projections
            same = (lambda a, b: projections.parse(a) == projections.parse(b))
            if key == "projection" and same(saved, value):
                return saved
            if key == "test_projections" and len(saved) == len(value) and \
                    all(same(a, b) for a, b in zip(saved, value)):
                return saved
        return getattr(validate(TrainConfig.from_dict({**values, key: value})), key)
    except (UserError, TypeError, ValueError, OverflowError):
        return value


def _check_belongs(path, cfg: TrainConfig, meta: dict) -> None:
    """A checkpoint saved with other settings than ``cfg`` (copied from another run) is
    refused; the settings a resume may change are not compared."""
    saved = meta.get("config")
    if not isinstance(saved, dict):
        return
    diff = sorted(k for k, v in _comparable(cfg.to_dict()).items()
                  if k in saved and saved[k] != v)
    if diff:
        said = ", ".join(f"{k} {saved[k]!r} (config.json: {getattr(cfg, k)!r})"
                         for k in diff[:4])
        raise UserError(f"{path} was saved by another run ({said}); it does not belong to "
                        f"the run in {Path(path).parent}. Put that run's own checkpoint "
                        "back, or start a new run in another --out folder")


def _check_not_behind(cfg: TrainConfig, pos) -> None:
    """``--epochs`` / ``--iterations`` of a resume may extend the run, never end it before
    what the checkpoint has already trained (the run would stop mid-way and its report would
    read "3 of 2 epochs")."""
    if not isinstance(pos, dict):
        return
    epoch, step = int(pos.get("epoch", 0)), int(pos.get("step", 0))
    begun = epoch + (pos.get("order") is not None)       # an epoch stopped mid-way counts
    if cfg.epochs < begun:
        raise UserError(f"--epochs {cfg.epochs}: the run has already trained "
                        + (f"{epoch} epoch(s) and part of epoch {begun}" if begun > epoch
                           else f"{epoch} epoch(s)")
                        + f" (step {step}); give --epochs {begun} or more, or leave it out",
                        flag="--epochs")
    if cfg.iterations is not None and cfg.iterations < step:
        raise UserError(f"--iterations {cfg.iterations}: the run is already at step {step}; "
                        f"give --iterations {step} or more, or leave it out",
                        flag="--iterations")


def _flag_value(value) -> str:
    """A setting as it is typed on the command line: ``none,sign,round`` for a list."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "(empty)"
    return repr(value)


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in RESUMABLE_CHANGES}


def check_checkpoint(path, cfg: TrainConfig, model):
    """Load the checkpoint at ``path`` into ``model`` if it belongs to ``cfg``'s run.

    Returns ``(optim_state, meta)``. A checkpoint saved with other settings (copied from
    another run) or for another architecture is refused with a UserError; the model is
    left as it was.
    """
    model_state, optim_state, meta = load_checkpoint(path)
    _check_belongs(path, cfg, meta)
    own = dict(model.state_dict())
    wrong = [k for k in own if k not in model_state or
             tuple(model_state[k].shape) != tuple(own[k].shape)]
    extra = [k for k in model_state if k not in own]
    if wrong or extra:
        raise UserError(f"{path} holds the weights of another network (mismatch in "
                        f"{', '.join((wrong + extra)[:4])}); it cannot be loaded into "
                        f"{cfg.model} (width {cfg.width}). Use the run folder it came from")
    model.load_state_dict(model_state)
    return optim_state, meta


@dataclass
class LoadedRun:
    """A trained run read back from its folder: settings, model (checkpoint weights), data."""

    config: TrainConfig
    model: object
    train: object          # ArraySource / FolderSource of the training images used
    val: object            # or None
    test: object
    meta: dict             # the checkpoint's position (epoch, step, ...)
    folder: Path


def check_output_folder(out, command: str, contents: str, is_own, taken) -> None:
    """The checks of an ``--out`` folder that ``command`` writes files into (rule 8), made
    before anything is written:

    * ``out`` is a folder or does not exist yet (it is created), and so are the folders
      above it (none is a file);
    * an existing folder that is not the command's own (``is_own(out)`` False: no mark of
      the command's, no rows it wrote) holds none of the files the command writes:
      ``taken(out)`` lists those that exist, and any is refused rather than overwritten.

    ``contents`` says what the folder is for, in the message. UserError naming ``--out``.
    """
    out = Path(out)
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "" if folder == out else f" ({folder} is a file)"
                raise UserError(f"{command} --out {out}: not a folder{what}; give a folder for "
                                f"{contents} (it is created if it does not exist)", flag="--out")
            break
    if out.is_dir() and not is_own(out):
        names = taken(out)
        if names:
            raise UserError(f"{command} --out {out}: the folder already holds "
                            f"{', '.join(names)}, which tinyproj {command} did not write (the "
                            f"folder is not one of {command}'s), and {command} would overwrite "
                            "them; give another --out folder, or move those files away",
                            flag="--out")


def untrained_network(run_dir):
    """The network of the run in ``run_dir``, built from its config.json alone: untrained
    (seed 0), no checkpoint read, no data loaded — about a second, where :func:`load_run`
    may take minutes. For checking a name against the run's architecture (``sweep --layer``,
    ``walk --run --sites``, ``report --hist-layer``) before anything loads. UserError when
    ``run_dir`` is not a run folder or names an unknown dataset."""
    from ..data.dataset import dataset_shape
    from .build import build_model
    cfg = read_config(run_dir)
    shape, classes = dataset_shape(cfg.dataset)
    return build_model(cfg, shape, classes, backend.make_rng(0))


def load_run(run_dir, data_dir=None) -> LoadedRun:
    """Rebuild the model of ``run_dir`` with its checkpoint weights, and its data sources.

    ``data_dir`` overrides the saved data folder (the run may have been trained elsewhere).
    The model is returned in evaluation mode.
    """
    from .build import build_data, build_model
    folder = Path(run_dir)
    if not folder.exists():
        raise UserError(f"{folder} does not exist; give a run folder made by "
                        "`tinyproj train --out`")
    cfg = read_config(folder)
    if not (folder / "checkpoint.npz").is_file():
        raise UserError(f"{folder} has no checkpoint.npz: the run never reached its first "
                        "checkpoint (train it with `tinyproj train --out`)")
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    train_src, val_src, test_src, input_shape, num_classes = build_data(cfg)
    model = build_model(cfg, input_shape, num_classes, backend.make_rng(cfg.seed))
    _, meta = check_checkpoint(folder / "checkpoint.npz", cfg, model)
    model.eval()
    return LoadedRun(cfg, model, train_src, val_src, test_src, meta, folder)
