"""The Optimizer base class: parameters, learning rate, zero_grad, step, state.

An optimizer holds a list of Parameters and, per parameter, whatever state its
update rule needs (a momentum buffer, Adam's two moment estimates). ``step()``
applies the rule to every parameter that has a gradient:

    for each parameter w with gradient g:   w ← update(w, g, state)

Updates work on the arrays directly (``p.data``), in place: no autograd graph is
recorded. Parameters whose ``grad`` is None (not used in the last forward
pass) are skipped and their state is left untouched.

Flat buffers (optim/flat.py). The optimizer puts its parameters side by side in one
flat buffer per dtype and device (each ``p.data`` becomes a view into it, each
gradient arrives in a view of a flat gradient buffer), and keeps its state the same
way, so that a step is one kernel launch for all parameters (``update_flat``)
instead of one per parameter — what a GPU needs (issue 11). Where that is not
possible (a parameter without a gradient this step, Adam's step counts out of
line) it falls back to ``update`` parameter by parameter, on the same views.
Arrays taken from ``p.data`` *before* the optimizer was built are no longer the
parameter's: read ``p.data`` again.

``state_dict()`` / ``load_state_dict()`` save and restore everything (the
hyper-parameters, the step count and copies of the state arrays), so that a run
resumed from a checkpoint continues bit for bit like one that never stopped.

On a device the numbers that change per step (lr, Adam's t and bias corrections) live in
device memory (``optim/device_scalars.py``), so that a CUDA graph replaying the step
(``tinyproj/graphs.py``) sees each step's values; ``write_step_scalars()`` and
``replayed()`` are what the graph runner calls around a replay, in which no Python runs.
"""
from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor
from .flat import build_groups

__all__ = ["Optimizer"]


class Optimizer:
    """Base class. Subclasses set their hyper-parameter names in ``hyper_names`` and
    implement ``update(p, g, state)`` for one parameter.

    Attributes
        params : the list of Parameters being optimized.
        lr : learning rate (settable at any time; schedules set it each step/epoch).
        t : number of ``step()`` calls so far.
        state : one dict per parameter (same order as ``params``) of arrays and counters.
    """

    hyper_names: tuple = ("lr",)

    def __init__(self, params, lr):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (did the model "
                             "define its layers before calling super().__init__()?)")
        seen, unique = set(), []
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, "
                                "not a Tensor; pass model.parameters()")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} "
                                 f"({p.name or tuple(p.shape)}) has requires_grad=False, so it "
                                 "would never get a gradient")
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        self.params = unique
        self.lr = lr
        self.t = 0
        self.state = [dict() for _ in self.params]
        self.groups = build_groups(self.params)
        index = {id(p): i for i, p in enumerate(self.params)}
        self._group_index = [[index[id(p)] for p in g.params] for g in self.groups]

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value):
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: the learning rate must be a finite number "
                             f">= 0, got {value!r}")
        self._lr = value

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``) before the next backward."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place: one launch per flat buffer
        when every parameter has its gradient, else parameter by parameter."""
        self.t += 1
        self.last_step_flat = True
        for group, indices in zip(self.groups, self._group_index):
            group.adopt()                        # parameters whose .data was replaced: back in
            states = [self.state[i] for i in indices]
            if group.gather_grads() and self.update_flat(group, states):
                continue
            self.last_step_flat = False          # per parameter: launch arguments, not graphable
            for i in indices:
                self._step_one(self.params[i], self.state[i])

    # -- around a replayed CUDA graph (tinyproj/graphs.py) ----------------------------------
    def write_step_scalars(self) -> None:
        """Write the current lr into each device group's per-step scalars (a launch if it
        changed): called before a graph replay, outside the captured region."""
        for group in self.groups:
            scalars = getattr(group, "step_scalars", None)
            if scalars is not None:
                scalars.write_lr(self.lr)

    def replayed(self) -> None:
        """The host's bookkeeping of one step that a graph replay did on the device (no
        Python ran in it): the step count, and what ``replayed_group`` adds per rule."""
        self.t += 1
        for group, indices in zip(self.groups, self._group_index):
            self.replayed_group(group, [self.state[i] for i in indices])

    def replayed_group(self, group, states) -> None:
        """Per-rule host bookkeeping of a replayed flat step (Adam: each parameter's t)."""

    def host_counters(self):
        """The host-side counters a step changes (to undo a failed graph capture)."""
        scalars = [(getattr(g, "step_scalars", None)) for g in self.groups]
        return (self.t, [s.get("step") for s in self.state],
                [None if c is None else (c.host_t, c.host_lr) for c in scalars])

    def set_host_counters(self, counters) -> None:
        t, steps, scalars = counters
        self.t = t
        for s, step in zip(self.state, steps):
            if step is None:
                s.pop("step", None)
            else:
                s["step"] = step
        for g, saved in zip(self.groups, scalars):
            current = getattr(g, "step_scalars", None)
            if current is not None and saved is not None:
                current.host_t, current.host_lr = saved
            elif current is not None:            # made during the capture: make it again
                g.step_scalars = None

    def update_flat(self, group, states) -> bool:
        """Update every parameter of ``group`` (a FlatParams) at once; False when this rule
        cannot (then ``update`` runs per parameter). ``states[i]`` is ``group.params[i]``'s."""
        return False

    def _step_one(self, p, state) -> None:
        g = p.grad
        if g is None:
            return
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"{type(self).__name__}: the gradient of {p.name or 'a parameter'} "
                             f"has shape {tuple(g.shape)}, the parameter {tuple(p.shape)}")
        if backend.is_gpu_array(g) != backend.is_gpu_array(p.data):   # a gradient set by hand
            g = backend.to_device(g, "gpu" if backend.is_gpu_array(p.data) else "cpu")
        self.update(p.data, g, state)

    def update(self, w, g, state) -> None:
        """Update the array ``w`` in place from its gradient ``g``; ``state`` is its dict."""
        raise TypeError(f"{type(self).__name__} must implement update(w, g, state)")

    # -- saving and resuming -----------------------------------------------
    def state_dict(self) -> dict:
        """``{"hyper": {...}, "t": int, "state": [{name: array copy or number}, ...]}``."""
        return {
            "hyper": {name: getattr(self, name) for name in self.hyper_names},
            "t": self.t,
            "state": [{k: (v.copy() if hasattr(v, "copy") and hasattr(v, "shape") else v)
                       for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state_dict) -> None:
        """Restore hyper-parameters, step count and per-parameter state (arrays copied onto
        the device of their parameter). The optimizer must be built on the same parameters
        in the same order as the one that was saved."""
        name = type(self).__name__
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(f"{name}.load_state_dict: the saved optimizer had {len(states)} "
                             f"parameters, this one has {len(self.params)}")
        new_states = []
        for i, (p, saved) in enumerate(zip(self.params, states)):
            device = "gpu" if backend.is_gpu_array(p.data) else "cpu"
            restored = {}
            for key, value in saved.items():
                if hasattr(value, "shape") and hasattr(value, "dtype"):
                    if tuple(value.shape) != tuple(p.shape):
                        raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {i} "
                                         f"({p.name or ''}) has shape {tuple(value.shape)}, the "
                                         f"parameter has shape {tuple(p.shape)}")
                    value = backend.to_device(value, device).copy()
                restored[key] = value
            new_states.append(restored)
        for key, value in state_dict.get("hyper", {}).items():
            setattr(self, key, value)
        self.t = int(state_dict["t"])
        self.state = new_states

    def __repr__(self):
        hyper = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.hyper_names)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"
