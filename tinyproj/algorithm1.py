"""Algorithm 1 of Merolla et al. 2016: one training step for a weight projection, line by line.

::

    Input: minibatch I, targets T, current weights W^t, learning rate λ.  Output: W^{t+1}.
     1: Project weights:
     2: for k = 1 to N do
     3:     P_k = Proj(W_k^t, θ)                  # standard backprop: Proj = None, P_k = W_k^t
     4: Forward propagation:
     5: O = Forward(I, P)                         # computed with the projected weights P
     6: Backward propagation:
     7: ∂L/∂P = Backward(∂L/∂O, P)                # also computed with respect to P
     8: Update weights:
     9: Ŵ = Update(W^t, ∂L/∂P, λ)                 # applied to W^t, any rule (SGD, Adam, ...)
    10: Clip weights:
    11: for k = 1 to N do
    12:     W_k^{t+1} = max(min(Ŵ_k, c_k), −c_k)  # standard backprop: c_k = ∞

:func:`train_step` runs these lines in order, each in its own small function named after
them, so a student can put a breakpoint on each::

    project   lines 1-3    model's weight arrays swapped for P_k; W_k kept aside
    forward   line 5       scores and loss with P
    backward  line 7       p.grad = ∂L/∂P for every parameter
    update    line 9       W_k put back into the model, then optimizer.step() moves W by ∂L/∂P
    clip      lines 11-12  W_k clipped in place to [−c_k, c_k]

(in pdb: ``b tinyproj/algorithm1.py:<line>`` or ``b tinyproj.algorithm1.update``).

Which parameters are "the weights W_k"? Those with ndim ≥ 2: conv and linear weights
(:func:`weight_params`). Biases and batch-norm γ, β are **neither projected nor clipped**
(the paper's networks have no neuron biases; batch-norm parameters are trained normally):
they enter the forward pass as they are and the optimizer updates them with their ordinary
gradients.

How the swap works. A Parameter is a Tensor whose values live in ``p.data``. Line 3 sets
``p.data = P_k`` (a new array; ``W_k`` is kept in a dict), so layers compute with P and
backward leaves ∂L/∂P in ``p.grad``. Line 9 sets ``p.data = W_k`` back (the very same array
object, so the optimizer's state and every other reference stay valid) and calls
``optimizer.step()``, which updates ``p.data`` — now W — with ``p.grad`` = ∂L/∂P. After the
step the model always holds W, never P.

With projection ``"none"`` and no bounds (``{}``, "NC") this is exactly standard backprop:
the forward pass sees bit-identical copies of W, the same gradients come back, and nothing
is clipped.

Evaluation and robustness tests use the same swap through :func:`project_weights`::

    with algorithm1.project_weights(model, "sign", rng):
        scores = model(x)                    # the network with Sign(W_k) in every layer
    # here the model holds W again, exactly (also after an exception)
"""
from __future__ import annotations

import contextlib
import math

from . import backend, clipping, kernels, projections
from .optim import flat
from .projections import power_device

__all__ = ["train_step", "weight_params", "project_weights", "projected", "Trace",
           "project", "forward", "backward", "update", "clip", "restore", "write_clip_bounds"]


def weight_params(model) -> dict:
    """``{name: Parameter}`` of the weights W_k that Algorithm 1 projects and clips.

    These are the parameters with ndim ≥ 2 (conv weights (O, C, kh, kw) and linear weights
    (out, in)), in the order of ``model.named_parameters()``, i.e. k = 1 … N from input to
    output. Biases and batch-norm parameters (ndim 1) are left out.
    """
    return {name: p for name, p in model.named_parameters() if clipping.is_clipped_param(p)}


