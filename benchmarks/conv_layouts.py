"""Plain against transposed conv products (``functional/conv.py``, ``ROWS_OUT``), layer by layer.

    python benchmarks/conv_layouts.py --width 0.25 [--repeats 7] [--batch 50]

For every 3×3 conv layer of bc_cifar10 at the given width: forward + backward (gradients for
x and w) with ``ROWS_OUT`` off and on, the two taking turns ``repeats`` times. Printed per
layer and layout: the fastest wall time and the median CPU time of the process (user +
system, all threads). On a shared machine the CPU time is the steadier of the two: it counts
the work done, not the time spent waiting for a core (threads spinning in a barrier count,
sleeping ones don't).
"""
from __future__ import annotations

import argparse
import statistics
import time

from tinyproj.bench.worker import tinyproj_conv as case   # one conv layer, forward + backward
from tinyproj.functional import conv


def layers(width: float):
    c1, c2, c3 = (max(1, int(round(n * width))) for n in (128, 256, 512))
    return [(3, c1, 32), (c1, c1, 32), (c1, c2, 16), (c2, c2, 16), (c2, c3, 8), (c3, c3, 8)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    print(f"bc_cifar10 width {args.width:g}, batch {args.batch}, {args.repeats} turns; "
          "ms: fastest wall / median CPU")
    totals = {False: [0.0, 0.0], True: [0.0, 0.0]}
    for cin, cout, hw in layers(args.width):
        run = case(cin, cout, hw, args.batch)
        wall, cpu = {False: [], True: []}, {False: [], True: []}
        for _ in range(args.repeats):
            for rows in (False, True):
                conv.ROWS_OUT = rows
                run()                                   # untimed: the other layout's leftovers
                c, t = time.process_time(), time.perf_counter()
                run()
                wall[rows].append(time.perf_counter() - t)
                cpu[rows].append(time.process_time() - c)
        line = f"{cin:4d}→{cout:<4d}@{hw:2d}×{hw:<2d}"
        for rows, name in ((False, "plain"), (True, "transposed")):
            w_ms, c_ms = 1e3 * min(wall[rows]), 1e3 * statistics.median(cpu[rows])
            totals[rows][0] += w_ms
            totals[rows][1] += c_ms
            line += f"   {name} {w_ms:7.1f} / {c_ms:7.1f}"
        print(line)
    print(f"{'all layers':16}   plain {totals[False][0]:7.1f} / {totals[False][1]:7.1f}"
          f"   transposed {totals[True][0]:7.1f} / {totals[True][1]:7.1f}")
    conv.ROWS_OUT = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
