# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 8 — Kernels: where the time of a training step goes, and how it is won back
#
# Lesson 2 built a convolution from im2col and one matrix product, with readable array
# slicing. That code is still in `tinyproj/kernels/reference.py`, and it is still the
# definition of what every kernel computes. But the CPU does not run it by default: it runs
# `tinyproj/kernels/cpu.py`, Numba loops that give **the same numbers**, faster and with less
# memory. This lesson puts the two side by side and measures what each design choice buys.
#
# In this lesson you will
#
# 1. count the FLOPs of a conv layer, meet the two layouts of the columns — per image
#    `(N, K, L)` and batch `(K, N·L)` — and time a thin per-image product against one large one;
# 2. pay the memory bill of the columns, see why backward *recomputes* them, how the batch is
#    cut into chunks by `COLS_BUDGET`, and what a reused scratch buffer saves (page zeroing);
# 3. read a Numba kernel beside its reference, check they agree bit for bit and time them
#    (im2col, col2im, max pooling), and learn the switches: `prange`, `cache=True`,
#    `NUMBA_DISABLE_JIT=1`, `TINYPROJ_KERNELS=reference`;
# 4. profile a whole Algorithm-1 training step with `cProfile`, sort the time into
#    matrix products / im2col / col2im / everything else, and compare the two kernel families;
#    then skip the columns (shifted products) and cut the multiplications 2.25× (Winograd);
# 5. try two exercises.
#
# The code it explains: `tinyproj/kernels/reference.py` (the oracle), `tinyproj/kernels/cpu.py`
# and `cpu_pool.py` (the Numba kernels), `tinyproj/kernels/__init__.py` (which kernel runs),
# `tinyproj/kernels/workspace.py` (scratch buffers), `tinyproj/functional/conv.py` (the conv
# layer that uses them), `tinyproj/kernels/winograd.py` with `tinyproj/functional/conv_winograd.py`
# (Winograd F(2×2, 3×3)) and `tinyproj/_threads.py` (thread-pool settings).
#
# **Timings depend on your machine** (cores, BLAS, memory, whatever else is running). The
# numbers printed are measurements, never checked; what the lesson *asserts* is that the fast
# kernels give the reference's results.

# %%
import cProfile
import inspect
import os
import pstats
import re
import subprocess
import sys
import time

try:
    import _quick  # noqa: F401  (makes `import tinyproj` find this checkout; see lessons/_quick.py)
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick  # noqa: F401
import tinyproj as tp    # before NumPy, so that its thread settings reach OpenBLAS (section 4)

import numpy as np
import numba
import tinyproj.functional as F
import tinyproj.functional.conv as conv_mod      # the module, for COLS_BUDGET
from tinyproj.functional import conv_shifted     # the shifted products' switch (section 4)
from tinyproj import _threads, algorithm1, backend, clipping, kernels, models, optim
from tinyproj.kernels import cpu, cpu_pool, workspace
from tinyproj.kernels import reference as ref
from tinyproj.kernels.reference import out_size

QUICK = _quick.quick()
np.set_printoptions(precision=4, suppress=True, linewidth=110)
rng = np.random.default_rng(0)
MB = 1e6
print(f"quick mode: {QUICK}   backend: {backend.name()}   kernels: {kernels.mode()}"
      f"   Numba threads: {numba.get_num_threads()}   CPU cores: {os.cpu_count()}")


def best_of(fn, repeats=3):
    """Best wall time of ``repeats`` calls of fn() after one warm-up call, and fn's result.

    The best, not the mean: other programs only ever make a run slower, so the minimum is the
    closest to what the code itself costs. The warm-up call pays one-off costs (loading a
    compiled kernel, first touch of memory) that a training loop pays once per run.
    """
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# %% [markdown]
# ## 1. Why im2col: a convolution is one matrix product
#
# A 3×3 convolution from C to O channels on an N×C×H×W batch computes, for every image n,
# output channel o and output pixel l, a dot product of length K = C·3·3. With L = OH·OW that
# is N·O·L·K multiply-adds, **2·N·O·K·L floating-point operations** (FLOPs). Here is the bill
# for the six conv layers of the BinaryConnect CIFAR-10 network (`models.bc_cifar10`, width 1)
# at batch 50:

# %%
BC_LAYERS = [(3, 128, 32), (128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8),
             (512, 512, 8)]           # (C in, O out, input side) of conv1 ... conv6


def conv_flops(n, c, o, size, k=3, pad=1, stride=1):
    """FLOPs of the forward pass of one k×k conv layer: 2·N·O·K·L."""
    side = out_size(size, k, stride, pad)
    return 2 * n * o * (c * k * k) * side * side


flops = [conv_flops(50, c, o, s) for c, o, s in BC_LAYERS]
print(f"{'layer':>14} {'K = C·9':>8} {'L = OH·OW':>10} {'forward GFLOP':>14} {'share':>6}")
for (c, o, s), f in zip(BC_LAYERS, flops):
    print(f"{f'{c}→{o} @{s}':>14} {c * 9:8d} {s * s:10d} {f / 1e9:14.2f} {f / sum(flops):6.1%}")
print(f"{'all six':>14} {'':8} {'':10} {sum(flops) / 1e9:14.2f}"
      f"   (a training step: about 3× that, forward + two backward products)")

# %% [markdown]
# Lesson 2 wrote the columns **per image**: `reference.im2col` gives `(N, K, L)` and the
# convolution is N products `W_mat @ cols[n]`, each `(O, K) @ (K, L)`. The layer code uses the
# **batch layout** instead: `reference.im2col_batch` gives `(K, N·L)` — the same columns with
# the images side by side — and the whole batch is **one** product `(O, K) @ (K, N·L)`. The
# output comes out as `(O, N·L)`; `swap01` turns it into the `(N, O, L)` the next layer wants.
# Same numbers, different order in memory:

# %%
x_s = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
w_s = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
cols_n = ref.im2col(x_s, 3, 3, (1, 1), (1, 1))                   # (N, K, L)
cols_b = ref.im2col_batch(x_s, 3, 3, (1, 1), (1, 1))             # (K, N·L)
K, L = cols_n.shape[1], cols_n.shape[2]
print("per-image layout", cols_n.shape, "  batch layout", cols_b.shape)
# Column n·L + l of the batch layout is column l of image n:
assert np.array_equal(cols_b.reshape(K, 2, L).transpose(1, 0, 2), cols_n)

w_mat = w_s.reshape(4, -1)                                        # (O, K)
Y = w_mat @ cols_b                                                # (O, N·L): one product
y_batch = ref.swap01(Y.reshape(4, 2, L))                          # (N, O, L)
y_per_image = np.stack([w_mat @ cols_n[n] for n in range(2)])     # N products
assert np.allclose(y_batch, y_per_image, atol=1e-5)
assert np.allclose(y_batch.reshape(2, 4, 5, 5),
                   F.conv2d(tp.Tensor(x_s), tp.Tensor(w_s), padding=1).numpy(), atol=1e-5)
print("W_mat @ cols_batch, swapped to (N, O, L) == the per-image products == F.conv2d: ok")

