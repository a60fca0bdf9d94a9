"""Array kernels behind the ops, and the single point that chooses them.

* ``reference.py`` — plain array code (slicing, no loops over pixels). It is the readable
  version of every kernel and the oracle the tests compare against; it runs unchanged on
  NumPy and CuPy. ``reference_random.py`` holds its counter-based random numbers (Philox)
  and the stochastic kernels, which ``reference.py`` re-exports.
* ``cpu*.py`` (Numba) — parallel loops that compute the same thing on NumPy arrays; used by
  default on the CPU (NUMBA_MODULES says which file holds which): ``cpu.py`` im2col / col2im
  and swap01, ``cpu_pool.py`` max pooling, ``cpu_batchnorm.py`` batch norm, ``cpu_optim.py``
  Adam and Sign, ``cpu_fused.py`` the fused ones (batch norm + ReLU with its running
  statistics, SGD, Sign and the clip over every layer of a flat buffer).
* ``gpu.py`` + ``cuda/`` — CUDA kernels for CuPy arrays (one launch per op, no host syncs),
  used by default on the GPU. Their per-element arithmetic is written once in ``cuda/*.cuh``
  as ``__host__ __device__`` functions, which ``host.py`` also compiles for the CPU with the
  system C++ compiler, so CI checks the GPU arithmetic against the reference without a GPU
  (``host.get(name)``: the same kernel, same signature, on NumPy arrays).
* ``reference_device.py`` — the readable twins of ``adam_update_scalars`` and
  ``sgd_update_scalars`` (STEP_NAMES), which read lr and Adam's bias corrections from device
  memory so that a CUDA graph can replay them (tinyproj/graphs.py).
* ``workspace.py`` — scratch buffers the convolution reuses from step to step.
* ``geometry.py`` — window arithmetic (output sizes, padding checks) shared by the kernels,
  the functional ops and the models; it computes no arrays.

Two switches, both read at every call:

* ``TINYPROJ_KERNELS=reference`` forces the readable path everywhere (for example to step
  through it in a debugger, or to time it); ``auto`` (the default) uses the fast kernels.
* ``NUMBA_DISABLE_JIT=1`` (set before Python starts) turns the Numba kernels into plain
  Python that a debugger can step into, line by line.

Functional code calls ``kernels.get("im2col_batch", x)(x, ...)`` — the kernel for arrays
like ``x`` — and never imports a kernel module directly.

Another array module (the counting CPU stand-in for the GPU, say) can supply its own kernels:
if the module that owns ``like`` has a function ``tinyproj_kernel(name)``, ``get`` returns what
it returns (None: the reference kernel).
"""
from __future__ import annotations

import importlib
import os
import warnings
import weakref

import numpy as np

from . import reference

KERNEL_NAMES = ("im2col", "col2im", "im2col_batch", "col2im_batch", "swap01",
                "maxpool_forward", "maxpool_backward", "batchnorm_forward",
                "batchnorm_backward", "adam_update", "sign_projection",
                # fused (issues 11 and 15): several ops in one launch / one pass
                "batchnorm_forward_fused", "batchnorm_backward_fused", "sgd_update",
                "sign_projection_segments", "clip_segments",
                # random (Philox, kernels/cuda/random.cuh): Table 1's Stoch and StochM over a
                # flat buffer, Walking Noise's noise; key = (seed, stream) int64 on the device
                "stoch_projection_segments", "stochm_projection_segments", "gaussian_noise",
                # the plain draws of the run's generator on a device (kernels/generator.py)
                "uniform_fill", "normal_fill")
STEP_NAMES = ("adam_update_scalars", "sgd_update_scalars")
"""Kernels that read per-step scalars (lr, Adam's bias corrections) from device memory, so a
CUDA graph can replay them (reference_device.py; not in KERNEL_NAMES: NumPy has no use for
them, the CPU optimizers pass Python numbers)."""
FUSED_NAMES = KERNEL_NAMES[11:16]    # the CPU versions of these are in cpu_fused.py
RANDOM_NAMES = KERNEL_NAMES[16:]     # on NumPy arrays: the reference (NumPy's Philox)
NUMBA_MODULES = {**dict.fromkeys(KERNEL_NAMES[:5], "cpu"),          # im2col / col2im, swap01
                 **dict.fromkeys(KERNEL_NAMES[5:7], "cpu_pool"),     # max pooling
                 **dict.fromkeys(KERNEL_NAMES[7:9], "cpu_batchnorm"),
                 **dict.fromkeys(KERNEL_NAMES[9:11], "cpu_optim"),   # Adam, Sign
                 **dict.fromkeys(FUSED_NAMES, "cpu_fused")}
"""The module of this package that holds the Numba version of each kernel (RANDOM_NAMES have
none)."""

_cpu = None            # the Numba module once imported; False when Numba is unusable


def mode() -> str:
    """The kernel family in force: ``"reference"`` or ``"auto"`` (fast where available)."""
    value = os.environ.get("TINYPROJ_KERNELS", "auto").strip().lower()
    if value not in ("auto", "reference"):
        raise ValueError(f"TINYPROJ_KERNELS={value!r}: use 'auto' (default) or 'reference'")
    return value


def compiled(module: str):
    """The Numba module ``tinyproj.kernels.<module>`` (``shifted_cpu``, ``winograd_cpu``: the
    compiled copies of an algorithm whose readable version lives beside it), or None in
    reference mode or where Numba cannot be imported — the caller then runs its readable one."""
    if mode() == "reference":
        return None
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError:
        return None


