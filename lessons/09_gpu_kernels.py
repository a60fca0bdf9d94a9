# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 9 — GPU kernels: launches, syncs, and how to count them without a GPU
#
# Lesson 8 made the CPU fast with Numba loops. On a GPU the arithmetic is cheap; what a small
# network pays for is **how often the host talks to the device**. Each array operation that
# CuPy runs is a *kernel launch*, and each time the host needs a value back (a loss to print,
# a label to check) it must wait for the device to finish everything queued: a *sync*.
#
# In this lesson you will
#
# 1. read one kernel — Table 1's Sign — three ways: the readable reference, its Numba twin,
#    and the CUDA kernel's per-element code, which the tests compile *for the CPU* too;
# 2. learn what a launch and a sync cost, and why a step of 1,169 launches is slow on any GPU;
# 3. count launches, syncs and copies with the **stand-in**: an array module that plays the
#    GPU on the CPU (`tinyproj/standin/`), strict about host/device crossings;
# 4. count one Algorithm-1 training step: the reference path, the fused kernels, and the
#    one sync that reading the loss costs;
# 5. replay a whole step as a **CUDA graph**, and see why every number that changes from step
#    to step must then live in device memory;
# 6. try two exercises, and two more that a checker marks.
#
# The code it explains: `tinyproj/standin/` (the counting device), `tinyproj/kernels/`
# (`reference.py`, `cpu_optim.py`, `cuda/*.cuh`, `host.py`, and `__init__.py` which picks one),
# `tinyproj/algorithm1.py` (`train_step(..., sync=False)`) and `tinyproj/runs/training.py`
# (`READ_EVERY`). No GPU is needed: everything here runs on the CPU.

# %%
import inspect
import os
import re
import sys
import time

try:
    import _quick
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick
import numpy as np
import tinyproj.functional as F
from tinyproj import algorithm1, backend, clipping, models, optim, standin
from tinyproj.kernels import cpu_optim, cuda, host, reference

QUICK = _quick.quick()
print("quick mode" if QUICK else "full mode", "| backend:", backend.name())

# %% [markdown]
# ## 1. One kernel, three ways: Sign
#
# Table 1's Sign projection is P = α·sign(W), with α = max|W| over the whole tensor and
# sign(0) = +1. The **reference** is two array operations — one reduction, one `where`:

# %%
print(inspect.getsource(reference.sign_projection))

# %% [markdown]
# The **Numba twin** (lesson 8) computes the same thing with two parallel loops on NumPy arrays:

# %%
print(inspect.getsource(cpu_optim.sign_projection))

# %% [markdown]
# The **CUDA kernel** is written once, per element, as `__host__ __device__` functions in a
# header. On a GPU each thread runs `sign_element` for its element; `maxabs_share` is one
# thread's share of the block reduction that finds α — in a *fixed order*, so the result is
# the same on every run. Here are those two functions, read straight from the header:

# %%
header = (cuda.FOLDER / "projection.cuh").read_text().splitlines()


def cuda_function(name):
    """The lines of the header's function ``name``, from its signature to its closing brace."""
    first = next((i for i, line in enumerate(header) if re.search(rf"\b{name}\(", line)), None)
    if first is None:
        return f"({name} not found in projection.cuh)"
    last = first                                   # a one-line body ends on its own line,
    if not header[first].rstrip().endswith("}"):   # a longer one at the first lone "}"
        while header[last].rstrip() != "}":
            last += 1
    return "\n".join(header[first - 1:last + 1])     # with its `template` line


for name in ("maxabs_share", "sign_element"):
    print(cuda_function(name), end="\n\n")

# %% [markdown]
# Because the same function is also compiled by the system C++ compiler into a plain loop
# (`kernels/host.py`, via ctypes), the CPU can check the GPU's per-element code against the
# reference — no GPU needed. The three must agree **bit for bit** (Sign only copies ±α):

# %%
rng = np.random.default_rng(0)
w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
w[0, 0, 0, 0] = 0.0                                   # sign(0) = +1 in all three
p_ref = reference.sign_projection(w)
p_numba = cpu_optim.sign_projection(w)
assert np.array_equal(p_ref, p_numba)
if host.available():
    p_host = host.get("sign_projection")(w)
    assert np.array_equal(p_ref, p_host)
    print("reference, Numba and the CUDA code compiled for the CPU agree bit for bit")
