# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 11 — Feeding the GPU: the ImageNet input pipeline
#
# The paper's last experiment trains AlexNet with batch norm on ImageNet, batch 512. On a
# modern GPU one such step takes well under a tenth of a second, so the GPU eats thousands of
# images a second — and every one of them is a JPEG that the *CPU* has to decode, cut and
# resize first. This lesson measures that side of training:
#
# 1. what a step consumes, and what decoding one JPEG costs;
# 2. the two transforms: the test crop, and the training *random-resized crop* + flip — and
#    why their randomness is a function of (seed, epoch, index);
# 3. JPEG *draft* decoding: scaling by 1/2, 1/4, 1/8 inside the decoder;
# 4. a pool of processes (`DecodePool`), and why not threads;
# 5. shrinking ImageNet once (`tinyproj prepare-imagenet`): the same pixels for the test
#    transform, a fraction of the decoding work;
# 6. decoding the next batch while the current step runs;
# 7. the budget: images per second per core against what the step consumes.
#
# There is no ImageNet on the course machines, so the lesson writes ImageNet-like JPEGs of its
# own (the three sizes that dominate ILSVRC-2012). Run it with
# `python lessons/11_input_pipeline.py` (`TINYPROJ_QUICK=1`: about 10 s on 2 cores). Keep
# `tinyproj/data/imagenet_decode.py`, `tinyproj/data/decode_pool.py` and
# `tinyproj/data/imagenet_shrink.py` open beside it.

# %%
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import _quick
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick
import matplotlib.pyplot as plt
from PIL import Image

from tinyproj.data import imagenet_decode as dec
from tinyproj.data.decode_pool import DecodePool
from tinyproj.data.imagenet_shrink import shrink_imagenet

QUICK = _quick.quick()
N_IMAGES = 24 if QUICK else 192          # per size below
print(f"quick mode: {QUICK}")

# %% [markdown]
# ## 1. What a step consumes, and what one JPEG costs
#
# An AlexNet-BN step (forward + backward) at batch 512 is about 3.1 TFLOP. At 40 TFLOP/s — a
# fair guess for strict float32 on an H100/H200, not a measurement — that is 78 ms a step, so
# the step consumes 512 / 0.078 ≈ 6,600 images every second. The input pipeline has to deliver
# at least that, and some margin on top (the project aims at 1.2×).
#
# Now the cost of one image. We write smooth random "photos" (a coarse noise image scaled up,
# plus a little grain, saved at JPEG quality 90) in ILSVRC's common sizes and time how long
# Pillow takes to decode them.

# %%
STEP_S = 3.1e12 / 40e12
NEED = 512 / STEP_S
print(f"an assumed step of {STEP_S * 1e3:.0f} ms at batch 512 consumes {NEED:,.0f} images/s")

WORK = Path(tempfile.mkdtemp(prefix="tinyproj-lesson11-"))
SIZES = ((500, 375), (375, 500), (1024, 768))
rng = np.random.default_rng(0)


def photo(w, h):
    base = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(img + rng.integers(-12, 13, img.shape), 0, 255)
                           .astype(np.uint8))


# an ImageNet-like folder: imagenet/{train,val}/<class>/<image>, two classes
for split in ("train", "val"):
    for cls in ("n01", "n02"):
        (WORK / "imagenet" / split / cls).mkdir(parents=True)
for i in range(N_IMAGES * len(SIZES)):
    cls = "n01" if i % 2 == 0 else "n02"
    photo(*SIZES[i % 3]).save(WORK / "imagenet" / "train" / cls / f"img{i:04d}.JPEG", quality=90)
    if i < 6:
        photo(*SIZES[i % 3]).save(WORK / "imagenet" / "val" / cls / f"img{i:04d}.JPEG",
                                  quality=90)
PATHS = sorted((WORK / "imagenet" / "train").glob("*/*.JPEG"))


