# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 2 — Convolution as one matrix product: im2col, col2im and their memory bill
#
# A convolution slides a small filter over an image and takes a dot product at every position.
# Written as loops it is six nested `for`s and hopelessly slow in Python. The **im2col** trick
# copies every patch the filter will see into a column of a matrix; then *all* the dot products
# of *all* the filters are one matrix product, which NumPy hands to an optimized BLAS.
#
# In this lesson you will
#
# 1. run im2col by hand on a tiny 4×4 image and see which pixel lands where;
# 2. compute a convolution as one matrix product and compare it with a loop and with `F.conv2d`;
# 3. meet **col2im**, the adjoint of im2col, check ⟨col2im(y), x⟩ = ⟨y, im2col(x)⟩ numerically,
#    and see why the backward pass needs exactly it;
# 4. check the gradient of `F.conv2d` with `gradcheck`;
# 5. pay the memory bill: how big the columns get in the BinaryConnect CIFAR-10 network;
# 6. time the forward and backward pass of one layer;
# 7. build max pooling with overlapping 3×3, stride 2 windows from the same patches.
#
# The code it explains: `tinyproj/kernels/reference.py` (im2col, col2im, max pooling) and
# `tinyproj/functional/conv.py` (the Conv2d Function). Shapes, cs231n style:
# x `(N, C, H, W)`, weights `(O, C, kh, kw)`, columns `(N, C·kh·kw, OH·OW)`, and
# `OH = (H + 2·pad − kh) // stride + 1`.

# %%
import os
import sys
import time

import numpy as np

try:
    import _quick  # noqa: F401  (makes `import tinyproj` find this checkout; see lessons/_quick.py)
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick  # noqa: F401
import tinyproj as tp
import tinyproj.functional as F
from tinyproj.gradcheck import gradcheck
from tinyproj.kernels.reference import col2im, im2col, out_size

# Quick mode (used by the tests) shrinks the sizes so the lesson runs in seconds (15 on 2 cores).
QUICK = os.environ.get("TINYPROJ_QUICK", "0") == "1" or "--quick" in sys.argv

np.set_printoptions(precision=4, suppress=True, linewidth=110)
rng = np.random.default_rng(0)          # one seeded generator for the whole lesson
print(f"quick mode: {QUICK}   backend: {tp.backend.name()}")

# %% [markdown]
# ## 1. im2col by hand on a 4×4 image
#
# The image holds the numbers 1…16, so every entry of the columns tells you which pixel it is
# (and a 0 can only be padding). im2col makes **one column per output pixel** (position `(r, c)`
# of the filter) and **one row per kernel tap** (offset `(i, j)` inside the filter):
#
#     cols[(i, j), (r, c)] = x_padded[r·stride + i, c·stride + j]
#
# First the definition written as plainly as possible — a loop over output pixels that cuts out
# each patch and lays it down as a column:

