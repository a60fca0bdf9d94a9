"""Reference random kernels: counter-based random numbers (Philox-4x32-10) and the kernels
that use them — Table 1's Stoch and StochM over a flat buffer, Walking Noise's gaussian
noise, and the plain uniform and normal draws of the run's generator on a device
(``kernels/generator.py``). Like the rest of ``reference.py`` (which re-exports them) they are the readable oracle:
the GPU's kernels/cuda/random.cuh and stochastic.cuh must give the same uniforms bit for bit
(tests/test_kernels_stochastic.py). They draw on the host with NumPy and hand the result back
on the device of their input; on NumPy arrays ``kernels.get`` uses them as they are.
"""
from __future__ import annotations

from .. import backend


def philox_words(key, size):
    """The four 32-bit words of elements 0 .. size−1 of the draw keyed by key = (seed, stream):
    a (4, size) uint32 host array, Philox-4x32-10 with counter (e, stream) and key seed."""
    import numpy as np
    key = np.asarray(backend.to_numpy(key), dtype=np.int64).astype(np.uint64)
    seed, stream = int(key[0]), int(key[1])
    e = np.arange(size, dtype=np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    c = [e & mask, e >> np.uint64(32), np.full(size, stream & 0xFFFFFFFF, np.uint64),
         np.full(size, stream >> 32, np.uint64)]
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return np.stack(c).astype(np.uint32)


def philox_uniform(words, i, dtype):
    """Uniforms in [0, 1) from the words: the i-th (0 or 1) of each element (random.cuh)."""
    import numpy as np
    if np.dtype(dtype) == np.float32:
        return (words[i] >> np.uint32(8)).astype(np.float32) * np.float32(1 / 16777216)
    a = (words[2 * i] >> np.uint32(5)).astype(np.uint64)
    b = (words[2 * i + 1] >> np.uint32(6)).astype(np.uint64)
    return (a * np.uint64(67108864) + b).astype(np.float64) * (1.0 / 9007199254740992.0)


def philox_normal_pair(words, dtype):
    """Two N(0, 1) arrays by Box–Muller on the two uniforms of each element."""
    import numpy as np
    dt = np.dtype(dtype).type
    u1 = dt(1) - philox_uniform(words, 0, dtype)
    u2 = philox_uniform(words, 1, dtype)
    rad = np.sqrt(dt(-2) * np.log(u1))
    angle = dt(6.283185307179586) * u2
    return rad * np.cos(angle), rad * np.sin(angle)


def _to_like(host, like):
    return backend.to_device(host, "gpu" if backend.is_gpu_array(like) else "cpu")


def _stoch_signs(w, offsets, u):
    """+1 with probability p = (w/α + 1)/2 per element (α of its tensor; 1 if α = 0)."""
    import numpy as np
    from .reference import segment_slices        # not at the top: reference.py imports this
    w = backend.to_numpy(w)
    signs = np.empty_like(w)
    alphas = np.empty_like(w)
    for a, b in segment_slices(offsets):
        if b > a:
            alpha = np.abs(w[a:b]).max()
            safe = alpha if alpha > 0 else w.dtype.type(1)
            p = (w[a:b] / safe + 1) / 2
            signs[a:b] = np.where(u[a:b] < p, 1, -1)
            alphas[a:b] = alpha
    return signs, alphas


def stoch_projection_segments(w, offsets, key, pieces=None):
    """Table 1's Stoch for every tensor of a flat buffer, uniforms from Philox keyed by key:
    +α_s with probability (w/α_s + 1)/2, else −α_s (see ``projections.stoch``). ``pieces``:
    as ``reference.sign_projection_segments`` (not used)."""
    host = backend.to_numpy(w).reshape(-1)
    u = philox_uniform(philox_words(key, host.size), 0, host.dtype)
    signs, alphas = _stoch_signs(host, backend.to_numpy(offsets), u)
    return _to_like((alphas * signs).astype(host.dtype), w)


def stochm_projection_segments(w, offsets, key, gamma, pieces=None):
    """Table 1's StochM(γ) for every tensor of a flat buffer: s·|w|·(γ + (1/γ − γ)·u₂), the
    sign s drawn as Stoch's (see ``projections.stochm``). ``pieces``: not used (as Stoch)."""
    import numpy as np
    host = backend.to_numpy(w).reshape(-1)
    words = philox_words(key, host.size)
    signs, _ = _stoch_signs(host, backend.to_numpy(offsets), philox_uniform(words, 0, host.dtype))
    scale = gamma + (1.0 / gamma - gamma) * philox_uniform(words, 1, host.dtype)
    return _to_like((signs * np.abs(host) * scale).astype(host.dtype), w)


def gaussian_noise(x, key, sigma_add, sigma_mul, add_first=False):
    """Walking Noise's noise on x with z₁, z₂ from Philox keyed by key: ``(y, factor)``,
    f = 1 + σ_mul·z₁, y = x·f + σ_add·z₂ (add_first: (x + σ_add·z₂)·f); factor None when
    σ_mul = 0 (see ``walking_noise.noise``)."""
    host = backend.to_numpy(x)
    z1, z2 = philox_normal_pair(philox_words(key, host.size), host.dtype)
    z1, z2 = z1.reshape(host.shape), z2.reshape(host.shape)
    y, factor = host, None
    if add_first and sigma_add:
        y = y + sigma_add * z2
    if sigma_mul:
        factor = 1 + sigma_mul * z1
        y = y * factor
    if not add_first and sigma_add:
        y = y + sigma_add * z2
    if y is host:
        y = host.copy()
    return _to_like(y, x), (None if factor is None else _to_like(factor, x))


def _fill_dtype(dtype):
    import numpy as np
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"random draws: float32 or float64 only, got {dtype}")
    return dtype


def uniform_fill(key, size, dtype, low, high):
    """(size,) numbers U[low, high) of ``dtype`` keyed by key: low + (high − low)·u₁ with u₁ the
    first uniform of each element, the arithmetic in ``dtype`` (as the GPU's uniform_fill)."""
    dtype = _fill_dtype(dtype)
    dt = dtype.type
    u = philox_uniform(philox_words(key, int(size)), 0, dtype)
    return _to_like(dt(low) + dt(high - low) * u, key)


def normal_fill(key, size, dtype, mean, scale):
    """(size,) numbers N(mean, scale²) of ``dtype`` keyed by key: mean + scale·z₁, z₁ the first
    normal of each element's Box–Muller pair (as the GPU's normal_fill)."""
    dtype = _fill_dtype(dtype)
    dt = dtype.type
    z1, _ = philox_normal_pair(philox_words(key, int(size)), dtype)
    return _to_like(dt(mean) + dt(scale) * z1, key)
