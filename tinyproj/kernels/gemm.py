"""Matrix products on the GPU through a cuBLAS handle of tinyproj's own, so that a CUDA graph
can capture them.

Why. CuPy refuses every cuBLAS call while its stream is being captured (``NotImplementedError:
calling cuBLAS API during stream capture is currently unsupported``, CuPy 13 and 14), although
cuBLAS itself supports capture (its documentation, *CUDA Graphs Support*: scalars given by host
pointer are recorded by value; give the handle a workspace of its own so that nothing is
allocated while capturing). A ``bc_cifar10`` training step is mostly matrix products (every
convolution is im2col + one product, forward and backward), so with CuPy's products no step
could be captured at all (measured on an H200, 2026-12-04: every capture fell back to eager).

What. ``matmul(a, b, out=None)`` computes ``out = a @ b`` for 2-D arrays. On CuPy float32 or
float64 arrays it calls ``cublasSgemm_v2``/``cublasDgemm_v2`` through ctypes, on a handle
created here (one per device and thread) from the same cuBLAS library CuPy loaded, bound to
CuPy's current stream and to a 32 MiB workspace of its own (cuBLAS's advice for Hopper); TF32
follows ``backend.set_tf32`` (the handle's math mode). Eager steps and captured ones call the
same function, so a replayed step gives an eager step's bits (tests/test_gpu_graphs.py). Any
other array (NumPy, the CPU stand-in) goes to its module's ``matmul`` unchanged.

cuBLAS is column-major, NumPy/CuPy arrays row-major or any strides. A row-major (M, N) array
with row stride ``ld`` *is* the column-major (N, M) matrix with leading dimension ``ld``, its
transpose. So ``C = A B`` (row-major, (M, K)·(K, N)) is computed as the column-major
``Cᵀ = Bᵀ Aᵀ``: cuBLAS's first operand is ``b``, its second ``a``, m = N, n = M, k = K. An
operand whose *columns* are contiguous instead (a transposed view such as ``w.T``) is handed
over as it lies, with ``op = T``. ``plan`` works this out from shapes and strides alone (tested
on the CPU against a column-major emulation, tests/test_gemm.py); an operand that fits
neither layout (a step in both strides) is copied to C order first, and an ``out`` whose
columns are contiguous is computed as ``outᵀ = bᵀ aᵀ``.
"""
from __future__ import annotations

import ctypes
import threading
from collections import namedtuple

from .. import backend

__all__ = ["matmul", "plan", "Plan", "available", "unavailable_reason"]

OP_N, OP_T = 0, 1                          # cublasOperation_t
DEFAULT_MATH, TF32_MATH = 0, 3             # cublasMath_t: CUBLAS_DEFAULT_MATH, _TF32_TENSOR_OP_
WORKSPACE_BYTES = 32 << 20                 # cuBLAS's recommended workspace on Hopper

Plan = namedtuple("Plan", "transa transb m n k first lda second ldb ldc")
Plan.__doc__ = """One cuBLAS gemm: column-major C (m × n, leading dimension ldc) =
op_a(first) (m × k) · op_b(second) (k × n); ``first``/``second`` are the keys of the operands
given to ``plan`` (which of a, b is which)."""


def _operand(shape, strides, key, op_rows, op_cols):
    """How a row-major-described 2-D operand (rows, cols) = ``shape`` with ``strides`` (in
    elements) is handed to cuBLAS so that op(it) is the column-major matrix of its transpose,
    (op_rows × op_cols) = (cols × rows): (op, ld), or None when its layout fits neither way."""
    rows, cols = shape
    s_row, s_col = strides
    # columns of the row-major array are contiguous along a row: it is, column-major, its own
    # transpose (cols × rows) with ld = the row stride -> op N
    if (s_col == 1 or cols == 1) and (rows == 1 or s_row >= max(1, cols)):
        return OP_N, (s_row if rows > 1 else max(1, cols))
    # rows contiguous (a transposed view): column-major it is (rows × cols), ld = the column
    # stride, and op T turns it into (cols × rows)
    if (s_row == 1 or rows == 1) and (cols == 1 or s_col >= max(1, rows)):
        return OP_T, (s_col if cols > 1 else max(1, rows))
    return None


