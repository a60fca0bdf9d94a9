"""Scoring a trained model under a test distortion: Merolla et al.'s test protocol, K draws.

For a distortion spec (``"addnorm:sigma=0.3"``, ``"sign"``, ``"power:beta=0.5"``, any spec of
``projections.parse``) and each random draw d = 0 … K−1::

    1. swap the distorted weights P_k = Proj(W_k) in        (algorithm1.project_weights)
    2. re-estimate the batch-norm statistics on training     (``bn_estimate.reestimate``:
       data, computed with P                                  exact over a full pass, or the
                                                              old 20 × 50 batches; see there)
    3. score the test set (optionally its first N images)     (evaluation.error_rate)
    4. put W and the saved statistics back, bitwise           (evaluation.saved_batchnorm_stats)

and report the mean, the standard deviation and the K errors. Only the weights W_k
(``algorithm1.weight_params``: ndim >= 2) are distorted, never biases or batch-norm γ, β.
``layers=[names]`` distorts those layers only and leaves every other layer exact (a per-layer
sweep).

Randomness (DESIGN rule 5). Each draw gets two generators of its own, derived from integers
only (no Python ``hash``, which changes between processes)::

    distortion rng  <- [seed, 1, sha256(spec) words, sha256(layers) words, d]
                       (the words: ``runs.grid.seed_words``)
    BN-batches rng  <- [seed, 2, d]    (which training images, in which order)

so a (seed, spec, layers, draw) always gives the same numbers, whatever else was scored
before, in which order, in which process: a sweep split into shards and merged equals the
unsharded sweep exactly. The batch-norm batches depend on the draw only ("common random
numbers"): every level of a sweep re-estimates on the same training batches, so the
differences between levels come from the distortion, and AddNorm σ = 0 gives exactly the
clean error (spec ``"none"``) draw for draw.
"""
from __future__ import annotations

import contextlib
import math
import statistics
from dataclasses import dataclass, field

from .. import backend, projections
from ..algorithm1 import project, project_weights, restore, weight_params
from ..errors import UserError
from ..runs.evaluation import error_rate, saved_batchnorm_stats
from ..runs.grid import seed_words
from .bits import empirical_noise_power
from .bn_estimate import BNProtocol, reestimate

__all__ = ["Score", "score_distortion", "distorted_weights", "select_weights",
           "draw_generators", "DEFAULT_DRAWS"]

DEFAULT_DRAWS = 3
"""Random draws of a stochastic distortion when none is asked for (the paper does not say)."""


@dataclass
class Score:
    """The test error of a model under one distortion, over K draws.

    spec        the distortion's spec string, e.g. ``"addnorm:sigma=0.3"``
    layers      the distorted weight names, or None for all of them
    errors      the K test errors (fractions in [0, 1]), draw 0 first
    mean, std   their mean and sample standard deviation (ddof = 1; 0.0 when K = 1)
    draws       K
    n_test      the number of test images scored
    noise_power per draw, {name: mean((P − W)²)} when asked for (``measure_noise=True``)
    """

    spec: str
    layers: list | None
    errors: list
    mean: float
    std: float
    draws: int
    n_test: int
    noise_power: list = field(default_factory=list)


def select_weights(model, layers=None) -> dict:
    """``{name: Parameter}`` of the weights to distort, in model order (all when layers is None).

    Raises a ValueError (a :class:`~tinyproj.errors.UserError` about ``--layer``), listing
    the model's weight names, for a name that is not a weight (a typo, a bias or a batch-norm
    parameter: those are never distorted). ``tinyproj sweep`` calls it on a network built
    from the run's config.json alone (``runs.folder.untrained_network``) before any data is loaded.
    """
    weights = weight_params(model)
    if layers is None:
        return weights
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    unknown = [n for n in layers if n not in weights]
    if unknown or not layers:
        others = {n for n, _ in model.named_parameters()}
        why = [f"{n!r} is a bias or batch-norm parameter, which distortions never touch"
               if n in others else f"{n!r} is not a parameter of this model" for n in unknown]
        raise UserError(("; ".join(why) or "no layer named") +
                        f". The distortable weights (ndim >= 2), in model order, are: "
                        f"{', '.join(weights)}", flag="--layer")
    return {n: p for n, p in weights.items() if n in layers}


