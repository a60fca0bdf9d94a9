"""Winograd's minimal filtering F(2×2, 3×3): a 3×3 stride-1 convolution in 2.25× fewer
multiplications (Lavin & Gray 2016, "Fast algorithms for convolutional neural networks").

One dimension first. Two outputs of a 3-tap correlation, y_i = Σ_k d_{i+k} g_k (i = 0, 1),
need 6 multiplications directly, but only 4 through

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]          d: 4 inputs, g: 3 taps, y: 2 outputs

    Bᵀ = [[1, 0, −1, 0],       G = [[1,    0,   0 ],       Aᵀ = [[1, 1,  1,  0],
          [0, 1,  1, 0],            [1/2, 1/2, 1/2],              [0, 1, −1, −1]]
          [0, −1, 1, 0],            [1/2, −1/2, 1/2],
          [0, 1,  0, −1]]           [0,    0,   1 ]]

Nested in two dimensions, a 2×2 block of outputs from a 4×4 tile d of the input is
Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Over channels the ⊙ becomes a sum: for every one of the
16 positions ξ of the 4×4 transformed tile,

    M[ξ, t, o] = Σ_c V[ξ, t, c] · U[ξ, c, o]     V = Bᵀ d B per tile t and channel c,
                                                  U = G g Gᵀ per output channel o and c

— 16 matrix products (T, C) @ (C, O), T = B·(OH/2)·(OW/2) tiles, then Y = Aᵀ M A per tile.
They cost 16·2·T·C·O = 8·B·OH·OW·C·O flops against 18·B·OH·OW·C·O for im2col + one
product; the transforms are additions only, and V is 4× the input where im2col's columns
are 9×.

Backward is the chain rule through the same three steps (each is linear, so its adjoint is
its transpose): with gM = A gY Aᵀ per tile,

    dx:  gV[ξ] = gM[ξ] @ U[ξ]ᵀ,   then dx = Σ_tiles B gV Bᵀ   (tiles overlap by 2 rows/cols)
    dW:  gU[ξ] = Σ_t V[ξ]ᵀ @ gM[ξ],  then dW = Gᵀ gU G

so the gradients are exact for the Winograd forward, and the forward equals the convolution
in exact arithmetic (tests/test_winograd.py checks both, and finite differences in float64).
In float32 the additions round differently from a direct sum: results differ from im2col's
by a few units in the last place of the largest terms (the transforms' coefficients are
0, ±1/2, ±1, so nothing is amplified much).

Layouts. The input is read as padded channels-last rows (``shifted.pad_rows``: x (B, C, H,
W) → (B, H2, W2, C), H2 = H + 2·pad) so that every transform runs along the channel
vector; the output comes out as rows (B, OH, OW, O), the layout ``functional/conv.py``'s
CPU path takes its products in. Needs a 3×3 kernel, stride 1 and an even OH and OW (then
H2 = OH + 2 covers the last tile exactly).

The ``reference_*`` functions here are the readable versions (NumPy); kernels/winograd_cpu.py
has the Numba copies, which give the same arrays bit for bit (tests/test_winograd.py), and
the plain names pick the Numba copy when it can run. ``functional/conv_winograd.py`` runs a
convolution with them; under ``TINYPROJ_KERNELS=reference`` the convolution stays im2col.
"""
from __future__ import annotations

import numpy as np

from . import compiled

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def applies(x_shape, w_shape, stride, pad) -> bool:
    """Whether F(2×2, 3×3) covers this convolution: 3×3 kernel, stride 1, even OH and OW."""
    oh = x_shape[2] + 2 * pad[0] - 2
    ow = x_shape[3] + 2 * pad[1] - 2
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and oh > 0 and ow > 0
            and oh % 2 == 0 and ow % 2 == 0)


def tiles_of(grid4):
    """The 4×4 input tiles of a padded grid (B, H2, W2, C), stride 2: a view
    (B, TH, TW, 4, 4, C), TH = (H2 − 2) // 2."""
    b, h2, w2, c = grid4.shape
    th, tw = (h2 - 2) // 2, (w2 - 2) // 2
    s = grid4.strides
    return np.lib.stride_tricks.as_strided(
        grid4, (b, th, tw, 4, 4, c), (s[0], 2 * s[1], 2 * s[2], s[1], s[2], s[3]),
        writeable=False)


def reference_weight_transform(w):
    """U = G g Gᵀ for every (o, c): w (O, C, 3, 3) → (16, O, C), i.e. U[ξ]ᵀ for each ξ (the
    layout in which the transform reads and writes along C); along each kernel's columns
    first (g Gᵀ), then its rows."""
    o, c = w.shape[:2]
    u = _along(G, _along(G, w, 3), 2)                             # (O, C, 4, 4)
    return np.ascontiguousarray(u.reshape(o, c, 16).transpose(2, 0, 1))


