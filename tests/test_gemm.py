"""kernels/gemm.py: matrix products through tinyproj's own cuBLAS handle (capturable in a CUDA graph).

On the CPU: ``plan`` — which operand cuBLAS gets first, op N or T, m, n, k and the leading
dimensions — checked by carrying the plan out as cuBLAS would, column-major on the raw
buffers, for C-ordered, transposed, row-sliced and single-row/column operands and outputs.
On a GPU (``-m gpu``): the products against CuPy's, float32 and float64, strict and TF32, and
a product captured in a CUDA graph and replayed on new inputs.
"""
import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from tinyproj import backend
from tinyproj.kernels import gemm


def _desc(x, key):
    return tuple(x.shape), tuple(s // x.itemsize for s in x.strides), key


def _offset(x, base):
    return (x.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // x.itemsize


def _colmajor(base, offset, rows, cols, ld):
    """The column-major (rows × cols) matrix with leading dimension ld at base[offset:], as
    cuBLAS reads it; refuses to reach outside the buffer."""
    last = offset + (rows - 1) + (cols - 1) * ld if rows and cols else offset
    assert 0 <= offset and last < base.size, "the plan reads outside the operand's buffer"
    assert ld >= max(1, rows), f"cuBLAS needs ld >= rows: {ld} < {rows}"
    item = base.itemsize
    return as_strided(base[offset:], shape=(rows, cols), strides=(item, ld * item))


def _run_plan(p, views):
    """Carry out plan ``p`` as cuBLAS would: column-major C = op(A) op(B) on raw buffers;
    ``views`` maps each key to (array, its base buffer)."""
    def operand(key, trans, rows, cols, ld):
        x, base = views[key]
        shape = (rows, cols) if trans == gemm.OP_N else (cols, rows)
        m = _colmajor(base, _offset(x, base), *shape, ld)
        return m if trans == gemm.OP_N else m.T
    A = operand(p.first, p.transa, p.m, p.k, p.lda)
    B = operand(p.second, p.transb, p.k, p.n, p.ldb)
    out, base = views["out"]
    C = _colmajor(base, _offset(out, base), p.m, p.n, p.ldc)
    C[...] = A @ B


def _layouts(rows, cols, rng):
    """(name, view, its base buffer) for one (rows, cols) operand in several layouts."""
    def buf(n):
        full = rng.standard_normal(n + 7)
        return full[3:3 + n], full                   # a view into a larger buffer
    b, full = buf(rows * cols)
    out = [("C", b.reshape(rows, cols), full)]
    b, full = buf(rows * cols)
    out.append(("T", b.reshape(cols, rows).T, full))
    b, full = buf(rows * (cols + 3))
    out.append(("rows-sliced", b.reshape(rows, cols + 3)[:, 1:cols + 1], full))
    b, full = buf((rows + 2) * cols)
    out.append(("T-sliced", b.reshape(cols, rows + 2)[:, 2:].T, full))
    return out


SHAPES = [(5, 4, 3), (1, 4, 3), (5, 1, 3), (5, 4, 1), (1, 1, 1), (7, 9, 2)]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_the_plan_computes_a_at_b_column_major_for_every_layout(m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    checked = 0
    for name_a, a, base_a in _layouts(m, k, rng):
        for name_b, b, base_b in _layouts(k, n, rng):
            for name_o, out, base_o in _layouts(m, n, rng):
                out[...] = np.nan
                p = gemm.plan(_desc(a, "a"), _desc(b, "b"), _desc(out, "out"))
                assert p is not None, (name_a, name_b, name_o)
                _run_plan(p, {"a": (a, base_a), "b": (b, base_b), "out": (out, base_o)})
                np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12,
                                           err_msg=f"a {name_a}, b {name_b}, out {name_o}")
                checked += 1
    assert checked == 64


def test_an_operand_strided_both_ways_needs_a_copy_and_misaligned_shapes_are_refused():
    x = np.zeros((4, 12))[:, ::2]                                  # (4, 6), strides (12, 2)
    y = np.zeros((6, 3))
    out = np.zeros((4, 3))
    assert gemm.plan(_desc(x, "a"), _desc(y, "b"), _desc(out, "out")) is None
    with pytest.raises(ValueError, match="do not align"):
        gemm.plan(_desc(np.zeros((4, 5)), "a"), _desc(y, "b"), _desc(out, "out"))


@pytest.mark.parametrize("m,k,n", [(0, 4, 3), (3, 0, 2), (3, 4, 0), (0, 0, 0)])
def test_an_empty_product_needs_no_gemm(m, k, n):
    """Empty arrays may have strides (0, 0), which no plan takes: an empty out is returned as
    it is, K = 0 gives zeros — before any cuBLAS call (none is made here: no library)."""
    a, b = np.empty((m, k), np.float32), np.empty((k, n), np.float32)
    out = np.full((m, n), np.nan, np.float32)
    assert gemm._cublas(np, None, a, b, out) is out
    np.testing.assert_array_equal(out, np.zeros((m, n), np.float32))


def test_other_arrays_go_to_their_modules_matmul():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out = np.empty((3, 2))
    assert gemm.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, a @ b)
    np.testing.assert_array_equal(gemm.matmul(a, b), a @ b)


# -- on a GPU ----------------------------------------------------------------------------

@pytest.mark.gpu
def test_the_handle_is_used_on_cupy(on_cupy):
    assert gemm.available(), gemm.unavailable_reason()


def _on_device(view, base, dtype):
    """The same view (shape, strides, offset) of a device copy of its base buffer."""
    import cupy
    dbase = cupy.asarray(base.astype(dtype))
    item = np.dtype(dtype).itemsize
    start = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 8
    strides = tuple(s // 8 * item for s in view.strides)
    return cupy.lib.stride_tricks.as_strided(dbase[start:], shape=view.shape, strides=strides)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES + [(300, 577, 129), (0, 4, 3), (3, 0, 2)])
def test_products_match_cupys_for_every_layout(on_cupy, dtype, m, k, n):
    """Every layout of _layouts on the device itself (sliced leading dimensions included),
    outputs C-ordered, transposed, row-sliced or new."""
    import cupy
    rng = np.random.default_rng(7)
    for name_a, a, base_a in _layouts(m, k, rng):
        for name_b, b, base_b in _layouts(k, n, rng):
            for name_o, out, base_o in _layouts(m, n, rng)[:3] + [("new", None, None)]:
                da, db = _on_device(a, base_a, dtype), _on_device(b, base_b, dtype)
                dout = None if out is None else _on_device(out, base_o, dtype)
                got = gemm.matmul(da, db, out=dout)
                if dout is not None:
                    assert got is dout
                want = cupy.matmul(cupy.ascontiguousarray(da), cupy.ascontiguousarray(db))
                tol = 1e-5 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(got.get(), want.get(), rtol=tol, atol=tol * max(k, 1),
                                           err_msg=f"a {name_a}, b {name_b}, out {name_o}")


@pytest.mark.gpu
def test_a_captured_product_replays_on_new_inputs(on_cupy):
    import cupy
    rng = np.random.default_rng(1)
    a = cupy.asarray(rng.standard_normal((64, 96)).astype(np.float32))
    b = cupy.asarray(rng.standard_normal((96, 32)).astype(np.float32))
    out = cupy.empty((64, 32), dtype=np.float32)
    gemm.matmul(a, b, out=out)                       # eager once (handle, workspace)
    eager = out.copy()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        gemm.matmul(a, b.T.copy().T, out=out)        # a transposed operand too
        graph = stream.end_capture()
    a[...] = cupy.asarray(rng.standard_normal((64, 96)).astype(np.float32))
    graph.launch(stream)
    stream.synchronize()
    np.testing.assert_allclose(out.get(), (a @ b).get(), rtol=1e-5, atol=1e-4)
    assert not np.array_equal(out.get(), eager.get())


@pytest.mark.gpu
def test_tf32_follows_the_backend_switch(on_cupy):
    import cupy
    rng = np.random.default_rng(2)
    a = cupy.asarray(rng.standard_normal((256, 1024)).astype(np.float32))
    b = cupy.asarray(rng.standard_normal((1024, 256)).astype(np.float32))
    exact = a.astype(cupy.float64) @ b.astype(cupy.float64)
    strict = gemm.matmul(a, b)
    try:
        assert backend.set_tf32(True)
        tf32 = gemm.matmul(a, b)
    finally:
        backend.set_tf32(False)
    err_strict = float(abs(strict - exact).max().get())
    err_tf32 = float(abs(tf32 - exact).max().get())
    assert err_tf32 > 10 * err_strict                 # 10-bit mantissa inputs, tensor cores
    assert err_tf32 < 0.5                             # but still the product (|values| ~ 32)
