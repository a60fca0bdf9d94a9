"""The pieces of a run, built from its config: data, model, optimizer, schedules, loss.

    train, val, test, input_shape, num_classes = build_data(cfg)
    model = build_model(cfg, input_shape, num_classes, rng)     # THE model factory
    optimizer = build_optimizer(cfg, model)
    lr_at = lr_schedule(cfg, steps_per_epoch)                   # (epoch, step) -> λ
    feed = training_source(cfg, source, input_shape)   # source, or crop/flip per minibatch
    bounds_at = clip_schedule(cfg, model)                       # step -> {name: c_k}

Every command that needs a network of a run (train, sweep, walk, report, the lessons)
builds it here, so a model is the same whichever command made it.
"""
from __future__ import annotations

from pathlib import Path

from .. import clipping, models, optim
from .. import functional as F
from ..data import load_dataset, train_val_split
from ..data.sources import ArraySource, AugmentedSource, FolderSource
from ..errors import UserError
from .config import TrainConfig

__all__ = ["build_data", "build_model", "build_optimizer", "lr_schedule", "clip_schedule",
           "build_augment", "training_source", "LOSSES", "resolve_data_dir"]

LOSSES = {"square_hinge": F.square_hinge_loss, "cross_entropy": F.cross_entropy}


def resolve_data_dir(value=None) -> str:
    """The data folder as an absolute path: ``value``, else ``$TINYPROJ_DATA``, else
    ``../shared/datasets`` beside the project, else ``datasets/`` (``data.location``)."""
    from ..data import location
    return str(location.data_dir(value))


def build_data(cfg: TrainConfig):
    """``(train, val or None, test, input_shape, num_classes)``; sources (data/sources.py)."""
    if cfg.dataset == "imagenet":
        from ..data import ImageFolder, locate_imagenet
        root = Path(locate_imagenet(cfg.data_dir))
        from ..data.imagenet import IMAGENET_CROP
        _suggest_shrinking(root)
        # training: random-resized crop + flip per epoch (data/sources.py), decoded by a pool
        # of processes; testing: resize 256 + centre crop, in the pool as well
        train_src = FolderSource(ImageFolder(root / "train", crop=IMAGENET_CROP), train=True,
                                 seed=cfg.seed, workers=None)
        # val's labels are train's class numbers (a class val lacks shifts nothing)
        test_src = FolderSource(ImageFolder(root / "val", crop=IMAGENET_CROP,
                                            classes=train_src.folder.classes), workers=None)
        return train_src, None, test_src, train_src.input_shape, len(train_src.folder.classes)
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, preprocess=cfg.preprocess or "default")
    x, y = ds.x_train, ds.y_train
    val = None
    if cfg.val_size:
        if cfg.val_size >= len(x):
            raise UserError(f"--val-size {cfg.val_size} leaves no training image of the "
                            f"{len(x)}; use fewer (0: no validation set)", flag="--val-size")
        x, y, xv, yv = train_val_split(x, y, cfg.val_size)
        val = ArraySource(xv, yv)
    if cfg.train_subset:
        x, y = x[:cfg.train_subset], y[:cfg.train_subset]
    xt, yt = ds.x_test, ds.y_test
    if cfg.test_subset:
        xt, yt = xt[:cfg.test_subset], yt[:cfg.test_subset]
    return ArraySource(x, y), val, ArraySource(xt, yt), ds.input_shape, ds.num_classes


def _suggest_shrinking(root: Path) -> None:
    """On a device, a note when ImageNet is not a ``prepare-imagenet`` copy: decoding full-size
    JPEGs (a few hundred images/s per core) cannot keep up with a GPU step (README, *ImageNet
    input pipeline*). On the CPU the step, not the decoding, sets the pace: no note."""
    from .. import backend
    from ..data.imagenet_shrink import SHRINK_MARK
    if backend.on_device() and not (root / SHRINK_MARK).is_file():
        import warnings
        warnings.warn(f"{root} holds full-size images (no {SHRINK_MARK}): decoding them will "
                      "limit a GPU step. Make a copy rescaled to 256 once, `tinyproj "
                      "prepare-imagenet <data dir> --out DIR`, and train with --data-dir DIR "
                      "(ignore this if the images are already small).", stacklevel=3)


