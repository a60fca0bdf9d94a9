"""A run's settings: :class:`TrainConfig`, checked by :func:`validate` before any I/O, and presets.

Every setting of a training run is one field of :class:`TrainConfig`; ``config.json`` in
the run folder is its ``to_dict()``, so a run can always be rebuilt and resumed from its
folder alone (``tinyproj train --out RUN --resume``). Each field carries its own help text
and parser in its metadata (:func:`setting`): the command line builds one flag per field
from them (``cli/flags.py``), so a new field is a new flag with the right type, with no
second list to keep in step.

A preset is a dict of overrides of the defaults (:data:`PRESETS`); :func:`make_config`
applies defaults → preset → explicit overrides, then :func:`validate` checks every value
and the combinations that can be known without loading data (model × dataset shape,
batch norm × a last minibatch of one image, ...). A mistake is reported as a
:class:`~tinyproj.errors.UserError` naming the flag and the fix, before a folder is made.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import UserError

__all__ = ["TrainConfig", "PRESETS", "PRESET_NOTES", "make_config", "validate", "setting", "flag_name",
           "RESUMABLE_CHANGES", "DATASETS", "parse_clip", "parse_list"]


# ---------------------------------------------------------------------------
# Parsers for the text of a flag (also used when a field is set from Python)
# ---------------------------------------------------------------------------
def parse_clip(text):
    """``"NC"`` (no clipping) or the clip factor f as a float."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    return "NC" if str(text).strip().upper() in ("NC", "NONE") else float(text)


def parse_list(kind):
    """A parser for comma-separated values of ``kind`` (``"5000,10000"`` -> [5000, 10000])."""
    def parse(text):
        if isinstance(text, (list, tuple)):
            return [kind(v) for v in text]
        return [kind(v.strip()) for v in str(text).split(",") if v.strip()]
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def _optional(kind):
    def parse(text):
        return None if text is None or str(text).strip().lower() in ("", "none") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def setting(default, help: str, parse=None, cli: bool = True):
    """A dataclass field with its help text and parser (how the command line reads it).

    ``parse`` turns the flag's text into the value (default: the type of ``default``);
    ``cli=False`` keeps a field off the command line (set by the code that makes the run).
    """
    meta = {"help": help, "parse": parse, "cli": cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_name(field_name: str) -> str:
    """``train_subset`` -> ``--train-subset``."""
    return "--" + field_name.replace("_", "-")


# ---------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """All the settings of one training run (defaults: Merolla et al.'s CIFAR-10 set-up)."""

    preset: str | None = setting(None, "one of the papers' runs (tinyproj train "
                                       "--list-presets); flags given with it override it",
                                 parse=_optional(str))
    # network and data
    model: str = setting("bc_cifar10", "bc_cifar10 | alexnet_bn | mlp_tfc | lenet5")
    width: float = setting(1.0, "channel/unit multiplier of the model (1.0: the paper's)")
    bn: bool = setting(False, "batch norm in mlp_tfc / lenet5 (the others always have it)")
    init: str = setting("glorot", "initial weights of mlp_tfc / lenet5: glorot (U(±√(6/(fan_in"
                                  "+fan_out))), biases 0) | torch (PyTorch's default, the "
                                  "Walking Noise authors': weights and biases U(±1/√fan_in))")
    bias: str = setting("auto", "biases in mlp_tfc / lenet5: auto (only without --bn) | true "
                                "(every layer, as the Walking Noise authors' PyTorch layers) | "
                                "false")
    dataset: str = setting("cifar10", "cifar10 | mnist | fashion-mnist | svhn | synthetic | "
                                      "imagenet")
    data_dir: str | None = setting(None, "folder holding cifar-10-batches-py/, mnist/, ... "
                                         "(default: $TINYPROJ_DATA, else ../shared/datasets, "
                                         "else datasets/); stored absolute",
                                   parse=_optional(str))
    preprocess: str | None = setting(None, "none | scale ([0,1]) | signed ([-1,1]) | meanstd "
                                           "(per channel, the Walking Noise authors') | gcn | "
                                           "gcn_zca (default: the dataset's: CIFAR-10 gcn_zca, "
                                           "MNIST and Fashion-MNIST scale, SVHN meanstd)",
                                     parse=_optional(str))
    augment: str = setting("none", "none | crop_flip | crop | flip: random crop (padding 4) "
                                   "and/or horizontal flip of each training batch (the Walking "
                                   "Noise authors' Fashion-MNIST, CIFAR-10, SVHN); never at "
                                   "evaluation; draws seeded by (seed, epoch, batch)")
    train_subset: int | None = setting(None, "train on the first N training images only",
                                       parse=_optional(int))
    val_size: int = setting(5000, "validation images split off the end of the training set "
                                  "(BinaryConnect's 45k/5k; 0: none)")
    test_subset: int | None = setting(None, "score only the first N test images",
                                      parse=_optional(int))
    # Algorithm 1
    projection: str = setting("none", "training projection, e.g. sign, stoch, "
                                      "power:beta=U(0,2), stochm:gamma=0.5")
    clip: float | str = setting("NC", "clip factor f (c_k = f · Glorot std) or NC for none",
                                parse=parse_clip)
    clip_factor: float = setting(1.0, "multiply f by this at each clip milestone")
    clip_milestones: list = setting([], "iterations at which f is multiplied, e.g. 5000,10000",
                                    parse=parse_list(int))
    # optimization
    loss: str = setting("square_hinge", "square_hinge | cross_entropy")
    optimizer: str = setting("adam", "adam | sgd")
    momentum: float = setting(0.0, "SGD momentum (SGD only)")
    lr: float = setting(0.003, "learning rate λ (the first one of the schedule)")
    lr_schedule: str = setting("exponential", "exponential (per epoch) | cosine (per step) | "
                                              "cosine_epoch (per epoch, the Walking Noise "
                                              "authors') | step | constant")
    lr_final: float = setting(2e-6, "final learning rate (exponential) or minimum (cosine, "
                                    "cosine_epoch)")
    lr_milestones: list = setting([], "iterations of the step drops, e.g. 100000,125000",
                                  parse=parse_list(int))
    lr_factor: float = setting(0.1, "factor of each step drop (AlexNet's 'dropped by 0.01x': "
                                    "0.01 reads it per milestone, final lr 1e-5; 0.1 reads it "
                                    "as two tenfold drops, final 1e-3)")
    epochs: int = setting(500, "passes over the training set")
    iterations: int | None = setting(None, "stop after this many steps (AlexNet counts steps)",
                                     parse=_optional(int))
    batch_size: int = setting(50, "images per minibatch")
    seed: int = setting(0, "seed of the run's one generator (init, shuffling, projections)")
    # evaluation
    test_projections: list = setting(["none", "sign", "round"],
                                     "comma-separated test projections, e.g. none,sign,round",
                                     parse=parse_list(str))
    bn_reestimate: bool = setting(True, "re-estimate batch norm per test projection (the "
                                        "paper's protocol; --no-bn-reestimate: faster)")
    bn_batches: int = setting(20, "training minibatches used to re-estimate batch norm")
    eval_every: int = setting(1, "epochs between evaluations")
    eval_every_steps: int | None = setting(None, "also evaluate every N steps inside an epoch "
                                                 "(a curve for a short run); evaluation draws "
                                                 "its own random numbers, so it never changes "
                                                 "the training", parse=_optional(int))
    eval_batch_size: int = setting(500, "images per batch when scoring")
    out: str | None = setting(None, "run folder (config.json, metrics.jsonl, checkpoint.npz); "
                                    "default runs/<preset>", parse=str)
    extra: dict = setting({}, "settings owned by the experiment that made the run (e.g. "
                              "Walking Noise's training noise); stored, compared on resume",
                          cli=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from a dict (``config.json``); unknown keys are refused, by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}; valid settings: "
                            f"{', '.join(sorted(names))}")
        return cls(**values)