def plan(a, b, out):
    """The gemm that writes ``out = a @ b``; each argument is (shape, strides in elements, key)
    of a 2-D array: a (M, K), b (K, N), out (M, N). Returns a :class:`Plan`, or None when an
    operand must be copied to C order first (``a``/``b`` give the key ``"copy a"``/``"copy b"``
    as the reason) — see the module docstring."""
    (m_, k_), _, _ = a
    (k2, n_), _, _ = b
    if k2 != k_ or tuple(out[0]) != (m_, n_):
        raise ValueError(f"gemm: shapes {a[0]} @ {b[0]} -> {out[0]} do not align")
    (o_rows, o_cols), (o_row, o_col), o_key = out
    if not ((o_col == 1 or o_cols == 1) and (o_rows == 1 or o_row >= max(1, o_cols))):
        if (o_row == 1 or o_rows == 1) and (o_cols == 1 or o_col >= max(1, o_rows)):
            t = lambda d: (tuple(reversed(d[0])), tuple(reversed(d[1])), d[2])   # noqa: E731
            return plan(t(b), t(a), t(out))                     # outᵀ = bᵀ aᵀ
        return None
    ldc = o_row if o_rows > 1 else max(1, o_cols)
    first = _operand(b[0], b[1], b[2], n_, k_)                  # bᵀ: (N × K) column-major
    second = _operand(a[0], a[1], a[2], k_, m_)                 # aᵀ: (K × M)
    if first is None or second is None:
        return None
    return Plan(first[0], second[0], n_, m_, k_, b[2], first[1], a[2], second[1], ldc)


# -- CuPy: the cuBLAS calls --------------------------------------------------------------
_lib = {"lib": None, "reason": None, "tried": False}
_local = threading.local()


def _loaded_cublas_path():
    """The path of the libcublas this process already loaded (CuPy's), from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if "/" in line else ""
                name = path.rsplit("/", 1)[-1]
                if name.startswith("libcublas.so"):
                    return path
    except OSError:
        pass
    return None


_load_lock = threading.Lock()


def _load():
    """ctypes bindings of the cuBLAS library CuPy uses; None (reason kept) if none is found."""
    if _lib["tried"]:
        return _lib["lib"]
    with _load_lock:                   # the first call in each thread waits for the first one
        if not _lib["tried"]:
            _lib["lib"], _lib["reason"] = _bind()
            _lib["tried"] = True
    return _lib["lib"]


def _bind():
    """(the bound library, None) or (None, why not)."""
    try:
        import cupy
        try:
            cupy.cuda.device.get_cublas_handle()    # CuPy loads its cuBLAS now, if not yet
        except Exception:                           # then the names below find one
            pass
        candidates = [p for p in [_loaded_cublas_path()] if p] + \
            ["libcublas.so.13", "libcublas.so.12", "libcublas.so"]
        lib, errors = None, []
        for name in candidates:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        if lib is None:
            raise OSError("; ".join(errors))
        p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        lib.cublasCreate_v2.argtypes = [ctypes.POINTER(p)]
        lib.cublasSetStream_v2.argtypes = [p, p]
        lib.cublasSetMathMode.argtypes = [p, i]
        if hasattr(lib, "cublasSetWorkspace_v2"):
            lib.cublasSetWorkspace_v2.argtypes = [p, p, s]
        for fn, scalar in (("cublasSgemm_v2", ctypes.c_float), ("cublasDgemm_v2", ctypes.c_double)):
            getattr(lib, fn).argtypes = [p, i, i, i, i, i, ctypes.POINTER(scalar), p, i, p, i,
                                         ctypes.POINTER(scalar), p, i]
        for fn in ("cublasCreate_v2", "cublasSetStream_v2", "cublasSetMathMode",
                   "cublasSgemm_v2", "cublasDgemm_v2"):
            getattr(lib, fn).restype = ctypes.c_int
        return lib, None
    except Exception as exc:                       # no CuPy, no GPU, no library: CuPy's matmul
        return None, f"{type(exc).__name__}: {exc}"


def available() -> bool:
    """Whether products of CuPy arrays go through tinyproj's own cuBLAS handle."""
    return _load() is not None


def unavailable_reason():
    """Why ``available()`` is False (None when it is True or was not asked yet)."""
    return _lib["reason"]


def _check(status, what):
    if status != 0:
        raise RuntimeError(f"cuBLAS {what} failed with status {status}")