class Trace(dict):
    """What one :func:`train_step` did, for lessons and debugging (copies of the arrays).

    After ``train_step(..., trace=trace)``, ``trace[name]`` holds, for every weight W_k
    (``name`` like ``"conv1.weight"``), a dict of arrays of W_k's shape::

        "W"       W_k^t                    the weights before the step
        "P"       P_k = Proj(W_k^t, θ)     what the forward and backward passes used (line 3)
        "dL_dP"   ∂L/∂P_k                  the gradient that was applied (line 7)
        "W_hat"   Ŵ_k                      after the update, before clipping (line 9)
        "W_next"  W_k^{t+1}                after clipping (line 12)
        "c"       c_k (a float; inf when the layer is not clipped)

    and the attributes ``loss`` (float), ``projection`` (the projection as used for this
    minibatch, its random parameters drawn, e.g. ``power:beta=0.73``) and ``step``.

    layers: record only these weight names (default: all). Copies of big layers cost
    memory, so a lesson may trace a single layer: ``Trace(["conv1.weight"])``.
    A plain ``dict`` may be passed to train_step instead; it gets the per-layer entries only.
    """

    def __init__(self, layers=None):
        super().__init__()
        self.layers = None if layers is None else list(layers)
        self.loss = None
        self.projection = None
        self.step = None

    def wants(self, name: str) -> bool:
        return self.layers is None or name in self.layers


def _record(trace, name: str, key: str, array) -> None:
    """``trace[name][key] = copy of array`` when tracing (and this layer is wanted)."""
    if trace is None or (isinstance(trace, Trace) and not trace.wants(name)):
        return
    if array is not None and not isinstance(array, float):
        array = array.copy()
    trace.setdefault(name, {})[key] = array


# ---------------------------------------------------------------------------
# The lines of Algorithm 1, one function each.
# ---------------------------------------------------------------------------
def project(weights: dict, step_projection, rng, trace=None) -> dict:
    """Lines 1-3: for k = 1 to N, P_k = Proj(W_k^t, θ); the model now computes with P.

    weights: ``{name: Parameter}`` from :func:`weight_params`.
    step_projection: a Projection whose parameters are fixed for this minibatch
    (``projection.sample(rng)``). rng: passed to stochastic projections.
    Returns ``{name: W_k}``, the full-precision arrays taken out of the model; give them to
    :func:`update` (or :func:`restore`) to put them back.
    """
    saved_W = {}
    P_all = _project_all_at_once(weights, step_projection, rng)
    try:
        for k, (name, p) in enumerate(weights.items()):   # line 2: for k = 1 to N
            W_k = p.data
            if P_all is None:
                P_k = step_projection(W_k, rng)      # line 3: P_k = Proj(W_k, θ) (a new array)
            else:
                P_k = P_all(k)                       # the same, computed for every k at once
            saved_W[name] = W_k
            p.data = P_k                             # the layer now computes with P_k
            _record(trace, name, "W", W_k)
            _record(trace, name, "P", P_k)
    except BaseException:
        restore(weights, saved_W)                    # a failed projection leaves W in place
        raise
    return saved_W


# Projections that have a kernel for every layer of a flat buffer at once (two or three
# launches on a GPU instead of two to a dozen per layer); the others run layer by layer.
# The stochastic ones draw from a counter-based generator (Philox, kernels/cuda/random.cuh)
# keyed from the run's generator; on the CPU they keep NumPy's generator, layer by layer, so
# a CPU run's random stream is the one projections.stoch / stochm draw.
_ALL_AT_ONCE = {"sign": "sign_projection_segments", "stoch": "stoch_projection_segments",
                "stochm": "stochm_projection_segments"}
_RANDOM = {"stoch": (), "stochm": ("gamma",)}


def _project_all_at_once(weights: dict, step_projection, rng):
    """``P(k)`` → P_k for every k, computed in one go, or None (then layer by layer).

    Possible when the weights live side by side in an optimizer's flat buffer (optim/flat.py)
    and the projection has a kernel over such a buffer (each layer with its own α); not with
    ``TINYPROJ_KERNELS=reference``, which keeps Algorithm 1's loop as written.
    """
    name = step_projection.name
    kernel_name = _ALL_AT_ONCE.get(name)
    if kernel_name is None or kernels.mode() == "reference":
        return None
    group = flat.group_of(weights.values())
    if group is None:
        return None
    W = group.weights()
    args = (W, group.weight_offsets())
    if name in _RANDOM:
        if not backend.is_gpu_array(W):
            return None
        args += (kernels.random_key(backend.global_rng() if rng is None else rng, W),)
        args += tuple(step_projection.params[p] for p in _RANDOM[name])
    # pieces: on a GPU, α of a large tensor is reduced by many thread blocks (kernels/pieces.py)
    P = kernels.get(kernel_name, W)(*args, pieces=group.weight_pieces())
    return lambda k: group.view_of(P, k)