# %%
def im2col_loops(x, kh, kw, stride=1, pad=0):
    """im2col by the definition: one patch → one column.  (N,C,H,W) → (N, C·kh·kw, OH·OW)."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))      # zeros around the border
    cols = np.zeros((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for r in range(oh):
        for q in range(ow):
            patch = xpad[:, :, r * stride:r * stride + kh, q * stride:q * stride + kw]
            cols[:, :, r * ow + q] = patch.reshape(n, -1)           # order (c, i, j) down a column
    return cols


# `kernels/reference.py` computes the same thing with a loop over the kh·kw kernel taps instead of
# the OH·OW output pixels: tap (i, j) of every patch at once is the strided slice
# x_padded[:, :, i::stride, j::stride]. 9 slices for a 3×3 kernel instead of 1024 for a 32×32 output.

x_tiny = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
print("the image x (1×1×4×4):\n", x_tiny[0, 0].astype(int))


def show_cols(x, k, stride, pad):
    """Print the columns of a 1-channel image with row (tap) and column (output pixel) labels."""
    cols = im2col(x, k, k, (stride, stride), (pad, pad))
    assert np.array_equal(cols, im2col_loops(x, k, k, stride, pad))   # the two agree
    oh = out_size(x.shape[2], k, stride, pad)
    ow = out_size(x.shape[3], k, stride, pad)
    print(f"\n{k}×{k} kernel, stride {stride}, padding {pad}:  output {oh}×{ow},"
          f"  cols shape {cols.shape} = (N, C·kh·kw, OH·OW)")
    print("          " + " ".join(f"({r},{q})" for r in range(oh) for q in range(ow)) + "   <- output pixel")
    for row, (i, j) in enumerate((i, j) for i in range(k) for j in range(k)):
        print(f"tap ({i},{j}) " + " ".join(f"{int(v):5d}" for v in cols[0, row]))
    return cols


cols = show_cols(x_tiny, k=2, stride=1, pad=0)
print("column (1,2) is the patch under the filter at output (1,2):", cols[0, :, 1 * 3 + 2].astype(int),
      "= x[1:3, 2:4] =", x_tiny[0, 0, 1:3, 2:4].ravel().astype(int))
# Which pixel lands where: pixel 6 = x[1,1] appears once per output whose patch covers it.
where = np.argwhere(cols[0] == 6)
print("pixel 6 (x[1,1]) lands at (tap, output):",
      [((int(t) // 2, int(t) % 2), (int(l) // 3, int(l) % 3)) for t, l in where])

# %% [markdown]
# With stride 1 the patches **overlap**, so inner pixels are copied several times. Counting the
# copies of every pixel gives a map that comes back in section 3. With stride 2 the 2×2 patches
# tile the image and every pixel is copied exactly once; with padding 1 the border patches pick up
# zeros (the 0 entries) and shift which pixels share a patch.

# %%
def copies(x, cols):
    """How many times each pixel of a 1-channel image with values 1..H·W appears in ``cols``."""
    counts = np.bincount(cols.ravel().astype(int), minlength=x.size + 1)[1:]   # drop the 0s (padding)
    return counts.reshape(x.shape[2:])


print("copies of each pixel, 2×2 stride 1:\n", copies(x_tiny, cols))
cols_s2 = show_cols(x_tiny, k=2, stride=2, pad=0)
print("copies of each pixel, 2×2 stride 2:\n", copies(x_tiny, cols_s2))
cols_s2p1 = show_cols(x_tiny, k=2, stride=2, pad=1)
print("copies of each pixel, 2×2 stride 2 padding 1:\n", copies(x_tiny, cols_s2p1))
print("zeros (padding) among the", cols_s2p1.size, "entries:", int((cols_s2p1 == 0).sum()))

# %% [markdown]
# ## 2. Convolution as one matrix product
#
# Flatten each filter into a row: `W.reshape(O, C·kh·kw)` is an `(O, K)` matrix. Each column of
# `cols[n]` is one patch, flattened in the same `(c, i, j)` order. So
#
#     y[n] = W.reshape(O, K) @ cols[n]        # (O, K) @ (K, OH·OW) = (O, OH·OW)
#
# holds every filter (rows) dotted with every patch (columns): the whole convolution.
# (Like every deep-learning framework, "convolution" here is cross-correlation: the filter is not
# flipped.) We compare it with six plain loops and with `F.conv2d`.

# %%
def conv_loops(x, w, stride=1, pad=0):
    """The definition: y[n, o, r, q] = Σ_{c,i,j} w[o, c, i, j] · x_padded[n, c, r·s + i, q·s + j]."""
    n, c, h, wid = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out_size(h, kh, stride, pad), out_size(wid, kw, stride, pad)
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((n, o, oh, ow))
    for b in range(n):
        for f in range(o):
            for r in range(oh):
                for q in range(ow):
                    patch = xpad[b, :, r * stride:r * stride + kh, q * stride:q * stride + kw]
                    y[b, f, r, q] = (patch * w[f]).sum()          # the loops over c, i, j
    return y


def conv_im2col(x, w, stride=1, pad=0):
    """The same convolution as one (batched) matrix product."""
    n, c, h, wid = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out_size(h, kh, stride, pad), out_size(wid, kw, stride, pad)
    cols = im2col(x, kh, kw, (stride, stride), (pad, pad))      # (N, K, L)
    y = w.reshape(o, -1) @ cols                                  # (O, K) @ (N, K, L) -> (N, O, L)
    return y.reshape(n, o, oh, ow)


x = rng.standard_normal((2, 3, 6, 6))
w = rng.standard_normal((4, 3, 3, 3))
for stride, pad in [(1, 0), (1, 1), (2, 1)]:
    y_loop = conv_loops(x, w, stride, pad)
    y_cols = conv_im2col(x, w, stride, pad)
    y_F = F.conv2d(tp.Tensor(x), tp.Tensor(w), stride=stride, padding=pad).numpy()
    print(f"stride {stride} pad {pad}: y {y_loop.shape}  W as matrix {w.reshape(4, -1).shape}"
          f"  cols {im2col(x, 3, 3, (stride, stride), (pad, pad)).shape}"
          f"  |im2col - loops| {np.abs(y_cols - y_loop).max():.1e}"
          f"  |F.conv2d - loops| {np.abs(y_F - y_loop).max():.1e}")
    assert np.allclose(y_cols, y_loop) and np.allclose(y_F, y_loop)

# %% [markdown]
# ## 3. col2im, the adjoint of im2col
#
# im2col is **linear**: it only copies numbers. Call its matrix $A$ (cols = $A$x). Its adjoint
# (transpose) $A^\top$ is defined by $\langle A^\top y, x\rangle = \langle y, A x\rangle$ for every x and y.
# `col2im` is that adjoint: it takes an array shaped like the columns and **adds every entry back
# onto the pixel it was copied from**. Where patches overlap, several entries land on the same
# pixel and are summed.
#
# Why the backward pass needs exactly this. With cols = $A$x and y = W·cols,
#
#     dL/dcols = Wᵀ · dL/dy            (the backward of a matrix product)
#     dL/dx    = Aᵀ · dL/dcols = col2im(dL/dcols)
#
# A pixel copied into k columns influences the loss through all k copies, so its gradient is the
# sum of the k gradients of its copies — exactly what col2im's adding up does. (col2im is *not*
# the inverse of im2col: col2im(im2col(x)) multiplies each pixel by its number of copies.)

# %%
for (k, s, p) in [(2, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 0)]:
    shape = (2, 3, 7, 7)
    xr = rng.standard_normal(shape)
    cols_r = im2col(xr, k, k, (s, s), (p, p))
    yr = rng.standard_normal(cols_r.shape)                           # anything shaped like the columns
    lhs = (col2im(yr, shape, k, k, (s, s), (p, p)) * xr).sum()       # <col2im(y), x>
    rhs = (yr * cols_r).sum()                                        # <y, im2col(x)>
    print(f"{k}×{k} stride {s} pad {p}:  <col2im(y), x> = {lhs:+.12f}   <y, im2col(x)> = {rhs:+.12f}"
          f"   difference {abs(lhs - rhs):.1e}")
    assert np.isclose(lhs, rhs, rtol=1e-12, atol=1e-10)

# The matrix A itself for the tiny example of section 1 (2×2 kernel, stride 1, 4×4 image):
# column p of A is im2col of the image that is 1 at pixel p and 0 elsewhere.
A = np.stack([im2col(np.eye(16)[p].reshape(1, 1, 4, 4), 2, 2).ravel() for p in range(16)], axis=1)
print("\nA has shape", A.shape, "(36 column entries × 16 pixels), one 1 per row")
ycols = rng.standard_normal((1, 4, 9))
assert np.allclose(col2im(ycols, (1, 1, 4, 4), 2, 2).ravel(), A.T @ ycols.ravel())
print("col2im(y) == Aᵀ y: True")
print("AᵀA is diagonal, its diagonal = number of copies of each pixel:\n",
      np.diag(A.T @ A).reshape(4, 4).astype(int))
print("col2im(im2col(x)) / x (the same map — not the identity):\n",
      (col2im(im2col(x_tiny, 2, 2), x_tiny.shape, 2, 2) / x_tiny)[0, 0].astype(int))

# %% [markdown]
# `Conv2d.backward` in `tinyproj/functional/conv.py` is these two lines (plus dW = Σₙ gy[n]·cols[n]ᵀ).
# Let us redo them by hand and compare with what `backward()` produced:

# %%
xt = tp.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
wt = tp.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
yt = F.conv2d(xt, wt, stride=2, padding=1)                           # (2, 4, 3, 3)
gy = rng.standard_normal(yt.shape)                                   # some upstream dL/dy
yt.backward(gy)

gy_mat = gy.reshape(2, 4, -1)                                        # (N, O, L)
gcols = wt.numpy().reshape(4, -1).T @ gy_mat                         # Wᵀ·dL/dy: (N, K, L)
gx_hand = col2im(gcols, xt.shape, 3, 3, (2, 2), (1, 1))              # add the copies back
cols_t = im2col(xt.numpy(), 3, 3, (2, 2), (1, 1))
gw_hand = (gy_mat @ cols_t.transpose(0, 2, 1)).sum(axis=0).reshape(wt.shape)
# Gradients live where the arrays live — on a GPU that is device memory; NumPy needs them on the
# host, so `host(g)` copies a gradient down before NumPy compares it (on NumPy it is a no-op).
host = tp.backend.to_numpy
print("dL/dx by hand vs backward():", np.abs(gx_hand - host(xt.grad)).max())
print("dL/dW by hand vs backward():", np.abs(gw_hand - host(wt.grad)).max())
assert np.allclose(gx_hand, host(xt.grad)) and np.allclose(gw_hand, host(wt.grad))

# %% [markdown]
# ## 4. The gradient of `F.conv2d`, checked with `gradcheck`
#
# `gradcheck` (lesson 1) compares backward with central differences in float64 — for both the
# input and the weights, with stride and padding, and with a non-square kernel and per-axis
# stride/padding (AlexNet-style layers have those).

# %%
if QUICK:
    xg, wg = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
else:
    xg, wg = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3))
print(gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [xg, wg]))
w23 = rng.standard_normal((3, xg.shape[1], 2, 3))                    # a 2×3 kernel
print(gradcheck(lambda x, w: F.conv2d(x, w, stride=(1, 2), padding=(1, 0)), [xg, w23]))

# %% [markdown]
# ## 5. The memory bill
#
# Every pixel is copied once per kernel tap that covers it, so the columns of a 3×3 convolution
# with padding 1 and stride 1 hold **9 times** the input: N·C·9·H·W numbers. Kept from the
# forward pass until the backward pass has computed dW, the columns of **every** conv layer
# would be alive at the same time at the end of the forward pass. That is why
# `functional/conv.py` does not keep them: backward unfolds the input again, a few images at a
# time (lesson 8 measures what that costs).
#
# Here is the bill for the six 3×3 convolutions of the BinaryConnect CIFAR-10 network
# (2×128C3 – MP2 – 2×256C3 – MP2 – 2×512C3 – MP2 – 2×1024FC – 10) at batch 50 in float32,
# computed by formula (1 MB = 10⁶ bytes):

# %%
BATCH, BYTES = 50, 4                                          # batch size, bytes per float32
layers = [(3, 128, 32), (128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8), (512, 512, 8)]


def bill(c_in, c_out, size, n=BATCH, k=3, pad=1, stride=1):
    """Bytes of input, columns, output and weights of one k×k convolution on size×size inputs."""
    o = out_size(size, k, stride, pad)
    return dict(input=n * c_in * size * size * BYTES,
                cols=n * c_in * k * k * o * o * BYTES,           # (N, C·k·k, OH·OW)
                output=n * c_out * o * o * BYTES,
                weights=c_out * c_in * k * k * BYTES)


MB = 1e6
print(f"{'layer':>16} {'input shape':>18} {'input MB':>9} {'cols MB':>9} {'cols/input':>10}"
      f" {'output MB':>9} {'weights MB':>10}")
total = dict(input=0, cols=0, output=0, weights=0)
for c_in, c_out, size in layers:
    b = bill(c_in, c_out, size)
    for key in total:
        total[key] += b[key]
    print(f"{f'{c_in}→{c_out} @{size}':>16} {str((BATCH, c_in, size, size)):>18} {b['input'] / MB:9.1f}"
          f" {b['cols'] / MB:9.1f} {b['cols'] / b['input']:10.1f} {b['output'] / MB:9.1f}"
          f" {b['weights'] / MB:10.2f}")
print(f"{'all six':>16} {'':>18} {total['input'] / MB:9.1f} {total['cols'] / MB:9.1f}"
      f" {total['cols'] / total['input']:10.1f} {total['output'] / MB:9.1f} {total['weights'] / MB:10.2f}")

# The formula against the real thing: im2col of one image per layer, nbytes × batch.
for c_in, c_out, size in layers:
    real = im2col(np.zeros((1, c_in, size, size), np.float32), 3, 3, (1, 1), (1, 1)).nbytes
    assert real * BATCH == bill(c_in, c_out, size)["cols"]
print("formula checked against im2col(...).nbytes for every layer: ok")

# %% [markdown]
# About half a gigabyte of columns for a network whose weights take 18 MB. That is the price of
# turning convolution into one big matrix product; it is also why `Conv2d` drops its columns as
# soon as dW is computed, before col2im allocates dx.
#
# ## 6. Timing one layer: forward and backward
#
# The full mode times the 128→128 layer at 32×32 with batch 50 (its columns are the 236 MB of the
# table); quick mode a small layer. `time.perf_counter()` is a wall clock with sub-microsecond
# resolution; we take the best of a few repeats, after a warm-up run.

# %%
if QUICK:
    n_t, c_t, size_t, repeats = 4, 32, 16, 3
else:
    n_t, c_t, size_t, repeats = 50, 128, 32, 2
x_np = rng.standard_normal((n_t, c_t, size_t, size_t)).astype(np.float32)
w_np = (rng.standard_normal((c_t, c_t, 3, 3)) * 0.05).astype(np.float32)
xl = tp.Tensor(x_np, requires_grad=True)
wl = tp.Tensor(w_np, requires_grad=True)
gy_l = np.ones((n_t, c_t, size_t, size_t), np.float32)


def best_of(fn, repeats):
    """Best wall time of ``repeats`` calls of fn() (after one warm-up call), and fn's last result."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def forward_backward():
    xl.grad = wl.grad = None
    t0 = time.perf_counter()
    y = F.conv2d(xl, wl, stride=1, padding=1)
    t1 = time.perf_counter()
    y.backward(gy_l)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