def per_image_ms(fn, paths, repeats=3):
    """Best of ``repeats`` runs of fn over every path, in ms per image."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for i, p in enumerate(paths):
            fn(p, i)
        best = min(best, time.perf_counter() - start)
    return best / len(paths) * 1e3


for w, h in SIZES:
    group = [p for i, p in enumerate(PATHS) if Image.open(p).size == (w, h)]
    ms = per_image_ms(lambda p, i: Image.open(p).convert("RGB"), group)
    print(f"decode a {w}x{h} JPEG ({group[0].stat().st_size / 1e3:.0f} KB): {ms:.2f} ms "
          f"→ {1e3 / ms:,.0f} images/s on one core")

# %% [markdown]
# Some hundreds of images a second per core for the decoding alone (the large pictures cost
# several times more than the common 500×375 ones), and the transform's resize comes on top —
# while 6,600 are needed. Keep that in mind for section 6.
#
# ## 2. The two transforms
#
# **Test** (`dec.decode_center`): shorter side resized to 256 (bilinear), then the centre
# 227 × 227 (AlexNet's input: 227 → 55 → 27 → 13 → 6).
#
# **Train** (`dec.decode_random`): a *random-resized crop* — a box of area s·(W·H) with
# s ~ U(0.08, 1) and aspect ratio r with log r ~ U(log ¾, log 4⁄3), placed uniformly
# (`dec.random_box`), resized to 227 × 227 — then a horizontal flip with probability ½. Every
# epoch sees a different crop of each image: this is the augmentation that keeps AlexNet from
# memorising ImageNet.
#
# The draws for an image come from `np.random.default_rng((seed, epoch, index))`. So the
# pixels an image gives depend only on those three numbers, not on which worker process decoded
# it, in which order, or whether the run was interrupted and resumed — which is what makes a
# resumed run bitwise the same as an uninterrupted one.

# %%
p = PATHS[0]
test_crop = dec.decode_center(p)
crops = [dec.decode_random(p, seed=0, epoch=e, index=0) for e in range(4)]
again = dec.decode_random(p, seed=0, epoch=2, index=0)
print("test crop:", test_crop.shape, test_crop.dtype,
      "| epoch 2 drawn twice gives the same pixels:", np.array_equal(crops[2], again))

fig, axes = plt.subplots(1, 6, figsize=(13, 2.6))
axes[0].imshow(np.asarray(Image.open(p)))
axes[0].set_title(f"original {Image.open(p).size[0]}x{Image.open(p).size[1]}", fontsize=9)
axes[1].imshow(test_crop.transpose(1, 2, 0))
axes[1].set_title("test: centre 227", fontsize=9)
for e, c in enumerate(crops):
    axes[2 + e].imshow(c.transpose(1, 2, 0))
    axes[2 + e].set_title(f"train, epoch {e}", fontsize=9)
for ax in axes:
    ax.axis("off")
_quick.show(fig, "lesson11_crops.png")

# %% [markdown]
# The boxes themselves: `random_box` should give areas uniform in [8 %, 100 %] of the image and
# log-uniform ratios in [¾, 4⁄3] — except that a large box of an extreme ratio does not fit in
# a 4:3 image, so such draws are retried (10 times, then a centred fallback).

# %%
box_rng = np.random.default_rng(1)
boxes = np.array([dec.random_box(500, 375, box_rng) for _ in range(4000)])
areas = boxes[:, 2] * boxes[:, 3] / (500 * 375)
ratios = boxes[:, 2] / boxes[:, 3]
print(f"area: {areas.min():.3f} .. {areas.max():.3f} (mean {areas.mean():.2f}); "
      f"ratio: {ratios.min():.3f} .. {ratios.max():.3f}")
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
axes[0].hist(areas, bins=40)
axes[0].set_xlabel("box area / image area")
axes[1].hist(np.log(ratios), bins=40)
axes[1].set_xlabel("log(width / height)")
fig.tight_layout()
_quick.show(fig, "lesson11_boxes.png")

# %% [markdown]
# The area histogram thins out towards 1: a box of 90 % of the area and ratio 4⁄3 is wider
# than a 500×375 image allows only at some ratios, and such draws are the ones retried.
#
# ## 3. Draft decoding: let the decoder shrink the picture
#
# A JPEG stores 8×8 blocks of DCT coefficients. The decoder can rebuild each block at 8×8, 4×4,
# 2×2 or 1×1 pixels, scaling the picture by 1, ½, ¼ or ⅛ while it decodes and skipping most of
# the inverse-DCT work. Pillow exposes this as `Image.draft(mode, size)`: it picks the
# strongest scaling that keeps at least `size`. `imagenet_decode.open_rgb` asks for it whenever the
# transform still gets the pixels it needs — for the test crop, a shorter side ≥ 256.

# %%
big = next(p for p in PATHS if Image.open(p).size == (1024, 768))


def drafted(p, _):
    img = Image.open(p)
    img.draft("RGB", (512, 384))
    return img.convert("RGB")


full_ms = per_image_ms(lambda p, i: Image.open(p).convert("RGB"), [big] * 10)
half_ms = per_image_ms(drafted, [big] * 10)
print(f"1024x768: full decode {full_ms:.2f} ms, draft at 1/2 → "
      f"{drafted(big, 0).size} in {half_ms:.2f} ms ({full_ms / half_ms:.1f}x faster)")

# %% [markdown]
# But a typical 500×375 photo has a shorter side of 375: halving it gives 187 < 256, so no
# draft is possible for the test crop, and the training crop (a box as small as ~25 % of the
# side, still resized to 227) needs the full resolution too. Draft decoding helps only the
# large images.
#
# ## 4. A pool of processes
#
# Decoding is C code inside Pillow, but around it is Python that holds the GIL, so threads do
# not scale. `DecodePool(workers)` hands each batch to worker processes, started with
# `forkserver` (fresh processes that hold none of the training process's open files — a forked
# worker would keep the run folder's lock alive). Each worker decodes its share; the batch
# comes back as one uint8 array (B, 3, 227, 227). `workers=0` decodes in this process.

# %%
cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def pool_rate(paths, workers, kind):
    with DecodePool(workers) as pool:
        pool.center(paths[:max(1, workers)])                    # start the workers first
        start = time.perf_counter()
        if kind == "train":
            pool.random(paths, 0, 0, range(len(paths)))
        else:
            pool.center(paths)
        return len(paths) / (time.perf_counter() - start)


rates = {}
for w in sorted({0, 1, min(2, cpus)}):
    rates[w] = pool_rate(PATHS, w, "train")
    print(f"training transform, workers={w}: {rates[w]:6.0f} images/s")

# %% [markdown]
# One worker is about as fast as decoding in place: the images come back through shared
# memory (each worker writes its rows of the batch straight into one shared block), so only a
# few bytes per image travel between processes. Two workers on two cores nearly double it.
# Decoding scales with processes, so 16 cores give roughly 16× the one-core rate (section 6).
#
# ## 5. Shrink once, decode fast
#
# The decoder spends its time on pixels that the transform throws away: a 500×375 photo becomes
# a 227×227 crop. So rescale every image *once*, before training, to a shorter side of 256 and
# store it again as JPEG (quality 90): `tinyproj prepare-imagenet SRC --out DIR`, the function
# `shrink_imagenet` here. It keeps the class folders and file names (the same labels, the same
# order), never enlarges a small image, and is resumable. AlexNet itself was trained this way:
# Krizhevsky et al. rescaled every image to 256 first.

# %%
counts = shrink_imagenet(WORK, WORK / "small", workers=0, log=print)
print(counts)
SMALL = sorted((WORK / "small" / "imagenet" / "train").glob("*/*.JPEG"))
kb = (sum(p.stat().st_size for p in PATHS) / len(PATHS) / 1e3,
      sum(p.stat().st_size for p in SMALL) / len(SMALL) / 1e3)
print(f"mean JPEG: {kb[0]:.0f} KB original, {kb[1]:.0f} KB shrunk")

for name, paths in (("original", PATHS), ("shrunk", SMALL)):
    test_ms = per_image_ms(lambda p, i: dec.decode_center(p), paths, repeats=2)
    train_ms = per_image_ms(lambda p, i: dec.decode_random(p, 0, 0, i), paths, repeats=2)
    print(f"{name:>8}: test transform {test_ms:.2f} ms, training transform {train_ms:.2f} ms "
          "per image")

# %% [markdown]
# Does the test transform still see the same picture? `decode_center` resizes the original to
# a shorter side of 256 with a bilinear filter; the shrink did exactly that (same filter, same
# rounding, same draft decoding) and then stored it as JPEG. So the only difference is one JPEG
# round trip — a few grey levels out of 255 (`tests/test_imagenet_shrink.py` checks the pixels
# are exactly "resize, then one JPEG round trip").

# %%
for p in PATHS[:3]:
    q = WORK / "small" / "imagenet" / "train" / p.parent.name / p.name
    diff = np.abs(dec.decode_center(p).astype(float) - dec.decode_center(q))
    print(f"{p.name} ({Image.open(p).size[0]}x{Image.open(p).size[1]}): mean |difference| "
          f"{diff.mean():.2f} of 255, largest {diff.max():.0f}")

# %% [markdown]
# The training crops do change: a small box is now cut from a 256-pixel picture and enlarged,
# where before it was cut from the full one. That is the price, and the one AlexNet paid too.
#
# ## 6. Decode the next batch while this step runs
#
# Fast decoding is not enough if the training loop waits for it: decoding batch b + 1 and
# running step b would then take the *sum* of their times. On a GPU the step is launched and
# runs on its own while the Python thread goes on, so the loop can hand the next batch to the
# worker processes first — `FolderSource.prefetch(next indices, epoch, minibatch)`, which
# `runs/training.py` calls right after taking a batch — and a step then costs the *larger* of
# the two. The pixels do not change: a batch's crops depend only on its indices and epoch, and
# a batch the loop did not announce is simply decoded when asked for.
#
# Here a GPU step is played by `time.sleep` (the CPU is free meanwhile, as it is while a real
# GPU computes), with the training transform on the shrunk images and two workers:

# %%
from tinyproj.data import ImageFolder  # noqa: E402
from tinyproj.data.sources import FolderSource  # noqa: E402

folder = ImageFolder(WORK / "small" / "imagenet" / "train", crop=227)
BATCH, STEPS = 16, 8 if QUICK else 16
STEP_SLEEP = BATCH / 1000                  # a "GPU step" that takes as long as ~1,000 images/s


def epoch_seconds(prefetch: bool) -> float:
    source = FolderSource(folder, train=True, seed=0, workers=2)
    source.batch(range(BATCH), epoch=9)                      # start the workers first
    start = time.perf_counter()
    for b in range(STEPS):
        idx = [(b * BATCH + k) % len(folder) for k in range(BATCH)]
        source.batch(idx, epoch=0, minibatch=b)
        if prefetch and b + 1 < STEPS:
            source.prefetch([((b + 1) * BATCH + k) % len(folder) for k in range(BATCH)],
                            epoch=0, minibatch=b + 1)
        time.sleep(STEP_SLEEP)                               # the step runs on the "GPU"
    seconds = time.perf_counter() - start
    source.close()
    return seconds


waiting, overlapped = epoch_seconds(False), epoch_seconds(True)
print(f"{STEPS} steps of {STEP_SLEEP * 1e3:.0f} ms, batches of {BATCH}: {waiting:.2f} s "
      f"decoding then stepping, {overlapped:.2f} s with the next batch prefetched "
      f"(the steps alone: {STEPS * STEP_SLEEP:.2f} s)")

# %% [markdown]
# ## 7. The budget
#
# Per core, the shrunk images go through the transforms several times faster. With the
# one-core rate of the training transform measured here, a 16-core GPU machine would deliver
# roughly:

# %%
one_core = {name: 1e3 / per_image_ms(lambda p, i: dec.decode_random(p, 0, 0, i), paths, 2)
            for name, paths in (("original", PATHS), ("shrunk", SMALL))}
for name, r in one_core.items():
    print(f"{name:>8}: {r:5.0f} images/s per core → ×16 ≈ {16 * r:6,.0f} images/s "
          f"= {16 * r / NEED:.2f}× what the assumed step consumes")

# %% [markdown]
# That ×16 is an extrapolation: `benchmarks/imagenet_pipeline.py` measures the pool itself
# with any list of workers (`--workers 1,2,4,8,16`), and `benchmarks/gpu_check.sh` runs it
# with 1 and 16 workers on the GPU machine's 16 cores, next to the AlexNet-BN step it must
# feed. Until that runs, the step time here is an assumption.
#
# ### Exercises
#
# 1. Shrink to `side=160` instead. How much faster is decoding, and what happens to the
#    smallest training boxes (about 25 % of the side, enlarged to 227)?
# 2. `decode_random` decodes the whole picture and then crops. Pillow's `Image.crop` before
#    `convert` does not save any decoding — why not? (Hint: JPEG decodes whole rows of blocks.)
# 3. Time `DecodePool(2).random` with 8, 64 and 512 images. Where does a small batch lose
#    time?
#
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. Suppose the GPU bench measures a step of 0.12 s at batch 512, and the training transform
#    decodes 450 images/s on one core. How many worker processes does `DecodePool` need to deliver
#    what the step consumes with a 1.2× margin (sections 1 and 7; a core per worker)?
# 2. `decode_center` on a 500×375 JPEG (section 2): where is the corner `(left, top)` of the
#    227 × 227 crop it cuts, in pixels of the picture it crops from?

# %%
from exercises import check_11_1, check_11_2  # noqa: E402  (lessons/exercises.py)

answer_1 = ...                  # a whole number of workers
check_11_1(answer_1)

# %%
answer_2 = ...                  # (left, top)
check_11_2(answer_2)

# %%
import shutil  # noqa: E402  (tidy up the lesson's own folder)

shutil.rmtree(WORK, ignore_errors=True)
print("done")