RESUMABLE_CHANGES = ("epochs", "iterations", "data_dir", "eval_every", "eval_every_steps",
                     "out")
"""Settings a resume may change (train longer, data moved); any other difference is refused."""


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------
_CIFAR = dict(model="bc_cifar10", dataset="cifar10", optimizer="adam", lr=0.003,
              lr_schedule="exponential", lr_final=2e-6, epochs=500, batch_size=50,
              loss="square_hinge")

_ALEXNET = dict(model="alexnet_bn", dataset="imagenet", optimizer="sgd", momentum=0.0, lr=0.1,
                lr_schedule="step", lr_milestones=[100_000, 125_000], lr_factor=0.01,
                iterations=150_000, epochs=64, batch_size=512, loss="cross_entropy",
                projection="stochm3:gamma=0.5", clip=4.5, clip_factor=1.4,
                clip_milestones=[5_000, 10_000, 15_000], val_size=0,
                test_projections=["none", "round", "sign"])

PRESETS = {
    # Table 2 of Merolla et al. (CIFAR-10, network of Figure 1A)
    "tr-none-nc": dict(_CIFAR, projection="none", clip="NC"),
    "tr-none-c": dict(_CIFAR, projection="none", clip=0.5),
    "tr-sign-c": dict(_CIFAR, projection="sign", clip=0.5),
    "tr-stoch-c": dict(_CIFAR, projection="stoch", clip=0.5),
    "tr-power-c": dict(_CIFAR, projection="power:beta=U(0,2)", clip=0.5),
    "tr-stochm-c": dict(_CIFAR, projection="stochm:gamma=0.5", clip=0.5),
    # The AlexNet benchmark run (ImageNet, section 4): Tr-StochM3-C, SGD without momentum,
    # batch 512, 150K iterations (the paper: "64 epochs"), lr 0.1 "dropped by 0.01x at 100K
    # and 125K", clip f from 4.5 multiplied by 1.4 at 5K, 10K and 15K. γ is not given in the
    # paper; 0.5 as for StochM. Two readings of the drop (optim.StepDrops): literal ×0.01 at
    # each milestone here, two tenfold drops in the -drop10 preset.
    "alexnet-stochm3-c": _ALEXNET,
    "alexnet-stochm3-c-drop10": dict(_ALEXNET, lr_factor=0.1),
    # Walking Noise's training set-up (Adam 1e-3, cosine annealing to 0, cross-entropy,
    # batch 128, no validation split, no projection or clipping) on MNIST's MLP "TFC",
    # with tinyproj's Glorot weights and cosine per step (kept for the walks made with it;
    # the authors' own settings are the wn-authors-* presets below).
    "wn-mlp-mnist": dict(model="mlp_tfc", dataset="mnist", optimizer="adam", lr=1e-3,
                         lr_schedule="cosine", lr_final=0.0, loss="cross_entropy",
                         batch_size=128, epochs=100, val_size=0, projection="none",
                         clip="NC", test_projections=["none"], bn_reestimate=False),
}

