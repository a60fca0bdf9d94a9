"""The run's random generator on a device: Philox keyed by (seed, stream), state saved with the run.

Why not CuPy's own generator? Two reasons, both about the paper's long GPU runs:

1. **Its state cannot be saved.** ``cupy.random.Generator`` keeps a curand state per GPU
   thread in device memory, with no public way to read it or write it back. A run resumed
   after Ctrl-C or a cluster's preemption would then draw other numbers than the
   uninterrupted run (its next epoch's shuffle, its dropout masks, its Power β), so the two
   runs would part ways at the first draw after the resume.
2. **A CUDA graph must replay it** (tinyproj/graphs.py): whatever a draw reads has to sit in
   device memory and move there, never on the host.

This generator is a counter-based one. Its whole state is two 64-bit integers in a (2,)
int64 device array, ``key = (seed, stream)``. Each draw first moves the stream on by one, on
the device (one launch, no host sync), and then fills its output with the Philox numbers of
counter (e, stream) and key seed — the very function the stochastic kernels use
(kernels/cuda/random.cuh, with its NumPy twin in reference_random.py)::

    draw k (k = 1, 2, ...):  stream ← stream + 1
                             element e = philox(counter = (e, stream), key = seed)
        random / uniform:    low + (high − low)·u₁     u₁ ∈ [0, 1), the first uniform of e
        standard_normal:     mean + scale·z₁                z₁ of e's Box–Muller pair

So saving the state is reading two numbers (``state``, one copy to the host at a
checkpoint), restoring it is writing them back, and draw k after a resume gives the numbers
of draw k in the uninterrupted run. The stochastic projections and Walking Noise's noise use
the same key (``kernels.random_key`` moves it on and hands it over), so they are part of the
saved state too.

The methods are the part of NumPy's and CuPy's ``Generator`` interface the library uses:
``random``, ``uniform``, ``standard_normal``, ``normal`` and ``integers`` (a shuffle is
``backend.permutation``: the argsort of uniforms); results are device arrays of the backend
in use (CuPy, or the stand-in). ``backend.make_rng`` returns one on a device; on NumPy runs
keep NumPy's PCG64, whose state NumPy saves itself.

Shapes: ``size`` None gives a 0-d array, an int n a (n,) array, a tuple that shape.
"""
from __future__ import annotations

import math

import numpy as np  # host side: the seed's words, dtypes, the key of device="cpu"

__all__ = ["PhiloxGenerator"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _shape(size) -> tuple:
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


def key_seed(seed) -> int:
    """The 63-bit key seed of ``seed`` (an int ≥ 0, a sequence of them, or None: fresh entropy),
    through NumPy's SeedSequence, so that seeds 1 and 2 give unrelated keys."""
    words = np.random.SeedSequence(seed).generate_state(2, np.uint32)
    return int(words[0]) | (int(words[1]) & 0x7FFFFFFF) << 32


class PhiloxGenerator:
    """A seeded generator whose draws are device arrays and whose state is (seed, stream).

    seed: as NumPy's ``default_rng`` takes it (an int ≥ 0, a sequence, or None).
    device: ``"gpu"`` (the default: CuPy, or the stand-in while it is the backend) — where the
    key and the draws live.
    """

    def __init__(self, seed=None, device: str = "gpu"):
        from .. import backend
        if device not in ("gpu", "cpu"):
            raise ValueError(f"unknown device {device!r}; choose 'gpu' or 'cpu'")
        if device == "cpu":
            xp = np
        else:                          # the device backend in use; CuPy while NumPy is in use
            xp = backend.xp() if backend.on_device() else backend._import_cupy()
        # filled on the device from launch arguments, not copied up: no host→device transfer,
        # so a generator can be made inside a captured step (a CUDA graph refuses copies)
        self._key = xp.full(2, key_seed(seed), dtype=np.int64)
        self._key[1:] = 0

    # -- state -------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """``{"seed": int, "stream": int}`` — the draws made so far (one copy to the host)."""
        from .. import backend
        seed, stream = (int(v) for v in backend.to_numpy(self._key))
        return {"seed": seed, "stream": stream}

    @state.setter
    def state(self, value: dict) -> None:
        try:
            seed, stream = (int(np.int64(value[k])) for k in ("seed", "stream"))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError(f"a PhiloxGenerator state is {{'seed': int, 'stream': int}}, "
                             f"got {value!r}") from None
        # written in place (a captured graph keeps reading this very array), from launch
        # arguments (no copy)
        self._key[:1] = seed
        self._key[1:] = stream

    def next_key(self):
        """Move the stream on by one (on the device) and return the key array itself.

        The consumer's kernel reads it when it runs, in stream order, so it sees this stream;
        the next draw moves it on again. Used by every draw below and by ``kernels.random_key``.
        """
        stream = self._key[1:]           # a view: `self._key[1:] += 1` would add a copy
        stream += 1
        return self._key

    # -- draws -------------------------------------------------------------------------
    def _fill(self, kernel: str, size, dtype, a, b):
        from . import get
        dtype = np.dtype(dtype)
        if dtype not in _FLOATS:                 # checked before the stream moves on
            raise TypeError(f"PhiloxGenerator draws float32 or float64 numbers, not {dtype}")
        shape = _shape(size)
        key = self.next_key()
        return get(kernel, key)(key, math.prod(shape), dtype, a, b).reshape(shape)

    def random(self, size=None, dtype=np.float64):
        """Uniform numbers in [0, 1)."""
        return self._fill("uniform_fill", size, dtype, 0.0, 1.0)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        """Uniform numbers in [low, high): low + (high − low)·u, computed in ``dtype``."""
        return self._fill("uniform_fill", size, dtype, float(low), float(high))

    def standard_normal(self, size=None, dtype=np.float64):
        """Numbers from N(0, 1)."""
        return self._fill("normal_fill", size, dtype, 0.0, 1.0)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=np.float64):
        """Numbers from N(loc, scale²)."""
        return self._fill("normal_fill", size, dtype, float(loc), float(scale))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        """Integers in [low, high) (``endpoint``: [low, high]); ``integers(n)`` is [0, n).

        floor(u·span) of a 53-bit uniform u: each value's probability is within span/2⁵³ of
        1/span, so spans are limited to 2³² (a bias below 10⁻⁶); the host's generator serves
        larger ones.
        """
        from .. import backend
        low, high = (0, int(low)) if high is None else (int(low), int(high))
        span = high - low + (1 if endpoint else 0)
        if not 0 < span <= 2 ** 32:
            raise ValueError(f"integers: the range [{low}, {high}{']' if endpoint else ')'} "
                             "must hold 1 to 2**32 values")
        u = self.random(size)
        xp = backend.xp_of(u)
        k = xp.minimum(xp.floor(u * span), span - 1)      # u·span may round up to span
        return (k + low).astype(dtype)

    def __repr__(self):
        return "PhiloxGenerator(key on the device: seed, stream)"
