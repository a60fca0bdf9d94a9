"""What a walk walks over: the σ grid, the sites, and one generator per grid point.

A walk (``walk.py``) visits the grid points (site k, σ) in this order::

    for k in walk_sites(noisy, sites):         # sites in model order; -1 "all", -2 "all-no-bn"
        for σ in check_sigmas(sigmas):         # as given, repeats dropped
            (noise_rng, bn_rng) = point_generators(seed, spec, k, σ)

Each point draws from its own generators, seeded from (seed, noise, site, σ) only
(``runs.grid.seed_words``), so a point gives the same accuracy whether it runs alone, in a
shard or in a full walk. Without a grid the walk takes :func:`default_sigmas` (half decades);
the authors' grids are named presets in ``grids.py``.
"""
from __future__ import annotations

import math

from .. import backend
from ..runs.grid import seed_words
from .noise import NoiseSpec, parse_noise
from .sites import NO_BN_NAMES, NoisyModel

__all__ = ["check_sigmas", "default_sigmas", "walk_sites", "point_generators"]


def check_sigmas(sigmas, allow_zero: bool = False) -> list:
    """The σ grid as floats in the given order, repeats dropped; each must be finite and > 0
    (>= 0 with ``allow_zero``: the linear grids of ``grids.py``, which start at σ = 0).

    Accepts a list or a comma-separated string ("0.01,0.1,1,10").
    """
    if isinstance(sigmas, str):
        sigmas = [s for s in (p.strip() for p in sigmas.split(",")) if s]
    if sigmas is None or isinstance(sigmas, (int, float)):
        sigmas = [] if sigmas is None else [sigmas]
    out = []
    for s in sigmas:
        try:
            value = float(s)
        except (TypeError, ValueError):
            raise ValueError(f"sigma {s!r} is not a number; give noise levels such as "
                             "0.01,0.1,1,10") from None
        if not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
            if allow_zero:
                raise ValueError(f"every sigma must be a finite number >= 0 (σ = 0 is the "
                                 f"clean point of a linear grid), got {s!r}")
            raise ValueError(f"every sigma must be a finite number > 0 (the walk and its "
                             f"midpoint live on a log scale; σ = 0 only on a linear grid: "
                             f"walk(..., allow_zero=True)), got {s!r}")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("no sigmas to walk; give at least one noise level > 0, e.g. "
                         "0.01,0.1,1,10")
    return out


def default_sigmas(kind="additive") -> list:
    """A log grid in half-decade steps: additive 1e-2 … 1e10 (Walking Noise's range),
    multiplicative 1e-3 … 1e3, combined 1e-2 … 1e4."""
    kind = parse_noise(kind).kind if not isinstance(kind, NoiseSpec) else kind.kind
    lo, hi = {"additive": (-2, 10), "multiplicative": (-3, 3), "combined": (-2, 4)}[kind]
    return [float(f"{10 ** (k / 2):.6g}") for k in range(2 * lo, 2 * hi + 1)]


def walk_sites(noisy: NoisyModel, sites="each") -> list:
    """Site indices to walk: "each" = every site one at a time, "all" = [-1] (every site at
    once, global noise), "all-no-bn" = [-2] (global noise without the sites after batch norm,
    the authors' BN-noNoise), or a list of indices/names (each one at a time; "all" and
    "all-no-bn" may be in it, also as -1 and -2: in a list these are the global points, not
    the last sites)."""
    if isinstance(sites, str) and sites.strip().lower() == "each":
        return [s.index for s in noisy.sites]
    if isinstance(sites, str) and sites.strip().lower() == "all":
        return [-1]
    if isinstance(sites, str) and sites.strip().lower() in NO_BN_NAMES:
        return [-2]
    if sites is None:
        raise ValueError("sites: give 'each', 'all' or a list of site names/indices")
    if isinstance(sites, (int, str)):
        sites = [sites]
    out = []
    for s in sites:
        if (isinstance(s, str) and s.strip().lower() == "all") or (
                isinstance(s, int) and not isinstance(s, bool) and s == -1):
            index = -1
        elif (isinstance(s, str) and s.strip().lower() in NO_BN_NAMES) or (
                isinstance(s, int) and not isinstance(s, bool) and s == -2):
            index = -2
        else:
            index = noisy.site(s).index
        if index not in out:
            out.append(index)
    return out


def point_generators(seed: int, spec: NoiseSpec, site: int, sigma: float):
    """``(noise_rng, bn_rng)`` of one grid point, seeded from (seed, noise, site, σ) only."""
    key = f"{spec.label}|repeats={spec.repeats}|site={site}|sigma={float(sigma)!r}"
    if spec.repeat_at != "network":          # only then: the draws of older walks stay
        key += f"|at={spec.repeat_at}|n={spec.site_repeats}"
    return (backend.make_rng([seed, 11, *seed_words(key)]),
            backend.make_rng([seed, 12, *seed_words(key)]))

