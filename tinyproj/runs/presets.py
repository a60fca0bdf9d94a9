"""The papers' runs as presets: dicts of :class:`~tinyproj.runs.config.TrainConfig` overrides.

``make_config("tr-sign-c", ...)`` (``tinyproj train --preset tr-sign-c``) applies the defaults,
then a preset, then explicit overrides; :data:`PRESET_NOTES` is the one line per preset that
``tinyproj train --list-presets`` prints. Every value here is a setting of TrainConfig, checked
by :func:`~tinyproj.runs.validation.validate` like a flag.
"""
from __future__ import annotations

__all__ = ["PRESETS", "PRESET_NOTES"]

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
