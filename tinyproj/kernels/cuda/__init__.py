"""The kernel sources: C++ headers whose per-element functions both builds share.

    common.cuh        TP_HD (``__host__ __device__`` under nvcc, plain ``inline`` otherwise), TP_BLOCK
    conv.cuh/.cu      im2col_batch, col2im_batch (gather-style)
    pool.cuh/.cu      maxpool_forward, maxpool_backward (gather-style)
    batchnorm.cuh/.cu batchnorm_forward, batchnorm_backward (one block per channel, fixed order)
    optim.cuh/.cu     adam_update, sgd_update (flat buffers: all parameters in one launch);
                      *_scalars: the same, lr and Adam's bias corrections read from the device
    projection.cuh/.cu maxabs, sign_apply, and *_segments (Sign, the clip): every layer at
                      once over a flat buffer with an offsets table
    random.cuh        Philox-4x32-10 counter-based random numbers: uniforms, normal pairs
    stochastic.cuh/.cu stoch_segments, stochm_segments (Table 1, every layer at once) and
                      gaussian_noise (Walking Noise), keyed by (seed, stream) in device memory;
                      uniform_fill, normal_fill (the plain draws of kernels/generator.py)
    host_loops.cpp    the same functions in plain loops, exported as tp_<name>_f32 / _f64

kernels/gpu.py compiles the .cu files with CuPy (``cupy.RawModule``); kernels/host.py compiles
host_loops.cpp with the system C++ compiler for the tests. ``KERNELS`` below is the one table
of the launchable kernels both use: their file and the kinds of their arguments, in order
(p = a pointer to an array, i = a 64-bit integer ``tp_int``, t = a scalar of the element type T).
tests/test_kernels_ptx.py checks it against the sources, so a typo fails on any machine.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent

_GEOMETRY = "i" * 10                     # n, c, h, w, kh, kw, sh, sw, ph, pw
KERNELS = {
    "im2col_batch": ("conv.cu", "pp" + _GEOMETRY + "t"),
    "col2im_batch": ("conv.cu", "pp" + _GEOMETRY),
    "maxpool_forward": ("pool.cu", "ppp" + _GEOMETRY),
    "maxpool_backward": ("pool.cu", "ppp" + _GEOMETRY),
    "batchnorm_forward": ("batchnorm.cu", "ppppppppp" + "ppp" + "iii" + "t" + "iiii" + "ttt" + "ii"),
    "batchnorm_backward": ("batchnorm.cu", "ppppppppp" + "iii" + "iii"),
    "adam_update": ("optim.cu", "pppp" + "i" + "tttttttt"),
    "sgd_update": ("optim.cu", "ppp" + "i" + "ttt" + "ii"),
    "adam_update_scalars": ("optim.cu", "pppp" + "i" + "p" + "ttttt"),
    "sgd_update_scalars": ("optim.cu", "ppp" + "i" + "p" + "tt" + "ii"),
    "maxabs": ("projection.cu", "pip"),
    "sign_apply": ("projection.cu", "pppi"),
    "maxabs_segments": ("projection.cu", "ppip"),
    "sign_segments": ("projection.cu", "ppippi"),
    "clip_segments": ("projection.cu", "ppippi"),
    "stoch_segments": ("stochastic.cu", "ppipppi"),
    "stochm_segments": ("stochastic.cu", "ppipppi" + "tt"),
    "gaussian_noise": ("stochastic.cu", "pppp" + "i" + "tt" + "ii"),
    "uniform_fill": ("stochastic.cu", "ppi" + "tt"),
    "normal_fill": ("stochastic.cu", "ppi" + "tt"),
}
BLOCK = 256                              # TP_BLOCK in common.cuh: threads of a reduction block


def geometry_args(x_shape, kh, kw, stride, pad) -> tuple:
    """The 10 geometry arguments of the conv and pool kernels (``_GEOMETRY``), in their order."""
    n, c, h, w = (int(s) for s in x_shape)
    return (n, c, h, w, kh, kw, stride[0], stride[1], pad[0], pad[1])


def checked_out(out, shape, dtype):
    """``out`` checked (the kernels write it as a flat C-contiguous array), or None; NumPy or
    CuPy arrays alike."""
    if out is not None and (tuple(out.shape) != tuple(shape) or out.dtype != dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype)} array of shape "
                         f"{tuple(shape)}, got {out.dtype} {tuple(out.shape)}")
    return out


def families() -> list:
    """The .cu files, one per kernel family, in a fixed order."""
    return sorted({file for file, _ in KERNELS.values()})


def source_files() -> list:
    """Every source file of this folder (headers, .cu, host_loops.cpp), sorted by name."""
    return sorted(p for p in FOLDER.iterdir() if p.suffix in (".cuh", ".cu", ".cpp"))


def digest() -> str:
    """A hash of every source file (name and bytes): the key of the compiled caches."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)


def expanded(name: str, _seen=None) -> str:
    """The text of source ``name`` with its local ``#include "..."`` lines replaced by the files.

    CuPy keys its compile cache on the source text, so handing it one self-contained text
    means a changed header can never be served from a stale cache. Each header is put in once.
    """
    seen = set() if _seen is None else _seen
    seen.add(name)

    def include(match):
        header = match.group(1)
        if header in seen:
            return f"// ({header}: already included above)"
        return expanded(header, seen)

    path = FOLDER / name
    if not path.exists():
        raise FileNotFoundError(
            f"the CUDA kernel source {path} is missing from this installation of tinyproj (the "
            "package was built without its .cuh/.cu/.cpp files); install from a source "
            "checkout (pip install -e .) or set TINYPROJ_KERNELS=reference")
    return _INCLUDE.sub(include, path.read_text())


def kernel_parameters(text: str, name: str):
    """The argument kinds (p/i/t) of ``name(...)``'s definition in ``text``, or None if absent.

    ``name`` must be defined as ``__global__ void name(`` (a .cu file) or
    ``extern "C" void name(`` (host_loops.cpp, with T spelled out).
    """
    match = re.search(r"(?:__global__|extern \"C\")\s+void\s+" + re.escape(name) + r"\s*\(([^)]*)\)",
                      text)
    if match is None:
        return None
    kinds = ""
    for param in match.group(1).split(","):
        param = " ".join(param.replace("\\", " ").split())
        kinds += "p" if "*" in param else "i" if param.startswith("tp_int") else "t"
    return kinds
