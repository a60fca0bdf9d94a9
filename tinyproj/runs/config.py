"""Run settings (``TrainConfig``) and the paper's presets.

Every setting of a run lives in one :class:`TrainConfig`; ``config.json`` in
the run folder is its ``asdict``, so a run can always be rebuilt. A preset is
just a dict of overrides of the defaults, and every preset value can in turn
be overridden by a command-line flag.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["TrainConfig", "PRESETS", "make_config"]


@dataclass
class TrainConfig:
    """All the settings of one training run (defaults: Merolla et al.'s CIFAR-10 setup)."""

    preset: str | None = None
    # network and data
    model: str = "bc_cifar10"
    width: float = 1.0
    bn: bool = False                     # for mlp_tfc / lenet5
    dataset: str = "cifar10"
    data_dir: str | None = None
    preprocess: str | None = None        # None: the dataset's default (CIFAR-10: GCN + ZCA)
    train_subset: int | None = None      # first N training images (quick runs)
    val_size: int = 5000                 # BinaryConnect's 45k/5k split (0: no validation set)
    test_subset: int | None = None       # first N test images (quick runs)
    # Algorithm 1
    projection: str = "none"
    clip: float | str = "NC"             # f in c_k = f·std(Glorot init); "NC": no clipping
    clip_factor: float = 1.0             # clip schedule: f multiplied by this ...
    clip_milestones: list = field(default_factory=list)   # ... at these iterations
    # optimization
    loss: str = "square_hinge"           # or "cross_entropy"
    optimizer: str = "adam"              # or "sgd"
    momentum: float = 0.0                # SGD only
    lr: float = 0.003
    lr_schedule: str = "exponential"     # exponential | constant | cosine | step
    lr_final: float = 2e-6               # exponential: lr at the last epoch; cosine: minimum
    lr_milestones: list = field(default_factory=list)   # step: iterations of the drops
    lr_factor: float = 0.1               # step: factor of each drop
    epochs: int = 500
    iterations: int | None = None        # stop after this many steps (AlexNet counts iterations)
    batch_size: int = 50
    seed: int = 0
    # evaluation
    test_projections: list = field(default_factory=lambda: ["none", "sign", "round"])
    bn_reestimate: bool = True           # re-estimate batch norm per test projection (paper)
    bn_batches: int = 20                 # training batches used to re-estimate batch norm
    eval_every: int = 1                  # epochs between evaluations
    eval_batch_size: int = 500
    out: str | None = None               # run folder

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid settings: "
                             f"{', '.join(sorted(names))}")
        return cls(**values)


_CIFAR = dict(model="bc_cifar10", dataset="cifar10", optimizer="adam", lr=0.003,
              lr_schedule="exponential", lr_final=2e-6, epochs=500, batch_size=50,
              loss="square_hinge")

PRESETS = {
    # Table 2 of Merolla et al. (CIFAR-10, network of Figure 1A)
    "tr-none-nc": dict(_CIFAR, projection="none", clip="NC"),
    "tr-none-c": dict(_CIFAR, projection="none", clip=0.5),
    "tr-sign-c": dict(_CIFAR, projection="sign", clip=0.5),
    "tr-stoch-c": dict(_CIFAR, projection="stoch", clip=0.5),
    "tr-power-c": dict(_CIFAR, projection="power:beta=U(0,2)", clip=0.5),
    "tr-stochm-c": dict(_CIFAR, projection="stochm:gamma=0.5", clip=0.5),
    # The AlexNet benchmark run (ImageNet, section 4): Tr-StochM3-C, SGD without momentum,
    # batch 512, 150K iterations, lr 0.1 dropped x0.01 at 100K and 125K, clip f from 4.5
    # multiplied by 1.4 at 5K, 10K and 15K. γ is not given in the paper; 0.5 as for StochM.
    "alexnet-stochm3-c": dict(model="alexnet_bn", dataset="imagenet", optimizer="sgd",
                              momentum=0.0, lr=0.1, lr_schedule="step",
                              lr_milestones=[100_000, 125_000], lr_factor=0.01,
                              iterations=150_000, epochs=10**6, batch_size=512,
                              loss="cross_entropy", projection="stochm3:gamma=0.5", clip=4.5,
                              clip_factor=1.4, clip_milestones=[5_000, 10_000, 15_000],
                              val_size=0, test_projections=["none", "round", "sign"]),
}


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """Defaults, then the preset's values, then ``overrides`` (None values are ignored)."""
    values = {}
    if preset is not None:
        key = preset.lower()
        if key not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        values.update(PRESETS[key], preset=key)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