def build_model(cfg: TrainConfig, input_shape, num_classes, rng):
    """The network ``cfg.model`` for this input shape and width, initialized from ``rng``
    (``cfg.init``, ``cfg.bias``: the Walking Noise models' PyTorch-default switches)."""
    from .config import BIAS
    return models.build(cfg.model, input_shape=tuple(input_shape), num_classes=num_classes,
                        width=cfg.width, bn=cfg.bn, rng=rng, init=cfg.init, bias=BIAS[cfg.bias])


def build_augment(cfg: TrainConfig, input_shape):
    """The training batches' augmentation of ``cfg.augment`` (None for "none"): a
    :class:`~tinyproj.data.augment.CropFlip` seeded with ``cfg.seed``, padding 4, that pads
    with a black pixel of the dataset's preprocessing (``preprocess.black_value``)."""
    if cfg.augment == "none":
        return None
    from ..data.augment import CropFlip
    from ..data.dataset import check_preprocess
    from ..data.preprocess import black_value
    channels = tuple(input_shape)[0]
    fill = black_value(check_preprocess(cfg.dataset, cfg.preprocess or "default"), channels)
    return CropFlip(cfg.seed, padding=4, crop="crop" in cfg.augment,
                    flip="flip" in cfg.augment, fill=fill)


def training_source(cfg: TrainConfig, source, input_shape):
    """What the training loop draws its minibatches from: ``source``, wrapped in an
    :class:`~tinyproj.data.sources.AugmentedSource` of :func:`build_augment` when
    ``cfg.augment`` is not "none" (``source`` may be on the host or resident on the device)."""
    augment = build_augment(cfg, input_shape)
    return source if augment is None else AugmentedSource(source, augment)


def build_optimizer(cfg: TrainConfig, model):
    if cfg.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    raise UserError(f"--optimizer: unknown optimizer {cfg.optimizer!r}; choose adam or sgd")


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """A function ``(epoch, step) -> learning rate`` for the configured schedule.

    exponential: per epoch, from lr to lr_final over cfg.epochs (BinaryConnect);
    cosine: per step over the whole run; cosine_epoch: per epoch over cfg.epochs, constant
    within an epoch (the Walking Noise authors' ``CosineAnnealingLR`` stepped each epoch);
    step: drops by lr_factor at lr_milestones (iterations); constant.
    """
    kind = cfg.lr_schedule
    if kind == "exponential":
        s = optim.ExponentialDecay(cfg.lr, cfg.lr_final, max(1, cfg.epochs))
        return lambda epoch, step: s(min(epoch, cfg.epochs))
    if kind == "cosine":
        total = cfg.iterations or cfg.epochs * steps_per_epoch
        s = optim.Cosine(cfg.lr, total, cfg.lr_final)
        return lambda epoch, step: s(min(step, total))
    if kind == "cosine_epoch":
        s = optim.Cosine(cfg.lr, max(1, cfg.epochs), cfg.lr_final)
        return lambda epoch, step: s(min(epoch, cfg.epochs))
    if kind == "step":
        s = optim.StepDrops(cfg.lr, cfg.lr_milestones, cfg.lr_factor)
        return lambda epoch, step: s(step)
    if kind == "constant":
        return lambda epoch, step: cfg.lr
    raise UserError(f"--lr-schedule: unknown schedule {kind!r}; choose exponential, cosine, "
                    "cosine_epoch, step or constant", flag="--lr-schedule")


def clip_schedule(cfg: TrainConfig, model):
    """A function ``step -> {param name: c_k}`` (empty dict: no clipping).

    ``cfg.extra["clamp"] = c`` (Walking Noise's weight clamp) clips every weight to the
    same [−c, c] instead of the paper's per-layer c_k = f·std; both are line 11–12 of
    Algorithm 1, the same prox step.
    """
    clamp = cfg.extra.get("clamp") if cfg.extra else None
    if clamp is not None:
        fixed = {name: float(clamp) for name in clipping.clip_bounds(model, 1.0)}
        return lambda step: fixed
    if clipping.no_clipping(cfg.clip):
        return lambda step: {}
    sched = clipping.ClipSchedule(float(cfg.clip), cfg.clip_factor, cfg.clip_milestones)
    cache = {}

    def bounds(step):
        f = sched.f_at(step)
        if f not in cache:                 # recompute only when the schedule changes f
            cache.clear()
            cache[f] = clipping.clip_bounds(model, f)
        return cache[f]
    return bounds
