"""Every setting of a run checked before any file is touched or data loaded (rule 8).

:func:`validate` checks each value of a :class:`~tinyproj.runs.config.TrainConfig` and the
combinations that can be known without loading data (model × dataset shape, batch norm × a
last minibatch of one image, ...), writes canonical spellings back, and reports a mistake as a
:class:`~tinyproj.errors.UserError` naming the flag and the fix. :data:`DATASETS` is what it
knows of each dataset without loading it; :data:`BIAS` reads ``cfg.bias`` for the models.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import UserError
from .presets import PRESETS

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["validate", "check_last_batch", "reports_top5", "has_batch_norm", "DATASETS", "BIAS"]


def _dataset_facts():
    """``{name: (input shape, training images, test images, classes)}`` without loading
    (ImageNet: the published counts; a local folder may hold fewer)."""
    from ..data import DATASET_SHAPES, DATASET_SIZES
    return {name: (shape, *DATASET_SIZES[name], classes)
            for name, (shape, classes) in DATASET_SHAPES.items()}


DATASETS = _dataset_facts()
"""What :func:`validate` knows of each dataset before loading it."""

_CHOICES = {
    "loss": ("square_hinge", "cross_entropy"),
    "optimizer": ("adam", "sgd"),
    "lr_schedule": ("exponential", "cosine", "cosine_epoch", "step", "constant"),
    "preprocess": (None, "none", "scale", "signed", "meanstd", "gcn", "gcn_zca", "default"),
    "init": ("glorot", "torch"),
    "augment": ("none", "crop_flip", "crop", "flip"),
    "bias": ("auto", "true", "false"),
}

BIAS = {"auto": None, "true": True, "false": False}
"""``cfg.bias`` → the models' ``bias=`` argument."""


