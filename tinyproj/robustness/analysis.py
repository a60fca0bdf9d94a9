"""Layer-wise analyses of a trained network: Figures 1C, 1D and 2D of Merolla et al. 2016.

Three questions about a network ``model`` (an ``nn.Sequential`` of named layers from
:mod:`tinyproj.models`), each answered per weight layer k (``conv1`` … ``fc9``):

=====================  ======================================================  ==========
function               what it measures                                        figure
=====================  ======================================================  ==========
sign_distance          mean_i |w_ki − Sign(w_ki)|: how far the full-precision  1C
                       weights are from their binarized version
activation_correlation Pearson correlation of layer k's activity between a     1D
                       forward pass with W and one with Sign(W), same minibatch
power_histograms       histogram of one layer's weights after Power(W, β)      2D
=====================  ======================================================  ==========

plus :func:`layer_outputs`, which runs the flat Sequential child by child and keeps the
output of each named child (the building block of the correlation analysis).

The paper's point (section 4.1.1): for Tr-Sign-C the binarized weights are far from the
full-precision ones in every layer (1C), yet the activity of every layer is almost the
same with either (1D) — the network is insensitive to the exact weight values.

Nothing here changes the model for good: weights are swapped with
:func:`tinyproj.algorithm1.project_weights` (put back on exit) and batch-norm statistics are
saved and restored with :func:`tinyproj.runs.evaluation.saved_batchnorm_stats`.
"""
from __future__ import annotations

import contextlib
import math
import re
from collections import OrderedDict

from .. import backend, projections
from ..algorithm1 import project_weights, weight_params
from ..nn.batchnorm import BatchNormBase
from ..runs.evaluation import saved_batchnorm_stats
from .bn_estimate import BNProtocol, protocol_from_settings, reestimate
from ..tensor import Tensor, no_grad

__all__ = ["sign_distance", "layer_outputs", "activity_sites", "activation_correlation",
           "pearson", "power_histograms", "DEFAULT_BETAS"]

DEFAULT_BETAS = (0.2, 0.5, 1.0, 2.0)
"""The four β of Figure 2D used by default (the paper does not print its four values):
β < 1 pushes weights out towards ±α (towards Sign at β = 0), β = 1 leaves them as they
are, β > 1 pulls them in towards 0."""


# ---------------------------------------------------------------------------
# Figure 1C: how far is W from Sign(W)?
# ---------------------------------------------------------------------------
def sign_distance(model, normalized: bool = False) -> "OrderedDict[str, float]":
    """``{weight name: mean_i |w_ki − Sign(w_ki)|}`` for every weight W_k (Figure 1C).

    Sign(W_k) = α_k·sign(W_k) with α_k = max_i |w_ki| (Table 1), so each term is
    |w − α·sign(w)| = α − |w|: the distance from each weight to the nearest of ±α_k.

    normalized=False (default) gives the paper's quantity: Figure 1C's caption reads
    "Average absolute differences between W_k and Sign(W_k) at each layer", in the units
    of the weights. Its scale follows the layer's weight scale (a clipped network has
    small weights, so small distances), so layers and networks are hard to compare.

    normalized=True divides by α_k: mean |w/α − sign(w)| = 1 − mean |w|/α, a number in
    [0, 1] (0: the weights are already ±α; 1: all of them are 0). Use it to compare layers
    or networks of different weight scales.

    Keys are the weight names in model order (``"conv1.weight"`` …); values are floats.
    """
    out = OrderedDict()
    for name, p in weight_params(model).items():
        W = p.data
        xp = backend.xp_of(W)
        dist = xp.abs(W.astype("float64") - projections.sign(W).astype("float64")).mean().item()
        if normalized:
            alpha = xp.abs(W).max().item()           # .item(): explicit syncs on a GPU
            dist = dist / alpha if alpha > 0 else 0.0
        out[name] = dist
    return out


# ---------------------------------------------------------------------------
# Running the network layer by layer
# ---------------------------------------------------------------------------
def _children(model) -> "OrderedDict[str, object]":
    children = OrderedDict(model.named_children())
    if not children:
        raise TypeError(f"{type(model).__name__} has no child layers: layer_outputs needs a flat "
                        "nn.Sequential of named layers such as models.bc_cifar10()")
    return children


