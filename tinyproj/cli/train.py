"""`tinyproj train` (one run of Algorithm 1) and `tinyproj demo` (two short runs compared)."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError
from .flags import add_config_flags, config_overrides


def _banner(cfg, resume: bool) -> None:
    from .. import backend, kernels
    what = cfg.preset or f"{cfg.model} with projection {cfg.projection}"
    print(f"tinyproj train: {'resuming ' if resume else ''}{what} — {cfg.model} (width "
          f"{cfg.width:g}) on {cfg.dataset}, {cfg.epochs} epoch(s)"
          + (f" or {cfg.iterations} steps" if cfg.iterations else "")
          + f", batch {cfg.batch_size}\n  data: {cfg.data_dir}\n  device: {backend.name()}, "
          f"kernels {kernels.mode()}{_compile_note()}\n  run folder: {cfg.out}", flush=True)


def _compile_note() -> str:
    """The first-run warning, only while Numba has cached no compiled kernel of tinyproj's
    (its cache files, *.nbi, sit in the kernels' __pycache__)."""
    from .. import backend, kernels
    cache = Path(kernels.__file__).parent / "__pycache__"
    if backend.on_device() or any(cache.glob("*.nbi")):
        return ""
    return " (this first run compiles the Numba kernels: ~15 s)"


def _flag_text(value) -> str:
    """A setting as it would be typed after its flag (lists comma-separated)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _cmd_train(args) -> int:
    from ..data.location import check_data_dir
    from ..runs.config import PRESET_NOTES, PRESETS, make_config
    from ..runs.training import resume_config, train
    if args.list_presets:
        for name, values in PRESETS.items():
            print(f"{name}: {PRESET_NOTES.get(name, '')}")
            print("    " + " ".join(f"{k}={_flag_text(v)}" for k, v in values.items()))
        print("Use one with --preset NAME; flags given with it override its settings.")
        return 0
    overrides = config_overrides(args)
    if args.resume:
        if not args.out:
            raise UserError("--resume needs --out RUN_DIR, the folder of the run to continue "
                            "(its settings are read from RUN_DIR/config.json)", flag="--out")
        cfg = resume_config(args.out, overrides)
    else:
        cfg = make_config(**overrides)
        if cfg.out is None:
            cfg.out = str(Path("runs") / (cfg.preset or f"{cfg.model}-{cfg.projection}")
                          .replace(":", "_"))
    # a --data-dir that does not exist is refused here, before the run folder is made or a
    # download creates the mistyped path
    cfg.data_dir = str(check_data_dir(cfg.data_dir, cfg.dataset))
    _banner(cfg, args.resume)
    train(cfg, resume=args.resume, progress=not args.no_progress, graph=args.graph)
    print(f"results in {cfg.out}/ (metrics.jsonl: one row per evaluation; checkpoint.npz)")
    return 0


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------
_COLUMNS = {"none": "as trained", "round": "rounded", "sign": "binarized"}
_ROWS = {"tr-none-nc": "trained normally", "tr-sign-c": "trained through Sign"}


def _cmd_demo(args) -> int:
    """Train a few presets briefly and print their test errors side by side."""
    from ..data.location import check_data_dir
    from ..experiments.demo import demo_folders, run_demo
    from ..runs.build import resolve_data_dir
    presets = [p.strip().lower() for p in args.presets.split(",") if p.strip()]
    demo_folders(presets, args.out)                 # refuse before any output
    check_data_dir(args.data_dir, "cifar10")        # a mistyped --data-dir: before any run
    print(f"tinyproj demo: {', '.join(presets)} — bc_cifar10 width {args.width:g}, "
          f"{args.epochs} epoch(s) on {args.train_subset} CIFAR-10 images\n"
          f"  data: {resolve_data_dir(args.data_dir)}\n  run folders: {Path(args.out)}/\n"
          "  (the very first run compiles the Numba kernels: the first step takes ~15 s)",
          flush=True)
    start = time.perf_counter()
    results = run_demo(presets, args.out, width=args.width, epochs=args.epochs,
                       train_subset=args.train_subset, test_subset=args.test_subset,
                       val_size=args.val_size, data_dir=args.data_dir, seed=args.seed,
                       progress=not args.no_progress)
    _print_demo_table(results, args, time.perf_counter() - start)
    return 0


def _print_demo_table(results: dict, args, seconds: float) -> None:
    names = list(next(iter(results.values()))["test_error"])
    n_test = args.test_subset or 10000
    print(f"\nTest error (%, lower is better) on {n_test} CIFAR-10 test images, after "
          f"{args.epochs} epoch(s) on {args.train_subset} training images:\n")
    head = f"{'network':<34}" + "".join(f"{_COLUMNS.get(n, n):>12}" for n in names)
    print(head + f"{'train s':>10}")
    for preset, row in results.items():
        label = f"{_ROWS.get(preset, preset)} ({preset})"
        print(f"{label:<34}" + "".join(f"{100 * row['test_error'][n]:12.1f}" for n in names)
              + f"{row['train_seconds']:10.0f}")
    print("\nColumns: the weights used at test time — as trained (the paper's Te-None), "
          "binarized to\n{-α, +α} (Te-Sign), or rounded to {-α, 0, +α} (Te-Round), α = max|W| "
          "of each layer;\nbatch norm is re-estimated for each. Rows: trained normally "
          "(Tr-None-NC) or with\nAlgorithm 1 through the Sign projection and clipping "
          "(Tr-Sign-C).")
    if {"tr-none-nc", "tr-sign-c"} <= set(results) and "none" in names and len(names) > 1:
        print("\n" + _takeaway(results, [n for n in names if n != "none"], n_test))
    print(f"\n{seconds:.0f} s in all; run folders in {args.out}/. Next, try a longer run:\n"
          f"  tinyproj train --preset tr-sign-c --width 0.25 --epochs 5 --train-subset 20000 "
          f"--out runs/sign-5ep\n(with `source .venv/bin/activate` first, or as "
          ".venv/bin/tinyproj)")


def _takeaway(results: dict, distorted: list, n_test: int) -> str:
    """One sentence read off the numbers: how much each test projection costs each network.

    The verdict needs the difference to exceed its noise: an error rate measured on n test
    images varies by up to 50/sqrt(n) points (one standard deviation), a difference of two
    such differences by about twice that; 2 standard deviations per test projection."""
    def cost(preset, name):
        row = results[preset]["test_error"]
        return 100 * (row[name] - row["none"])
    parts = {p: " / ".join(f"{round(cost(p, n), 1) + 0.0:+.1f}" for n in distorted)
             for p in ("tr-none-nc", "tr-sign-c")}
    worse = sum(cost("tr-none-nc", n) - cost("tr-sign-c", n) for n in distorted)
    verdict = ("the network trained through Sign loses less: training with the projection "
               "makes a network robust to it, as Merolla et al. (2016) found"
               if worse > len(distorted) * 200 / n_test ** 0.5 else
               f"at this short scale the normally trained network is not clearly hurt more "
               f"(within the noise of {n_test} test images) — try more epochs (the paper "
               "trains for 500)")
    return (f"Takeaway: {' / '.join(_COLUMNS.get(n, n) for n in distorted)} weights change the "
            f"error by {parts['tr-none-nc']} points for the normally trained network and by "
            f"{parts['tr-sign-c']} for the one trained through Sign; {verdict}.")


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a network with Algorithm 1 (a run folder)",
                       description="Train a network with Algorithm 1 into a run folder. "
                       "Resume with `tinyproj train --out RUN --resume` (the settings come "
                       "from RUN/config.json).")
    add_config_flags(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its saved settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--graph", choices=("auto", "on", "off"), default="auto",
                   help="capture the training step once as a CUDA graph and replay it for every "
                   "minibatch (CuPy; same weights as eager steps; an epoch's last partial batch "
                   "runs eagerly). auto (default): on with CuPy, a capture check on the "
                   "stand-in, eager on NumPy; on: also say why when it cannot; off: eager")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("demo", help="train small Tr-None-NC and Tr-Sign-C nets briefly, compare")
    p.add_argument("--presets", default="tr-none-nc,tr-sign-c",
                   help="comma-separated presets (default tr-none-nc,tr-sign-c)")
    p.add_argument("--width", type=float, default=0.25,
                   help="channel multiplier of bc_cifar10 (default 0.25; the paper's is 1.0)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per network (default 1)")
    p.add_argument("--train-subset", type=int, default=10000,
                   help="train on the first N CIFAR-10 images (default 10000)")
    p.add_argument("--test-subset", type=int, default=2000,
                   help="score the first N test images (default 2000; 0: all 10,000)")
    p.add_argument("--val-size", type=int, default=0,
                   help="validation images split off the training set (default 0: none)")
    p.add_argument("--data-dir", default=None,
                   help="default $TINYPROJ_DATA, else ../shared/datasets, else datasets/")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    p.add_argument("--out", default="runs/demo",
                   help="folder for the demo's runs (default runs/demo); only folders made by "
                        "an earlier demo are replaced")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