# The Walking Noise authors' set-ups, read from their code (UniHD-CEG/walking-noise:
# experiment_configs/<dataset>/*.yaml, data/*.py, main.py, models_noisy/): Adam 1e-3,
# CosineAnnealingLR(T_max = epochs) stepped per epoch down to 0, cross-entropy, batch 128,
# the test set scored each epoch (no validation split), PyTorch's default layers (every
# layer with a bias, U(±1/√fan_in) initial weights), LeNet-5 without padding; per dataset
# the normalization and augmentation of their data/*.py and the epochs of their configs.
# Their models come with and without batch norm (RL_TFC / RL_TFC-noBN, LeNet5-BN /
# LeNet5): add --bn for the BN variants.
_WN = dict(optimizer="adam", lr=1e-3, lr_schedule="cosine_epoch", lr_final=0.0,
           loss="cross_entropy", batch_size=128, val_size=0, projection="none", clip="NC",
           test_projections=["none"], bn_reestimate=False, init="torch", bias="true")
_WN_DATA = {  # dataset → (normalization, augmentation, epochs of mlp_tfc, epochs of lenet5)
    "mnist": ("scale", "none", 100, 50),
    "fashion-mnist": ("signed", "crop_flip", 250, 200),
    "svhn": ("meanstd", "crop_flip", 300, 200),
    "cifar10": ("meanstd", "crop_flip", 200, 300),
}
for _data, (_pre, _aug, _mlp, _lenet) in _WN_DATA.items():
    for _model, _epochs in (("mlp", _mlp), ("lenet5", _lenet)):
        PRESETS[f"wn-authors-{_model}-{_data.replace('-mnist', '')}"] = dict(
            model="mlp_tfc" if _model == "mlp" else "lenet5", dataset=_data, epochs=_epochs,
            preprocess=_pre, augment=_aug, **_WN)

PRESET_NOTES = {
    "tr-none-nc": "Merolla Table 2: plain training, no clipping (CIFAR-10)",
    "tr-none-c": "Merolla Table 2: plain training, clipped (f = 0.5)",
    "tr-sign-c": "Merolla Table 2: trained through Sign, clipped",
    "tr-stoch-c": "Merolla Table 2: trained through Stoch, clipped",
    "tr-power-c": "Merolla Table 2: trained through Power β ~ U(0, 2), clipped",
    "tr-stochm-c": "Merolla Table 2: trained through StochM γ = 0.5, clipped",
    "alexnet-stochm3-c": "Merolla §4 AlexNet on ImageNet; lr ×0.01 at 100K and at 125K "
                         "(final 1e-5)",
    "alexnet-stochm3-c-drop10": "the same, the drop read as two tenfold drops (final 1e-3)",
    "wn-mlp-mnist": "Walking Noise's training on MNIST's MLP (Glorot, cosine per step)",
}
PRESET_NOTES.update({name: "Walking Noise authors' set-up: " + ", ".join(
    [values["model"], values["dataset"], f"{values['epochs']} epochs", values["preprocess"]]
    + ([values["augment"]] if values["augment"] != "none" else []))
    for name, values in PRESETS.items() if name.startswith("wn-authors-")})
"""One line per preset for ``tinyproj train --list-presets``."""


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """Defaults, then the preset's values, then ``overrides`` (None values are ignored);
    the result is validated (:func:`validate`)."""
    values = {}
    if preset is not None:
        key = str(preset).strip().lower()
        if key not in PRESETS:
            raise UserError(f"--preset: unknown preset {preset!r}; the presets are: "
                            f"{', '.join(PRESETS)} (tinyproj train --list-presets shows "
                            "their settings)", flag="--preset")
        values.update(PRESETS[key], preset=key)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig.from_dict(values)
    validate(cfg)
    return cfg


# ---------------------------------------------------------------------------
# Validation (no file is read, no data loaded)
# ---------------------------------------------------------------------------
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
    if cfg.dataset != "imagenet" and cfg.preprocess not in (None, "default"):
        from ..data.dataset import check_preprocess
        check_preprocess(cfg.dataset, cfg.preprocess)
    if not isinstance(cfg.bn, bool) or not isinstance(cfg.bn_reestimate, bool):
        _fail("bn", "must be true or false")
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
              "normalise", f"change --batch-size or --train-subset (e.g. --train-subset {n - 1})")
