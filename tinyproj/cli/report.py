"""`tinyproj report RUN_DIR... --out DIR`: Table 2, the paper's figures and report.md."""
from __future__ import annotations

import argparse


def _banner(args) -> None:
    from .. import backend
    if args.no_analyses:
        analyses = "off (--no-analyses: no model or data is loaded)"
    else:
        data = args.data_dir or "each run's own data folder"
        analyses = (f"on (Figures 1C, 1D, 2D load each checkpoint and test images; data: "
                    f"{data}; device: {backend.name()})")
    print(f"tinyproj report: Table 2 and figures of {len(args.run_dirs)} run(s)\n"
          f"  runs: {', '.join(args.run_dirs)}\n  analyses: {analyses}\n"
          f"  report folder: {args.out}", flush=True)


def _cmd_report(args) -> int:
    from ..reporting import make_report
    from ..robustness.bn_estimate import protocol_from_settings
    bn = protocol_from_settings(args.bn_images, args.bn_pass_size, args.bn_batches,
                                args.bn_batch_size)        # a bad flag: refused before any work
    _check_distinct(args.run_dirs)
    hist_layer = _check_hist_layer(args)
    if args.data_dir is not None and not args.no_analyses:
        from ..data.location import check_data_dir
        check_data_dir(args.data_dir)   # a mistyped folder: refused, never a download into it
    _banner(args)
    # user errors (a folder that is not a run, --out naming a file) reach the one error
    # wrapper of cli/__init__.py: one line, exit status 2
    rep = make_report(args.run_dirs, args.out, data_dir=args.data_dir,
                      analyses=not args.no_analyses, hist_layer=hist_layer,
                      betas=args.betas, bn=bn, curve_dirs=args.curves)
    for name, path in rep.figures.items():
        print(f"  {name:<16} {path}")
    for name, why in rep.skipped.items():
        print(f"  {name:<16} skipped: {why}")
    for note in rep.notes:
        print(f"  note: {note}")
    print(f"tables: {', '.join(str(p) for p in rep.tables)}")
    print(f"results in {rep.folder}/ (open report.md: the table and every figure, captioned)")
    return 0


def _check_distinct(run_dirs) -> None:
    """A run given twice (``report A A``, ``report A ./A``) would be two rows of one network."""
    from pathlib import Path

    from ..errors import UserError
    seen = {}
    for d in run_dirs:
        key = Path(d).resolve()
        if key in seen:
            raise UserError(f"RUN_DIR {d} is the run {seen[key]} again; give each run once",
                            flag="RUN_DIR")
        seen[key] = d


def _check_hist_layer(args) -> str:
    """The layer of Figure 2D. Given with --hist-layer, it must be a weight of the run the
    figure shows (the first tr-sign-c run, else the first run; its network is built from
    config.json alone, before anything is written); left out, conv2 as in the paper, or the
    second weight layer of a network without one (the report says so)."""
    if args.hist_layer is None:
        return "conv2"
    if args.no_analyses:
        return args.hist_layer
    from ..algorithm1 import weight_params
    from ..errors import UserError
    from ..reporting.report import figure_2d_run
    from ..runs.folder import read_config, untrained_network

    def preset(run_dir):
        try:
            return read_config(run_dir).preset
        except ValueError:                      # not a run folder: the report says so
            return None
    shown = args.run_dirs[figure_2d_run([preset(d) for d in args.run_dirs])]
    try:
        network = untrained_network(shown)
    except (ValueError, TypeError, KeyError):   # not a run, or a config.json this tinyproj
        return args.hist_layer                  # cannot build from: the report says what it can
    names = [n.removesuffix(".weight") for n in weight_params(network)]
    if args.hist_layer.removesuffix(".weight") not in names:
        raise UserError(f"--hist-layer {args.hist_layer!r} is not a weight layer of {shown}, "
                        f"the run Figure 2D shows; choose one of: {', '.join(names)}",
                        flag="--hist-layer")
    return args.hist_layer


def _betas(text):
    try:
        betas = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        betas = []
    if not betas:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as "
                                         f"0.2,0.5,1,2, got {text!r}")
    return betas


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="Table 2 and the paper's figures from run folders",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run folders made by `tinyproj train` (sweeps/ inside them is used)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for report.md, table2.*, *.png (created if missing)")
    p.add_argument("--data-dir", default=None,
                   help="where the runs' datasets are, if not where they were trained "
                        "(needed for the analyses of Figures 1C, 1D and 2D)")
    p.add_argument("--no-analyses", action="store_true",
                   help="skip Figures 1C, 1D and 2D (no model or data is loaded)")
    p.add_argument("--hist-layer", default=None,
                   help="weight layer of Figure 2D, e.g. conv2 or fc2 (default conv2, as in "
                        "the paper; a network without conv2 shows its second weight layer)")
    p.add_argument("--betas", type=_betas, default=None,
                   help="β values of Figure 2D, comma-separated (default 0.2,0.5,1,2)")
    p.add_argument("--curves", nargs="+", default=None, metavar="RUN_DIR",
                   help="draw Figure 1B from these run folders instead (e.g. the same configs "
                        "retrained with --eval-every-steps N, when the runs were evaluated "
                        "once); the caption says so, and whether they are the same networks")
    from .sweep import add_bn_flags
    add_bn_flags(p, "Figure 1D re-estimates batch norm for each pass")
    p.set_defaults(func=_cmd_report)
