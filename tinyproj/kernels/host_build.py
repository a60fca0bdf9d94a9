"""Building the host twin of the CUDA kernels and calling into it (``kernels/host.py``).

``kernels/cuda/host_loops.cpp`` calls the ``__host__ __device__`` functions of the kernel
headers in plain loops; :func:`build` compiles it with the system C++ compiler into a shared
library, cached in ``<cache_dir>/kernels/`` under a hash of the sources (later runs load it in
milliseconds), and :func:`call` runs one of its entry points ``tp_<name>_<f32|f64>`` with the
argument kinds of ``cuda.KERNELS`` (p: an array's pointer, i: int64, t: a scalar of the
arrays' dtype).

Compiler: ``$CXX`` if set, else the first of c++, g++, clang++ on the PATH. Flags: -O2
-ffp-contract=off (no fused multiply-adds, as the GPU build's --fmad=false), C++17.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import cuda

__all__ = ["FLAGS", "HostBuildError", "compiler", "library_path", "build", "library",
           "available", "unavailable_reason", "call", "checked_out", "geometry_args",
           "contiguous"]

FLAGS = ["-O2", "-std=c++17", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
         "-Wall", "-Wextra"]


class HostBuildError(RuntimeError):
    """The kernels could not be compiled for the CPU (no compiler, or it failed)."""


_lib = None                      # the loaded library, once built
_error = None                    # the reason it cannot be, once known


def compiler():
    """The C++ compiler to use (a path), or None when there is none."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        return shutil.which(cxx)
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def library_path() -> Path:
    """Where the compiled library is cached: ``<cache_dir>/kernels/host-<hash>.so``."""
    from ..data import location
    return location.cache_dir() / "kernels" / f"host-{cuda.digest()}.so"


def build(force: bool = False) -> Path:
    """Compile host_loops.cpp unless the cached library for these sources exists; its path.

    The compiler writes to a temporary name in the cache folder that is renamed into place
    (docs/design.md rule 7), so two processes building at once never load half a file.
    """
    cxx = compiler()
    if cxx is None:
        raise HostBuildError("no C++ compiler found (set $CXX, or install g++ or clang++)")
    target = library_path()
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    cmd = [cxx, *FLAGS, "-I", str(cuda.FOLDER), str(cuda.FOLDER / "host_loops.cpp"), "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise HostBuildError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library():
    """The loaded library (built on first use); HostBuildError says why when it cannot be."""
    global _lib, _error
    if _lib is None:
        if _error is not None:
            raise HostBuildError(_error)
        try:
            _lib = ctypes.CDLL(str(build()))
        except (HostBuildError, OSError) as exc:
            _error = str(exc)
            raise HostBuildError(_error) from None
    return _lib


def available() -> bool:
    """True when the host build can be used (compiling it on the first call)."""
    try:
        library()
        return True
    except HostBuildError:
        return False


def unavailable_reason():
    """Why the host build cannot be used, or None when it can."""
    return None if available() else _error


# ---------------------------------------------------------------------------
# Calling a kernel: the argument kinds come from cuda.KERNELS (p pointer, i int64, t scalar T)
# ---------------------------------------------------------------------------
_SUFFIX = {np.dtype(np.float32): ("f32", ctypes.c_float),
           np.dtype(np.float64): ("f64", ctypes.c_double)}


def call(name: str, dtype, *args):
    dtype = np.dtype(dtype)
    if dtype not in _SUFFIX:
        raise TypeError(f"host kernel {name}: float32 or float64 arrays only, got {dtype}")
    suffix, scalar = _SUFFIX[dtype]
    kinds = cuda.KERNELS[name][1]
    if len(args) != len(kinds):
        raise TypeError(f"host kernel {name}: {len(kinds)} arguments expected, got {len(args)}")
    converted = []
    for kind, arg in zip(kinds, args):
        if kind == "p":
            if not (arg.flags.c_contiguous and arg.flags.aligned):
                raise ValueError(f"host kernel {name}: arrays must be C-contiguous")
            converted.append(ctypes.c_void_p(arg.ctypes.data))
        elif kind == "i":
            converted.append(ctypes.c_longlong(int(arg)))
        else:
            converted.append(scalar(float(arg)))
    getattr(library(), f"tp_{name}_{suffix}")(*converted)


checked_out = cuda.checked_out              # shared with gpu.py: the kernels' own argument rules
geometry_args = cuda.geometry_args


def contiguous(a):
    return np.ascontiguousarray(a)