@contextlib.contextmanager
def distorted_weights(model, spec, rng=None, layers=None):
    """Context manager: inside, the chosen weights hold P_k = Proj(W_k); W_k is back on exit.

    ::

        with distorted_weights(model, "addnorm:sigma=0.5", rng, layers=["conv2.weight"]) as P:
            scores = model(x)          # conv2 noisy, every other layer exact
        # the very same W arrays are back (also after an exception)

    With ``layers=None`` this is ``algorithm1.project_weights``; with names, the same
    Algorithm-1 steps (``project``, ``restore``) on those layers only. Yields {name: P_k}.
    Batch-norm statistics are not restored here (see :func:`score_distortion`).
    """
    if layers is None:
        with project_weights(model, spec, rng) as distorted:
            yield distorted
        return
    weights = select_weights(model, layers)
    step = projections.parse(spec).sample(rng)
    saved = project(weights, step, rng)
    try:
        yield {name: p.data for name, p in weights.items()}
    finally:
        restore(weights, saved)


def draw_generators(seed: int, spec: str, layers, draw: int):
    """``(distortion_rng, bn_rng)`` for one draw; see the module docstring for the recipe."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"the seed must be an integer >= 0; got {seed!r}")
    layer_key = "all" if layers is None else ",".join(layers)
    spec = projections.parse(spec).spec
    distortion_rng = backend.make_rng([seed, 1, *seed_words(spec), *seed_words(layer_key), int(draw)])
    bn_rng = backend.make_rng([seed, 2, int(draw)])
    return distortion_rng, bn_rng


def score_distortion(model, train_source, test_source, spec, *, draws: int | None = None,
                     layers=None, seed: int = 0, bn: BNProtocol | None = None,
                     bn_batches: int | None = None, bn_batch_size: int = 50,
                     test_subset: int | None = None, eval_batch_size: int = 500,
                     measure_noise: bool = False) -> Score:
    """Test error of ``model`` under the distortion ``spec``, over K = ``draws`` draws (a Score).

    model: a trained network (its weights and batch-norm statistics are left exactly as they
    were). train_source: where batch norm is re-estimated (the training set, as in the paper);
    test_source: what is scored. Both have ``len()`` and ``.batch(indices) -> (x, y)``.
    spec: a projection spec or Projection. draws: K (default 1 for a deterministic spec,
    DEFAULT_DRAWS for a stochastic one). layers: None (all weights) or weight names (only
    those distorted). seed: integer >= 0 (see :func:`draw_generators`). bn: how batch norm is
    re-estimated per draw (a ``bn_estimate.BNProtocol``); None with ``bn_batches`` given:
    the old protocol, ``bn_batches`` training batches of ``bn_batch_size`` averaged (0: keep
    the stored statistics); neither: ``BNProtocol()``, exact over a full pass of the
    training set (the default for reported numbers). Draws of a deterministic
    spec differ only in the training images (or their order) used for the re-estimation.
    test_subset: score only the first N test images. measure_noise: also record
    mean((P − W)²) per layer and draw (for empirical bits per weight).
    """
    projection = projections.parse(spec)
    if draws is None:
        draws = DEFAULT_DRAWS if (projection.stochastic or projection.random_params) else 1
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1; got {draws!r}")
    if bn is None and bn_batches is None:
        bn = BNProtocol()
    if bn is None:
        if bn_batches < 0 or bn_batch_size < 1:
            raise ValueError(f"bn_batches must be >= 0 and bn_batch_size >= 1; got "
                             f"{bn_batches}, {bn_batch_size}")
        bn = BNProtocol.batches(bn_batches, bn_batch_size)
    if test_subset is not None and test_subset < 1:
        raise ValueError(f"test_subset must be >= 1 (or None for the whole test set); got "
                         f"{test_subset}")
    names = None if layers is None else list(select_weights(model, layers))
    clean = {n: p.data for n, p in select_weights(model, names).items()} if measure_noise else {}
    n_test = len(test_source) if test_subset is None else min(test_subset, len(test_source))
    was_training = model.training
    errors, noise = [], []
    try:
        for d in range(draws):
            distortion_rng, bn_rng = draw_generators(seed, projection.spec, names, d)
            with saved_batchnorm_stats(model), \
                    distorted_weights(model, projection, distortion_rng, names) as distorted:
                if measure_noise:
                    noise.append(empirical_noise_power(clean, distorted))
                reestimate(model, train_source, bn, bn_rng)
                errors.append(error_rate(model, test_source, eval_batch_size, test_subset))
    finally:
        model.train(was_training)      # also when a batch failed halfway through re-estimation
    mean = math.fsum(errors) / len(errors)
    std = statistics.stdev(errors) if len(errors) > 1 else 0.0
    return Score(projection.spec, names, errors, mean, std, draws, n_test, noise)
