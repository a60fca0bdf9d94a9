"""How fast the ImageNet input pipeline decodes, against what an AlexNet-BN step consumes.

    python benchmarks/imagenet_pipeline.py                      256 JPEGs, workers 1..all
    python benchmarks/imagenet_pipeline.py --images 2048 --step-seconds 0.08 --json out.json
    python benchmarks/imagenet_pipeline.py --images 192 --workers 1,16     (in gpu_check.sh)

It writes ImageNet-like JPEGs itself (quality 90; sizes 500×375, 375×500 and 1024×768 in
turn, the shapes that dominate ILSVRC-2012) into a temporary folder, then measures images
per second of

* ``load_image`` one by one in this process (the old path: resize + centre crop 224);
* :class:`tinyproj.data.decode_pool.DecodePool` with 1, 2, 4, ... worker processes, for
  the test transform (resize 256, centre crop 227, JPEG draft decoding) and the training
  transform (random-resized crop 227 + flip);
* the same on the JPEGs shrunk once to a shorter side of 256 (``tinyproj prepare-imagenet``,
  :mod:`tinyproj.data.imagenet_shrink`), the folder a GPU run should train from.

A GPU step at batch 512 consumes 512 / step_seconds images per second. Without a measured
``--step-seconds`` the figure assumed is 3.1 TFLOP per step (AlexNet-BN, forward + backward)
at 40 TFLOP/s, i.e. 0.078 s and ~6,600 images/s — an assumption, printed as such; a given
``--step-seconds`` must be > 0.

``--json FILE`` must be a new file in an existing folder, checked before the run (a run of
minutes is not lost to a mistyped folder at the end, and a user's file is never overwritten).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout

from tinyproj.data.imagenet import load_image                   # noqa: E402
from tinyproj.data.decode_pool import DecodePool                  # noqa: E402
from tinyproj.data.imagenet_shrink import shrink_image            # noqa: E402
from tinyproj.data.process_pool import max_workers                # noqa: E402

SIZES = ((500, 375), (375, 500), (1024, 768))
STEP_TFLOP, ASSUMED_TFLOPS, BATCH = 3.1, 40.0, 512


def write_jpegs(folder: Path, n: int, seed: int = 0) -> list:
    from PIL import Image
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        # smooth random content (a small noise image scaled up) plus fine grain, so the
        # JPEG's size and decoding cost resemble a photograph's
        base = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC), dtype=np.int16)
        img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.JPEG"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--step-seconds", type=float, default=None,
                   help="measured AlexNet-BN step time at batch 512, > 0 (default: an estimate)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the figures to this JSON file (a new file)")
    p.add_argument("--workers", default=None, metavar="LIST",
                   help="worker counts to time, e.g. 1,16 (default 1, 2, 4, ... up to the CPUs)")
    args = p.parse_args(argv)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        workers = (sorted({int(w) for w in args.workers.split(",")}) if args.workers else
                   sorted({w for w in (1, 2, 4, 8, 16, cpus) if w <= cpus}))
    except ValueError:
        p.error(f"--workers: give worker counts separated by commas, e.g. 1,16; got "
                f"{args.workers!r}")
    if args.images < 1 or workers[0] < 1:
        p.error("--images and every --workers count must be at least 1")
    if workers[-1] > max_workers():
        p.error(f"--workers: at most {max_workers()} (4 per CPU, at least 16; each is a "
                f"process), got {workers[-1]}")
    if args.step_seconds is not None and not 0 < args.step_seconds < math.inf:
        p.error(f"--step-seconds must be > 0 (a measured step time in seconds), got "
                f"{args.step_seconds!r}; leave it out for the assumed figure")
    if args.json and Path(args.json).exists():
        p.error(f"--json {args.json} exists; give a new file")
    if args.json and not Path(args.json).absolute().parent.is_dir():
        p.error(f"--json {args.json}: its folder does not exist")
    step = STEP_TFLOP / ASSUMED_TFLOPS if args.step_seconds is None else args.step_seconds
    need = BATCH / step
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        (Path(tmp) / "256").mkdir()
        shrunk = [Path(tmp) / "256" / p.name for p in paths]
        start = time.perf_counter()
        for p, q in zip(paths, shrunk):
            shrink_image(p, q)
        shrink_rate = len(paths) / (time.perf_counter() - start)
        rows.append(("load_image, one by one (old path)", 1,
                     rate(lambda: [load_image(q) for q in paths], len(paths))))
        for label, files in (("", paths), (", shrunk to 256", shrunk)):
            for w in workers:
                with DecodePool(w) as pool:
                    pool.center(files[:w])                  # start the workers
                    rows.append((f"DecodePool test transform{label}", w,
                                 rate(lambda: pool.center(files), len(files))))
                    rows.append((f"DecodePool train transform{label}", w,
                                 rate(lambda: pool.random(files, 0, 0, range(len(files))),
                                      len(files))))
        size = {"original": sum(p.stat().st_size for p in paths) / len(paths),
                "shrunk": sum(p.stat().st_size for p in shrunk) / len(shrunk)}
    print(f"{len(paths)} JPEGs, {cpus} CPUs; a GPU step of {step * 1e3:.0f} ms at batch {BATCH} "
          f"consumes {need:,.0f} images/s" + ("" if args.step_seconds is not None else
                                             f" (assumed: {STEP_TFLOP} TFLOP at "
                                             f"{ASSUMED_TFLOPS:g} TFLOP/s)"))
    for name, w, r in rows:
        print(f"  {name:<52} workers {w:>2}  {r:8.0f} images/s  ({r / need:5.1%} of the need)")
    print(f"  shrinking once (shrink_image, one process): {shrink_rate:.0f} images/s; "
          f"{size['original'] / 1e3:.0f} KB per original JPEG, {size['shrunk'] / 1e3:.0f} KB "
          "shrunk")
    if args.json:
        figures = {"images": len(paths), "cpus": cpus, "step_seconds": step,
                   "step_assumed": args.step_seconds is None, "needed_images_per_s": need,
                   "shrink_images_per_s": shrink_rate, "mean_jpeg_bytes": size,
                   "rows": [{"path": n, "workers": w, "images_per_s": r} for n, w, r in rows]}
        with open(args.json, "x") as f:           # "x": never over a file made meanwhile
            f.write(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