class _Handle:
    """One cuBLAS handle (per device and thread) with its workspace, stream and math mode."""

    def __init__(self, lib, cupy):
        self.lib = lib
        handle = ctypes.c_void_p()
        _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.handle = handle
        self.workspace = cupy.empty(WORKSPACE_BYTES, dtype=cupy.uint8)   # kept for good
        self.stream = self.math = None

    def ready(self, stream_ptr, math):
        """Bind the handle to the stream (then its workspace again: cublasSetStream resets
        it) and set the math mode, each only when it changed."""
        lib = self.lib
        if stream_ptr != self.stream:
            _check(lib.cublasSetStream_v2(self.handle, ctypes.c_void_p(stream_ptr)),
                   "cublasSetStream")
            if hasattr(lib, "cublasSetWorkspace_v2"):
                _check(lib.cublasSetWorkspace_v2(self.handle,
                                                 ctypes.c_void_p(self.workspace.data.ptr),
                                                 WORKSPACE_BYTES), "cublasSetWorkspace")
            self.stream = stream_ptr
        if math != self.math:
            _check(lib.cublasSetMathMode(self.handle, math), "cublasSetMathMode")
            self.math = math
        return self.handle


def _handle(lib, cupy):
    handles = getattr(_local, "handles", None)
    if handles is None:
        handles = _local.handles = {}
    device = cupy.cuda.runtime.getDevice()
    if device not in handles:
        handles[device] = _Handle(lib, cupy)
    return handles[device]


def _descriptor(x, key):
    item = x.itemsize
    if any(s % item for s in x.strides):
        return None
    return tuple(x.shape), tuple(s // item for s in x.strides), key


INT_MAX = 2**31 - 1          # cuBLAS takes sizes and leading dimensions as int


def _cublas(cupy, lib, a, b, out):
    """out = a @ b by one cuBLAS gemm (2-D CuPy arrays of one float dtype). An empty product
    is no gemm: nothing to write when out is empty, zeros when K = 0 (empty arrays may have
    strides (0, 0), which no plan takes)."""
    if out.size == 0:
        return out
    if a.shape[1] == 0:
        out.fill(0)
        return out
    desc = [_descriptor(a, "a"), _descriptor(b, "b"), _descriptor(out, "out")]
    p = plan(*desc) if all(d is not None for d in desc) else None
    target = out
    if p is None:                                  # an odd layout: C-order copies, then again
        a, b = cupy.ascontiguousarray(a), cupy.ascontiguousarray(b)
        if not out.flags.c_contiguous:
            target = cupy.empty(out.shape, dtype=out.dtype)
        p = plan(_descriptor(a, "a"), _descriptor(b, "b"), _descriptor(target, "out"))
        if p is None:
            raise RuntimeError(f"gemm: no cuBLAS plan for {a.shape} @ {b.shape} even in C "
                               f"order (strides {a.strides}, {b.strides})")
    if max(p.m, p.n, p.k, p.lda, p.ldb, p.ldc) > INT_MAX:    # beyond cuBLAS's int: CuPy's
        cupy.matmul(a, b, out=target)
    else:
        ptr = {"a": a.data.ptr, "b": b.data.ptr}
        math = TF32_MATH if (a.dtype == cupy.float32 and backend.tf32_enabled()) else \
            DEFAULT_MATH
        h = _handle(lib, cupy).ready(cupy.cuda.get_current_stream().ptr, math)
        if a.dtype == cupy.float32:
            fn, scalar = lib.cublasSgemm_v2, ctypes.c_float
        else:
            fn, scalar = lib.cublasDgemm_v2, ctypes.c_double
        one, zero = scalar(1.0), scalar(0.0)
        _check(fn(h, p.transa, p.transb, p.m, p.n, p.k, ctypes.byref(one),
                  ctypes.c_void_p(ptr[p.first]), p.lda, ctypes.c_void_p(ptr[p.second]),
                  p.ldb, ctypes.byref(zero), ctypes.c_void_p(target.data.ptr), p.ldc), "gemm")
    if target is not out:
        out[...] = target
    return out


def matmul(a, b, out=None):
    """``a @ b`` (into ``out`` when given, and returned). 2-D CuPy arrays of one float dtype go
    through tinyproj's cuBLAS handle (see the module docstring); everything else through its
    array module's ``matmul``."""
    xp = backend.xp_of(a)
    if xp.__name__ == "cupy" and backend.xp_of(b) is xp and a.ndim == 2 and b.ndim == 2 and \
            a.dtype == b.dtype and a.dtype.kind == "f" and a.dtype.itemsize in (4, 8) and \
            (out is None or backend.xp_of(out) is xp) and _load() is not None:
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
        if out is None:
            out = xp.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
        elif out.shape != (a.shape[0], b.shape[1]) or out.dtype != a.dtype:
            raise ValueError(f"matmul: out {out.shape} {out.dtype} does not fit "
                             f"{a.shape} @ {b.shape} ({a.dtype})")
        return _cublas(xp, _load(), a, b, out)
    if out is None:
        return xp.matmul(a, b)
    return xp.matmul(a, b, out=out)
