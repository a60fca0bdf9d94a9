"""tinyproj on the GPU beside PyTorch eager on the same GPU, one precision per call (issue 12).

    python benchmarks/gpu_bench.py --out $OUT/gpu-bench.json               strict float32
    python benchmarks/gpu_bench.py --tf32 --out $OUT/gpu-bench-tf32.json   TF32 on both sides
    python benchmarks/gpu_bench.py --device standin --smoke --out /tmp/b.json   CPU smoke run

What it measures is ``tinyproj/bench/gpu_suite.py`` (its docstring lists the rows);
``tinyproj bench --device gpu`` runs both precisions in one process into one file under
``results/``. This script runs one leg, so that ``gpu_check.sh`` can give each its own time
limit. The JSON has the same form as ``bench --device``'s, with the other leg ``null``; it is
rewritten after every row (``"complete": false`` until the end), so a run stopped by its
time limit keeps the rows it measured. ``--device cpu`` (NumPy) and ``--device standin`` (the
CPU stand-in for CuPy) check the script without a GPU; their times mean nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout

from tinyproj.bench import gpu_suite                               # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=tuple(gpu_suite.BACKENDS), default="gpu",
                   help="gpu: CuPy and PyTorch on CUDA; cpu: NumPy; standin: the CPU stand-in "
                        "for CuPy (checks the device code path without a GPU)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--skip", default="",
                   help="comma-separated: epoch, draw, alexnet, trajectory")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 matrix products in both frameworks (default strict float32)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    if args.device == "gpu" and not gpu_suite.backend.cupy_available():
        p.error("--device gpu needs CuPy and a CUDA GPU; --device standin checks this script "
                "on the CPU stand-in")
    repeats, warmup = (1, 1) if args.smoke else (args.repeats, args.warmup)
    out = Path(args.out)
    if out.exists():
        print(f"error: --out {out} exists; give a new file", file=sys.stderr)
        return 2
    if not out.absolute().parent.is_dir():
        print(f"error: --out {out}: its folder does not exist", file=sys.stderr)
        return 2
    result = gpu_suite.new_result(args.device, args.smoke, repeats)
    name = "tf32" if args.tf32 else "strict"

    def save(leg):
        result[name] = leg
        gpu_suite.write_json(out, result)
    save(gpu_suite.run(args.device, args.smoke, repeats, warmup,
                       skip={s.strip() for s in args.skip.split(",") if s.strip()},
                       tf32=args.tf32, on_row=save, log=lambda line: print(line, flush=True)))
    result["complete"] = True
    gpu_suite.write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
