"""Which of fc1's weights stay near zero when MNIST ``mlp_tfc`` trains under huge additive noise?

In ``benchmarks/wn_dynamics.py`` the runs with additive σ ≥ 1e4 at site fc2 end with about half
of fc1's weights within 10 % of max|w| of zero and the other half grown, which gives a high
bimodality coefficient without the layer being two-valued (``dynamics.looks_binarized``). This
script retrains one such network (the same set-up, fewer epochs) and splits fc1's weights by
the input pixel they read (how often it is lit in the training set) and by hidden unit::

    .venv/bin/python benchmarks/wn_dynamics_fc1.py --sigma 1e4 --epochs 8

It prints the report and, with ``--out FILE``, writes it there (atomically).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np  # host-side analysis of the trained weights

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import wn_dynamics as wd  # noqa: E402
from tinyproj import backend  # noqa: E402
from tinyproj.data import load_dataset  # noqa: E402
from tinyproj.data.sources import ArraySource  # noqa: E402
from tinyproj.errors import UserError  # noqa: E402
from tinyproj.runs.files import atomic_write_text  # noqa: E402
from tinyproj.walking_noise import dynamics as dyn  # noqa: E402
from tinyproj.walking_noise.noisy_training import train_noisy  # noqa: E402


def report(w, x_train) -> str:
    """The text report for fc1's weights ``w`` (64, 784) and the training images."""
    out = io.StringIO()
    a = np.abs(w)
    top = float(a.max())
    small = a <= 0.1 * top                                  # the first histogram bin
    lit = (x_train.reshape(len(x_train), -1) > 0).mean(0)   # share of images lighting a pixel
    print(f"fc1: bimodality {dyn.bimodality_coefficient(w):.3f}, share near zero "
          f"{small.mean():.3f}, max|w| {top:.3f}; above +0.1·max {(w > 0.1 * top).mean():.3f}, "
          f"below -0.1·max {(w < -0.1 * top).mean():.5f}", file=out)
    bands = [("never lit", lit == 0)] + [
        (f"lit in ({lo:g}, {hi:g}] of images", (lit > lo) & (lit <= hi))
        for lo, hi in ((0, 0.05), (0.05, 0.2), (0.2, 1.0))]
    for name, sel in bands:
        if sel.any():
            print(f"  pixels {name:28s} {int(sel.sum()):4d}: share near zero "
                  f"{small[:, sel].mean():.2f}, mean w {w[:, sel].mean():+.3f}", file=out)
    per_unit = small.mean(axis=1)
    print(f"  hidden units with every weight near zero: {int((per_unit == 1).sum())} of "
          f"{len(per_unit)}; the others have {per_unit[per_unit < 1].min():.2f}–"
          f"{per_unit[per_unit < 1].max():.2f} of their weights near zero", file=out)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigma", type=float, default=1e4, help="additive σ at fc2 (default 1e4)")
    p.add_argument("--epochs", type=int, default=8, help="epochs (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder holding mnist/")
    p.add_argument("--out", default=None, help="also write the report to this file")
    p.add_argument("--setup", default="authors", choices=("authors", "legacy"),
                   help="the schedule: authors = cosine per epoch (default); legacy = cosine "
                   "per minibatch, as the committed fc1-additive-1e4.txt")
    a = p.parse_args(argv)
    if not a.sigma > 0 or a.epochs < 1:
        raise UserError("--sigma must be > 0 and --epochs >= 1", flag="--sigma")
    ds = load_dataset("mnist", data_dir=a.data_dir, download=False)
    model = wd.build(False, a.seed, wd.authors_settings())
    train_noisy(model, ArraySource(ds.x_train, ds.y_train), f"additive:sigma={a.sigma:g}",
                sites=[wd.SITE], epochs=a.epochs, seed=a.seed, setup=a.setup)
    w = np.asarray(backend.to_numpy(dyn.layer_weights(model)["fc1"]), dtype=np.float64)
    text = (f"MNIST mlp_tfc, additive sigma={a.sigma:g} at {wd.SITE}, {a.epochs} epochs, "
            f"seed {a.seed}, --setup {a.setup}, {wd.authors_settings() or 'tinyproj defaults'}\n"
            + report(w, ds.x_train))
    print(text, end="")
    if a.out:
        atomic_write_text(a.out, text)
    return 0


if __name__ == "__main__":
    wd.run_script(main)
