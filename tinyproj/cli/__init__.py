"""The ``tinyproj`` command line: one sub-command family per module.

    tinyproj train --preset tr-sign-c --width 0.25 --epochs 1 --out runs/sign
    tinyproj demo                 Tr-None-NC vs Tr-Sign-C, briefly, side by side
    tinyproj sweep RUN_DIR --distortion addnorm,multunif,power [--walk] [--shard i/n]
    tinyproj report RUN_DIR... --out DIR      Table 2, the paper's figures, report.md
    tinyproj bench                speed and memory against PyTorch (conv layers, full steps)
    tinyproj info                 versions, backend, kernels, where data is looked for
    tinyproj lessons [--quick]    run the lessons in lessons/ one after another

Each module here (train.py, misc.py, ...) has ``add_parsers(subparsers)``; a new
sub-command is a new module listed in ``COMMAND_MODULES``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ["train", "sweep", "walk", "misc", "report", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyproj", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parsers(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
