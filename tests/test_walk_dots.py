"""The dot a Walking Noise figure draws on each curve sits at the μ the tables report."""
import math

import numpy as np
import pytest

from tinyproj.reporting.walking_noise_figures import _crossing
from tinyproj.walking_noise.midpoint import midpoint_sigma


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_the_figure_dot_is_the_tabulated_midpoint(scale):
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(500):
        n = int(rng.integers(2, 12))
        grid = [10 ** (k / 2) for k in range(-4, 20)] if scale == "log" else list(range(25))
        xs = sorted(float(x) for x in rng.choice(grid, n, replace=False))
        ys = [float(y) for y in rng.uniform(5, 100, n)]          # accuracy in percent
        dot = _crossing(xs, ys, 10.0, log=scale == "log")
        mu = midpoint_sigma(xs, [y / 100 for y in ys], chance=0.1, scale=scale)
        if mu.sigma is None:
            assert dot is None
            continue
        found += 1
        assert math.isclose(dot[0], mu.sigma, rel_tol=1e-9)
        assert math.isclose(dot[1], 100 * mu.threshold, rel_tol=1e-9)
    assert found > 100                                   # most random curves do cross
