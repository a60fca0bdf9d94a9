"""Power with its random β kept on the device (Tr-Power-C on a GPU, replayable as a graph).

Tr-Power-C draws β ~ U(0, 2) once per minibatch (``Projection.sample``). On a device the draw
happens there, and ``sample`` used to read it back as a Python float — a device→host sync per
step, and a value that a CUDA graph would freeze at capture (tinyproj/graphs.py). Here β stays
a 0-d device array of the weights' dtype and every layer computes

    Power(w, β) = α · |w/α|^β · sign(w),   α = max|w|,   sign(0) = +1

with it, in array operations that read β when they run. Same draw from the same generator,
same rounding of β to float32, same formula as ``projections.power`` — so the same P_k bit
for bit, except at β exactly 0 or 1, where ``power`` takes the exact shortcuts Sign and None
(a draw hits those with probability 2⁻⁵³).
"""
from __future__ import annotations

from .. import backend
from .spec import Projection, Uniform

__all__ = ["sample", "power", "DevicePower"]


def power(w, beta):
    """Power(w, β) for a 0-d device array β of w's dtype (no host branch on its value)."""
    xp = backend.xp_of(w)
    if w.size == 0:
        return w.copy()
    alpha = xp.max(xp.abs(w))
    safe_alpha = xp.where(alpha > 0, alpha, xp.ones((), dtype=w.dtype))
    magnitude = xp.abs(w / safe_alpha) ** beta                      # in [0, 1]
    signs = xp.where(w >= 0, 1, -1).astype(w.dtype)
    return (alpha * magnitude * signs).astype(w.dtype, copy=False)


class DevicePower:
    """A Power projection for one minibatch whose β is a device array (never read here)."""

    name = "power"
    random_params = ()
    stochastic = False

    def __init__(self, spec: str, beta):
        self.beta = beta
        self.params = {"beta": beta}
        self.spec = f"{spec} (beta drawn on the device)"

    def __call__(self, w, rng=None):
        return power(w, self.beta if self.beta.dtype == w.dtype else self.beta.astype(w.dtype))


def sample(projection: Projection, rng, like):
    """``projection.sample(rng)``, except Power with a random β on a device generator: then a
    :class:`DevicePower` whose β was drawn there (two launches: the generator moves its stream
    and fills; then one cast) and stays there."""
    beta = projection.params.get("beta") if projection.name == "power" else None
    if not isinstance(beta, Uniform) or not backend.is_gpu_array(like):
        return projection.sample(rng)
    drawn = (backend.global_rng() if rng is None else rng).uniform(beta.low, beta.high, 1)
    if not backend.is_gpu_array(drawn):          # a host generator: the ordinary path
        return Projection("power", beta=float(drawn[0]))
    return DevicePower(projection.spec, drawn.reshape(()).astype(like.dtype))