else:
    print("reference and Numba agree; no C++ compiler here:", host.unavailable_reason())

# %% [markdown]
# ## 2. What a launch and a sync cost
#
# A **launch** is the host asking the GPU to run one kernel. The GPU side is short (a few µs
# before the first thread runs), but the host side is not: Python, CuPy's argument checks and
# the driver call take some **5–20 µs** per launch (a typical figure for CuPy). tinyproj's own
# figure, measured on an H200: a `bc_cifar10` step at width 0.25 is about 118 launches and
# takes 7.65 ms eagerly but 2.63 ms replayed as one CUDA graph (section 5) — so the host spent
# about 40 µs per launch, Python between the ops included. The GPU runs kernels from a queue, so as long as the
# host keeps the queue filled, the launch cost hides behind the work. A small layer's kernel
# runs in a few µs, though: then the host *is* the bottleneck, and the step time is roughly
# launches × host time per launch.
#
# A **sync** is the host waiting for the GPU: `loss.item()`, `float(x)`, `if (x > 0).any():`,
# printing an array, copying it to NumPy. The host stops queueing work until the queue is
# empty, so the GPU then idles while the host catches up. One sync per step is enough to stop
# the host from running ahead. A **copy** host→device (a minibatch gathered in NumPy, a Python
# number turned into a device array) is a transfer plus, usually, a wait.
#
# So the budget of a training step is counted, not timed: **launches**, **syncs**, **copies**.

# %%
us_low, us_high = 5, 20                 # host time per launch, µs (typical for CuPy)
for launches, what in [(1169, "the plain array code before the fused kernels (tests/test_budgets.py)"),
                       (200, "the project's budget"),
                       (118, "now, counted on the stand-in below")]:
    print(f"{launches:5d} launches x {us_low}-{us_high} µs = {launches * us_low / 1000:4.1f}-"
          f"{launches * us_high / 1000:4.1f} ms of host time per step: {what}")
print("(an H100 measured 61 ms per step of bc_cifar10 at width 1.0 with the plain array code)")

# %% [markdown]
# ## 3. Counting with the stand-in
#
# `backend.use("standin")` swaps NumPy for `tinyproj.standin`, an array module that behaves
# like CuPy where it matters. Its arrays (`DeviceArray`) hold a NumPy array but act as if it
# lived on a device: every array operation counts a launch, `xp.asarray(host_array)` a copy,
# `.get()` / `.item()` a sync. Views (reshape, slicing) are free, as on a GPU.

# %%
backend.use("standin")
xp = backend.xp()
standin.reset()
x = xp.asarray(rng.standard_normal((4, 5)).astype(np.float32))   # host -> device: one copy
y = xp.maximum(x, 0) * 2 + 1                                      # three launches
row = y[1:3].reshape(-1)                                          # views: none
total = row.sum()                                                 # one launch (a reduction)
print("after the arithmetic:", standin.counts())
print("total =", total.item())                                    # one sync
print("after .item():       ", standin.counts())

# %% [markdown]
# The stand-in refuses what CuPy refuses — mixing a host array into a device operation, or
# turning a device array into a NumPy array implicitly — with CuPy's kind of message:

# %%
for attempt in ("x + np.ones((4, 5), np.float32)", "np.asarray(x)"):
    try:
        eval(attempt)
    except TypeError as err:
        print(f"{attempt:34s} -> TypeError: {str(err)[:90]}...")

# %% [markdown]
# And it is **stricter than CuPy inside tinyproj**: `float(x)`, `int(x)`, `bool(x)`,
# `.tolist()` on a device array raise when tinyproj's own code does them, because there they
# would be a sync hidden in the framework. In your own code (this lesson, the tests) they
# work as in CuPy — and are counted:

# %%
standin.reset()
print("float(total) =", float(total), "|", standin.counts())

# %% [markdown]
# ## 4. One training step, counted
#
# Now the real thing: one Algorithm-1 step of the BinaryConnect CIFAR-10 network (Sign
# projection, clipping, Adam, square hinge loss) on the stand-in. The first step creates
# Adam's state, so we count the second one.

