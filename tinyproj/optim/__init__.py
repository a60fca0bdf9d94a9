"""Optimizers and learning-rate schedules (``from tinyproj import optim``).

* ``optimizer.py``  the base class: lr, zero_grad, step (skips grad None), state_dict
* ``sgd.py``        SGD(params, lr, momentum=0.0, weight_decay=0.0)
* ``adam.py``       Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
* ``schedules.py``  Constant, StepDrops, ExponentialDecay, Cosine: ``schedule(t) -> lr``

    optimizer = optim.Adam(model.parameters(), lr=0.003)
    loss.backward(); optimizer.step(); optimizer.zero_grad()
"""
from .adam import Adam
from .optimizer import Optimizer
from .schedules import Constant, Cosine, ExponentialDecay, Schedule, StepDrops
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "Schedule", "Constant", "StepDrops", "ExponentialDecay",
           "Cosine"]