forward_backward()                                             # warm-up
runs = [forward_backward() for _ in range(repeats)]
t_fwd = min(r[0] for r in runs)
t_bwd = min(r[1] for r in runs)

# The pieces, timed on their own.
t_im2col, cols_l = best_of(lambda: im2col(x_np, 3, 3, (1, 1), (1, 1)), repeats)
t_matmul, _ = best_of(lambda: w_np.reshape(c_t, -1) @ cols_l, repeats)
t_col2im, _ = best_of(lambda: col2im(cols_l, x_np.shape, 3, 3, (1, 1), (1, 1)), repeats)

K, L = c_t * 9, size_t * size_t
flops_fwd = 2 * n_t * c_t * K * L                     # one multiply-add per (n, o, k, l)
print(f"layer {c_t}→{c_t} @{size_t}×{size_t}, batch {n_t}, float32; columns {cols_l.nbytes / MB:.1f} MB")
print(f"  forward  {t_fwd * 1e3:8.1f} ms   ({flops_fwd / t_fwd / 1e9:6.1f} GFLOP/s)")
print(f"  backward {t_bwd * 1e3:8.1f} ms   ({2 * flops_fwd / t_bwd / 1e9:6.1f} GFLOP/s; dW and dcols"
      f" are two products of the forward's size)")