# %%
width, batch = (1 / 16, 4) if QUICK else (0.25, 50)


def count_one_step(sync):
    model = models.bc_cifar10(width=width)
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    bounds = clipping.clip_bounds(model, 0.5)
    step_rng = backend.make_rng(0)
    xb = xp.asarray(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32))
    yb = xp.asarray(rng.integers(0, 10, batch))
    for step in range(2):
        with standin.counting() as counted:
            algorithm1.train_step(model, xb, yb, F.square_hinge_loss, opt, "sign", bounds,
                                  step_rng, step=step, sync=sync)
    return counted


start = time.perf_counter()
fused = count_one_step(sync=False)
print(f"width {width}, batch {batch}, fused kernels (their CPU twins): "
      f"{fused.launches} launches, {fused.syncs} syncs, {fused.copies} copies "
      f"({time.perf_counter() - start:.1f} s)")
print("most launches:", list(fused.ops.items())[:8])

# %% [markdown]
# `kernels.get(name, x)` hands a stand-in array the *compiled twin* of the CUDA kernel and
# counts it as one launch — exactly what a CuPy array gets on a GPU. With
# `TINYPROJ_KERNELS=reference` it gets the readable reference instead, whose array
# operations are counted one by one. The difference is what the fused kernels buy:

# %%
os.environ["TINYPROJ_KERNELS"] = "reference"
try:
    plain = count_one_step(sync=False)
finally:
    del os.environ["TINYPROJ_KERNELS"]
print(f"reference kernels: {plain.launches} launches; fused: {fused.launches}")
print("reference, most launches:", list(plain.ops.items())[:6])

# %% [markdown]
# And the sync. `train_step` checks the loss for NaN before it updates anything — which
# means reading it: `loss.item()`, one sync per step. With `sync=False` the loss stays on the
# device and comes back as a 0-d array; the training loop (`runs/training.py`) keeps each
# step's loss and error count there and reads them every `READ_EVERY` steps — and names the
# step whose loss was not finite, writing no checkpoint after it.

# %%
eager = count_one_step(sync=True)
print(f"sync=True: {eager.syncs} sync(s) per step; sync=False: {fused.syncs}")
from tinyproj.runs import training  # noqa: E402
print("the training loop reads losses every", training.READ_EVERY, "steps")
backend.use("numpy")

# %% [markdown]
# Where did the launches go? On the GPU path one step went from 1,169 launches (the plain
# array code as it was; the reference kernels above make 722 now) to 271 (the first fused
# kernels) to 115, and back up to 118 when Adam's step count moved onto the device for CUDA
# graphs (section 5; `tests/test_budgets.py` keeps the score, the budget is at most 200).
# Read `fused.ops` above for what is left:
#
# * **Adam is one launch**: the optimizer keeps every parameter as a *view* into one flat
#   buffer (`optim/flat.py`), so `adam_update` runs once over all of them. The gradients land
#   in a flat gradient buffer too — batch norm's backward kernel writes γ's and β's there
#   itself; the nine weights' gradients are copied in (the `setitem`s).
# * **Batch norm** updates its running statistics and its batch counter inside the forward
#   kernel, and `nn.Sequential` fuses it with the ReLU that follows (`BatchNorm(x,
#   relu=True)`): no launch of their own, forward or backward.
# * **Sign and the clip** run once for every layer (`sign_projection_segments`,
#   `clip_segments`): the weights lie side by side, an offsets table says where each layer
#   starts, and each layer still gets its own α and its own bound.
# * What remains is the convolution (im2col, the matrix product, col2im: a fixed number per
#   layer) and the loss.
#
# A lower count on the stand-in is a lower bound for the GPU: Sign there is two kernels (α
# per layer, then the map), counted here as one call.
#
# Fewer launches is not the whole story: each launch must also keep the GPU busy. α of a
# layer was one *thread block* reducing the whole layer, and a block runs on one of the
# GPU's 132 multiprocessors. On an H200, Sign took 7.4 ms of AlexNet-BN's 181 ms step,
# although reading and writing its 62 million weights once takes about 0.1 ms there: the
# suspect is the one block that reduced the 37.7-million-weight layer fc6 alone. So a layer
# of more than 2²⁰ weights is now cut into pieces (`kernels/pieces.py`, the same cut the
# Numba kernels of lesson 08 share out between CPU threads), one block reduces each piece,
# and a second launch of the same kernel takes each layer's maximum over its pieces. A
# maximum is exact in any order, so α is the same to the bit — one launch more, many blocks
# instead of one (its GPU time not measured yet):

