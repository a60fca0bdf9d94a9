"""TF32's effect on accuracy: the same short training, strict float32 and then TF32 (issue 12).

    python benchmarks/tf32_accuracy.py --make-subset build/cifar-subset.npz    here, once
    python benchmarks/tf32_accuracy.py --subset build/cifar-subset.npz --json out.json
    python benchmarks/tf32_accuracy.py --subset S --device standin --epochs 1 --width 0.0625

The GPU machine has no CIFAR-10 (only the checkout travels, 64 MiB at most), so
``--make-subset`` writes the first 8,000 training and 2,000 test images of the real CIFAR-10 as
uint8 (31 MB) into an ignored folder, to be carried along (the device tool's ``carry``;
gpu_check.sh runs this benchmark when ``build/cifar-subset.npz`` is there).

The measurement trains Tr-Sign-C (``bc_cifar10``, Adam 0.003, clipping, square hinge loss) at
``--width`` for ``--epochs`` on the subset twice from the same seed — once in strict float32,
once with TF32 allowed in tinyproj's float32 products (``backend.set_tf32``) — and scores the
test images under Te-None and Te-Sign each epoch (batch norm re-estimated). It reports both
runs' losses and test errors and their differences: whether TF32 changes what training
reaches, beyond the noise of a ±1/√n test error. Inputs are scaled to [0, 1] and standardised
per channel with the subset's training statistics (no ZCA: its 3072² covariance adds nothing
to a comparison of two precisions). On NumPy and the stand-in both runs are strict (no TF32
there), so they must agree exactly: that is what the CPU test checks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout

from tinyproj import backend                                       # noqa: E402
from tinyproj.bench import gpu_suite                               # noqa: E402

TRAIN, TEST = 8000, 2000


def make_subset(out: Path, train: int = TRAIN, test: int = TEST, data_dir=None) -> dict:
    """The first ``train`` training and ``test`` test images of CIFAR-10 (uint8) into ``out``."""
    from tinyproj.data.cifar import load_cifar10
    x_train, y_train, x_test, y_test = load_cifar10(data_dir, download=False)
    arrays = {"x_train": x_train[:train], "y_train": y_train[:train],
              "x_test": x_test[:test], "y_test": y_test[:test]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return {k: v.shape for k, v in arrays.items()}


def load_subset(path: Path):
    """(x_train, y_train, x_test, y_test): float32 images standardised per channel with the
    training images' mean and std, int64 labels."""
    with np.load(path) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test",
                                                           "y_test"))
    scaled = x_train.astype(np.float32) / 255
    mean = scaled.mean(axis=(0, 2, 3), keepdims=True)
    std = scaled.std(axis=(0, 2, 3), keepdims=True)

    def standardise(x):
        return ((x.astype(np.float32) / 255 - mean) / std).astype(np.float32)
    return (standardise(x_train), y_train.astype(np.int64), standardise(x_test),
            y_test.astype(np.int64))


def train_once(subset, device: str, tf32: bool, epochs: int, width: float, seed: int) -> dict:
    """One training run at this precision; its losses and test errors per epoch."""
    from tinyproj.data.sources import ArraySource
    from tinyproj.runs.config import make_config
    from tinyproj.runs.training import train
    backend.use(gpu_suite.BACKENDS[device])
    in_effect = gpu_suite.set_precision(device, tf32)
    try:
        x_train, y_train, x_test, y_test = subset
        cfg = make_config("tr-sign-c", width=width, epochs=epochs, seed=seed, val_size=0,
                          dataset="synthetic", test_projections=["none", "sign"])
        lines = []
        _, rows = train(cfg, progress=False, log=lines.append, graph="auto",
                        data=(ArraySource(x_train, y_train), None, ArraySource(x_test, y_test),
                              (3, 32, 32), 10))
    finally:
        gpu_suite.set_precision(device, False)
    return {"tf32": tf32, "tf32_in_effect": in_effect,
            "train_loss": [r["train_loss"] for r in rows],
            "test_error": [r["test_error"] for r in rows],
            "train_seconds": rows[-1]["train_seconds"], "log": lines}


def compare(strict: dict, tf32: dict, n_test: int) -> dict:
    """Per epoch and test projection: TF32's test error minus strict's, beside the standard
    error of one such error (√(p(1−p)/n)), and the largest change of the training loss."""
    change = [{k: t[k] - s[k] for k in s} for s, t in zip(strict["test_error"],
                                                          tf32["test_error"])]
    last = strict["test_error"][-1]
    return {"test_error_change": change,
            "standard_error": {k: float(np.sqrt(p * (1 - p) / n_test)) for k, p in last.items()},
            "largest_loss_change": max(abs(a - b) for a, b in zip(strict["train_loss"],
                                                                  tf32["train_loss"]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--make-subset", metavar="FILE", help="write the CIFAR-10 subset and stop")
    p.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/")
    p.add_argument("--subset", metavar="FILE", help="the subset written by --make-subset")
    p.add_argument("--device", choices=tuple(gpu_suite.BACKENDS), default="gpu")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="write the result here (a new file)")
    args = p.parse_args(argv)
    if args.make_subset:
        out = Path(args.make_subset)
        if out.exists():
            p.error(f"--make-subset {out} exists; give a new file")
        shapes = make_subset(out, data_dir=args.data_dir)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB): {shapes}")
        return 0
    if not args.subset or not Path(args.subset).is_file():
        p.error("--subset FILE: the file --make-subset wrote (it is not there)")
    if args.json and Path(args.json).exists():
        p.error(f"--json {args.json} exists; give a new file")
    if args.json and not Path(args.json).absolute().parent.is_dir():
        p.error(f"--json {args.json}: its folder does not exist")
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.device == "gpu" and not backend.cupy_available():
        p.error("--device gpu needs CuPy and a CUDA GPU; --device standin checks this script "
                "on the CPU stand-in")
    subset = load_subset(Path(args.subset))
    result = {"kind": "tf32 accuracy", "versions": gpu_suite.versions(args.device),
              "train_images": len(subset[0]), "test_images": len(subset[2]),
              "epochs": args.epochs, "width": args.width, "complete": False}
    runs = {}
    for name, tf32 in (("strict", False), ("tf32", True)):
        runs[name] = result[name] = train_once(subset, args.device, tf32, args.epochs,
                                               args.width, args.seed)
        if args.json and name == "strict":   # gpu_check.sh's timeout may stop the TF32 run:
            gpu_suite.write_json(Path(args.json), result)        # the strict one is kept
    result["comparison"] = compare(runs["strict"], runs["tf32"], len(subset[2]))
    result["complete"] = True
    for name, run in runs.items():
        errors = ", ".join(f"Te-{k.capitalize()} {v:.2%}" for k, v in run["test_error"][-1].items())
        print(f"{name:<6} (TF32 in effect: {run['tf32_in_effect']}): final loss "
              f"{run['train_loss'][-1]:.4f}, test error {errors}")
    print("TF32 − strict, last epoch:", {k: f"{v:+.2%}" for k, v in
                                        result["comparison"]["test_error_change"][-1].items()},
          "(one test error's standard error:",
          {k: f"{v:.2%}" for k, v in result["comparison"]["standard_error"].items()}, ")")
    if args.json:
        gpu_suite.write_json(Path(args.json), result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
