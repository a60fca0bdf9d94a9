"""A stride-1 convolution as shifted matrix products, with no column matrix (implicit im2col).

Copy x (B, C, H, W) once into a channels-last padded array, one row of C values per pixel
of the padded grid (H2 = H + 2·ph, W2 = W + 2·pw)::

    Xp[b·H2·W2 + (r + ph)·W2 + (s + pw)] = x[b, :, r, s]        zero on the border
    (B·H2·W2 + tail rows, C);  tail = (kh − 1)·W2 + kw − 1 zero rows

Number the output on the same padded grid: row m = b·H2·W2 + r·W2 + s is output pixel
(b, r, s) when r < OH and s < OW (the other rows are spare). Tap (i, j) of pixel m reads
input row m + i·W2 + j, so for each tap the rows it reads are one contiguous block of Xp,
a plain (M, C) matrix, and the convolution is kh·kw accumulating products::

    Y[m]                 = Σ_{i,j}  Xp[m + i·W2 + j] @ W_ij        W_ij = w[:, :, i, j]ᵀ (C, O)
    dXp[m + i·W2 + j]   += gY[m] @ W_ijᵀ                           (gY zero on spare rows)

(M = B·H2·W2). Against im2col + one product: no (K, B·L) columns are written and read
(K = C·kh·kw values per pixel), and dx needs no col2im; the price is kh·kw products of
depth C instead of one of depth K, and the spare rows (13 % at 32×32, 27 % at 16×16).
NumPy has no product that adds into its output, so ``gemm`` calls the BLAS that NumPy loaded
(``cblas_sgemm``/``cblas_dgemm`` with β = 1, found through threadpoolctl); without it
``available()`` is False and the convolution keeps im2col.

``TINYPROJ_KERNELS=reference`` runs the readable versions below (NumPy copies, ``out +=
a @ b``); the Numba copies give the same arrays bit for bit (tests/test_kernels_cpu.py).
"""
from __future__ import annotations

import ctypes

import numpy as np

from . import compiled, mode

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_gemm = {}                 # dtype → (ctypes function, int type); filled by _find_blas()
_searched = False


def _find_blas():
    """The cblas gemm functions of the OpenBLAS NumPy uses (NumPy's wheels bundle one whose
    symbols carry a ``scipy_`` prefix and, for 64-bit integers, a ``64_`` suffix)."""
    global _searched
    _searched = True
    try:
        from threadpoolctl import ThreadpoolController
        libs = [c.dynlib for c in ThreadpoolController().select(internal_api="openblas")
                .lib_controllers]
    except Exception:      # noqa: BLE001 - no threadpoolctl or no OpenBLAS: im2col stays
        return
    for lib in libs:
        for prefix, suffix, int_type in (("scipy_cblas_", "64_", ctypes.c_int64),
                                         ("cblas_", "64_", ctypes.c_int64),
                                         ("cblas_", "", ctypes.c_int)):
            found = {}
            for dtype, letter, real in ((np.float32, "s", ctypes.c_float),
                                        (np.float64, "d", ctypes.c_double)):
                fn = getattr(lib, f"{prefix}{letter}gemm{suffix}", None)
                if fn is None:
                    break
                fn.argtypes = [ctypes.c_int] * 3 + [int_type] * 3 + [
                    real, ctypes.c_void_p, int_type, ctypes.c_void_p, int_type, real,
                    ctypes.c_void_p, int_type]
                fn.restype = None
                found[np.dtype(dtype)] = (fn, int_type)
            if len(found) == 2:
                _gemm.update(found)
                return


def available() -> bool:
    """Whether ``gemm`` can add into its output in one BLAS call (see the module docstring)."""
    if not _searched:
        _find_blas()
    return bool(_gemm) and mode() != "reference"