# %%
from tinyproj.kernels import pieces  # noqa: E402
from tinyproj.optim import flat as flat_params  # noqa: E402

layer_offsets = np.array([0, 1_200, 1_200 + 9216 * 4096])   # a small layer, then fc6
fine, firsts = pieces.tables(layer_offsets, flat_params.PIECE)
print(f"{len(fine) - 1} pieces: layer 0 in {firsts[1] - firsts[0]}, fc6 in "
      f"{firsts[2] - firsts[1]} of at most {flat_params.PIECE:,} weights")

# %% [markdown]
# ## 5. One step, replayed: CUDA graphs
#
# 118 launches is still 118 times that the host pays 5–20 µs. At width 0.25 the GPU finishes a
# kernel faster than the host can launch the next, so the host sets the pace. CUDA's answer
# is the **graph**: put a stream in *capture* mode, run the step once — nothing executes,
# each launch is recorded with its arguments — and then *replay* the recording with one call
# per minibatch. In CuPy:
#
# ```python
# s = cupy.cuda.Stream(non_blocking=True)
# with cupy.cuda.using_allocator(own_pool.malloc), s:
#     s.begin_capture()
#     outputs = step()                  # recorded, not run
#     graph = s.end_capture()
# graph.launch(stream)                  # the whole step, one call
# ```
#
# The catch is in "recorded with its arguments". A replay runs the captured kernels with the
# captured arguments on the captured memory. A learning rate passed to the Adam kernel as a
# number is frozen at the captured step's value forever. Here is a toy recorder that behaves
# like a capture — it stores each call with its arguments and replays them:

# %%
class Recorder:
    """A toy stream capture: calls are recorded (not run) while capturing, then replayed."""

    def __init__(self):
        self.calls, self.capturing = [], False

    def launch(self, kernel, *args):
        if self.capturing:
            self.calls.append((kernel, args))      # the arguments are frozen here
        else:
            kernel(*args)

    def replay(self):
        for kernel, args in self.calls:
            kernel(*args)


def sgd_kernel(w, g, lr):                          # lr as a launch argument
    w -= lr * g


def sgd_kernel_reading_lr(w, g, lr_cell):          # lr read from "device memory" at run time
    w -= lr_cell[0] * g


for kernel, reads_memory in ((sgd_kernel, False), (sgd_kernel_reading_lr, True)):
    w, g = np.zeros(1), np.ones(1)
    lr_cell = np.array([0.1])
    rec = Recorder()
    rec.capturing = True
    rec.launch(kernel, w, g, lr_cell if reads_memory else 0.1)
    rec.capturing = False
    for lr in (0.1, 0.01, 0.001):                  # a schedule, three replays
        lr_cell[0] = lr                            # what a replayable step does: write memory
        rec.replay()
    print(f"{kernel.__name__:22s} w = {w[0]:.3f}  (a schedule of 0.1, 0.01, 0.001 gives -0.111)")

# %% [markdown]
# The first kernel took 0.1 three times. So on a device tinyproj keeps every per-step number
# in device memory, read by the kernels when they run, moved by kernels inside the step:
#
# * **lr, Adam's t and bias corrections** — `optim/device_scalars.py`: the step itself runs
#   `t += 1`, `β^t`, `1 − β^t` on the device (the 3 extra launches above); a schedule's new lr
#   is written by one fill launch *before* the replay, outside the captured region;
# * **Power's β** — drawn on the device and never read back (`projections/power_device.py`);
# * **the run's generator** — a counter-based one (Philox, `kernels/generator.py`) whose whole
#   state is a (seed, stream) pair in device memory: each draw moves the stream on with one
#   launch and fills its output from it, and Stoch, StochM and the noise take their key from
#   it (`kernels.random_key`), so each replay draws new numbers (shown below);
# * **the clip bounds** — a device table rewritten in place when a schedule changes them;
# * **the minibatch's position** — a device offset into the epoch's permutation, advanced by
#   the step (`runs/device_batches.py`).
#
# The per-step scalars of a real optimizer, after two steps on the stand-in:

# %%
backend.use("standin")
model = models.bc_cifar10(width=1 / 16)
opt = optim.Adam(model.parameters(), lr=3e-3)
xb = backend.asarray(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
yb = backend.asarray(rng.integers(0, 10, 4))
for _ in range(2):
    algorithm1.train_step(model, xb, yb, F.square_hinge_loss, opt, "sign", {},
                          backend.make_rng(0), sync=False)
scalars = opt.groups[0].step_scalars
print("device t =", scalars.t.item(), "| [lr, 1 - b1^t, 1 - b2^t] =", scalars.values.get())

# %% [markdown]
# The generator's state is two numbers, and that buys a second thing besides replays: a
# checkpoint can save it. CuPy's own generator keeps a curand state per thread on the GPU
# with no way to read it back, so a GPU run resumed after a cluster's time limit would draw
# other numbers from there on; this one is saved as `{"seed", "stream"}` and written back, and
# the next draws are the ones the uninterrupted run drew. A draw, counted:

# %%
gen = backend.make_rng(0)                           # on a device: kernels.generator.PhiloxGenerator
with standin.counting() as c:
    first = gen.random(4)
print(type(gen).__name__, "| one draw:", c.launches, "launches,", c.syncs, "syncs,", c.copies,
      "copies | state:", gen.state)
saved = gen.state                                    # what the checkpoint stores (one copy)
later = gen.standard_normal(3).get()
gen.state = saved                                    # what --resume writes back
print("the draw after the saved state, again:", np.array_equal(gen.standard_normal(3).get(), later))

# %% [markdown]
# The stand-in has a graph of its own that works like the toy recorder, on every array
# operation: `standin.capture(step)` runs the step once while recording each kernel with the
# arrays it read and wrote and the Python numbers it was given, and `graph.launch()` replays
# the recording on the same memory. `tinyproj.graphs.capture_step` uses it here (and CUDA's on
# CuPy): two eager warm-up steps, the capture, then replays. Against eager steps from the same
# start, the replays must land on the very same weights — which they can only do if no
# per-step number was frozen:

# %%
from tinyproj import graphs  # noqa: E402


def five_steps(mode):
    net = models.bc_cifar10(width=1 / 16, rng=backend.make_rng(3))
    opt5 = optim.Adam(net.parameters(), lr=3e-3)
    step_rng = backend.make_rng(4)

    def step():
        loss = algorithm1.train_step(net, xb, yb, F.square_hinge_loss, opt5, "stoch", {},
                                     step_rng, sync=False)
        return (loss,)

    graph = graphs.capture_step(step, optimizer=opt5, prepare=opt5.write_step_scalars,
                                mode=mode)
    for lr in (3e-3, 2e-3, 1e-3, 5e-4, 2e-4):      # a schedule: written before each step
        opt5.lr = lr
        graph()
    return graph, [p.data.get() for p in net.parameters()]


_, eager_w = five_steps("off")
replaying, graph_w = five_steps("on")
print(f"graph kind: {replaying.kind}, replays: {replaying.replays}, kernels per replay: "
      f"{replaying.kernels_per_replay}")
print("largest weight difference, eager vs replayed:",
      max(float(np.abs(a - b).max()) for a, b in zip(eager_w, graph_w)))

# %% [markdown]
# The second demand: nothing inside the step may sync or copy — CUDA refuses it during a
# capture. The stand-in refuses it too: `standin.capture_check(region)` makes any sync or
# copy inside the block raise `CaptureError`, naming the operation, and `capture_step` runs
# every step on the stand-in inside one. `tinyproj train --graph auto` is the command-line
# switch. A step that reads its loss back is caught:

# %%
def careless_step():
    loss = algorithm1.train_step(model, xb, yb, F.square_hinge_loss, opt, "sign", {},
                                 backend.make_rng(0), sync=False)
    print("   loss =", loss.item())                 # a read-back inside the step
    return (loss,)


checked = graphs.capture_step(careless_step, optimizer=opt, mode="on")
try:
    checked()
except standin.CaptureError as err:
    print("CaptureError:", str(err)[:110], "...")

# %% [markdown]
# Keep the loss on the device (`sync=False`, read every `READ_EVERY` steps) and the check
# passes; the training loop's whole step — gather, project, forward, backward, update, clip,
# error count — passes it for every training projection, and its replays match eager steps
# bit for bit (`tests/test_graphs.py`). On a GPU the first two steps run eagerly (Adam's
# state, the random key and the compiled kernels must exist before the capture), the third is
# captured with its own memory pool (so that no later array is ever given memory the graph
# writes), and the rest are replays; an epoch's last, smaller batch has another shape and runs
# eagerly; whatever makes a capture impossible is printed once and the step runs eagerly.
#
# What the first real GPU taught. The stand-in checks *our* code for syncs and copies, but not
# the libraries': on an H200 every capture failed with `NotImplementedError: calling cuBLAS
# API during stream capture is currently unsupported` — CuPy (14.2) refuses any cuBLAS call
# while a stream is captured, and every convolution here is a matrix product. cuBLAS itself
# supports capture, so tinyproj calls it directly (`tinyproj/kernels/gemm.py`, through
# ctypes, on a handle with a workspace of its own), in eager and captured steps alike. Since
# then the replayed width-0.25 step takes 2.63 ms against PyTorch eager's 5.54 ms on that GPU,
# and eager and replayed weights agree bit for bit there too (`tests/test_gpu_graphs.py`).
# The part of `gemm.py` that can be wrong without a GPU — turning a row-major product into
# column-major cuBLAS's operand order, transposes and leading dimensions — is a pure function
# of shapes and strides, `gemm.plan`, checked here on the CPU by doing what cuBLAS would do
# with the raw buffers:

# %%
from tinyproj.kernels import gemm  # noqa: E402

a_t = np.arange(12.0).reshape(4, 3).T          # (3, 4), a transposed view: columns contiguous
b_c = np.arange(8.0).reshape(4, 2)             # (4, 2), C order
out_c = np.empty((3, 2))
plan = gemm.plan(*[(x.shape, tuple(s // 8 for s in x.strides), key)
                   for x, key in ((a_t, "a"), (b_c, "b"), (out_c, "out"))])
print(plan)       # cuBLAS computes outᵀ = bᵀ aᵀ: first operand b (op N), second a (op T)
col = lambda buf, rows, cols, ld: np.lib.stride_tricks.as_strided(   # noqa: E731
    buf, shape=(rows, cols), strides=(8, 8 * ld))                    # column-major view
A = col(b_c.ravel(), plan.m, plan.k, plan.lda)                       # op N: as it lies
B = col(a_t.base.ravel(), plan.n, plan.k, plan.ldb).T                # op T: transposed
col(out_c.ravel(), plan.m, plan.n, plan.ldc)[...] = A @ B
print("cuBLAS's way equals a @ b:", np.array_equal(out_c, a_t @ b_c))

# %%
backend.use("numpy")

# %% [markdown]
# ## 6. Precision: strict float32, and TF32 as an opt-in
#
# On an Ampere or Hopper GPU, cuBLAS can run float32 matrix products on tensor cores in
# **TF32**: each input keeps float32's 8 exponent bits but only 10 of its 23 mantissa bits
# (about 3 decimal digits), and the sums stay float32. That is several times faster, and it
# changes the numbers. PyTorch has allowed it for convolutions by default; tinyproj never does
# unless asked: `backend.set_tf32(True)` (or `CUPY_TF32=1` for a whole run) switches CuPy's
# products, `backend.set_tf32(False)` switches back, `tinyproj info` says which is in effect.
# Measured on an H200 (`results/gpu-check-h200-2026-12-04-2/`): TF32 made the width-1.0 step
# 0.71× as long (PyTorch's 0.52×), and Tr-Sign-C at width 0.25 trained 5 epochs on 8,000
# CIFAR-10 images ended 1.7 (Te-None) and 0.4 (Te-Sign) points *lower* in test error with TF32
# than without — both inside one standard error of the 2,000 test images (±1.1 points): no
# effect on accuracy that this run could see.
# NumPy and the stand-in have no TF32, so here the switch answers `False`:

# %%
print("TF32 in effect after set_tf32(True) on", backend.name(), "->", backend.set_tf32(True))
backend.set_tf32(False)

# %% [markdown]
# What TF32 does to a product can be seen on the CPU: round each float32 input to 10 mantissa
# bits (here to the nearest such number; the hardware's own conversion may differ in the
# last bit — the size of the error is the point), multiply in float32, and compare both with
# float64. Each input's rounding error grows 2¹³ times (from 2⁻²⁴ to 2⁻¹¹); in a sum of
# 256 products those errors partly cancel, and the product's error grows hundreds of times:

# %%
def to_tf32(x):
    """x (float32) with its 13 lowest mantissa bits rounded away: a TF32 value in float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)    # add half, then cut
    return rounded.view(np.float32)


rng6 = np.random.default_rng(6)
a6, b6 = (rng6.standard_normal((256, 256)) for _ in range(2))
exact6 = a6 @ b6
strict6 = a6.astype(np.float32) @ b6.astype(np.float32)
tf32_6 = to_tf32(a6.astype(np.float32)) @ to_tf32(b6.astype(np.float32))
scale6 = np.abs(exact6).max()
err_strict6, err_tf32_6 = (np.abs(p - exact6).max() / scale6 for p in (strict6, tf32_6))
print(f"largest error / largest entry: strict float32 {err_strict6:.1e}, TF32 inputs "
      f"{err_tf32_6:.1e} ({err_tf32_6 / err_strict6:.0f} times larger)")
assert err_tf32_6 > 10 * err_strict6

# %% [markdown]
# For training that is usually harmless (the gradient noise of a minibatch is far larger),
# but it is not the same computation: a comparison with PyTorch is fair only when both sides
# run the same precision. So `tinyproj bench --device gpu` measures every row twice — strict
# float32 on both sides, then TF32 on both sides (`set_tf32` here, `allow_tf32` in PyTorch) —
# and records 20 training losses from the same weights under each, which is how TF32's effect
# on training is measured rather than guessed (README, *On a GPU*).

# %% [markdown]
# ## 7. Exercises
#
# 1. **Count an evaluation.** Under `backend.use("standin")`, count
#    `tinyproj.runs.evaluation.error_rate(model, source, batch_size=...)` on a small
#    `ArraySource`. How many syncs does it make, and how many copies? Why does the number of
#    copies grow with the number of batches — and what would `ResidentSource` change?
# 2. **Find a hidden sync.** Write `def mean_loss(losses): return sum(float(l) for l in
#    losses) / len(losses)` in a module whose name starts with `tinyproj.` (or set
#    `standin.set_strict(True)`) and call it on device losses: read the error. Rewrite it with
#    one `xp.stack(...).mean()` and a single `.item()`: how many syncs now?

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Write `my_sign(w)`: Table 1's Sign for a NumPy array (section 1) — α·sign(w) with
#    α = max|w| over the whole tensor and sign(0) = +1. The checker compares it with
#    `reference.sign_projection` on a few tensors, zeros included.
# 2. How many **launches, syncs and copies** does the function below make when `xp` is the
#    stand-in and `host` a NumPy array (section 3)? Work it out before you count it with
#    `standin.counting()`; answer `(launches, syncs, copies)`.
# 3. A device run's checkpoint says its generator's state is `state = {"seed": S, "stream": k}`.
#    Write `my_next_draw(state, n)`: the `n` float64 uniforms the generator's **next**
#    `random(n)` returns — without the generator, from `reference.uniform_fill(key, n,
#    np.float64, 0.0, 1.0)` and the right `key` (section 5: what does a draw do first?). That
#    a few lines can do it is the point of a counter-based generator: the numbers are a pure
#    function of (seed, stream, element).

# %%
from exercises import check_09_1, check_09_2, check_09_3, snippet_09  # noqa: E402


def my_sign(w):
    return ...                  # your Sign, with NumPy


check_09_1(my_sign)

# %%
print(inspect.getsource(snippet_09))
answer_2 = ...                  # (launches, syncs, copies)
check_09_2(answer_2)

# %%
from tinyproj.kernels import reference  # noqa: E402


def my_next_draw(state, n):
    # the (seed, stream) the next draw reads, as np.array([..., ...], dtype=np.int64), then
    # reference.uniform_fill(key, n, np.float64, 0.0, 1.0)
    return ...


check_09_3(my_next_draw)
