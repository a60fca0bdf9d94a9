"""Error bars for the report: mean ± std (n), printed with the precision the spread allows.

Two sources of spread, both reported as the sample standard deviation (ddof = 1) with n:

* **over draws** — the K draws of one network (random noise of a stochastic distortion, and
  the training images used to re-estimate batch norm): the ``error_std`` / ``draws`` of a
  sweep row or a ``sweeps/table2.jsonl`` row;
* **over seeds** — networks trained alike except for the seed: :func:`seed_groups` finds
  them, :func:`over_seeds` combines their values (each network's mean over its draws).

Precision (:func:`format_error`): the mean is printed to the decimal of the std's first
significant digit (two digits when that digit is 1 or 2), so "59.7 ± 0.4" and "8.12 ± 0.15",
never "59.7412 ± 0.4"; a value without a spread (n = 1) keeps two decimals and says n = 1.
"""
from __future__ import annotations

import math
import statistics

__all__ = ["decimals_for", "format_error", "over_seeds", "seed_groups", "SEED_FREE_KEYS"]

SEED_FREE_KEYS = ("seed", "out", "data_dir")
"""Config fields that may differ between networks of one seed group."""


def decimals_for(std: float | None, most: int = 3) -> int:
    """Decimals that show ``std`` to one significant digit (two when it starts with 1 or 2)."""
    if std is None or not math.isfinite(std) or std <= 0:
        return 2
    exponent = math.floor(math.log10(std))
    lead = std / 10 ** exponent
    digits = -exponent + (1 if lead < 3 else 0)
    return max(0, min(most, digits))


def format_error(mean: float | None, std: float | None = None, n: int | None = None,
                 unit: str = "") -> str:
    """``"59.7 ± 0.4 (n = 5)"``; ``"59.74 (n = 1)"`` without a spread; ``"—"`` for None."""
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "—"
    count = f" (n = {n})" if n is not None else ""
    if n is not None and n < 2 or std is None:
        return f"{mean:.2f}{unit}{count}"
    d = decimals_for(std)
    return f"{mean:.{d}f} ± {std:.{d}f}{unit}{count}"


def over_seeds(values) -> tuple:
    """``(mean, std, n)`` of per-network values (None dropped; std None when n < 2)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None, 0
    mean = math.fsum(vals) / len(vals)
    return mean, (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def _setup_key(config: dict) -> str:
    import json
    return json.dumps({k: v for k, v in sorted(config.items()) if k not in SEED_FREE_KEYS},
                      sort_keys=True, default=str)


def seed_groups(runs) -> dict:
    """``{name: [runs]}``: runs whose configs differ only in seed (and folder) grouped, in
    first-seen order; a group's name is the first run's preset (else its label). Runs alone
    in their group form a group of one."""
    groups, names = {}, {}
    for run in runs:
        key = _setup_key(run.config)
        if key not in groups:
            groups[key] = []
            names[key] = run.preset or run.label
        groups[key].append(run)
    out, used = {}, set()
    for key, members in groups.items():
        name = names[key]
        if name in used:                     # two setups with one preset: keep them apart
            name = members[0].label
        used.add(name)
        out[name] = members
    return out


def average_rows(row_lists: list) -> list:
    """One sweep curve from several networks' (seeds'): at each level every network has,
    ``error_mean`` = the mean of their means, ``error_std`` = the std over networks
    (ddof = 1), ``seeds`` = n, ``bits_per_weight`` = the mean (None if any is None)."""
    by_level = [{float(r["level"]): r for r in rows} for rows in row_lists]
    common = sorted(set.intersection(*(set(d) for d in by_level))) if by_level else []
    out = []
    for level in common:
        rows = [d[level] for d in by_level]
        mean, std, n = over_seeds(r.get("error_mean") for r in rows)
        bits = [r.get("bits_per_weight") for r in rows]
        out.append(dict(rows[0], error_mean=mean, error_std=std or 0.0, seeds=n,
                        errors=[r.get("error_mean") for r in rows],
                        bits_per_weight=None if any(b is None for b in bits)
                        else math.fsum(bits) / len(bits)))
    return out