def forward(model, x, y, loss_fn):
    """Line 5: O = Forward(I, P), then the loss L(O, T). Returns ``(scores O, loss L)``."""
    scores = model(x)                                # O, computed with the projected weights P
    return scores, loss_fn(scores, y)


def backward(model, loss) -> None:
    """Line 7: ∂L/∂P = Backward(∂L/∂O, P): afterwards ``p.grad`` holds ∂L/∂P_k for every weight
    (and the ordinary gradient for biases and batch-norm parameters)."""
    model.zero_grad()                                # gradients accumulate: start from nothing
    loss.backward()


def restore(weights: dict, saved_W: dict) -> None:
    """Put the full-precision arrays W_k back into the model (``p.data = W_k``, same object)."""
    for name, p in weights.items():
        if name in saved_W:
            p.data = saved_W[name]


def update(weights: dict, saved_W: dict, optimizer, trace=None) -> None:
    """Line 9: Ŵ = Update(W^t, ∂L/∂P, λ).

    First W_k goes back into the model in place of P_k; ``p.grad`` still holds ∂L/∂P_k, so
    ``optimizer.step()`` (any rule: SGD, Adam, ...) moves W — not P — along the gradient
    taken at P. With SGD: Ŵ_k = W_k − λ·∂L/∂P_k.
    """
    restore(weights, saved_W)                        # the model holds W^t again
    for name, p in weights.items():
        _record(trace, name, "dL_dP", p.grad)
    optimizer.step()                                 # W^t → Ŵ, in place
    for name, p in weights.items():
        _record(trace, name, "W_hat", p.data)


def clip(weights: dict, bounds: dict, trace=None) -> None:
    """Lines 11-12: for k = 1 to N, W_k^{t+1} = max(min(Ŵ_k, c_k), −c_k), in place.

    bounds: ``{name: c_k}`` from ``clipping.clip_bounds(model, f)``; a weight missing from
    it (or every weight, for ``{}`` = "NC") has c_k = ∞ and is left alone.
    """
    group = flat.group_of(weights.values()) if kernels.mode() != "reference" else None
    if group is not None and bounds:                 # lines 11-12 for every k in one launch
        clipping.clip_flat_(group.weights(), group.weight_offsets(),
                            [bounds.get(name, math.inf) for name in weights], group)
    table = None if group is not None else _device_bounds(weights, bounds)
    lower = None if table is None else -table        # −c_k for every k (one launch)
    for k, (name, p) in enumerate(weights.items()):  # line 11: for k = 1 to N
        c_k = bounds.get(name, math.inf)
        if group is None and not math.isinf(c_k):
            if table is None:
                clipping.clip_([(p.data, c_k)])      # line 12: clip Ŵ_k to [−c_k, c_k]
            else:                                    # the same, c_k read from device memory
                xp = backend.xp_of(p.data)
                xp.clip(p.data, lower[k], table[k], out=p.data)
        _record(trace, name, "c", float(c_k))
        _record(trace, name, "W_next", p.data)


def _device_bounds(weights: dict, bounds: dict):
    """Layer by layer on a device (``TINYPROJ_KERNELS=reference``): the bounds c_k as the
    optimizer's device table (one entry per weight, in order), so that a replayed CUDA graph
    reads each step's bounds; None on NumPy, without bounds or without a flat group."""
    group = flat.group_of(weights.values())
    if group is None or not bounds or not backend.is_gpu_array(group.data):
        return None
    values = tuple(math.inf if c is None else float(c)
                   for c in (bounds.get(name, math.inf) for name in weights))
    return group.device_table("clip_bounds", values, group.dtype)