def reference_weight_transform_adjoint(gu):
    """dW = Gᵀ gU G: gU (16, O, C), i.e. gU[ξ]ᵀ for each ξ → (O, C, 3, 3); along the columns
    first, then the rows."""
    _, o, c = gu.shape
    gut = gu.transpose(1, 2, 0).reshape(o, c, 4, 4)
    return np.ascontiguousarray(_along(G.T, _along(G.T, gut, 3), 2))


def _along(m, v, axis):
    """The 1-D transform m (r × k) applied along ``axis`` of v (of length k): output i is the
    sum of its nonzero terms m[i, k]·v[..., k] in index order — the additions the Numba
    copies write out, so both round alike."""
    v = np.moveaxis(v, axis, -1)
    rows = []
    for row in m.astype(v.dtype):
        terms = [v[..., k] * coef for k, coef in enumerate(row) if coef != 0]
        rows.append(sum(terms[1:], terms[0]))
    return np.moveaxis(np.stack(rows, axis=-1), -1, axis)


def reference_input_transform(grid4, out):
    """V = Bᵀ d B for every tile and channel: grid (B, H2, W2, C) → out (T, 16, C).
    Along the tile's columns first (d B), then its rows (Bᵀ ·)."""
    d = tiles_of(grid4)                                         # (B, TH, TW, 4, 4, C)
    v = _along(BT, _along(BT, d, 4), 3)                         # (B, TH, TW, ξr, ξc, C)
    out[...] = v.reshape(-1, 16, grid4.shape[3])
    return out


def reference_output_transform(m, rows4):
    """Y = Aᵀ M A for every tile: m (T, 16, O) → rows4 (B, OH, OW, O)."""
    b, oh, ow, o = rows4.shape
    mt = m.reshape(b, oh // 2, ow // 2, 4, 4, o)
    y = _along(AT, _along(AT, mt, 4), 3)                        # (B, TH, TW, 2, 2, O)
    rows4[...] = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, oh, ow, o)
    return rows4


def reference_output_transform_adjoint(rows4, out):
    """gM = A gY Aᵀ for every tile: gY rows (B, OH, OW, O) → out (T, 16, O)."""
    b, oh, ow, o = rows4.shape
    gy = rows4.reshape(b, oh // 2, 2, ow // 2, 2, o).transpose(0, 1, 3, 2, 4, 5)
    gm = _along(AT.T, _along(AT.T, gy, 4), 3)                   # (B, TH, TW, 4, 4, O)
    out[...] = gm.reshape(-1, 16, o)
    return out


def reference_input_transform_adjoint(gv, grid4):
    """dXp = Σ_tiles B gV Bᵀ: gV (T, 16, C) → grid (B, H2, W2, C), overwritten. Tiles
    overlap by two rows and columns; their parts are added tile by tile in row-major order
    (as the Numba copy does, so the two agree bit for bit)."""
    b, h2, w2, c = grid4.shape
    th, tw = (h2 - 2) // 2, (w2 - 2) // 2
    gd = _along(BT.T, _along(BT.T, gv.reshape(b, th, tw, 4, 4, c), 4), 3)
    grid4[...] = 0
    for ti in range(th):
        for tj in range(tw):
            grid4[:, 2 * ti:2 * ti + 4, 2 * tj:2 * tj + 4] += gd[:, ti, tj]
    return grid4


def _run(name, *args):
    """``name``'s Numba copy when it can run (it fills its last argument, which is returned),
    else the readable ``reference_<name>``."""
    fast = compiled("winograd_cpu")
    if fast is None:
        return globals()["reference_" + name](*args)
    getattr(fast, name)(*args)
    return args[-1]


def input_transform(grid4, out):
    """See ``reference_input_transform`` (the Numba copy when available)."""
    return _run("input_transform", grid4, out)


def output_transform(m, rows4):
    """See ``reference_output_transform``."""
    return _run("output_transform", m, rows4)


def output_transform_adjoint(rows4, out):
    """See ``reference_output_transform_adjoint``."""
    return _run("output_transform_adjoint", rows4, out)


def input_transform_adjoint(gv, grid4):
    """See ``reference_input_transform_adjoint``."""
    return _run("input_transform_adjoint", gv, grid4)


def weight_transform(w):
    """See ``reference_weight_transform`` (the Numba copy: 1.5 ms for a 512→512 layer;
    two NumPy products with the transposes between them took ~39 ms, longer than the
    layer's forward products)."""
    fast = compiled("winograd_cpu")
    if fast is None:
        return reference_weight_transform(w)
    out = np.empty((16,) + w.shape[:2], dtype=w.dtype)
    fast.weight_transform(np.ascontiguousarray(w), out)
    return out


def weight_transform_adjoint(gu):
    """See ``reference_weight_transform_adjoint``."""
    fast = compiled("winograd_cpu")
    if fast is None:
        return reference_weight_transform_adjoint(gu)
    out = np.empty(gu.shape[1:] + (3, 3), dtype=gu.dtype)
    fast.weight_transform_adjoint(np.ascontiguousarray(gu), out)
    return out