# %% [markdown]
# Why bother? A BLAS runs near its peak only on products large enough to keep every core busy
# with blocks that stay in cache. The 8×8 layers are the extreme case: per image the product is
# `(512, 4608) @ (4608, 64)`, a thin matrix with 64 columns; side by side the batch gives
# `(4608, 3200)`. We time both on an 8×8 layer (quick mode: a smaller one).

# %%
if QUICK:
    n_b, c_b, side_b = 16, 128, 8
else:
    n_b, c_b, side_b = 50, 512, 8
x_b = rng.standard_normal((n_b, c_b, side_b, side_b)).astype(np.float32)
w_b = rng.standard_normal((c_b, c_b * 9)).astype(np.float32)      # W_mat, (O, K)
per_image_cols = ref.im2col(x_b, 3, 3, (1, 1), (1, 1))           # (N, K, L)
batch_cols = ref.im2col_batch(x_b, 3, 3, (1, 1), (1, 1))         # (K, N·L)
t_thin, _ = best_of(lambda: [w_b @ per_image_cols[n] for n in range(n_b)])
t_wide, _ = best_of(lambda: w_b @ batch_cols)
f_layer = conv_flops(n_b, c_b, c_b, side_b)
print(f"{c_b}→{c_b} @{side_b}×{side_b}, batch {n_b}: K = {c_b * 9}, L = {side_b ** 2},"
      f" {f_layer / 1e9:.2f} GFLOP")
print(f"  {n_b} per-image products ({c_b}, {c_b * 9}) @ ({c_b * 9}, {side_b ** 2}):"
      f" {t_thin * 1e3:7.2f} ms  {f_layer / t_thin / 1e9:6.1f} GFLOP/s")
print(f"  one batch product ({c_b}, {c_b * 9}) @ ({c_b * 9}, {n_b * side_b ** 2}):"
      f" {t_wide * 1e3:7.2f} ms  {f_layer / t_wide / 1e9:6.1f} GFLOP/s"
      f"  ({t_thin / t_wide:.2f}× the per-image rate)")

# %% [markdown]
# On a laptop with 2 cores the gap is modest (tens of per cent); on a machine with many cores
# it grows, because a thin product has too little work to split among all the threads. The
# batch layout has a second advantage: `W_mat @ cols` reads the columns exactly as they lie in
# memory, no transposed copy. Its price is the two `swap01` copies of y and dL/dy — cheap,
# they move L contiguous floats at a time.
#
# One more twist, found by measuring: OpenBLAS is slow when the *result* of a
# product is short in its rows — `W_mat @ cols` has only O = 32 rows at width 0.25, and
# dW = `gY @ cols.T` is a small (O, K) result summed over N·L columns. Taking each product
# transposed — `cols.T @ W_mat.T`, a (N·L, O) result, and dWᵀ = `cols @ gYᵀ` — does the same
# sums in a shape OpenBLAS runs near its rate: the six conv layers of bc_cifar10 need about a
# third of the CPU time at width 0.25 and two thirds at width 1.0. The transposed result
# (N, L, O) then needs a transposed copy to (N, O, L) in place of `swap01`. So `conv.py` takes
# the products transposed on the CPU (`ROWS_OUT`); `benchmarks/conv_layouts.py` compares the
# two layouts layer by layer on your machine.
#
# ## 2. What the columns cost, and what col2im costs
#
# Every pixel is copied once per kernel tap that covers it: the columns are K·N·L numbers,
# **9 times the input** for a 3×3 convolution. `reference.cols_nbytes` computes the bill
# without allocating anything:

# %%
nbytes = ref.cols_nbytes((50, 128, 32, 32), 3, 3, stride=1, pad=1)
print(f"128→128 @32×32, batch 50: K·N·L·4 = 1152 · 50 · 1024 · 4 = {nbytes:,} bytes"
      f" = {nbytes / MB:.1f} MB  (the input is {50 * 128 * 32 * 32 * 4 / MB:.1f} MB)")
assert nbytes == 1152 * 50 * 1024 * 4

budget = conv_mod.COLS_BUDGET
print(f"\nCOLS_BUDGET = {budget:,} bytes ({budget / 2**20:g} MiB): most bytes of columns unfolded at once")
print(f"{'layer':>14} {'cols MB':>8} {'per image MB':>13} {'images/chunk':>13} {'chunks':>7}"
      f" {'chunk MB':>9}")