def _canonical_bias(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "auto"
    text = str(value).strip().lower()
    return {"yes": "true", "on": "true", "1": "true", "no": "false", "off": "false",
            "0": "false", "none": "auto"}.get(text, text)


def _fail(name: str, problem: str, fix: str = "") -> None:
    from .config import flag_name    # here, not at the top: config.py imports this module
    flag = flag_name(name)
    raise UserError(f"{flag}: {problem}" + (f"; {fix}" if fix else ""), flag=flag)


def _check_number(cfg, name, low=None, high=None, integer=False, optional=False,
                  low_open=False):
    value = getattr(cfg, name)
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    ok_type = (isinstance(value, int) if integer else isinstance(value, (int, float)))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        _fail(name, f"must be {kind}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        _fail(name, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        _fail(name, f"must be <= {high}, got {value!r}")


def validate(cfg: TrainConfig, data_shape=None) -> TrainConfig:
    """Check every setting of ``cfg`` and the combinations knowable without data.

    ``data_shape``: ``(input_shape, num_classes)`` of data given in memory (then the model is
    checked against it instead of ``cfg.dataset``'s). Raises
    :class:`~tinyproj.errors.UserError` naming the flag and the fix; returns ``cfg``.
    Canonical spellings are written back (``model`` lower case, ``dataset`` with a dash).
    """
    from .. import clipping, models, projections     # lower floors, imported lazily
    if cfg.preset is not None and cfg.preset not in PRESETS:
        _fail("preset", f"unknown preset {cfg.preset!r}", f"the presets are {', '.join(PRESETS)}")
    cfg.model = str(cfg.model).strip().lower().replace("-", "_")
    if cfg.model not in models.MODELS:
        _fail("model", f"unknown model {cfg.model!r}", f"the models are "
              f"{', '.join(models.MODELS)}")
    key = str(cfg.dataset).strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        _fail("dataset", f"unknown dataset {cfg.dataset!r}", f"the datasets are "
              f"{', '.join(DATASETS)}")
    cfg.dataset = key
    cfg.init = str(cfg.init).strip().lower()
    cfg.bias = _canonical_bias(cfg.bias)
    cfg.augment = str(cfg.augment).strip().lower().replace("+", "_").replace("-", "_")
    _check_number(cfg, "width", 0, low_open=True)
    for name, (low, integer, optional) in {
            "train_subset": (1, True, True), "val_size": (0, True, False),
            "test_subset": (1, True, True), "epochs": (1, True, False),
            "iterations": (1, True, True), "batch_size": (1, True, False),
            "seed": (0, True, False), "bn_batches": (0, True, False),
            "eval_every": (1, True, False), "eval_every_steps": (1, True, True),
            "eval_batch_size": (1, True, False),
            "lr_final": (0, False, False), "momentum": (0, False, False)}.items():
        _check_number(cfg, name, low, integer=integer, optional=optional)
    _check_number(cfg, "lr", 0, low_open=True)
    _check_number(cfg, "lr_factor", 0, low_open=True)
    _check_number(cfg, "clip_factor", 0, low_open=True)
    if cfg.lr_schedule in ("cosine", "cosine_epoch") and cfg.lr_final > cfg.lr:
        _fail("lr_final", f"the minimum of the cosine schedule, {cfg.lr_final}, is above its "
              f"start --lr {cfg.lr}", "give --lr-final <= --lr (0: anneal to zero)")
    if cfg.momentum >= 1:
        _fail("momentum", f"must be < 1, got {cfg.momentum}")
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            _fail(name, f"unknown value {getattr(cfg, name)!r}",
                  f"choose one of {', '.join(c for c in choices if c)}")
    for name in ("clip_milestones", "lr_milestones"):
        values = getattr(cfg, name)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values) or \
                list(values) != sorted(set(values)):
            _fail(name, f"must be increasing step numbers >= 1, got {values!r}")
    if not clipping.no_clipping(cfg.clip):
        try:
            f = float(cfg.clip)
        except (TypeError, ValueError):
            f = math.nan
        if not (math.isfinite(f) and f > 0):
            _fail("clip", f"must be a factor f > 0 or NC (no clipping), got {cfg.clip!r}")
        cfg.clip = f
    else:
        cfg.clip = "NC"
    try:
        projections.parse(cfg.projection)
    except ValueError as err:
        _fail("projection", str(err).split("\n")[0], "e.g. none, sign, stoch, "
              "power:beta=U(0,2), stochm:gamma=0.5")
    if not cfg.test_projections:
        _fail("test_projections", "is empty", "give e.g. none,sign,round")
    for spec in cfg.test_projections:
        try:
            projections.parse(spec)
        except ValueError as err:
            _fail("test_projections", str(err).split("\n")[0], "e.g. none,sign,round")
    if cfg.augment != "none" and cfg.dataset == "imagenet":
        _fail("augment", "ImageNet's training images are cropped by the folder reader",
              "leave out --augment for imagenet")
    for name in ("train_subset", "test_subset"):     # the first N images of a folder set would
        if cfg.dataset == "imagenet" and getattr(cfg, name) is not None:   # be its first class
            _fail(name, "does not apply to imagenet, whose images are read from class folders",
                  "for a short trial, point --data-dir at a smaller copy holding a few images "
                  "of every class folder of train/ and val/")
    if cfg.dataset != "imagenet" and cfg.preprocess not in (None, "default"):
        from ..data.dataset import check_preprocess
        check_preprocess(cfg.dataset, cfg.preprocess)
    if not isinstance(cfg.bn, bool) or not isinstance(cfg.bn_reestimate, bool):
        _fail("bn", "must be true or false")
    if isinstance(cfg.bn_images, str) and cfg.bn_images.strip().lower() == "all":
        cfg.bn_images = "all"
    elif cfg.bn_images is not None and (isinstance(cfg.bn_images, bool) or
                                        not isinstance(cfg.bn_images, int) or cfg.bn_images < 1):
        _fail("bn_images", f"must be a number of training images >= 1 or all, got "
              f"{cfg.bn_images!r}", "e.g. --bn-images all (every training image) or "
              "--bn-images 10000")
    if cfg.bn_images is not None and not cfg.bn_reestimate:
        _fail("bn_images", "asks for an exact batch-norm re-estimation that --no-bn-reestimate "
              "(or the preset) turns off", "leave out --bn-images, or add --bn-reestimate")
    if cfg.out is not None and not str(cfg.out).strip():
        _fail("out", "is empty", "give a folder name for the run, e.g. --out runs/sign")
    if not isinstance(cfg.extra, dict):
        raise UserError(f"extra settings must be a dict, got {cfg.extra!r}")
    _check_model_and_data(cfg, models, data_shape)
    return cfg


def _check_model_and_data(cfg: TrainConfig, models, data_shape=None) -> None:
    """The model takes the dataset's input shape; no minibatch of one image meets batch norm."""
    shape, n_train, n_test, num_classes = DATASETS[cfg.dataset]
    if data_shape is not None:
        (shape, num_classes), n_train, n_test = data_shape, None, None
    check = getattr(models, "check", None)
    try:
        if check is not None:
            check(cfg.model, shape, num_classes, width=cfg.width, bn=cfg.bn, init=cfg.init,
                  bias=BIAS[cfg.bias])
    except UserError:
        raise
    except ValueError as err:
        raise UserError(f"--model {cfg.model} on --dataset {cfg.dataset}: {err}") from None
    if cfg.augment != "none" and len(shape) != 3:
        _fail("augment", f"crop and flip need images (C, H, W), but the examples have shape "
              f"{tuple(shape)}", "use --augment none for flat feature vectors")
    if n_test is not None and cfg.test_subset is not None and cfg.test_subset > n_test:
        _fail("test_subset", f"{cfg.test_subset} is more than the {n_test} test images of "
              f"{cfg.dataset}", f"use at most {n_test} (leave it out for all of them)")
    if n_train is None:
        return
    if cfg.val_size >= n_train:
        _fail("val_size", f"{cfg.val_size} leaves no training image of {cfg.dataset}'s "
              f"{n_train}", f"use fewer than {n_train} (0: no validation set)")
    n = n_train - cfg.val_size
    if cfg.train_subset is not None:
        if cfg.train_subset > n:
            _fail("train_subset", f"{cfg.train_subset} is more than the {n} training images of "
                  f"{cfg.dataset}" + (f" left after --val-size {cfg.val_size}"
                                      if cfg.val_size else ""),
                  f"use at most {n} (leave it out for all of them)")
        n = cfg.train_subset
    check_last_batch(cfg, n)


def reports_top5(cfg: TrainConfig) -> bool:
    """Whether evaluations report top-5 errors beside top-1: ImageNet (the AlexNet run), as
    the papers report it there; the 10-class datasets keep top-1 only."""
    return cfg.dataset == "imagenet"


def has_batch_norm(cfg: TrainConfig) -> bool:
    return cfg.model in ("bc_cifar10", "alexnet_bn") or cfg.bn


def check_last_batch(cfg: TrainConfig, n: int) -> None:
    """Refuse an epoch whose last minibatch holds one image in a batch-norm model.

    Batch norm in training mode divides by the standard deviation over the minibatch; over
    one image it is 0 (fully connected layers), and the step is meaningless.
    """
    if has_batch_norm(cfg) and n % cfg.batch_size == 1 and n > 1:
        _fail("batch_size", f"with {n} training images and --batch-size {cfg.batch_size} the "
              "last minibatch of every epoch holds 1 image, which batch norm cannot "
              "normalise", "change --batch-size" + ("" if cfg.dataset == "imagenet" else
                                                   f" or --train-subset (e.g. --train-subset "
                                                   f"{n - 1})"))
