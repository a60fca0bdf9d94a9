"""The GPU kernels' own per-element code, compiled for the CPU: how CI checks them without a GPU.

``kernels/cuda/host_loops.cpp`` calls the ``__host__ __device__`` functions of the kernel
headers in plain loops; this module compiles it with the system C++ compiler into a shared
library (once: it is cached in ``<cache_dir>/kernels/`` under a hash of the sources, so later
runs load it in milliseconds) and wraps each kernel with the signature of ``reference.py``::

    from tinyproj.kernels import host
    if host.available():                        # else host.unavailable_reason() says why
        cols = host.get("im2col_batch")(x, 3, 3, (1, 1), (1, 1))    # == reference.im2col_batch

NumPy arrays only; single-threaded and unoptimised on purpose — it exists to be compared with
``reference.py`` (tests/test_kernels_gpu_host.py), not to be fast: a difference found here is a
difference of the GPU kernel, because the GPU thread runs the very same function.

One file per kernel family, as in ``kernels/cuda/``, all re-exported here: ``host_build.py``
(the compiler, the cached library, calling an entry point), ``host_conv.py`` (conv.cu,
pool.cu), ``host_batchnorm.py``, ``host_optim.py`` (optim.cu, projection.cu),
``host_random.py`` (stochastic.cu).
"""
from __future__ import annotations

from .host_batchnorm import (batchnorm_backward, batchnorm_backward_fused, batchnorm_forward,
                             batchnorm_forward_fused)
from .host_build import (FLAGS, HostBuildError, available, build, compiler, library,
                         library_path, unavailable_reason)
from .host_conv import (col2im, col2im_batch, im2col, im2col_batch, maxpool_backward,
                        maxpool_forward, swap01)
from .host_optim import (adam_update, adam_update_scalars, clip_segments, sgd_update,
                         sgd_update_scalars, sign_projection, sign_projection_segments)
from .host_random import (gaussian_noise, normal_fill, stoch_projection_segments,
                          stochm_projection_segments, uniform_fill)

NAMES = ("im2col_batch", "col2im_batch", "im2col", "col2im", "swap01", "maxpool_forward",
         "maxpool_backward", "batchnorm_forward", "batchnorm_backward", "adam_update",
         "sgd_update", "sign_projection", "sign_projection_segments", "clip_segments",
         "batchnorm_forward_fused", "batchnorm_backward_fused", "stoch_projection_segments",
         "stochm_projection_segments", "gaussian_noise", "adam_update_scalars",
         "sgd_update_scalars", "uniform_fill", "normal_fill")
"""Every kernel of the host build; :func:`get` hands them out by name."""

__all__ = ["NAMES", "get", "FLAGS", "HostBuildError", "available", "build", "compiler",
           "library", "library_path", "unavailable_reason", *NAMES]


def get(name: str):
    """The host-compiled kernel ``name`` as a Python function with reference.py's signature.

    Names: ``NAMES`` — those of reference.py, plus ``sgd_update`` (see its docstring in
    host_optim.py). Raises HostBuildError when no build is possible.
    """
    if name not in NAMES:
        raise KeyError(f"unknown host kernel {name!r}; known: {', '.join(NAMES)}")
    library()
    return globals()[name]
