"""Numba copies of the Winograd F(2×2, 3×3) transforms of kernels/winograd.py.

Each loop body is one 4×4 tile (or 2×2 output block) for one channel, written out as the
additions the matrices Bᵀ and Aᵀ stand for, in the order the readable versions sum them
(the tile's columns first, then its rows), so both give the same arrays bit for bit. The
innermost loop runs along the channels, contiguous in every array here, so it vectorises.
Jobs own whole tiles of their output (the adjoint of the input transform, whose tiles
overlap, owns whole images), so no two threads write the same element.
``NUMBA_DISABLE_JIT=1`` makes them plain Python for a debugger.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


@njit(**_PARALLEL)
def input_transform(grid, v):
    """grid (B, H2, W2, C) → v (T, 16, C): V = Bᵀ d B for each 4×4 tile d (stride 2)."""
    b, h2, w2, c = grid.shape
    th, tw = (h2 - 2) // 2, (w2 - 2) // 2
    for job in prange(b * th):                           # one row of tiles per job
        bi, ti = job // th, job % th
        r0, r1, r2, r3 = (grid[bi, 2 * ti], grid[bi, 2 * ti + 1], grid[bi, 2 * ti + 2],
                          grid[bi, 2 * ti + 3])          # the tiles' four rows, (W2, C) each
        for tj in range(tw):
            vt = v[job * tw + tj]                        # (16, C): this tile's V
            s = 2 * tj
            for ci in range(c):
                # d B along each row a of the tile: (d0 − d2, d1 + d2, −d1 + d2, d1 − d3)
                h00, h01, h02, h03 = _row(r0[s, ci], r0[s + 1, ci], r0[s + 2, ci], r0[s + 3, ci])
                h10, h11, h12, h13 = _row(r1[s, ci], r1[s + 1, ci], r1[s + 2, ci], r1[s + 3, ci])
                h20, h21, h22, h23 = _row(r2[s, ci], r2[s + 1, ci], r2[s + 2, ci], r2[s + 3, ci])
                h30, h31, h32, h33 = _row(r3[s, ci], r3[s + 1, ci], r3[s + 2, ci], r3[s + 3, ci])
                # Bᵀ (d B): the same combination down each column e
                vt[0, ci], vt[4, ci], vt[8, ci], vt[12, ci] = _row(h00, h10, h20, h30)
                vt[1, ci], vt[5, ci], vt[9, ci], vt[13, ci] = _row(h01, h11, h21, h31)
                vt[2, ci], vt[6, ci], vt[10, ci], vt[14, ci] = _row(h02, h12, h22, h32)
                vt[3, ci], vt[7, ci], vt[11, ci], vt[15, ci] = _row(h03, h13, h23, h33)


@njit(inline="always")
def _row(d0, d1, d2, d3):
    """Bᵀ applied to four values: (d0 − d2, d1 + d2, −d1 + d2, d1 − d3)."""
    return d0 - d2, d1 + d2, -d1 + d2, d1 - d3


@njit(**_PARALLEL)
def output_transform(m, rows):
    """m (T, 16, O) → rows (B, OH, OW, O): Y = Aᵀ M A for each tile, a 2×2 output block."""
    b, oh, ow, o = rows.shape
    th, tw = oh // 2, ow // 2
    for job in prange(b * th):
        bi, ti = job // th, job % th
        y0, y1 = rows[bi, 2 * ti], rows[bi, 2 * ti + 1]     # the block's two rows (OW, O)
        for tj in range(tw):
            mt = m[job * tw + tj]                        # (16, O): this tile's M
            s = 2 * tj
            for co in range(o):
                # M A along each row i: (m0 + m1 + m2, m1 − m2 − m3)
                q00, q01 = _out(mt[0, co], mt[1, co], mt[2, co], mt[3, co])
                q10, q11 = _out(mt[4, co], mt[5, co], mt[6, co], mt[7, co])
                q20, q21 = _out(mt[8, co], mt[9, co], mt[10, co], mt[11, co])
                q30, q31 = _out(mt[12, co], mt[13, co], mt[14, co], mt[15, co])
                y0[s, co], y1[s, co] = _out(q00, q10, q20, q30)      # Aᵀ (M A) down column 0
                y0[s + 1, co], y1[s + 1, co] = _out(q01, q11, q21, q31)


@njit(inline="always")
def _out(m0, m1, m2, m3):
    """Aᵀ applied to four values: (m0 + m1 + m2, m1 − m2 − m3)."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(**_PARALLEL)
def output_transform_adjoint(rows, gm):
    """rows (B, OH, OW, O) → gm (T, 16, O): gM = A gY Aᵀ for each 2×2 block gY."""
    b, oh, ow, o = rows.shape
    th, tw = oh // 2, ow // 2
    for job in prange(b * th):
        bi, ti = job // th, job % th
        y0, y1 = rows[bi, 2 * ti], rows[bi, 2 * ti + 1]
        for tj in range(tw):
            gmt = gm[job * tw + tj]                      # (16, O)
            s = 2 * tj
            for co in range(o):
                p00, p01, p02, p03 = _out_t(y0[s, co], y0[s + 1, co])   # gY Aᵀ along row 0
                p10, p11, p12, p13 = _out_t(y1[s, co], y1[s + 1, co])   # and row 1
                gmt[0, co], gmt[4, co], gmt[8, co], gmt[12, co] = _out_t(p00, p10)
                gmt[1, co], gmt[5, co], gmt[9, co], gmt[13, co] = _out_t(p01, p11)
                gmt[2, co], gmt[6, co], gmt[10, co], gmt[14, co] = _out_t(p02, p12)
                gmt[3, co], gmt[7, co], gmt[11, co], gmt[15, co] = _out_t(p03, p13)