def layer_outputs(model, x, names=None) -> "OrderedDict[str, object]":
    """Run the flat Sequential ``model`` on ``x`` child by child; keep the chosen outputs.

    ``model(x)`` is ``child_n(… child_2(child_1(x)))``; here the same calls are made one at a
    time, and after each child whose name is in ``names`` its output array is kept::

        outs = layer_outputs(model, x, ["conv1", "relu1", "bn9"])
        outs["relu1"].shape          # (N, C, H, W), the activity after conv1's block

    x: input array (N, …) or Tensor. names: child names (default: every child). The model
    runs in whatever mode it is in (call ``model.eval()`` first for evaluation), without
    gradients. The pass stops after the last wanted child. Returns an ``OrderedDict``
    ``{name: array}`` in model order (arrays on the model's device, not copies).
    """
    children = _children(model)
    wanted = list(children) if names is None else list(names)
    unknown = [n for n in wanted if n not in children]
    if unknown:
        raise KeyError(f"layer_outputs: {unknown} are not layers of {type(model).__name__}; "
                       f"its layers are {list(children)}")
    wanted = set(wanted)
    out = OrderedDict()
    h = x
    with no_grad():
        for name, child in children.items():
            if not wanted - set(out):
                break                                  # everything wanted is captured
            h = child(h)
            if name in wanted:
                out[name] = h.data if isinstance(h, Tensor) else h
    return out


def activity_sites(model) -> "OrderedDict[str, str]":
    """``{weight layer: child whose output is that layer's activity}``.

    The activity of layer k is the output of the *last* child of its block (the children
    whose names end in k): ``relu2`` for ``conv2 → pool2 → bn2 → relu2``, ``bn9`` for the
    output layer ``fc9 → bn9`` (no ReLU there), ``pool1`` for AlexNet's
    ``conv1 → bn1 → relu1 → pool1``. This is what the neurons of layer k send on.
    """
    children = list(_children(model))
    blocks = OrderedDict()
    for name in children:
        m = re.search(r"(\d+)$", name)
        if m:
            blocks.setdefault(m.group(1), []).append(name)
    weight_layers = [name.rsplit(".", 1)[0] for name in weight_params(model)]
    sites = OrderedDict()
    for layer in weight_layers:
        k = re.search(r"(\d+)$", layer)
        sites[layer] = blocks[k.group(1)][-1] if k else layer
    return sites


def pearson(a, b) -> float:
    """Pearson correlation of two arrays of the same size, taken over all their values.

    r = Σ (a − ā)(b − b̄) / sqrt(Σ (a − ā)² · Σ (b − b̄)²), in float64. When one side is
    constant (r undefined) it returns 1.0 if the arrays are equal, else NaN.
    """
    xp = backend.xp_of(a)
    a = a.astype("float64").ravel()
    b = b.astype("float64").ravel()
    if a.size != b.size:
        raise ValueError(f"pearson: the arrays have {a.size} and {b.size} values; they must "
                         "have the same shape")
    da, db = a - a.mean(), b - b.mean()
    ss_a, ss_b, cross = (float(v) for v in backend.to_numpy(xp.stack(   # one sync
        [(da * da).sum(), (db * db).sum(), (da * db).sum()])))
    denom = math.sqrt(ss_a * ss_b)
    if denom == 0.0:
        return 1.0 if bool(xp.array_equal(a, b).item()) else float("nan")
    return cross / denom


@contextlib.contextmanager
def _bn_mode(model, bn: str):
    """Model in eval mode; BN layers in train mode for ``bn="batch"``. Restores the modes."""
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    if bn == "batch":
        for m in model.modules():
            if isinstance(m, BatchNormBase):
                m.train()
    try:
        yield
    finally:
        for m, mode in was:
            m.training = mode


