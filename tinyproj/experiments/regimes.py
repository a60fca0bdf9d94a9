"""The rows of the cross-robustness table: training regimes, and training them.

A regime is one way of training the same network (``mlp_tfc``, Adam, cross-entropy, the
same data and epochs): Merolla et al.'s Algorithm 1 with a weight projection and clipping
(through :func:`tinyproj.runs.training.train`), or Walking Noise's noisy training with
activation noise at every site (through :func:`tinyproj.walking_noise.train_noisy`).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..runs.config import make_config
from ..runs.evaluation import error_rate
from ..runs.files import atomic_write_text
from ..runs.training import train
from ..walking_noise import parse_noise, train_noisy
from .cross_data import CrossData

__all__ = ["Regime", "DEFAULT_REGIMES", "REGIME_MARKER", "train_regime", "train_regimes"]

REGIME_MARKER = ".tinyproj-cross-regime"
"""The file :func:`train_regime` leaves in each run folder it made: the proof that the
folder is a disposable cross-table run that the next call may replace."""

_EARLIER_MARKERS = ("cross-regime.json",)      # the mark's name in the first version


@dataclass(frozen=True)
class Regime:
    """One way of training the network (a row of the table).

    name        row key and run-folder name, e.g. ``"tr-sign-c"``
    method      ``"algorithm1"`` (weight projection + clipping, ``training.train``) or
                ``"noisy"`` (activation noise at every site, ``train_noisy``)
    projection  algorithm1: the training projection (``"none"``, ``"sign"``, ``"stoch"``, ...)
    clip        algorithm1: f of the clip bounds c_k = f·std(Glorot init), ``"NC"`` for none
    noise       noisy: the training noise as text, e.g. ``"additive:sigma=0.3"``
    description what the row is, in words (the table's legend)
    """

    name: str
    method: str = "algorithm1"
    projection: str = "none"
    clip: float | str = "NC"
    noise: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.method not in ("algorithm1", "noisy"):
            raise UserError(f"regime {self.name!r}: method must be 'algorithm1' (weight "
                            f"projection + clipping) or 'noisy' (activation noise); got "
                            f"{self.method!r}")
        if self.method == "noisy":
            if not self.noise:
                raise UserError(f"regime {self.name!r}: noisy training needs noise=..., e.g. "
                                "'additive:sigma=0.3'")
            if parse_noise(self.noise).sigma <= 0:
                raise UserError(f"regime {self.name!r}: the training noise needs sigma > 0, "
                                f"e.g. '{parse_noise(self.noise).label}:sigma=0.3'; got "
                                f"{self.noise!r}")

    @property
    def label(self) -> str:
        """The row heading: the name, and the training noise for a noisy regime."""
        if self.method == "noisy":
            return f"{self.name} ({self.noise})"
        return self.name


DEFAULT_REGIMES = (
    Regime("tr-none-nc", "algorithm1", "none", "NC",
           description="plain backprop, no clipping (the baseline)"),
    Regime("tr-sign-c", "algorithm1", "sign", 0.5,
           description="Algorithm 1 with Sign(W) in the passes, clip f = 0.5"),
    Regime("tr-stoch-c", "algorithm1", "stoch", 0.5,
           description="Algorithm 1 with stochastic binarization, clip f = 0.5"),
    Regime("noisy-additive", "noisy", noise="additive:sigma=0.5",
           description="additive activation noise N(0, 0.5²) at every site during training"),
    Regime("noisy-multiplicative", "noisy", noise="multiplicative:sigma=0.5",
           description="multiplicative activation noise N(1, 0.5²) at every site during "
                       "training"),
)
"""The table's rows: Merolla's regimes (baseline, Sign-C, Stoch-C) and Walking Noise's
noisy training (additive, multiplicative)."""



def train_regime(regime: Regime, data: CrossData, *, epochs: int = 5, bn: bool = True,
                 out_dir=None, seed: int = 0, lr: float = 1e-3, batch_size: int = 128,
                 lr_schedule: str = "cosine", progress: bool = False, log=None):
    """Train ``mlp_tfc`` on ``data`` the way ``regime`` says; returns the model (eval mode).

    algorithm1 regimes go through :func:`tinyproj.runs.training.train` (a run folder
    ``out_dir/<name>``, made afresh — see below; Adam, cross-entropy, the regime's
    projection and clip f); noisy regimes through :func:`tinyproj.walking_noise.train_noisy`
    with the regime's noise at every site. Both: Adam ``lr``, ``batch_size``, the same
    seed, ``epochs``, cosine annealing of the learning rate (Walking Noise's schedule)
    unless told otherwise.

    Algorithm-1 regimes load their images by name (``data.dataset``, ``data.data_dir``,
    ``data.train_subset``), noisy ones use ``data.train``: make ``data`` with
    :func:`load_data` so that both see the same images.

    bn: batch norm after every hidden layer (``mlp_tfc(bn=True)``, 11 noise sites). On by
    default: Merolla's networks all have it, and without it the clip bounds
    c_k = 0.5·std(Glorot) shrink the MLP's outputs so much that the clipped regimes
    hardly learn (about 17 % error on MNIST after 3 epochs, against 4 % with batch norm).

    A cross-table run is disposable, but only if it is one: ``out_dir/<name>`` is replaced
    when an earlier ``train_regime`` made it (it holds :data:`REGIME_MARKER`) or when it
    holds a run of exactly these settings (an interrupted call); any other non-empty
    folder — say ``runs/tr-sign-c`` of ``tinyproj train --preset tr-sign-c`` — is left
    alone and a :class:`~tinyproj.errors.UserError` says so, before any training.
    """
    log = log or (lambda *a: None)
    if regime.method == "noisy":
        if lr_schedule != "cosine":
            raise UserError(f"regime {regime.name!r}: train_noisy anneals the learning rate "
                            f"with a cosine (Walking Noise); lr_schedule={lr_schedule!r} is "
                            "not available for noisy regimes")
        spec = parse_noise(regime.noise).replace(train=True, eval=False)
        model, _ = train_noisy("mlp_tfc", data.train, spec, sites="all", epochs=epochs, lr=lr,
                               batch_size=batch_size, seed=seed, record_dynamics=False,
                               bn=bn, num_classes=data.num_classes, progress=progress,
                               log=log)
        model.eval()
        return model
    if out_dir is None:
        raise UserError(f"regime {regime.name!r}: training.train needs a run folder; pass "
                        "out_dir=... (each regime gets out_dir/<name>)")
    folder = Path(out_dir) / regime.name
    cfg = make_config(model="mlp_tfc", bn=bn, dataset=data.dataset, data_dir=data.data_dir,
                      train_subset=data.train_subset, test_subset=data.test_subset,
                      val_size=0, loss="cross_entropy", optimizer="adam", lr=lr,
                      lr_schedule=lr_schedule, lr_final=0.0, batch_size=batch_size,
                      epochs=epochs, seed=seed, projection=regime.projection,
                      clip=regime.clip, test_projections=["none"], eval_every=epochs,
                      out=str(folder))
    _clear_previous_run(folder, cfg)
    model, _ = train(cfg, progress=progress, log=log)
    # written last: a folder without it is not known to be ours (see _clear_previous_run)
    atomic_write_text(folder / REGIME_MARKER,
                      json.dumps({"regime": regime.name, "made_by": "train_regime"}) + "\n")
    model.eval()
    return model


def _clear_previous_run(folder: Path, cfg) -> None:
    """Make room for a fresh run in ``folder``, deleting only what a cross run made."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    marked = any((folder / m).is_file() for m in (REGIME_MARKER, *_EARLIER_MARKERS))
    if folder.is_dir() and (marked or _same_settings(folder, cfg)):
        shutil.rmtree(folder)
        return
    raise UserError(f"{folder} already exists and was not made by train_regime (it has no "
                    f"{REGIME_MARKER} and no run of these settings), so it is left alone; "
                    "pass another out_dir=..., or move that folder away", flag="out_dir")


def _same_settings(folder: Path, cfg) -> bool:
    """True when ``folder/config.json`` is a run of exactly ``cfg`` (all of its fields)."""
    try:
        saved = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    wanted = json.loads(json.dumps(cfg.to_dict()))     # tuples as lists, as in the file
    return isinstance(saved, dict) and all(saved.get(k) == v for k, v in wanted.items())


def train_regimes(regimes, data: CrossData, *, log=print, **options) -> dict:
    """``{regime name: trained model}`` for every regime (see :func:`train_regime`).

    Logs one line per regime: its clean test accuracy and the time it took.
    """
    models = {}
    for regime in regimes:
        start = time.perf_counter()
        models[regime.name] = train_regime(regime, data, **options)
        acc = 1.0 - error_rate(models[regime.name], data.test)
        log(f"trained {regime.name:22s} clean test accuracy {100 * acc:6.2f} %  "
            f"({time.perf_counter() - start:.1f} s)")
    return models