@njit(inline="always")
def _out_t(z0, z1):
    """A applied to two values: (z0, z0 + z1, z0 − z1, −z1)."""
    return z0, z0 + z1, z0 - z1, -z1


@njit(**_PARALLEL)
def input_transform_adjoint(gv, grid):
    """gv (T, 16, C) → grid (B, H2, W2, C), overwritten: Σ over tiles of B gV Bᵀ. Tiles
    overlap, so each job owns one image and adds its tiles in row-major order."""
    b, h2, w2, c = grid.shape
    th, tw = (h2 - 2) // 2, (w2 - 2) // 2
    zero = grid.dtype.type(0)
    for bi in prange(b):
        grid[bi] = zero
        for ti in range(th):
            r0, r1, r2, r3 = (grid[bi, 2 * ti], grid[bi, 2 * ti + 1], grid[bi, 2 * ti + 2],
                              grid[bi, 2 * ti + 3])
            for tj in range(tw):
                gvt = gv[(bi * th + ti) * tw + tj]       # (16, C)
                s = 2 * tj
                for ci in range(c):
                    # gV Bᵀ along each row i, then B (·) down each column
                    p00, p01, p02, p03 = _in_t(gvt[0, ci], gvt[1, ci], gvt[2, ci], gvt[3, ci])
                    p10, p11, p12, p13 = _in_t(gvt[4, ci], gvt[5, ci], gvt[6, ci], gvt[7, ci])
                    p20, p21, p22, p23 = _in_t(gvt[8, ci], gvt[9, ci], gvt[10, ci], gvt[11, ci])
                    p30, p31, p32, p33 = _in_t(gvt[12, ci], gvt[13, ci], gvt[14, ci], gvt[15, ci])
                    columns = ((p00, p10, p20, p30), (p01, p11, p21, p31),
                               (p02, p12, p22, p32), (p03, p13, p23, p33))
                    for e, (q0, q1, q2, q3) in enumerate(columns):
                        g0, g1, g2, g3 = _in_t(q0, q1, q2, q3)
                        r0[s + e, ci] += g0
                        r1[s + e, ci] += g1
                        r2[s + e, ci] += g2
                        r3[s + e, ci] += g3


@njit(inline="always")
def _in_t(g0, g1, g2, g3):
    """B applied to four values: (g0, g1 − g2 + g3, −g0 + g1 + g2, −g3)."""
    return g0, g1 - g2 + g3, -g0 + g1 + g2, -g3


@njit(**_PARALLEL)
def weight_transform(w, u):
    """w (O, C, 3, 3) → u (16, O, C): U = G g Gᵀ per kernel (g Gᵀ along its rows first).
    Each job computes one output channel's (16, C) block in a buffer of its own, then copies
    its 16 rows out: written straight into u, the 16 rows — a multiple of 4 KB apart —
    competed for the same cache sets, and the transform took 7.1 ms instead of ~1 for a
    512→512 layer."""
    o, c = w.shape[:2]
    half = w.dtype.type(0.5)         # a bare 0.5 is a float64 and would widen float32 sums
    for co in prange(o):
        b = np.empty((16, c), dtype=w.dtype)
        for ci in range(c):
            g = w[co, ci]
            p00, p01, p02, p03 = _g(g[0, 0], g[0, 1], g[0, 2], half)    # g Gᵀ, row by row
            p10, p11, p12, p13 = _g(g[1, 0], g[1, 1], g[1, 2], half)
            p20, p21, p22, p23 = _g(g[2, 0], g[2, 1], g[2, 2], half)
            b[0, ci], b[4, ci], b[8, ci], b[12, ci] = _g(p00, p10, p20, half)
            b[1, ci], b[5, ci], b[9, ci], b[13, ci] = _g(p01, p11, p21, half)
            b[2, ci], b[6, ci], b[10, ci], b[14, ci] = _g(p02, p12, p22, half)
            b[3, ci], b[7, ci], b[11, ci], b[15, ci] = _g(p03, p13, p23, half)
        for k in range(16):
            u[k, co] = b[k]


@njit(inline="always")
def _g(g0, g1, g2, half):
    """G applied to three values: (g0, ½g0 + ½g1 + ½g2, ½g0 − ½g1 + ½g2, g2)."""
    return g0, g0 * half + g1 * half + g2 * half, g0 * half + g1 * -half + g2 * half, g2


@njit(**_PARALLEL)
def weight_transform_adjoint(gu, gw):
    """gu (16, O, C) → gw (O, C, 3, 3): dW = Gᵀ gU G per kernel (along its rows first)."""
    o, c = gu.shape[1], gu.shape[2]
    half = gu.dtype.type(0.5)
    for co in prange(o):
        for ci in range(c):
            r0 = _gt(gu[0, co, ci], gu[1, co, ci], gu[2, co, ci], gu[3, co, ci], half)
            r1 = _gt(gu[4, co, ci], gu[5, co, ci], gu[6, co, ci], gu[7, co, ci], half)
            r2 = _gt(gu[8, co, ci], gu[9, co, ci], gu[10, co, ci], gu[11, co, ci], half)
            r3 = _gt(gu[12, co, ci], gu[13, co, ci], gu[14, co, ci], gu[15, co, ci], half)
            g = gw[co, ci]
            for col in range(3):
                g[0, col], g[1, col], g[2, col] = _gt(r0[col], r1[col], r2[col], r3[col], half)


@njit(inline="always")
def _gt(z0, z1, z2, z3, half):
    """Gᵀ applied to four values: (z0 + ½z1 + ½z2, ½z1 − ½z2, ½z1 + ½z2 + z3)."""
    return z0 + z1 * half + z2 * half, z1 * half + z2 * -half, z1 * half + z2 * half + z3
