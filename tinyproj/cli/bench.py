"""`tinyproj bench`: speed and peak memory against PyTorch, measured in the same run.

``--device cpu`` (the default) times conv layers and training steps on this machine's CPU
(bench/suite.py); ``--device gpu`` runs the GPU benchmark (bench/gpu_suite.py) — tinyproj on
CuPy beside PyTorch eager on the same GPU, strict float32 and then TF32 on both sides — and
writes its JSON under ``results/``, named after the GPU. ``--device standin`` runs that
benchmark on the CPU stand-in for CuPy, to check it without a GPU (times mean nothing).
"""
from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

GPU_REPEATS = 20          # the GPU benchmark's timed calls per row (after 3 warm-up calls)
GPU_SMOKE_REPEATS = 1


def _is_earlier_result(path) -> bool:
    from ..bench import gpu_suite, suite
    return suite.is_result_file(path) or gpu_suite.is_result_file(path)


def _check_json_target(path) -> None:
    """--json may name a new file or an earlier result of ``bench --json``, nothing else."""
    from ..errors import UserError
    if path and os.path.lexists(path) and not _is_earlier_result(path):
        raise UserError(f"--json {path} exists and is not a result of `tinyproj bench --json`; "
                        "give a new file name (only an earlier bench result is replaced)",
                        flag="--json")


def _check_args(args) -> None:
    """Every flag checked before anything is measured or written."""
    from ..bench import suite
    from ..errors import UserError
    device = args.device != "cpu"
    if device and args.only:
        raise UserError(f"--only chooses parts of the CPU bench; --device {args.device} runs "
                        "the GPU benchmark whole (leave out --only)", flag="--only")
    if device and args.no_torch:
        raise UserError(f"--device {args.device} compares with PyTorch on the same device; "
                        "leave out --no-torch (or use --device cpu)", flag="--no-torch")
    if args.smoke and not device:
        raise UserError("--smoke (tiny sizes, one repeat) is for --device gpu or standin",
                        flag="--smoke")
    if args.repeats is not None and args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats} (default "
                        f"{GPU_REPEATS if device else suite.DEFAULT_REPEATS})", flag="--repeats")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}", flag="--batch")
    if args.json and os.path.isdir(args.json):
        raise UserError(f"--json {args.json} is a folder; give a file name such as bench.json",
                        flag="--json")
    if args.json and not Path(args.json).absolute().parent.is_dir():
        raise UserError(f"--json {args.json}: the folder {Path(args.json).parent} does not "
                        "exist; create it first or give a file in an existing folder",
                        flag="--json")
    _check_json_target(args.json)


def _cmd_bench(args) -> int:
    _check_args(args)
    if args.device != "cpu":
        return _device_bench(args)
    from ..bench import suite
    only = [part.strip() for part in args.only.split(",")] if args.only else None
    unknown = set(only or []) - {"conv", "step", "first"}
    if unknown:
        from ..errors import UserError
        raise UserError(f"unknown --only part(s) {sorted(unknown)}; use conv, step, first "
                        "(comma-separated)", flag="--only")
    with_torch = False if args.no_torch else None
    result = suite.run(repeats=args.repeats or suite.DEFAULT_REPEATS, batch=args.batch,
                       only=only, with_torch=with_torch)
    if args.json:
        from ..runs.files import atomic_write_text
        _check_json_target(args.json)        # again: a file may have appeared during the run
        atomic_write_text(args.json, json.dumps(result, indent=1))
        print(f"\nall numbers: {args.json}")
    return 0


def default_result_path(gpu_name: str, folder="results", today=None) -> Path:
    """``results/bench-gpu-<gpu>-<date>.json``, with ``-2``, ``-3``, … when that name is taken:
    a new measurement never replaces an earlier one unless ``--json`` names it."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "gpu"
    stem = f"bench-gpu-{slug}-{(today or datetime.date.today()).isoformat()}"
    path, n = Path(folder) / f"{stem}.json", 1
    while os.path.lexists(path):
        n += 1
        path = Path(folder) / f"{stem}-{n}.json"
    return path


def _device_bench(args) -> int:
    from .. import backend
    from ..bench import gpu_suite
    from ..errors import UserError
    try:
        import torch
    except ImportError:
        raise UserError(f"--device {args.device} compares with PyTorch, which is not installed; "
                        'install it with pip install -e ".[bench]"', flag="--device") from None
    if args.device == "gpu":
        if not backend.cupy_available():
            raise UserError("--device gpu needs CuPy and a CUDA GPU (pip install -e \".[gpu]\" "
                            "on a machine with one); to check the benchmark without a GPU, use "
                            "--device standin --smoke", flag="--device")
        if not torch.cuda.is_available():
            raise UserError("--device gpu compares with PyTorch on the GPU, but this PyTorch "
                            f"build ({torch.__version__}) sees no CUDA device; install a CUDA "
                            "build of PyTorch", flag="--device")
    versions = gpu_suite.versions(args.device)
    out = args.json
    if out is None and args.device == "gpu":
        out = default_result_path(versions["gpu"])
        out.parent.mkdir(parents=True, exist_ok=True)
    repeats = args.repeats or (GPU_SMOKE_REPEATS if args.smoke else GPU_REPEATS)
    where = versions["gpu"] or "no GPU (times mean nothing)"
    print(f"tinyproj bench --device {args.device}: {where}, median of {repeats} timed calls "
          "per row" + (f"; writing {out}" if out else ""))
    gpu_suite.run_both(args.device, args.smoke, repeats, 1 if args.smoke else 3,
                       batch=args.batch, out=out, log=lambda line: print(line, flush=True))
    if out:
        print(f"\nall numbers: {out}")
    return 0


def add_parsers(sub) -> None:
    from ..bench.suite import DEFAULT_REPEATS
    p = sub.add_parser("bench", help="time conv layers and training steps against PyTorch",
                       description=__doc__.split("\n\n")[1].replace("``", "`"))
    p.add_argument("--device", choices=("cpu", "gpu", "standin"), default="cpu",
                   help="cpu (default): conv layers and steps on this CPU; gpu: tinyproj on "
                        "CuPy beside PyTorch on the same GPU, strict float32 then TF32, JSON "
                        "under results/; standin: the GPU benchmark on the CPU stand-in")
    p.add_argument("--repeats", type=int, default=None,
                   help="cpu: alternating turns per framework and row, median and "
                        f"interquartile range reported (default {DEFAULT_REPEATS}); gpu: "
                        f"timed calls per row (default {GPU_REPEATS})")
    p.add_argument("--batch", type=int, default=50, help="minibatch size (default 50)")
    p.add_argument("--only", default=None,
                   help="cpu: comma-separated parts: conv, step, first (default: all)")
    p.add_argument("--no-torch", action="store_true",
                   help="cpu: skip PyTorch even if installed")
    p.add_argument("--smoke", action="store_true",
                   help="gpu/standin: tiny sizes and one repeat (checks that it runs)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every number here (gpu: default "
                        "results/bench-gpu-<gpu>-<date>.json, never an earlier file)")
    p.set_defaults(func=_cmd_bench)
