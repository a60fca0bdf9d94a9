"""Time one Algorithm-1 training step of bc_cifar10 (Sign projection, clipping, Adam, square hinge).

    python benchmarks/train_step.py [--width 1.0] [--batch 50] [--repeats 3]
    TINYPROJ_BACKEND=cupy python benchmarks/train_step.py      # on the GPU

Prints the median seconds per step (after one warm-up step) and the achieved
GFLOP/s, counting 3× the forward multiply-adds of the conv and linear layers.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinyproj.functional as F
from tinyproj import algorithm1, backend, clipping, models, optim
from tinyproj.bench.suite import forward_flops


def sync():
    if backend.name() == "cupy":
        backend.xp().cuda.Device().synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = backend.make_rng(0)
    model = models.bc_cifar10(width=args.width, rng=rng)
    model.train()
    opt = optim.Adam(model.parameters(), lr=0.003)
    bounds = clipping.clip_bounds(model, 0.5)
    host = np.random.default_rng(0)
    x = backend.asarray(host.standard_normal((args.batch, 3, 32, 32), dtype=np.float32))
    y = backend.asarray(np.arange(args.batch) % 10)

    def step():
        algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds, rng)
        sync()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    flops = 3 * forward_flops(model, args.batch)
    print(f"bc_cifar10 width {args.width}, batch {args.batch}, backend {backend.name()}: "
          f"{t:.3f} s/step (median of {args.repeats}; first step {first:.2f} s), "
          f"{flops / 1e9:.1f} GFLOP/step, {flops / t / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
