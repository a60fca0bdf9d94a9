"""`tinyproj bench`: speed and peak memory against PyTorch, measured in the same run."""
from __future__ import annotations

import json


def _cmd_bench(args) -> int:
    from ..bench import suite
    only = [part.strip() for part in args.only.split(",")] if args.only else None
    unknown = set(only or []) - {"conv", "step", "first"}
    if unknown:
        raise SystemExit(f"tinyproj bench: unknown --only part(s) {sorted(unknown)}; "
                         "use conv, step, first")
    with_torch = False if args.no_torch else None
    result = suite.run(repeats=args.repeats, batch=args.batch, only=only, with_torch=with_torch)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nall numbers: {args.json}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="time conv layers and training steps against PyTorch")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed runs per framework and row (median reported; default 5)")
    p.add_argument("--batch", type=int, default=50, help="minibatch size (default 50)")
    p.add_argument("--only", default=None,
                   help="comma-separated parts: conv, step, first (default: all)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every number here")
    p.set_defaults(func=_cmd_bench)