def activation_correlation(model, x, projection="sign", source=None, bn: str = "auto",
                           bn_images=None, bn_pass_size: int | None = None,
                           bn_batches: int | None = None, batch_size: int = 50, seed: int = 0,
                           where: str = "activity", rng=None,
                           protocol: BNProtocol | None = None) -> "OrderedDict[str, float]":
    """Figure 1D: per layer, the correlation between a pass with W and a pass with Sign(W).

    The caption: "Correlation coefficient between neuron activity at each layer for a
    minibatch during two forward passes, one evaluated using W_k and the other using
    Sign(W_k)". So the minibatch ``x`` goes through the network twice, once as it is and
    once inside ``project_weights(model, projection)`` (every layer binarized at once);
    for each weight layer k the two activity arrays (N × neurons) are flattened and their
    Pearson correlation (:func:`pearson`) is one number. 1 means the same activity up to
    scale and offset.

    where: ``"activity"`` (default) takes each layer's activity, the output of the last
    child of its block (:func:`activity_sites`: after BN and ReLU); ``"weight"`` takes the
    raw conv/linear output instead.

    bn: how batch norm normalizes each pass (its statistics change with the weights):

    * ``"reestimate"`` — the paper's test protocol: before each pass the BN statistics are
      re-estimated on ``source`` (training data) with the weights of that pass, the same
      images in the same order for both passes (generator seeded with ``seed``); BN then
      runs in eval mode. Needs ``source``. How, in ``tinyproj sweep``'s words
      (:func:`~tinyproj.robustness.bn_estimate.protocol_from_settings`): by default exact
      statistics of every training image (``bn_images="all"``, or N images), read in passes of
      ``bn_pass_size``; ``bn_batches=K`` selects **the old protocol**, the average of K random
      batches of ``batch_size`` (20 × 50 before); or pass a ready ``protocol``.
    * ``"batch"`` — each pass normalizes with the statistics of the minibatch ``x`` itself
      (BN in training mode, running statistics untouched): re-estimation on ``x``.
    * ``"running"`` — both passes use the model's stored running statistics (those of
      training, i.e. of the *projected* weights for a Tr-Sign network).
    * ``"auto"`` (default) — ``"reestimate"`` when ``source`` is given, else ``"batch"``.

    The model's weights and BN statistics are restored afterwards. projection: any spec
    (default ``"sign"``); rng: for stochastic ones. Returns ``{layer: r}``, e.g.
    ``{"conv1": 0.97, …, "fc9": 0.93}``.
    """
    if bn == "auto":
        bn = "reestimate" if source is not None else "batch"
    if bn not in ("reestimate", "batch", "running"):
        raise ValueError(f"activation_correlation: bn must be 'reestimate', 'batch', 'running' "
                         f"or 'auto', got {bn!r}")
    if bn == "reestimate" and source is None:
        raise ValueError("activation_correlation: bn='reestimate' needs training data "
                         "(source=loaded.train); or use bn='batch' to normalize with the "
                         "minibatch's own statistics")
    if protocol is None:
        protocol = protocol_from_settings(bn_images, bn_pass_size, bn_batches, batch_size)
    if where == "activity":
        sites = activity_sites(model)
    elif where == "weight":
        sites = OrderedDict((layer, layer) for layer in activity_sites(model))
    else:
        raise ValueError(f"activation_correlation: where must be 'activity' or 'weight', "
                         f"got {where!r}")

    def one_pass(projected: bool):
        with saved_batchnorm_stats(model), _bn_mode(model, bn):
            ctx = (project_weights(model, projection, rng) if projected
                   else contextlib.nullcontext())
            with ctx:
                if bn == "reestimate":
                    reestimate(model, source, protocol, backend.make_rng(seed))
                return layer_outputs(model, x, list(sites.values()))

    full, binarized = one_pass(False), one_pass(True)
    return OrderedDict((layer, pearson(full[site], binarized[site]))
                       for layer, site in sites.items())


# ---------------------------------------------------------------------------
# Figure 2D: one layer's weights under Power(β)
# ---------------------------------------------------------------------------
def _find_weight(model, layer: str):
    weights = weight_params(model)
    name = layer if layer in weights else f"{layer}.weight"
    if name not in weights:
        raise KeyError(f"{layer!r} is not a weight layer of {type(model).__name__}; its weights "
                       f"are {list(weights)} (give 'conv2' or 'conv2.weight')")
    return name, weights[name].data


def power_histograms(model, layer: str = "conv2", betas=DEFAULT_BETAS, bins: int = 51) -> dict:
    """Histograms of one layer's weights after Power(W, β) for each β (Figure 2D).

    Power(w, β) = α·|w/α|^β·sign(w) keeps every weight in [−α, α] (α = max|w| of the
    layer), so all histograms share ``bins`` equal bins over [−α, α] and their counts each
    sum to the number of weights of the layer. β = 1 is the layer as trained; smaller β
    pushes the weights out towards ±α (β = 0 is Sign: two spikes), larger β squeezes them
    towards 0.

    layer: ``"conv2"`` or ``"conv2.weight"`` (the paper shows Conv2 of Tr-Sign-C).
    Returns ``{"layer": weight name, "alpha": α, "size": number of weights,
    "edges": host array (bins + 1,), "counts": {β: host int array (bins,)}}``.
    """
    name, W = _find_weight(model, layer)
    xp = backend.xp_of(W)
    alpha = xp.abs(W).max().item()                   # .item(): an explicit sync on a GPU
    half = alpha if alpha > 0 else 1.0
    edges = xp.linspace(-half, half, int(bins) + 1)
    counts = OrderedDict()
    for beta in betas:
        P = projections.power(W, float(beta)).astype("float64").ravel()
        c, _ = xp.histogram(xp.clip(P, -half, half), bins=edges)
        counts[float(beta)] = backend.to_numpy(c)
    return {"layer": name, "alpha": alpha, "size": int(W.size),
            "edges": backend.to_numpy(edges), "counts": counts}