def cpu_module():
    """``kernels.cpu`` (imported on first use), or None where Numba cannot be imported (then
    no Numba kernel runs: ``get`` hands out the reference's)."""
    global _cpu
    if _cpu is None:
        try:
            from . import cpu
            _cpu = cpu
        except ImportError as exc:                  # numba is a dependency; warn, don't fail
            warnings.warn(f"tinyproj: the Numba kernels are unavailable ({exc}); using the "
                          "reference kernels (slower). Reinstall numba to get them back.")
            _cpu = False
    return _cpu or None


def get(name: str, like=None):
    """The kernel called ``name`` for arrays like ``like`` in the current mode.

    like: an array the kernel will work on (or None: decide by the backend in use). In
    ``auto`` mode NumPy arrays get the Numba kernel, CuPy arrays the CUDA kernel (gpu.py), the
    arrays of a module with ``tinyproj_kernel(name)`` that module's kernel; anything else, and
    everything in ``reference`` mode, the reference kernel.
    """
    if name in STEP_NAMES:
        return _get_step(name, like)
    if name not in KERNEL_NAMES:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(KERNEL_NAMES)}")
    if mode() == "reference":
        return getattr(reference, name)
    place = _place(like)
    if place == "numpy":
        if cpu_module() is None or name in RANDOM_NAMES:
            return getattr(reference, name)
        return getattr(importlib.import_module(f"{__name__}.{NUMBA_MODULES[name]}"), name)
    if place == "cupy":
        from . import gpu
        return getattr(gpu, name)
    own = getattr(place, "tinyproj_kernel", None) if place is not None else None
    kernel = own(name) if callable(own) else None
    return kernel if kernel is not None else getattr(reference, name)


def _get_step(name: str, like):
    """A kernel of STEP_NAMES: CUDA for CuPy arrays, the owning module's (the stand-in's
    host-compiled twin) for others, the readable twin in reference mode and on NumPy."""
    from . import reference_device
    if mode() == "reference":
        return getattr(reference_device, name)
    place = _place(like)
    if place == "cupy":
        from . import gpu
        return getattr(gpu, name)
    own = getattr(place, "tinyproj_kernel", None) if place not in (None, "numpy") else None
    kernel = own(name) if callable(own) else None
    return kernel if kernel is not None else getattr(reference_device, name)


_seeded = weakref.WeakKeyDictionary()    # another generator → the PhiloxGenerator it seeded
_seeded_strong = {}                       # id → (generator, PhiloxGenerator) without weakrefs


def random_key(rng, like):
    """A key (seed, stream) for the random kernels: a (2,) int64 array on the device of ``like``.

    On the host (a NumPy generator) a fresh key is drawn from ``rng`` at each call, so a CPU
    run's draws follow its generator, whose state the checkpoint saves.

    On a device the key is the (seed, stream) array of a :class:`generator.PhiloxGenerator`:
    each call moves its stream on by one **on the device** (one launch) and returns the same
    array. No host sync, no copy — and because the counter moves in device memory, a CUDA
    graph that replays the step (tinyproj/graphs.py) draws new numbers at every replay
    instead of the numbers of the captured step. The kernels read the key when they run, in
    stream order, so each consumer sees its own stream value. The run's generator on a device
    *is* a PhiloxGenerator (``backend.make_rng``), so the key is part of the state its
    checkpoint saves; any other generator (CuPy's, passed in by a user) seeds one of its own
    on first use (one read of the drawn seed), whose state no checkpoint holds.
    """
    from .. import backend
    from .generator import PhiloxGenerator
    if not isinstance(rng, PhiloxGenerator):
        if not backend.is_gpu_array(like):
            key = rng.integers(0, 2 ** 62, size=2, dtype=np.int64)
            return backend.to_numpy(key) if backend.is_gpu_array(key) else key
        rng = _philox_seeded_by(rng)
    key = rng.next_key()
    return key if backend.is_gpu_array(like) else backend.to_numpy(key).copy()


def _philox_seeded_by(rng):
    """The PhiloxGenerator a non-Philox generator seeded (made on its first use here)."""
    from .generator import PhiloxGenerator
    try:
        philox = _seeded.get(rng)
    except TypeError:                                # not weakly referenceable: kept for good
        entry = _seeded_strong.get(id(rng))
        philox = entry[1] if entry is not None and entry[0] is rng else None
    if philox is None:
        from .. import backend
        seed = int(backend.to_numpy(rng.integers(0, 2 ** 62, size=1, dtype=np.int64))[0])
        philox = PhiloxGenerator(seed)
        try:
            _seeded[rng] = philox
        except TypeError:
            _seeded_strong[id(rng)] = (rng, philox)
    return philox


def family(like=None) -> str:
    """In words, which kernels ``get`` hands out for arrays like ``like`` (``tinyproj info``)."""
    if mode() == "reference":
        return "reference (forced by TINYPROJ_KERNELS=reference)"
    place = _place(like)
    if place == "numpy":
        return "numba on the CPU" if cpu_module() is not None else "reference (numba unavailable)"
    if place == "cupy":
        return "cuda (kernels/gpu.py: cupy.RawModule from kernels/cuda/)"
    if callable(getattr(place, "tinyproj_kernel", None)):
        return f"{place.__name__}.tinyproj_kernel"
    return "reference"


def _place(like):
    """"numpy", "cupy", or the array module that owns ``like`` (the backend's when None)."""
    from .. import backend
    if like is None:
        name = backend.name()
        return name if name in ("numpy", "cupy") else backend.xp()
    if isinstance(like, np.ndarray):
        return "numpy"
    if type(like).__module__.split(".")[0] == "cupy":
        return "cupy"
    return backend.xp_of(like)
