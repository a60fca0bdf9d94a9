"""`tinyproj bench`: speed and peak memory against PyTorch, measured in the same run."""
from __future__ import annotations

import json
import os


def _check_json_target(path) -> None:
    """--json may name a new file or an earlier result of ``bench --json``, nothing else."""
    from ..bench import suite
    from ..errors import UserError
    if path and os.path.lexists(path) and not suite.is_result_file(path):
        raise UserError(f"--json {path} exists and is not a result of `tinyproj bench --json`; "
                        "give a new file name (only an earlier bench result is replaced)",
                        flag="--json")


def _cmd_bench(args) -> int:
    from ..errors import UserError
    from ..bench import suite
    only = [part.strip() for part in args.only.split(",")] if args.only else None
    unknown = set(only or []) - {"conv", "step", "first"}
    if unknown:
        raise UserError(f"unknown --only part(s) {sorted(unknown)}; use conv, step, first "
                        "(comma-separated)", flag="--only")
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats} (default "
                        f"{suite.DEFAULT_REPEATS})", flag="--repeats")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}", flag="--batch")
    if args.json and os.path.isdir(args.json):
        raise UserError(f"--json {args.json} is a folder; give a file name such as bench.json",
                        flag="--json")
    _check_json_target(args.json)
    with_torch = False if args.no_torch else None
    result = suite.run(repeats=args.repeats, batch=args.batch, only=only, with_torch=with_torch)
    if args.json:
        from ..runs.files import atomic_write_text
        _check_json_target(args.json)        # again: a file may have appeared during the run
        atomic_write_text(args.json, json.dumps(result, indent=1))
        print(f"\nall numbers: {args.json}")
    return 0


def add_parsers(sub) -> None:
    from ..bench.suite import DEFAULT_REPEATS
    p = sub.add_parser("bench", help="time conv layers and training steps against PyTorch")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help="alternating turns per framework and row: median and interquartile "
                        f"range reported (default {DEFAULT_REPEATS})")
    p.add_argument("--batch", type=int, default=50, help="minibatch size (default 50)")
    p.add_argument("--only", default=None,
                   help="comma-separated parts: conv, step, first (default: all)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every number here")
    p.set_defaults(func=_cmd_bench)
