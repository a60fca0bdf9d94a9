"""Count what one CPU training step does: Python calls, Numba kernel runs, fresh memory pages.

    python benchmarks/step_counts.py [--width 0.25] [--plain]
    TINYPROJ_MALLOC_DEFAULTS=0 python benchmarks/step_counts.py --plain   # as before issue 15

One Algorithm-1 step of bc_cifar10 (Sign, clip, Adam, square hinge), batch 50, after two
warm-up steps, counted by cProfile (Python-level calls, and among them the runs of the
compiled kernels in kernels/cpu*.py) and by the kernel's page-fault counter (``ru_minflt``:
each minor fault is a 4 KB page the system hands out fresh and zeroes — memory that was
given back after the previous step and asked for again). ``--plain`` switches the CPU
products back to their untransposed forms (``conv.ROWS_OUT``, ``linalg.TRANSPOSED``) with
the chunking of before; the malloc settings (tinyproj/_memory.py) are read at import, hence
the environment variable.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource

from tinyproj import _memory
from tinyproj.bench.worker import tinyproj_step
from tinyproj.functional import conv, linalg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--plain", action="store_true", help="untransposed products, as before")
    args = p.parse_args(argv)
    if args.plain:
        conv.ROWS_OUT = linalg.TRANSPOSED = False
        conv.MAX_COLUMNS, conv.SMALL_COLS, conv.DX_ROWS_MAX_O = 16384, 0, 0
    step = tinyproj_step(args.width, args.batch)       # the bench's own step (seed 0)
    step()
    step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    profile = cProfile.Profile()
    profile.enable()
    step()
    profile.disable()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    stats = pstats.Stats(profile).stats
    kernels = sum(v[1] for (path, _, name), v in stats.items()
                  if "kernels/cpu" in path.replace("\\", "/") and name.startswith("_"))
    calls = sum(v[1] for v in stats.values())
    print(f"bc_cifar10 width {args.width:g}, batch {args.batch}, "
          f"{'plain' if args.plain else 'transposed'} products, malloc: {_memory.status}")
    print(f"  Python calls {calls}, Numba kernel runs {kernels}, page faults {faults} "
          f"({faults * resource.getpagesize() / 2**20:.1f} MB handed out fresh)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