def write_clip_bounds(model, bounds: dict) -> None:
    """Write ``bounds`` into the device table that :func:`clip` reads (a fill launch per
    changed bound; nothing when unchanged, on NumPy or layer by layer).

    :func:`clip` does this itself in every step it runs. A CUDA graph replaying a step runs no
    Python, so the graph runner (tinyproj/graphs.py) calls this before each replay: a clip
    schedule's new bounds (AlexNet's ×1.4 at 5K, 10K, 15K) reach the captured kernel in the
    same array it reads.
    """
    weights = weight_params(model)
    group = flat.group_of(weights.values())
    if group is None or not bounds or not backend.is_gpu_array(group.data):
        return
    values = tuple(math.inf if c is None else float(c)
                   for c in (bounds.get(name, math.inf) for name in weights))
    if not all(math.isinf(c) for c in values) or kernels.mode() == "reference":
        group.device_table("clip_bounds", values, group.dtype)


# ---------------------------------------------------------------------------
# One step.
# ---------------------------------------------------------------------------
def train_step(model, x, y, loss_fn, optimizer, projection, bounds, rng, trace=None,
               step=None, return_scores=False, sync=True):
    """One step of Algorithm 1 on the minibatch ``(x, y)``; returns the loss (a float).

    With ``return_scores=True`` it returns ``(loss, scores)``, scores the (N, classes)
    array of the forward pass with P (for the training error, at no extra cost).

    model: an ``nn.Module`` (call ``model.train()`` first: this function does not change the
    mode). x: input array or Tensor, y: integer labels (N,). loss_fn(scores, y) → scalar
    Tensor (``F.square_hinge_loss`` in the paper). optimizer: built on ``model.parameters()``;
    its ``lr`` is λ. projection: a spec string (``"sign"``, ``"power:beta=U(0,2)"``) or a
    Projection; its random parameters are drawn once for this minibatch. bounds:
    ``{param_name: c_k}`` from ``clipping.clip_bounds(model, f)``; ``{}`` means no clipping.
    rng: the run's generator (stochastic projections, random θ). trace: a :class:`Trace`
    (or dict) to fill with copies of W, P, ∂L/∂P, Ŵ, W^{t+1} per layer. step: the step
    index, used in error messages.

    A NaN or infinite loss raises FloatingPointError before anything is updated: the
    weights are back to W^t, the batch-norm running statistics as they were, and no
    optimizer state has moved. Projection "none" with bounds ``{}`` is standard backprop.

    sync=False (for a GPU): the loss stays on the device — returned as a 0-d array, never
    read — so the step makes no device→host sync; it is therefore **not** checked for NaN
    here: the caller reads the losses later and stops on a non-finite one (the training
    loop does so every few steps, naming the step; see ``runs/training.py``).
    """
    projection = projections.parse(projection)
    weights = weight_params(model)
    _check_bounds(weights, model, bounds)
    rng = backend.global_rng() if rng is None else rng
    bn_state = _buffers_snapshot(model) if sync else []   # to undo the forward pass on NaN

    # -- Lines 1-3: project the weights -------------------------------------------------
    step_projection = _sample(projection, rng, weights, trace)   # θ drawn once per minibatch
    saved_W = project(weights, step_projection, rng, trace)
    try:
        # -- Line 5: forward propagation with P ---------------------------------------
        scores, loss = forward(model, x, y, loss_fn)
        if sync:                                     # reading the loss is a sync on a GPU
            loss_value = float(loss.item())
            if not math.isfinite(loss_value):
                raise FloatingPointError(_nan_message(loss_value, step, step_projection, x,
                                                      optimizer))
        else:
            loss_value = loss.data                   # a 0-d array, left on the device
        # -- Line 7: backward propagation, ∂L/∂P -------------------------------------
        backward(model, loss)
    except BaseException:
        restore(weights, saved_W)                    # the model holds W^t, untouched
        _buffers_restore(model, bn_state)
        raise

    # -- Line 9: update W with ∂L/∂P ------------------------------------------------------
    update(weights, saved_W, optimizer, trace)

    # -- Lines 11-12: clip ----------------------------------------------------------------
    clip(weights, bounds, trace)

    if isinstance(trace, Trace):
        trace.loss, trace.projection, trace.step = loss_value, step_projection.spec, step
    return (loss_value, scores.data) if return_scores else loss_value


