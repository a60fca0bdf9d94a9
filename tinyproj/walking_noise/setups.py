"""The walk's training set-ups, by name: the authors' (the default) and tinyproj's earlier one.

A *set-up* is every :class:`~tinyproj.runs.config.TrainConfig` setting of a walk's training
except the network and data it is given (model, bn, dataset) and the run's own (seed, out,
subsets): initial weights and biases, optimizer, learning rate and its schedule, loss, batch
size, epochs, normalisation and augmentation. :func:`setup_settings` resolves a name for one
(model, dataset)::

    authors  (default)  the Walking Noise authors' (UniHD-CEG/walking-noise; docs/papers.md
                        §2.6), i.e. the preset wn-authors-<model>-<dataset>:
                          weights and biases U(±1/√fan_in) (PyTorch's default), a bias in
                          every layer; Adam, lr 1e-3, cosine annealing stepped per epoch,
                          lr_e = ½·1e-3·(1 + cos(π·e/E)) for epoch e = 0 … E−1;
                          cross-entropy, batch 128, no validation split;
                          epochs E (mlp_tfc / lenet5)   normalisation     augmentation
                            MNIST          100 / 50      [0, 1]            none
                            Fashion-MNIST  250 / 200     [−1, 1]           crop (pad 4) + flip
                            SVHN           300 / 200     mean/std per ch.  crop (pad 4) + flip
                            CIFAR-10       200 / 300     mean/std per ch.  crop (pad 4) + flip
    legacy              tinyproj's walk set-up before issue 13 (the committed
                        results/wn-mnist-train-at-sigma* were made with it): Glorot weights
                        U(±√(6/(fan_in+fan_out))), biases only without batch norm (zero at
                        the start); Adam 1e-3, cosine annealing stepped per *minibatch*;
                        cross-entropy, batch 128; the dataset's default preprocessing
                        (CIFAR-10 GCN+ZCA, MNIST and Fashion-MNIST [0, 1]), no
                        augmentation; 5 epochs (the old ``tinyproj walk`` default).

Outside the authors' grid (a dataset they did not use, e.g. synthetic; a model other than
mlp_tfc / lenet5) "authors" keeps their recipe and takes the rest from the nearest rule:
the dataset's mlp_tfc preset for its data and epochs when there is one, else the dataset's
default preprocessing, no augmentation and MNIST's epochs for the model (mlp_tfc 100,
others 50); models without the init/bias switches (bc_cifar10, alexnet_bn) keep Glorot.

Every explicit setting (``--epochs``, ``lr=``, …) overrides the set-up's. A result records
its set-up: rows and saved networks of a set-up other than legacy carry ``setup: <name>``
(:func:`setup_tag`), so a row measured with one set-up is never taken for a point of another
(it is part of the row's key, ``walk.row_key``); rows without the field are legacy's, which
keeps the keys of the walks made before set-ups had names.
"""
from __future__ import annotations

from ..errors import UserError
from ..runs.config import PRESETS

__all__ = ["SETUPS", "DEFAULT_SETUP", "LEGACY", "CUSTOM", "setup_settings", "model_settings",
           "check_setup", "setup_tag", "recorded_setup", "infer_setup", "setup_hint"]

DEFAULT_SETUP = "authors"
LEGACY = "legacy"

_RUN_OWN = ("model", "dataset", "preset")
"""Preset keys a set-up does not carry: the walk is given the network and the data."""

_LEGACY = dict({k: v for k, v in PRESETS["wn-mlp-mnist"].items() if k not in _RUN_OWN},
               epochs=5, init="glorot", bias="auto", preprocess=None, augment="none")
"""tinyproj's earlier walk set-up: the wn-mlp-mnist preset (Glorot, cosine per step) with
the old command-line default of 5 epochs; TrainConfig's defaults for the weights and the
data written out, so that :func:`infer_setup` tells it from a run with other ones."""

_AUTHORS_DATA = ("preprocess", "augment", "epochs")
"""The keys of an authors' preset that depend on the (model, dataset)."""

_AUTHORS = {k: v for k, v in PRESETS["wn-authors-mlp-mnist"].items()
            if k not in _RUN_OWN + _AUTHORS_DATA}
"""The authors' recipe common to every (model, dataset): init, bias, Adam, schedule, loss..."""

SETUPS = {
    DEFAULT_SETUP: "the Walking Noise authors' (PyTorch init and biases, cosine per epoch, "
                   "their epochs, normalisation and crop+flip per dataset and model)",
    LEGACY: "tinyproj's before issue 13 (Glorot, cosine per step, the dataset's default "
            "preprocessing, no augmentation, 5 epochs)",
}
"""name -> one line (``tinyproj walk --setup``)."""

