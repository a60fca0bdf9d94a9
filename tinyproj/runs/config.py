"""A run's settings: :class:`TrainConfig`, one field per flag, and :func:`make_config`.

Every setting of a training run is one field of :class:`TrainConfig`; ``config.json`` in
the run folder is its ``to_dict()``, so a run can always be rebuilt and resumed from its
folder alone (``tinyproj train --out RUN --resume``). Each field carries its own help text
and parser in its metadata (:func:`setting`): the command line builds one flag per field
from them (``cli/flags.py``), so a new field is a new flag with the right type, with no
second list to keep in step.

:func:`make_config` applies defaults → a preset (:data:`PRESETS`, ``presets.py``) → explicit
overrides, then :func:`validate` (``validation.py``) checks every value and the combinations
that can be known without loading data, before a folder is made. Both are re-exported here,
so ``from tinyproj.runs.config import PRESETS, validate`` keeps working.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import UserError
from .presets import PRESET_NOTES, PRESETS
from .validation import BIAS, DATASETS, check_last_batch, has_batch_norm, reports_top5, validate

__all__ = ["TrainConfig", "PRESETS", "PRESET_NOTES", "make_config", "validate", "setting",
           "flag_name", "RESUMABLE_CHANGES", "DATASETS", "parse_clip", "parse_list", "BIAS",
           "check_last_batch", "reports_top5", "has_batch_norm"]


# ---------------------------------------------------------------------------
# Parsers for the text of a flag (also used when a field is set from Python)
# ---------------------------------------------------------------------------
def parse_clip(text):
    """``"NC"`` (no clipping) or the clip factor f as a float."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    return "NC" if str(text).strip().upper() in ("NC", "NONE") else float(text)


parse_clip.expects = "a clip factor f > 0 or NC"


def parse_list(kind):
    """A parser for comma-separated values of ``kind`` (``"5000,10000"`` -> [5000, 10000])."""
    def parse(text):
        if isinstance(text, (list, tuple)):
            return [kind(v) for v in text]
        return [kind(v.strip()) for v in str(text).split(",") if v.strip()]
    parse.__name__ = f"list of {kind.__name__}"
    if kind is int:
        parse.expects = "comma-separated integers, e.g. 5000,10000"
    return parse


def parse_bn_images(text):
    """``"all"`` → ``"all"``; an integer → that int (checked by ``validate``)."""
    if isinstance(text, str) and text.strip().lower() == "all":
        return "all"
    return int(text)


parse_bn_images.expects = "a number of training images or all"


def _optional(kind):
    def parse(text):
        return None if text is None or str(text).strip().lower() in ("", "none") else kind(text)
    parse.__name__ = kind.__name__
    expects = getattr(kind, "expects", {int: "an integer", float: "a number"}.get(kind))
    if expects:
        parse.expects = expects + ("" if kind not in (int, float) else " (or none)")
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
    clip: float | str = setting("NC", "clip factor f (c_k = f · std of the initial weights) or NC for none",
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
    bn_images: int | str | None = setting(
        None, "re-estimate batch norm exactly over N training images, or all of them "
              "('all'), at each evaluation (the sweeps' protocol; costs about one forward "
              "pass over the training set per test projection); default: the average of "
              "--bn-batches random minibatches", parse=_optional(parse_bn_images))
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
