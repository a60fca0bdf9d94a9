"""Forward+backward time of every 3×3 conv layer of the BinaryConnect CIFAR-10 network.

    python benchmarks/conv_layers.py [--batch 50] [--repeats 3] [--width 1.0]

Times tinyproj's conv2d (kernels in force: TINYPROJ_KERNELS, default auto) and,
when PyTorch is installed, torch.nn.functional.conv2d on the same inputs in the
same run, and prints medians, the ratio tinyproj / PyTorch and the achieved
GFLOP/s (2·N·O·C·9·H·W multiply-adds ×3 for forward+backward). Peak memory
is reported from tracemalloc for tinyproj (NumPy allocations are traced).
"""
from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import tinyproj as tp
import tinyproj.functional as F

LAYERS = [(3, 128, 32), (128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8),
          (512, 512, 8)]


def _time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        import torch
        torch.set_grad_enabled(True)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, width {args.width}, float32, median of {args.repeats}")
    print(f"{'layer':<18}{'tinyproj ms':>12}{'GFLOP/s':>9}{'peak MB':>9}"
          + (f"{'torch ms':>10}{'ratio':>7}" if torch else ""))
    for cin, cout, hw in LAYERS:
        cin = cin if cin == 3 else int(cin * args.width)
        cout = int(cout * args.width)
        x = rng.standard_normal((args.batch, cin, hw, hw), dtype=np.float32)
        w = rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.05
        gy = rng.standard_normal((args.batch, cout, hw, hw), dtype=np.float32)
        xt, wt = tp.Tensor(x, requires_grad=True), tp.Tensor(w, requires_grad=True)

        def step():
            xt.grad = wt.grad = None
            F.conv2d(xt, wt, padding=1).backward(gy)

        ms = _time(step, args.repeats) * 1e3
        tracemalloc.start()
        step()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        flops = 3 * 2 * args.batch * cout * cin * 9 * hw * hw
        line = f"{cin:>4}->{cout:<4}@{hw:<2}{'':6}{ms:12.1f}{flops / ms / 1e6:9.1f}{peak:9.1f}"
        if torch:
            tx = torch.tensor(x, requires_grad=True)
            tw = torch.tensor(w, requires_grad=True)
            tgy = torch.tensor(gy)

            def tstep():
                tx.grad = tw.grad = None
                torch.nn.functional.conv2d(tx, tw, padding=1).backward(tgy)

            tms = _time(tstep, args.repeats) * 1e3
            line += f"{tms:10.1f}{ms / tms:7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