_SWITCHES = ("mlp_tfc", "lenet5")
"""The models with the init/bias switches (``models.factory.BN_SWITCH``)."""


def check_setup(name) -> str:
    """The canonical name of a set-up (UserError naming ``--setup`` for an unknown one)."""
    key = str(DEFAULT_SETUP if name is None else name).strip().lower()
    if key not in SETUPS:
        raise UserError(f"--setup: unknown set-up {name!r}; the set-ups are: "
                        + "; ".join(f"{k} ({v})" for k, v in SETUPS.items()), flag="--setup")
    return key


def _preset_name(model: str, dataset: str) -> str:
    short = "mlp" if model == "mlp_tfc" else model
    return f"wn-authors-{short}-{dataset.replace('-mnist', '')}"


def setup_settings(name, model: str = "mlp_tfc", dataset: str = "mnist") -> dict:
    """TrainConfig settings of set-up ``name`` for ``model`` on ``dataset`` (module docstring).

    Without model, dataset or any run-own field; ``epochs`` included. Example::

        setup_settings("authors", "lenet5", "fashion-mnist")["epochs"]      # 200
        setup_settings("legacy", "mlp_tfc", "mnist")["lr_schedule"]         # "cosine"
    """
    key = check_setup(name)
    model = str(model).strip().lower().replace("-", "_")
    dataset = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(
        str(dataset).strip().lower().replace("_", "-"), str(dataset).strip().lower())
    if key == LEGACY:
        return dict(_LEGACY)
    values = dict(_AUTHORS)
    preset = PRESETS.get(_preset_name(model, dataset)) or \
        PRESETS.get(_preset_name("mlp_tfc", dataset))
    if preset is not None:                     # the model's preset, else mlp_tfc's
        values.update({k: preset[k] for k in _AUTHORS_DATA})
    else:                                      # a dataset the authors did not use
        values.update(augment="none", epochs=100 if model == "mlp_tfc" else 50)
    if model not in _SWITCHES:                 # Glorot only: their clip bounds need it
        values.pop("init"), values.pop("bias")
    return values


def model_settings(name, model: str = "mlp_tfc") -> dict:
    """The settings of set-up ``name`` that shape the initial network: ``init``, ``bias``."""
    values = setup_settings(name, model, "synthetic")
    return {k: values[k] for k in ("init", "bias") if k in values}


def setup_tag(name) -> dict:
    """What a row or a saved network records of its set-up: ``{"setup": name}``, or ``{}``
    for legacy (rows made before set-ups had names keep their keys). ``name`` may also be
    :data:`CUSTOM` (a given run trained otherwise, :func:`infer_setup`)."""
    key = CUSTOM if name == CUSTOM else check_setup(name)
    return {} if key == LEGACY else {"setup": key}


def recorded_setup(meta: dict) -> str:
    """The set-up a row or a saved network's metadata was made with (no field: legacy)."""
    return str(meta.get("setup") or LEGACY)


CUSTOM = "custom"
"""The set-up recorded for a given run (``tinyproj walk --run``) that matches no named one."""


def infer_setup(config: dict) -> str:
    """The name of the set-up a trained run's ``config.json`` follows, or :data:`CUSTOM`.

    The run matches a set-up when every setting of :func:`setup_settings` for its model and
    dataset agrees, the epochs excepted (``--epochs`` overrides a set-up's). Settings the
    config leaves out read as TrainConfig's defaults.
    """
    from ..runs.config import TrainConfig
    defaults = TrainConfig().to_dict()
    for name in SETUPS:
        wanted = setup_settings(name, config.get("model", "mlp_tfc"),
                                config.get("dataset", "mnist"))
        if all(config.get(k, defaults[k]) == v for k, v in wanted.items() if k != "epochs"):
            return name
    return CUSTOM


def setup_hint(changed) -> str:
    """'' or a sentence for an error that refuses a saved network because its settings differ
    (``changed``: their names): when some are a set-up's, which flag chooses the set-up."""
    keys = (set(_AUTHORS) | set(_LEGACY) | {"setup"}) - {"epochs"}
    if not keys & set(changed):
        return ""
    return (" It was trained with another set-up: --setup legacy is tinyproj's earlier one "
            "(Glorot, cosine per step; networks saved before the set-ups had names), the "
            "default is the authors'.")