@contextlib.contextmanager
def project_weights(model, projection, rng=None):
    """Context manager: inside, every weight W_k of ``model`` is replaced by P_k = Proj(W_k).

    ::

        with project_weights(model, "sign", rng) as P:    # P = {name: P_k}
            scores = model(x)
        # W_k is back in the model, the very same arrays, even if the block raised

    projection: spec string or Projection (random parameters drawn once here). Biases and
    batch-norm parameters are not touched. Anything done inside the block to the weight
    arrays (``p.data``) changes P, not W. Batch-norm running statistics are not restored:
    re-estimating them under a distortion (the paper's test protocol) is done inside it.
    """
    step_projection = projections.parse(projection).sample(rng)
    weights = weight_params(model)
    saved_W = project(weights, step_projection, rng)
    try:
        yield {name: p.data for name, p in weights.items()}
    finally:
        restore(weights, saved_W)


projected = project_weights
"""Alias: ``with algorithm1.projected(model, "sign", rng): ...``."""


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------
def _sample(projection, rng, weights, trace=None):
    """``projection.sample(rng)``; on a device a random β of Power is drawn and kept there
    (projections/power_device.py): no sync, and a CUDA graph replays the draw. A traced step
    reads β back (one sync), so that ``trace.projection`` names its value."""
    first = next(iter(weights.values()), None)
    if first is None or trace is not None:
        return projection.sample(rng)
    return power_device.sample(projection, rng, first.data)


def _check_bounds(weights: dict, model, bounds) -> None:
    if bounds is None:
        raise TypeError("train_step: bounds must be a dict {param_name: c_k} from "
                        "clipping.clip_bounds(model, f); pass {} for no clipping (NC)")
    names = dict(model.named_parameters())
    unknown = [n for n in bounds if n not in names]
    if unknown:
        raise ValueError(f"clip bounds name parameters the model does not have: {unknown}. "
                         f"The model's weights are {list(weights)}; compute the bounds from this "
                         "model with clipping.clip_bounds(model, f).")
    not_weights = [n for n in bounds if n not in weights]
    if not_weights:
        raise ValueError(f"clip bounds given for {not_weights}, which are biases or batch-norm "
                         "parameters; Algorithm 1 clips only the weights (ndim >= 2). Remove "
                         "them, or use clipping.clip_bounds(model, f).")


def _buffers_snapshot(model) -> list:
    """Copies of the batch-norm running statistics (tiny arrays) so a failed step can undo them."""
    return [(buf, buf.copy()) for _, buf in model.named_buffers()]


def _buffers_restore(model, snapshot) -> None:
    for buf, saved in snapshot:
        buf[...] = saved


def _nan_message(loss_value, step, step_projection, x, optimizer) -> str:
    where = f"step {step}" if step is not None else "this step"
    data = getattr(x, "data", x)
    hint = ""
    try:
        xp = backend.xp_of(data)
        if not bool(xp.isfinite(data).all()):
            hint = " The input minibatch itself contains NaN or inf values: check the data."
    except (TypeError, AttributeError):
        pass
    lr = getattr(optimizer, "lr", None)
    return (f"Algorithm 1, {where}: the loss is {loss_value} (not finite) after the forward pass "
            f"(line 5) with projection {step_projection.spec!r}.{hint} Nothing was updated: the "
            f"weights are still W^t. Usual causes: a learning rate too high (lr={lr}), weights "
            "that grew without clipping, or bad input data. Try a smaller learning rate or "
            "clipping (clipping.clip_bounds(model, 0.5)).")