def _operand(a):
    """(transpose flag, leading dimension) of a 2-D view for a row-major BLAS call."""
    item = a.itemsize
    if a.strides[1] == item or a.shape[1] == 1:
        return _NO_TRANS, max(1, a.strides[0] // item, a.shape[1])
    if a.strides[0] == item or a.shape[0] == 1:
        return _TRANS, max(1, a.strides[1] // item, a.shape[0])
    raise ValueError("gemm: operands need one axis of unit stride")


def gemm(a, b, out, accumulate: bool):
    """``out = a @ b`` (accumulate=False) or ``out += a @ b`` (True), in place.

    a (M, K), b (K, N), out (M, N): NumPy views of one float dtype with a unit stride along
    one axis (out: along its rows); out may overlap neither a nor b. Callers ask
    ``available()`` first (it also honours ``TINYPROJ_KERNELS=reference``); here only a
    missing BLAS sends the call to ``reference_gemm`` — kept short, since a thin convolution
    makes hundreds of these calls per step.
    """
    if not _searched:
        _find_blas()
    entry = _gemm.get(out.dtype)
    if entry is None:
        return reference_gemm(a, b, out, accumulate)
    if out.strides[1] != out.itemsize or not (a.dtype == b.dtype == out.dtype):
        raise ValueError("gemm: out needs unit stride along its rows and one dtype for all")
    (ta, lda), (tb, ldb) = _operand(a), _operand(b)
    m, n = out.shape
    entry[0](_ROW_MAJOR, ta, tb, m, n, a.shape[1], 1.0, a.__array_interface__["data"][0], lda,
             b.__array_interface__["data"][0], ldb, 1.0 if accumulate else 0.0,
             out.__array_interface__["data"][0], max(1, out.strides[0] // out.itemsize, n))


def reference_gemm(a, b, out, accumulate):
    """The readable ``gemm``: a new product, then added (or copied) into out."""
    if accumulate:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


# ---------------------------------------------------------------------------
# The layouts: padded channels-last rows in, and out again
# ---------------------------------------------------------------------------
def grid(x_shape, kh, kw, pad):
    """``(H2, W2, OH, OW, M, tail)`` of the padded grid of an (B, C, H, W) input."""
    _, _, h, w = x_shape
    h2, w2 = h + 2 * pad[0], w + 2 * pad[1]
    return h2, w2, h2 - kh + 1, w2 - kw + 1, x_shape[0] * h2 * w2, (kh - 1) * w2 + kw - 1


def reference_pad_rows(x, pad, out):
    """x (B, C, H, W) → out (B·H2·W2 + tail, C): Xp of the module docstring."""
    b, c, h, w = x.shape
    h2, w2 = h + 2 * pad[0], w + 2 * pad[1]
    out[...] = 0
    grid4 = out[:b * h2 * w2].reshape(b, h2, w2, c)
    grid4[:, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x.transpose(0, 2, 3, 1)
    return out


def reference_unpad_rows(rows, x_shape, pad, out):
    """rows (B·H2·W2 + tail, C) → out (B, C, H, W): the interior of the grid, the inverse of
    ``pad_rows`` (used for dx = the interior of dXp)."""
    b, c, h, w = x_shape
    h2, w2 = h + 2 * pad[0], w + 2 * pad[1]
    grid4 = rows[:b * h2 * w2].reshape(b, h2, w2, c)
    out[...] = grid4[:, pad[0]:pad[0] + h, pad[1]:pad[1] + w].transpose(0, 3, 1, 2)
    return out


def pad_rows(x, pad, out):
    """See ``reference_pad_rows`` (Numba: one pass, each job one row of the padded grid)."""
    fast = compiled("shifted_cpu")
    if fast is None or not isinstance(x, np.ndarray):
        return reference_pad_rows(x, pad, out)
    b, c, h, w = x.shape
    h2, w2 = h + 2 * pad[0], w + 2 * pad[1]
    fast._pad_rows(x, pad[0], pad[1], out[:b * h2 * w2].reshape(b, h2, w2, c))
    out[b * h2 * w2:] = 0
    return out


def unpad_rows(rows, x_shape, pad, out):
    """See ``reference_unpad_rows`` (Numba: each job one (image, channel) plane)."""
    fast = compiled("shifted_cpu")
    if fast is None or not isinstance(rows, np.ndarray):
        return reference_unpad_rows(rows, x_shape, pad, out)
    b, c, h, w = x_shape
    h2, w2 = h + 2 * pad[0], w + 2 * pad[1]
    fast._unpad_rows(rows[:b * h2 * w2].reshape(b, h2, w2, c), pad[0], pad[1], out)
    return out