all_cols = 0
for c, o, s in BC_LAYERS:
    whole = ref.cols_nbytes((50, c, s, s), 3, 3, 1, 1)
    one = ref.cols_nbytes((1, c, s, s), 3, 3, 1, 1)
    per_chunk = max(1, min(50, budget // one))           # the rule of Conv2d._chunks
    chunks = -(-50 // per_chunk)
    all_cols += whole
    print(f"{f'{c}→{o} @{s}':>14} {whole / MB:8.1f} {one / MB:13.2f} {per_chunk:13d} {chunks:7d}"
          f" {per_chunk * one / MB:9.1f}")
print(f"{'all six':>14} {all_cols / MB:8.1f}   ← alive at once if the forward pass kept its columns")

# %% [markdown]
# Three decisions in `functional/conv.py` follow from this table:
#
# * **Backward recomputes the columns.** dW = dL/dY · colsᵀ needs the columns again. Keeping
#   them from the forward pass would hold all six layers' columns at the same time — the
#   half gigabyte above — from the end of the forward pass to the backward pass. Unfolding x
#   again costs one more im2col per layer, a few per cent of the layer's time (measured below).
# * **Chunks of images.** The batch is convolved `COLS_BUDGET` bytes of columns at a time
#   (at least one image), so the columns never take more than the budget. A chunk is still a
#   wide product — thousands of columns — but not as wide as the whole batch: a larger budget
#   buys a somewhat faster product with memory (the numbers are in `conv.COLS_BUDGET`'s note).
# * **col2im** (dcols → dx, the adjoint of im2col, lesson 2) adds the entries of dcols back onto
#   the pixels: it reads as many bytes as im2col writes, plus the additions.
#
# Let us watch one layer with the default budget, with a budget so large that the batch is
# one chunk, and with one image per chunk. `workspace.nbytes()` tells how much scratch memory
# the layer holds afterwards: the columns (and in backward dcols, in the same buffer) plus the
# `(O, B·L)` output of the chunk's product.

# %%
if QUICK:
    n_l, c_l, side_l = 8, 32, 16
else:
    n_l, c_l, side_l = 50, 128, 32
x_l = rng.standard_normal((n_l, c_l, side_l, side_l)).astype(np.float32)
w_l = (rng.standard_normal((c_l, c_l, 3, 3)) * 0.05).astype(np.float32)
gy_l = rng.standard_normal((n_l, c_l, side_l, side_l)).astype(np.float32)
per_image = ref.cols_nbytes((1, c_l, side_l, side_l), 3, 3, 1, 1)


def conv_step():
    """Forward and backward of the layer; returns y, dL/dx, dL/dW."""
    xt, wt = tp.Tensor(x_l, requires_grad=True), tp.Tensor(w_l, requires_grad=True)
    y = F.conv2d(xt, wt, padding=1)
    y.backward(gy_l)
    return y.numpy(), xt.grad, wt.grad


default_budget = conv_mod.COLS_BUDGET
budgets = {"default": default_budget, "whole batch": n_l * per_image, "one image": per_image}
results = {}
print(f"layer {c_l}→{c_l} @{side_l}×{side_l}, batch {n_l}: columns {n_l * per_image / MB:.1f} MB,"
      f" {per_image / MB:.2f} MB per image")
try:
    for label, b in budgets.items():
        conv_mod.COLS_BUDGET = b                      # read by Conv2d at every call
        workspace.clear()                             # start each budget from no scratch memory
        t, results[label] = best_of(conv_step, repeats=2)
        images = max(1, min(n_l, b // per_image))
        print(f"  budget {label:>11} ({b / MB:6.1f} MB): {images:3d} images/chunk,"
              f" forward+backward {t * 1e3:7.1f} ms, scratch held {workspace.nbytes() / MB:6.1f} MB")
finally:
    conv_mod.COLS_BUDGET = default_budget             # leave the module as we found it
    workspace.clear()
worst = 0.0
for label in budgets:                # chunking changes nothing but the rounding of the dW sums
    for got, want in zip(results[label], results["default"]):
        worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
assert worst < 1e-5
print(f"y, dL/dx, dL/dW agree for every budget (largest difference {worst:.1e} of the largest entry)")

# %% [markdown]
# What recomputing the columns in backward costs, next to the whole layer, and what one
# col2im costs:

# %%
t_fb, _ = best_of(conv_step, repeats=2)
cols_l = np.empty((c_l * 9, n_l * side_l * side_l), np.float32)
t_i2c, _ = best_of(lambda: cpu.im2col_batch(x_l, 3, 3, (1, 1), (1, 1), out=cols_l))
t_c2i, _ = best_of(lambda: cpu.col2im_batch(cols_l, x_l.shape, 3, 3, (1, 1), (1, 1)))
print(f"\nforward+backward {t_fb * 1e3:.1f} ms; one im2col of the batch {t_i2c * 1e3:.1f} ms"
      f" ({t_i2c / t_fb:.0%}: the price of not keeping the columns); one col2im {t_c2i * 1e3:.1f} ms")

# %% [markdown]
# ### Fresh memory is not free: first-touch page zeroing
#
# `np.empty` of a big array does not touch memory: the operating system only reserves
# addresses. The first write to each 4 KB page traps into the kernel, which hands over a
# page **filled with zeros** (it must: the page may have held another program's data). So
# filling a *fresh* big array costs the zeroing plus the fill, and filling an array we already
# own costs only the fill. (Below about 32 MB the C library may recycle freed memory without
# going to the system, so the effect shows on big arrays.) `workspace.scratch` hands out views
# of one buffer kept per name, so the conv layer pays the zeroing once per run, not twice per
# layer and step:

# %%
n_bytes = (64 if QUICK else 236) * 10**6
n_floats = n_bytes // 4
kept = np.empty(n_floats, np.float32)


def fill_fresh():
    a = np.empty(n_floats, np.float32)                # new pages every time (freed after)
    a.fill(1.0)


def fill_scratch():
    s = workspace.scratch("lesson08.demo", (n_floats,), np.float32, kept)   # the same buffer
    s.fill(1.0)


t_fresh, _ = best_of(fill_fresh)
t_kept, _ = best_of(lambda: kept.fill(1.0))
t_scr, _ = best_of(fill_scratch)
print(f"fill {n_bytes / MB:.0f} MB:  fresh np.empty(...).fill {t_fresh * 1e3:6.1f} ms"
      f"   existing array {t_kept * 1e3:6.1f} ms   workspace.scratch view {t_scr * 1e3:6.1f} ms")
zeroing = t_fresh - t_kept
if zeroing > 0:
    print(f"page zeroing ≈ {zeroing * 1e3:.1f} ms per {n_bytes / MB:.0f} MB"
          f" (≈ {n_bytes / zeroing / 1e9:.1f} GB/s)")
else:                                                 # possible when the machine is busy
    print("no measurable zeroing this time: rerun the cell")
workspace.clear()
del kept

# %% [markdown]
# ## 3. The Numba kernel beside the reference
#
# ### im2col in the batch layout
#
# The reference loops over the 9 kernel taps and copies one strided slice of the padded input
# per tap (it builds the padded copy first, with `np.pad`):

# %%
def show_source(fn):
    """Print a function's source without its docstring (a Numba kernel: its Python source)."""
    src = inspect.getsource(getattr(fn, "py_func", fn))
    print(re.sub(r'\n(\s+)""".*?"""\n', "\n", src, count=1, flags=re.S))


show_source(ref.im2col_batch)

# %% [markdown]
# The Numba kernel `cpu._im2col_batch` is the compiled loop behind `cpu.im2col_batch` (which
# allocates the output and checks shapes). It never builds a padded copy: `_valid_range` says
# which output rows and columns of a tap read real pixels, the rest get `pad_value`.
#
# * `@njit(parallel=True)` compiles the function to machine code; **`prange`** splits the
#   outer loop over the cores. Here one job is one (channel, image) pair, and it writes only
#   the rows of `cols` that belong to that pair — **each thread owns whole parts of the output,
#   so no two threads ever write the same element**: no locks, no atomics.
# * `cache=True` saves the machine code in `tinyproj/kernels/__pycache__` the first time a
#   kernel runs for a given argument type; later runs load it in milliseconds instead of
#   compiling for a second or two.

# %%
show_source(cpu._im2col_batch)

# %%
for shape, k, stride, pad in [((2, 3, 7, 7), 3, (1, 1), (1, 1)), ((3, 4, 9, 8), 3, (2, 2), (1, 1)),
                              ((2, 2, 6, 9), 2, (2, 3), (0, 1)), ((1, 3, 5, 5), 5, (1, 1), (2, 2))]:
    xs = rng.standard_normal(shape).astype(np.float32)
    a = ref.im2col_batch(xs, k, k, stride, pad)
    b = cpu.im2col_batch(xs, k, k, stride, pad)
    assert a.shape == b.shape and np.array_equal(a, b)      # a copy: bit for bit, not "close"
    print(f"x {shape}, {k}×{k}, stride {stride}, pad {pad}: cols {b.shape}, Numba == reference")

out_l = np.empty((c_l * 9, n_l * side_l * side_l), np.float32)
t_ref, _ = best_of(lambda: ref.im2col_batch(x_l, 3, 3, (1, 1), (1, 1), out=out_l))
t_nb, _ = best_of(lambda: cpu.im2col_batch(x_l, 3, 3, (1, 1), (1, 1), out=out_l))
print(f"\nim2col_batch of {x_l.shape} ({out_l.nbytes / MB:.1f} MB of columns):"
      f" reference {t_ref * 1e3:.2f} ms, Numba {t_nb * 1e3:.2f} ms"
      f" ({out_l.nbytes / t_nb / 1e9:.1f} GB/s written)")
stats = cpu._im2col_batch.stats
cache_dir = stats.cache_path
if cache_dir.startswith(_quick.ROOT):
    cache_dir = os.path.relpath(cache_dir, _quick.ROOT)
print(f"compiled-code cache of _im2col_batch: {cache_dir},"
      f" {sum(stats.cache_hits.values())} hit(s), {sum(stats.cache_misses.values())} miss(es)")

# %% [markdown]
# im2col is a pure copy, so both versions end up limited by memory bandwidth; the Numba kernel
# saves the padded copy of x and the strided reads of the transposed slices, and how much that
# buys depends on the sizes and the machine. The larger gains are where the reference makes
# several passes and temporaries that a loop fuses into one: col2im, max pooling, batch norm,
# Adam. (A cache *hit* above means the machine code was loaded from `__pycache__`; a *miss*,
# that this run compiled it — a second or so — and saved it for the next run.)
#
# ### col2im: why "each thread owns whole output planes" matters
#
# col2im *adds* into the output, and a pixel receives contributions from up to 9 column
# entries. If threads split the work by column entries, two threads could add to the same
# pixel at once and lose an update; the array-code way out is a scatter-add, `np.add.at`, which
# is correct but slow. `cpu._col2im_batch` instead gives each job one (image, channel) **plane
# of dx** and lets it gather everything that lands there, in a fixed order. So it needs no
# `np.add.at`, and its result does not depend on the number of threads:

# %%
shape_c = (4, 16, 12, 12) if QUICK else (8, 64, 16, 16)
x_c = rng.standard_normal(shape_c).astype(np.float32)
dcols = rng.standard_normal(ref.im2col_batch(x_c, 3, 3, (1, 1), (1, 1)).shape).astype(np.float32)

# col2im as one scatter-add: the source pixel of every column entry, from im2col of the
# pixel numbers themselves (padding gets −1).
pixel_id = np.arange(x_c.size, dtype=np.float64).reshape(shape_c)
src = ref.im2col_batch(pixel_id, 3, 3, (1, 1), (1, 1), pad_value=-1).astype(np.int64)
real = src >= 0


def col2im_add_at(cols):
    flat = np.zeros(x_c.size, cols.dtype)
    np.add.at(flat, src[real], cols[real])            # unbuffered: repeated indices add up
    return flat.reshape(shape_c)


# %%
g_ref = ref.col2im_batch(dcols, shape_c, 3, 3, (1, 1), (1, 1))
g_nb = cpu.col2im_batch(dcols, shape_c, 3, 3, (1, 1), (1, 1))
threads = numba.get_num_threads()
numba.set_num_threads(1)
try:
    g_nb1 = cpu.col2im_batch(dcols, shape_c, 3, 3, (1, 1), (1, 1))
finally:
    numba.set_num_threads(threads)
assert np.array_equal(g_nb, g_ref)                     # same sums, same order of additions
assert np.array_equal(g_nb1, g_nb)                     # 1 thread or all: bit for bit
assert np.allclose(col2im_add_at(dcols), g_ref, atol=1e-5)
t_a, _ = best_of(lambda: ref.col2im_batch(dcols, shape_c, 3, 3, (1, 1), (1, 1)))
t_b, _ = best_of(lambda: cpu.col2im_batch(dcols, shape_c, 3, 3, (1, 1), (1, 1)))
t_c, _ = best_of(lambda: col2im_add_at(dcols), repeats=1)
print(f"col2im_batch to {shape_c}: reference {t_a * 1e3:.2f} ms, Numba {t_b * 1e3:.2f} ms"
      f" ({threads} threads; bit-identical with 1 thread), np.add.at {t_c * 1e3:.1f} ms")

# %% [markdown]
# ### Which kernel runs, and how to debug one
#
# Layers never import `cpu` or `reference`; they ask `kernels.get(name, like)` for the kernel
# for arrays like `like`, and it reads `TINYPROJ_KERNELS` **at every call**. So
# `TINYPROJ_KERNELS=reference` (in the shell, or in `os.environ` as here) switches a whole run
# to the readable kernels — to compare, to time, or to step through them in a debugger.

# %%
saved_mode = os.environ.get("TINYPROJ_KERNELS")


def set_kernels(value):
    """Set TINYPROJ_KERNELS (None: remove it, back to the default 'auto')."""
    if value is None:
        os.environ.pop("TINYPROJ_KERNELS", None)
    else:
        os.environ["TINYPROJ_KERNELS"] = value


try:
    for value in ("auto", "reference"):
        set_kernels(value)
        k_fn = kernels.get("im2col_batch", x_l)
        print(f"TINYPROJ_KERNELS={value:<9} → kernels.get('im2col_batch', numpy array) is"
              f" {k_fn.__module__}.{k_fn.__name__}")
finally:
    set_kernels(saved_mode)

# %% [markdown]
# A debugger cannot step into compiled code. `NUMBA_DISABLE_JIT=1`, set **before Python
# starts**, makes every `@njit` a plain Python function (`prange` becomes `range`), so
# `breakpoint()` and pdb work inside the loops — very slowly. Within a running program the
# same plain function is there as `kernel.py_func`. Both give the compiled kernel's result:

# %%
x_t = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
cols_t = np.empty((27, 2, 36), np.float32)
t0 = time.perf_counter()
cpu._im2col_batch.py_func(x_t, 3, 3, 1, 1, 1, 1, np.float32(0), cols_t)   # plain Python
t_py = time.perf_counter() - t0
t_jit, cols_jit = best_of(lambda: cpu.im2col_batch(x_t, 3, 3, (1, 1), (1, 1)))
assert np.array_equal(cols_t.reshape(27, -1), cols_jit)
print(f"im2col of {x_t.shape}: as Python (py_func) {t_py * 1e3:.1f} ms, compiled {t_jit * 1e3:.3f} ms")

# %%
# The real switch, in a fresh interpreter, as you would use it from the shell:
probe = ("import numpy as np, time; from tinyproj.kernels import cpu, reference as ref; "
         "x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32); "
         "t = time.perf_counter(); a = cpu.im2col_batch(x, 3, 3, (1, 1), (1, 1)); "
         "t = time.perf_counter() - t; "
         "print(type(cpu._im2col_batch).__name__, np.array_equal(a, ref.im2col_batch(x, 3, 3, "
         "(1, 1), (1, 1))), f'{t * 1e3:.1f} ms')")
env = dict(os.environ, NUMBA_DISABLE_JIT="1",
           PYTHONPATH=os.pathsep.join(filter(None, [_quick.ROOT, os.environ.get("PYTHONPATH")])))
proc = subprocess.run([sys.executable, "-c", probe], env=env, cwd=_quick.ROOT,
                      capture_output=True, text=True, timeout=120)
assert proc.returncode == 0, proc.stderr
kind, same, took = proc.stdout.split()[:3]
print(f"NUMBA_DISABLE_JIT=1: cpu._im2col_batch is a plain {kind!r}; equal to the reference: {same};"
      f" {took} ms")
assert kind == "function" and same == "True"

# %% [markdown]
# ### Max pooling: the first maximum wins, padding never does
#
# `reference.maxpool_forward` is lesson 2's trick — im2col with padding −∞, then `argmax` over
# the taps. It returns the output and, per window, the number `i·kw + j` of the winning tap,
# which is all the backward pass needs. `argmax` defines two rules the Numba kernel must copy:
# on ties the **first** maximum (in raster order) wins, and padding, being −∞, **never** wins
# (zero padding would: with all-negative inputs, 0 beats every pixel).

# %%
show_source(cpu_pool._maxpool_forward)

# %%
x_mp = -np.array([[5, 3, 3, 9, 4],
                  [2, 2, 7, 1, 4],
                  [8, 4, 4, 6, 9],
                  [9, 1, 1, 2, 3],
                  [6, 6, 5, 8, 7]], np.float32).reshape(1, 1, 5, 5)     # all negative
y_r, am_r = ref.maxpool_forward(x_mp, 3, 3, (2, 2), (1, 1))
y_n, am_n = cpu_pool.maxpool_forward(x_mp, 3, 3, (2, 2), (1, 1))
print("x (3×3 windows, stride 2, padding 1):\n", x_mp[0, 0].astype(int))
print("y:\n", y_n[0, 0].astype(int), "\nwinning tap i·3 + j:\n", am_n[0, 0])
# Window (0, 0) covers rows −1..1 and columns −1..1: five padding taps, then −5 −3 / −2 −2.
# The max −2 appears twice (taps 7 and 8); the first, tap 7, wins.
assert y_n[0, 0, 0, 0] == -2 and am_n[0, 0, 0, 0] == 7
zero_padded = ref.im2col(x_mp, 3, 3, (2, 2), (1, 1), pad_value=0.0).max(axis=1)
print("with zero padding instead of −∞ the maxima would be:", zero_padded.ravel(), "— wrong")
assert np.array_equal(y_n, y_r) and np.array_equal(am_n, am_r)
print(f"Numba == reference (y and argmax; argmax stored as {am_n.dtype} vs {am_r.dtype})")

shape_p = (4, 16, 16, 16) if QUICK else (50, 128, 32, 32)
x_p = rng.standard_normal(shape_p).astype(np.float32)
x_p[:, :, ::4, ::4] = x_p[:, :, 1::4, ::4]           # plant ties inside windows
for k, s, p in [(3, (2, 2), (1, 1)), (2, (2, 2), (0, 0)), (3, (1, 1), (0, 0))]:
    yr, ar = ref.maxpool_forward(x_p, k, k, s, p)
    yn, an = cpu_pool.maxpool_forward(x_p, k, k, s, p)
    assert np.array_equal(yr, yn) and np.array_equal(ar, an)
    gy_p = rng.standard_normal(yr.shape).astype(np.float32)
    assert np.allclose(ref.maxpool_backward(gy_p, ar, shape_p, k, k, s, p),
                       cpu_pool.maxpool_backward(gy_p, an, shape_p, k, k, s, p), atol=1e-6)
t_r, _ = best_of(lambda: ref.maxpool_forward(x_p, 3, 3, (2, 2), (1, 1)))
t_n, _ = best_of(lambda: cpu_pool.maxpool_forward(x_p, 3, 3, (2, 2), (1, 1)))
print(f"max pool 3×3/2 pad 1 of {shape_p}: reference {t_r * 1e3:.2f} ms, Numba {t_n * 1e3:.2f} ms"
      f" (the reference builds 9× the input as columns first); forward and backward agree")

# %% [markdown]
# ## 4. Profiling a training step
#
# Kernels are worth speeding up only where a step spends its time. `cProfile` records every
# Python-level call; a Numba kernel shows up under its own name (`cpu.py:…(_im2col_batch)`),
# so the profile of a step reads like a bill. We profile Algorithm-1 steps of the CIFAR-10
# network (Sign projection, clipping, Adam, square hinge loss — set up as in
# `benchmarks/train_step.py`), after one warm-up step that loads the compiled kernels and
# allocates the scratch buffers.

# %%
WIDTH, BATCH, STEPS = (0.125, 8, 2) if QUICK else (0.25, 50, 2)


def make_step(seed=0):
    """A fresh bc_cifar10 with its optimizer and clip bounds, and a function doing one step."""
    step_rng = backend.make_rng(seed)
    model = models.bc_cifar10(width=WIDTH, rng=step_rng)
    model.train()
    opt = optim.Adam(model.parameters(), lr=0.003)
    bounds = clipping.clip_bounds(model, 0.5)
    host = np.random.default_rng(seed)
    xb = backend.asarray(host.standard_normal((BATCH, 3, 32, 32), dtype=np.float32))
    yb = backend.asarray(np.arange(BATCH) % 10)
    return lambda: algorithm1.train_step(model, xb, yb, F.square_hinge_loss, opt, "sign",
                                         bounds, step_rng)


def profile_steps(step, n=STEPS):
    """Warm up, then cProfile n steps; returns the pstats.Stats and the wall time per step."""
    step()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(n):
        step()
    prof.disable()
    return pstats.Stats(prof), (time.perf_counter() - t0) / n


# %%
def where(file, line):
    return (os.path.relpath(file, _quick.ROOT) if file.startswith(_quick.ROOT)
            else os.path.basename(file)) + f":{line}"


def print_top(stats, n=12):
    """The n entries with the most time spent in the function itself (tottime), per step."""
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    print(f"{'calls':>6} {'own ms':>8} {'incl. ms':>9}  function")
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in rows:
        print(f"{ncalls // STEPS:6d} {tottime / STEPS * 1e3:8.2f} {cumtime / STEPS * 1e3:9.2f}"
              f"  {name}  ({where(file, line)})")


set_kernels("auto")
try:
    stats_auto, t_step_auto = profile_steps(make_step())
finally:
    set_kernels(saved_mode)
print(f"bc_cifar10 width {WIDTH}, batch {BATCH}: {t_step_auto * 1e3:.1f} ms per step under the profiler\n")
print_top(stats_auto)

# %% [markdown]
# "own ms" (`tottime`) is the time inside a function, not counting the functions it calls —
# the column to sort by when looking for the hot spot. Grouping it: a matrix product written
# as `a @ b` is not a Python call, so its time is the *own* time of the function containing it
# — `conv.py:matmul`, `Conv2d.backward` (the dW product `cols @ gYt` is written inline
# there), the shifted products' `gemm` (`kernels/shifted.py`, see the end of this section),
# the Winograd path's 16 stacked `products` (`functional/conv_winograd.py`, also below) and
# the forward/backward of `Linear` in `linalg.py`. What a kernel calls (`np.pad` in the
# reference im2col, say) and the Winograd transforms land in "everything else".
#
# At the quick mode's tiny sizes "everything else" — Python overhead, batch norm, Adam — is a
# large share; at width 0.25 and batch 50 the products and im2col take most of the step, and
# at the paper's width 1 the products dominate.

# %%
def group(file, name):
    if "im2col" in name:
        return "im2col"
    if "col2im" in name:
        return "col2im"
    if ("matmul" in name or (file.endswith("shifted.py") and name == "gemm")
            or (file.endswith("conv_winograd.py") and name == "products")
            or (file.endswith("linalg.py") and name in ("forward", "backward"))
            or (file.endswith(os.path.join("functional", "conv.py")) and name == "backward")):
        return "matrix products"
    return "everything else"


GROUPS = ("matrix products", "im2col", "col2im", "everything else")


def grouped(stats):
    """Own time per group, in seconds per step."""
    total = dict.fromkeys(GROUPS, 0.0)
    for (file, _, name), (_, _, tottime, _, _) in stats.stats.items():
        total[group(file, name)] += tottime / STEPS
    return total


g_auto = grouped(stats_auto)
for key in GROUPS:
    print(f"{key:>16}: {g_auto[key] * 1e3:8.2f} ms  {g_auto[key] / sum(g_auto.values()):6.1%}")

# %% [markdown]
# Now the same step with the reference kernels. First a check that both families train the
# same network: one step from the same start gives the same loss (batch norm sums in a
# different order, so "the same" means to float32 rounding). Then the profile. (The
# reference max pooling calls `reference.im2col`, so there "im2col" includes the pooling
# windows.)

# %%
try:
    set_kernels("auto")
    loss_auto = make_step(seed=1)()
    set_kernels("reference")
    loss_ref = make_step(seed=1)()
    stats_ref, t_step_ref = profile_steps(make_step())
finally:
    set_kernels(saved_mode)
print(f"first-step loss: Numba kernels {loss_auto:.6f}, reference kernels {loss_ref:.6f}")
assert np.isclose(loss_auto, loss_ref, rtol=1e-4)

g_ref = grouped(stats_ref)
print(f"\n{'ms per step':>16} {'Numba':>9} {'reference':>10}")
for key in GROUPS:
    print(f"{key:>16} {g_auto[key] * 1e3:9.2f} {g_ref[key] * 1e3:10.2f}")
print(f"{'wall (profiled)':>16} {t_step_auto * 1e3:9.2f} {t_step_ref * 1e3:10.2f}")
print("\nreference kernels, top entries:")
print_top(stats_ref, n=8)

# %% [markdown]
# The profiler adds a little to every Python call, so trust the proportions more than the
# absolute numbers; for those, `benchmarks/train_step.py` times steps without it, and
# **`tinyproj bench`** times conv layers and full steps against PyTorch on the same machine, in
# the same run.
#
# ### A pitfall: two thread pools spinning
#
# A step alternates between two thread pools on the same cores: OpenBLAS's (the matrix
# products) and Numba's (the kernels). By default an idle thread of either pool keeps
# **spinning** for a while, waiting for more work — and steals the cores the other pool now
# needs, so an im2col right after a product (and the product right after an im2col) runs
# slower than alone. `import tinyproj` settles it at run time (`tinyproj/_threads.py`), unless
# you set these yourself, and whatever the order of `import numpy` and `import tinyproj`:
#
# * OpenBLAS's thread timeout 2^4 cycles — its idle threads sleep almost at once. OpenBLAS
#   reads `OPENBLAS_THREAD_TIMEOUT` only when it is loaded, so tinyproj finds the loaded library
#   through `threadpoolctl`, has it read the setting again and restarts its threads;
# * `OMP_WAIT_POLICY=PASSIVE` — the OpenMP threads of Numba's pool sleep when idle (read when
#   Numba starts the pool, at its first parallel kernel, so an environment variable suffices).
#
# `_threads.spin_cpu_seconds()` measures the symptom: the CPU time the process burns while it
# sleeps right after a product (about 0 when the idle threads sleep; tens of ms when they spin).
#
# Different problem, same symptom: two BLAS-heavy programs on the same cores oversubscribe
# them; give each one thread with `tinyproj.limit_threads(1)` (BLAS, OpenMP and Numba, at run
# time; also a `with` block).

# %%
thread_info = _threads.report()
print("thread settings:", {k: v for k, v in thread_info.items() if k != "pools"})
print("pools:", [(p["user_api"], p["internal_api"], p["num_threads"]) for p in thread_info["pools"]])
print(f"CPU seconds burnt while sleeping 0.3 s after a product: {_threads.spin_cpu_seconds():.4f}")
print("Numba threading layer:", numba.threading_layer(), "  threads:", numba.get_num_threads())

# %% [markdown]
# ### No columns at all: the shifted products
#
# For a stride-1 layer the columns are avoidable. Copy x once into **padded channels-last
# rows**, one row of C values per pixel of the padded grid (H2 = H + 2·pad, W2 = W + 2·pad),
# and number the output on the same grid: output row m reads, for tap (i, j), input row
# m + i·W2 + j. So each tap's input is one *contiguous block* of rows — a plain matrix — and
# the convolution is kh·kw products added together, none of them preceded by a gather:
#
#     Y[m] = Σ_ij Xp[m + i·W2 + j] @ W_ij          (W_ij = w[:, :, i, j]ᵀ, a (C, O) matrix)
#
# (the rows of m that fall in the padding are spare, and dropped.) NumPy's `matmul` cannot
# add into its output, so `tinyproj/kernels/shifted.py` calls the BLAS gemm NumPy already
# loaded, with β = 1. `functional/conv.py` takes this path for thin layers
# (`functional/conv_shifted.py`, switch `SHIFTED`), where it measured faster than im2col for
# forward and dx (the table is in the docstring of `SHIFTED`). Below: the identity in plain NumPy, then one thin layer timed both ways.

# %%
from tinyproj.kernels import shifted

xs = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
ws = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
h2, w2, oh, ow, m, tail = shifted.grid(xs.shape, 3, 3, (1, 1))
Xp = shifted.reference_pad_rows(xs, (1, 1), np.empty((m + tail, 4), np.float32))
Y = sum(Xp[i * w2 + j:i * w2 + j + m] @ ws[:, :, i, j].T for i in range(3) for j in range(3))
y_shift = Y.reshape(2, h2, w2, 3)[:, :oh, :ow].transpose(0, 3, 1, 2)   # drop the spare rows
y_conv = F.conv2d(tp.tensor(xs), tp.tensor(ws), padding=1).numpy()
print("shifted products vs conv2d, max |difference|:", np.abs(y_shift - y_conv).max())
assert np.allclose(y_shift, y_conv, rtol=1e-5, atol=1e-5)

# %%
n_s, c_s, side_s = (4, 16, 16) if QUICK else (50, 32, 32)
xt_s = tp.tensor(rng.standard_normal((n_s, c_s, side_s, side_s)).astype(np.float32),
                 requires_grad=True)
wt_s = tp.tensor(rng.standard_normal((c_s, c_s, 3, 3)).astype(np.float32) * 0.1,
                 requires_grad=True)
saved_shifted = conv_shifted.SHIFTED
try:
    for use in (False, True):
        conv_shifted.SHIFTED = use
        fn = lambda: F.conv2d(xt_s, wt_s, padding=1).backward(  # noqa: E731
            np.ones((n_s, c_s, side_s, side_s), np.float32))
        t, _ = best_of(fn, repeats=3)
        print(f"{c_s}→{c_s} at {side_s}×{side_s}, forward + backward, "
              f"{'shifted products' if use else 'im2col + product'}: {t * 1e3:7.2f} ms")
finally:
    conv_shifted.SHIFTED = saved_shifted

# %% [markdown]
# ### Fewer multiplications: Winograd F(2×2, 3×3)
#
# The shifted products drop the copies, but they still do every multiply-add of the direct
# convolution. Winograd's minimal filtering (Lavin & Gray 2016) does fewer of them. One
# dimension first: two outputs of a 3-tap correlation, y_i = Σ_k d_{i+k}·g_k (i = 0, 1), take
# 2·3 = 6 multiplications directly, and only 4 as
#
#     y = Aᵀ [(G g) ⊙ (Bᵀ d)]          d: 4 inputs, g: 3 taps, ⊙: elementwise product
#
# with the constant matrices `winograd.BT`, `winograd.G`, `winograd.AT` (`kernels/winograd.py`).
# Bᵀ and Aᵀ hold only 0 and ±1: additions. G g is computed once per filter, not per output pair.

# %%
from tinyproj.functional import conv_winograd
from tinyproj.kernels import winograd

print("Bᵀ =\n", winograd.BT, "\nG =\n", winograd.G, "\nAᵀ =\n", winograd.AT)
d1 = np.array([1.0, 2.0, -1.0, 3.0])                   # 4 inputs
g1 = np.array([0.5, -1.0, 2.0])                        # 3 taps
y1_direct = np.array([d1[0:3] @ g1, d1[1:4] @ g1])     # two dot products of 3: 6 multiplications
u1 = winograd.G @ g1                                   # once per filter
v1 = winograd.BT @ d1                                  # (d0 − d2, d1 + d2, −d1 + d2, d1 − d3)
y1_wino = winograd.AT @ (u1 * v1)                      # the 4 multiplications, then additions
print(f"direct {y1_direct}   Winograd {y1_wino}")
assert np.allclose(y1_wino, y1_direct)

# %% [markdown]
# Nested in two dimensions (the 1-D formula along the rows, then down the columns), a 4×4
# tile d of the input gives a 2×2 block of outputs of the 3×3 kernel g:
#
#     Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A        16 multiplications instead of 2·2·9 = 36
#
# Neighbouring tiles overlap by 2 rows and columns, as the output blocks step by 2. Every step
# is linear, so the gradient is each step transposed, in reverse order: with gM = A gY Aᵀ,
# dL/dg = Gᵀ [gM ⊙ (Bᵀ d B)] G — checked below against the direct
# dL/dg[i, j] = Σ_ab gY[a, b]·d[a + i, b + j].

# %%
d2 = rng.standard_normal((4, 4))                       # one input tile
g2 = rng.standard_normal((3, 3))                       # one kernel
y2_direct = np.array([[np.sum(d2[i:i + 3, j:j + 3] * g2) for j in range(2)] for i in range(2)])
U2 = winograd.G @ g2 @ winograd.G.T                    # G g Gᵀ, 4×4
V2 = winograd.BT @ d2 @ winograd.BT.T                  # Bᵀ d B, 4×4
y2_wino = winograd.AT @ (U2 * V2) @ winograd.AT.T      # Aᵀ [U ⊙ V] A, 2×2
assert np.allclose(y2_wino, y2_direct)
gy2 = rng.standard_normal((2, 2))                      # some dL/dY
dg_direct = np.array([[np.sum(gy2 * d2[i:i + 2, j:j + 2]) for j in range(3)] for i in range(3)])
dg_wino = winograd.G.T @ ((winograd.AT.T @ gy2 @ winograd.AT) * V2) @ winograd.G
assert np.allclose(dg_wino, dg_direct)
print("one 4×4 tile: Y and dL/dg by Winograd == the direct 3×3 correlation; Y =\n", y2_wino)

# %% [markdown]
# **The layer.** Over C input channels the ⊙ becomes a sum. Cut the padded input into
# T = B·(OH/2)·(OW/2) tiles: V = Bᵀ d B per tile and channel is a (T, 16, C) array, U = G g Gᵀ
# per (input, output) channel pair 16 (C, O) matrices, and for each of the 16 positions ξ of a
# transformed tile
#
#     M[ξ] = V[ξ] @ U[ξ]          a (T, C) @ (C, O) matrix product, ξ = 0 … 15
#
# then Y = Aᵀ M A per tile and output channel. The bill against im2col + one product:
#
# * **FLOPs**: 16 products of 2·T·C·O = 8·B·OH·OW·C·O flops, against section 1's 2·N·O·K·L
#   = 18·B·OH·OW·C·O — 2.25× fewer. The transforms are a few additions per value of V and M,
#   not per (C, O) pair: cheap next to the products once C and O are large.
# * **Memory**: V holds 16 values per tile of 2×2 outputs, 4× the input; the columns are 9×.
#
# `functional/conv_winograd.py` does exactly this, `CHUNK_BYTES` of V and M at a time, with the
# 16 products as one `np.matmul` over a stack. By hand, with the readable transforms:

# %%
x4 = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)     # B, C, H, W (OH = OW = 6: even)
w4 = rng.standard_normal((5, 8, 3, 3)).astype(np.float32)     # O = 5
h2, w2, oh, ow, m, tail = shifted.grid(x4.shape, 3, 3, (1, 1))
grid4 = shifted.reference_pad_rows(x4, (1, 1), np.empty((m + tail, 8), np.float32))[:m]
grid4 = grid4.reshape(2, h2, w2, 8)                             # padded, channels last
tiles = 2 * (oh // 2) * (ow // 2)                               # T
V4 = winograd.reference_input_transform(grid4, np.empty((tiles, 16, 8), np.float32))  # (T, 16, C)
U4t = winograd.reference_weight_transform(w4)                   # (16, O, C): U[ξ]ᵀ, stored along C
M4 = np.stack([V4[:, xi] @ U4t[xi].T for xi in range(16)], axis=1)   # (T, 16, O): the 16 products
y4 = winograd.reference_output_transform(M4, np.empty((2, oh, ow, 5), np.float32))  # (B, OH, OW, O)
y4_conv = F.conv2d(tp.tensor(x4), tp.tensor(w4), padding=1).numpy()
assert np.allclose(y4.transpose(0, 3, 1, 2), y4_conv, rtol=1e-4, atol=1e-4)
# The layer runs the Numba copies (kernels/winograd_cpu.py): the same additions in the same
# order, so the same arrays bit for bit, not merely close.
assert np.array_equal(winograd.input_transform(grid4, np.empty_like(V4)), V4)
print(f"{tiles} tiles, 16 products ({tiles}, 8) @ (8, 5): == F.conv2d; Numba V == readable V")

c, o, s = BC_LAYERS[1]                                 # 128→128 @32×32 (section 1), batch 50
assert conv_flops(50, c, o, s) == 18 * 50 * s * s * c * o
cols_mb = ref.cols_nbytes((50, c, s, s), 3, 3, 1, 1) / MB
v_mb = 16 * 50 * (s // 2) ** 2 * c * 4 / MB           # 16 floats per tile and channel
print(f"{c}→{o} @{s}×{s}, batch 50: im2col + product {conv_flops(50, c, o, s) / 1e9:.2f} GFLOP,"
      f" the 16 products {8 * 50 * s * s * c * o / 1e9:.2f} GFLOP;"
      f" columns {cols_mb:.0f} MB, V {v_mb:.0f} MB")

# %% [markdown]
# `Conv2d` takes this path by itself for a 3×3 stride-1 layer with an even output and at least
# `conv_winograd.MIN_CHANNELS` = 128 input channels, while `conv_winograd.WINOGRAD` is True.
# Backward is the exact chain rule through the same steps: gM = A gY Aᵀ per tile, then for dx
# gV[ξ] = gM[ξ] @ U[ξ]ᵀ and dx = Σ_tiles B gV Bᵀ (overlapping tiles add up), and for dW
# gU[ξ] = Σ_t V[ξ]ᵀ @ gM[ξ] and dW = Gᵀ gU G. In float32 the additions round differently from
# im2col's sums, so the two paths agree to rounding, not bit for bit. One layer both ways (in
# quick mode a small batch, where the fixed costs — U, 16 BLAS calls — weigh more):

# %%
n_w, side_w = (4, 16) if QUICK else (50, 32)
c_w = conv_winograd.MIN_CHANNELS                        # 128: the thinnest layer it takes
x_w = rng.standard_normal((n_w, c_w, side_w, side_w)).astype(np.float32)
w_w = (rng.standard_normal((c_w, c_w, 3, 3)) * 0.03).astype(np.float32)
gy_w = rng.standard_normal((n_w, c_w, side_w, side_w)).astype(np.float32)


def conv_fb():
    """Forward and backward of the layer; returns y, dL/dx, dL/dW."""
    xt, wt = tp.Tensor(x_w, requires_grad=True), tp.Tensor(w_w, requires_grad=True)
    y = F.conv2d(xt, wt, padding=1)
    y.backward(gy_w)
    return y.numpy(), xt.grad, wt.grad


saved_winograd, by_path = conv_winograd.WINOGRAD, {}
try:
    for use in (False, True):
        conv_winograd.WINOGRAD = use                    # read by Conv2d at every call
        t, by_path[use] = best_of(conv_fb, repeats=3)
        print(f"{c_w}→{c_w} at {side_w}×{side_w}, batch {n_w}, forward + backward, "
              f"{'Winograd F(2×2, 3×3)' if use else 'im2col + product'}: {t * 1e3:7.2f} ms")
finally:
    conv_winograd.WINOGRAD = saved_winograd             # leave the module as we found it
worst = max(float(np.abs(a - b).max() / np.abs(b).max())
            for a, b in zip(by_path[True], by_path[False]))
print(f"y, dL/dx, dL/dW agree (largest difference {worst:.1e} of the largest entry)")
assert worst < 1e-5

# %% [markdown]
# Why only from 128 channels: each of the 16 products has depth C, and thin products run far
# below the BLAS's rate, while the transforms cost the same per value. Measured on 2 cores,
# batch 50, forward / backward ms (the note on `MIN_CHANNELS`): 32→32 @32×32 takes 15.8 / 29.3
# by Winograd against 10.1 / 23.4 by the shifted products, but 128→128 @8×8 5.2 / 9.3 against
# im2col's 6.8 / 12.8 — so thin layers keep the shifted products.

# %% [markdown]
# ## 5. Exercises
#
# 1. **The budget.** Rerun the budget cell of section 2 with budgets from 1 MB to 256 MB on the
#    full-size layer (`n_l, c_l, side_l = 50, 128, 32`) and plot time and `workspace.nbytes()`
#    against the budget. Where is the knee? Does it move with your cache size
#    (`lscpu | grep cache`)? Then set `conv_mod.COLS_BUDGET` for the profile of section 4.
# 2. **A Numba ReLU.** Replace the body of `relu_numba` below by a call to your own
#    `@njit(parallel=True, cache=True)` loop (flatten with `x.reshape(-1)`, allocate the output
#    with `np.empty_like`, loop with `prange`). Is it bit for bit `np.maximum(x, 0)`? What does
#    it do with NaN, and with −0.0? Is it faster, and from what size on? Then do the backward,
#    `gy · (x > 0)`, and think about why fusing the two is not possible but fusing ReLU into
#    batch norm's forward would be.
# 3. **(Harder.)** `cpu._col2im_batch` zeroes each plane, then adds 9 taps into it. Write a
#    version that computes each pixel of dx once, as a sum of the ≤ 9 entries that land on it,
#    and check it against `reference.col2im_batch`. Can it be equal bit for bit? (Which order
#    of the additions does the reference use?)

# %%
def relu_numba(x):
    """Exercise 2: replace this NumPy body by your Numba kernel."""
    return np.maximum(x, 0)


x_relu = rng.standard_normal((BATCH, 16, 32, 32)).astype(np.float32)
x_relu.flat[:3] = [np.nan, -0.0, 0.0]
want = np.maximum(x_relu, 0)
got = relu_numba(x_relu)
same_bits = got.dtype == want.dtype and np.array_equal(got.view(np.int32), want.view(np.int32))
t_relu, _ = best_of(lambda: relu_numba(x_relu))
t_np, _ = best_of(lambda: np.maximum(x_relu, 0))
print(f"relu on {x_relu.shape}: yours {t_relu * 1e3:.2f} ms, np.maximum {t_np * 1e3:.2f} ms;"
      f" bit for bit equal (NaN and ±0 included): {same_bits};"
      f" relu(NaN) = {got.flat[0]}, relu(−0.0) = {got.flat[1]}")
finite = np.isfinite(x_relu)                          # NaN: your choice, but know what it is
assert got.shape == want.shape and np.array_equal(got[finite], want[finite])

# %% [markdown]
# ## Summary
#
# * A conv layer is 2·N·O·K·L FLOPs in one matrix product `(O, K) @ (K, N·L)` when the columns
#   lie in the batch layout; a BLAS runs a wide product closer to its peak than N thin ones.
# * The columns are 9× the input (236 MB for the 128→128 layer at 32×32, batch 50), so
#   `Conv2d` unfolds `COLS_BUDGET` bytes at a time into a reused scratch buffer (no page
#   zeroing per step) and recomputes them in backward instead of keeping half a gigabyte.
# * `cpu.py` gives `reference.py`'s results — bit for bit for the copies and for col2im —
#   with `prange` loops in which each thread owns whole parts of the output (no `np.add.at`);
#   `cache=True` keeps the compile out of later runs, `NUMBA_DISABLE_JIT=1` makes the loops
#   debuggable, `TINYPROJ_KERNELS=reference` switches the whole run to the readable kernels.
# * cProfile's `tottime` sorted into matrix products / im2col / col2im / the rest shows where a
#   step goes; `tinyproj bench` compares it with PyTorch; mind the two spinning thread pools.
# * Winograd F(2×2, 3×3), Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 4×4 tile, turns a 3×3 layer into 16
#   products of depth C: 2.25× fewer FLOPs and 4× the input instead of 9×, for C ≥ 128.

# %%
print("\nLesson 8 done.")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. FLOPs (a multiply and an add count as two) of the 128→128 3×3 convolution at 32×32,
#    padding 1, stride 1, batch 50 — section 1's 2·N·O·K·L.
# 2. Bytes of the float32 columns im2col makes for x of shape (8, 64, 16, 16), a 3×3 kernel,
#    stride 1, padding 1 (section 2).

# %%
from exercises import check_08_1, check_08_2  # noqa: E402  (lessons/exercises.py)

answer_1 = ...                  # a number (write it as a product if you like)
check_08_1(answer_1)

# %%
answer_2 = ...                  # a number of bytes
check_08_2(answer_2)