print(f"  of which: im2col {t_im2col * 1e3:.1f} ms, matrix product {t_matmul * 1e3:.1f} ms,"
      f" col2im {t_col2im * 1e3:.1f} ms")

# %% [markdown]
# ## 7. Max pooling with overlapping 3×3, stride 2 windows — the same patch trick
#
# A pooling window is a patch too. im2col the image with a 3×3 window and stride 2, padding with
# −∞ so that padding never wins, and the maximum over each column is the pooled output:
#
#     windows = im2col(x, 3, 3, stride 2)   # (N, C·9, OH·OW) → view as (N, C, 9, OH·OW)
#     y       = windows.max(over the 9 taps)
#
# The backward pass sends each output's gradient to the pixel that won its window: put gy at the
# winning tap of each column (zeros elsewhere) and col2im it back. Windows of size 3 with stride 2
# **overlap** (AlexNet pools this way), so a pixel can win several windows and collects all their
# gradients — col2im adds them up, just as for convolution.

# %%
x_pool = np.arange(49.0).reshape(1, 1, 7, 7)
x_pool[0, 0, 2, 2] = 100.0          # pixel (2,2) lies in 4 overlapping windows, and wins all 4
print("x (7×7, pixel (2,2) set to 100):\n", x_pool[0, 0].astype(int))
ones = np.ones((1, 9, 9))
print("how many 3×3/stride-2 windows cover each pixel (col2im of ones):\n",
      col2im(ones, x_pool.shape, 3, 3, (2, 2))[0, 0].astype(int))


def max_pool_by_patches(x, k=3, s=2):
    """Forward: y and the winning tap of every window (one channel axis kept apart)."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, k, s, 0), out_size(w, k, s, 0)
    windows = im2col(x, k, k, (s, s), (0, 0), pad_value=-np.inf).reshape(n, c, k * k, oh * ow)
    win = windows.argmax(axis=2)                                    # (N, C, L): the winning tap
    y = windows.max(axis=2).reshape(n, c, oh, ow)
    return y, win


def max_pool_backward_by_patches(gy, win, x_shape, k=3, s=2):
    """Backward: gy at the winning tap of each column, zeros elsewhere, then col2im."""
    n, c = gy.shape[:2]
    onehot = np.zeros((n, c, k * k, win.shape[-1]))
    np.put_along_axis(onehot, win[:, :, None, :], gy.reshape(n, c, 1, -1), axis=2)
    return col2im(onehot.reshape(n, c * k * k, -1), x_shape, k, k, (s, s), (0, 0))


y_p, win_p = max_pool_by_patches(x_pool)
xt_p = tp.Tensor(x_pool, requires_grad=True)
yF = F.max_pool2d(xt_p, 3, stride=2)
yF.sum().backward()                                               # dL/dy = 1 for every window
gx_p = max_pool_backward_by_patches(np.ones_like(y_p), win_p, x_pool.shape)
print("pooled y (3×3):\n", y_p[0, 0].astype(int), "\nF.max_pool2d agrees:", np.array_equal(y_p, yF.numpy()))
print("gradient of sum(y) by patches (pixel (2,2) won 4 windows):\n", gx_p[0, 0].astype(int))
assert np.array_equal(gx_p, host(xt_p.grad)) and gx_p[0, 0, 2, 2] == 4

# The same on random multi-channel data, and a gradient check (random values: no ties).
shape_p = (2, 3, 9, 9) if QUICK else (8, 16, 27, 27)
xr = rng.standard_normal(shape_p)
y_r, win_r = max_pool_by_patches(xr)
gyr = rng.standard_normal(y_r.shape)                              # some upstream gradient
xt_r = tp.Tensor(xr, requires_grad=True)
F.max_pool2d(xt_r, 3, stride=2).backward(gyr)
assert np.allclose(y_r, F.max_pool2d(tp.Tensor(xr), 3, stride=2).numpy())
assert np.allclose(max_pool_backward_by_patches(gyr, win_r, xr.shape), host(xt_r.grad))
print(f"random {shape_p}: forward and backward by patches match F.max_pool2d")
print(gradcheck(lambda t: F.max_pool2d(t, 3, stride=2), [rng.standard_normal((1, 2, 7, 7))]))

# %% [markdown]
# ## A figure
#
# The columns of section 1 as an image, and the memory bill of section 5: shown here in a
# notebook, and saved to `lessons/out/` either way.

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("matplotlib is not installed: no figure")

if plt is not None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw=dict(width_ratios=[1, 2.2, 2.6]))
    for ax, img in ((axes[0], x_tiny[0, 0]), (axes[1], cols[0])):
        ax.imshow(img, cmap="viridis", aspect="auto", vmin=1, vmax=16)
        for (i, j), v in np.ndenumerate(img):        # write each pixel's number on it
            ax.text(j, i, int(v), ha="center", va="center", color="w", fontsize=8)
    axes[0].set_title("image x (values 1…16)")
    axes[0].set_xticks(range(4))
    axes[0].set_yticks(range(4))
    axes[1].set_title("im2col, 2×2 stride 1: one column per output pixel")
    axes[1].set_xticks(range(9), [f"({r},{q})" for r in range(3) for q in range(3)], fontsize=8)
    axes[1].set_yticks(range(4), [f"tap ({i},{j})" for i in range(2) for j in range(2)], fontsize=8)
    names = [f"{a}→{b}@{s}" for a, b, s in layers]
    pos = np.arange(len(layers))
    axes[2].bar(pos - 0.2, [bill(*lay)["input"] / MB for lay in layers], 0.4, label="input")
    axes[2].bar(pos + 0.2, [bill(*lay)["cols"] / MB for lay in layers], 0.4, label="columns")
    axes[2].set_xticks(pos, names, rotation=20, fontsize=8)
    axes[2].set_ylabel("MB (float32, batch 50)")
    axes[2].set_title("memory bill of the columns")
    axes[2].legend()
    fig.tight_layout()
    _quick.show(fig, "02_convolution_im2col.png")    # inline in a notebook; saved to lessons/out/

# %% [markdown]
# ## Summary
#
# * im2col lays every patch down as a column: `(N, C, H, W) → (N, C·kh·kw, OH·OW)`; a convolution
#   is then `W.reshape(O, C·kh·kw) @ cols`, one matrix product.
# * col2im is im2col's adjoint (⟨col2im(y), x⟩ = ⟨y, im2col(x)⟩): it adds overlapping copies back
#   together, which is exactly the gradient with respect to the input.
# * The columns cost kh·kw times the input — about 0.5 GB for the six 3×3 layers of the
#   BinaryConnect network at batch 50 — which is why conv2d unfolds them again in backward,
#   a chunk of images at a time, instead of keeping them (lesson 8).
# * Max pooling is a max over the same columns; its backward is col2im of the winners' gradients.

# %%
print("\nLesson 2 done.")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Write `my_out_size(size, k, stride, pad)`: the output length of a convolution along one axis
#    (section 1); the checker compares it with tinyproj's on many sizes.
# 2. The shape of `im2col(x, 3, 3, stride=(2, 2), pad=(1, 1))` for x of shape (2, 3, 8, 8), as a
#    tuple (N, C·kh·kw, OH·OW) — work it out before you run im2col.

# %%
from exercises import check_02_1, check_02_2  # noqa: E402  (lessons/exercises.py)


def my_out_size(size, k, stride=1, pad=0):
    return ...                  # your formula


check_02_1(my_out_size)

# %%
answer_2 = ...                  # e.g. (2, ..., ...)
check_02_2(answer_2)
