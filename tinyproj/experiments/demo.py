"""The demo: a few of the paper's CIFAR-10 presets trained briefly, side by side.

    results = run_demo(["tr-none-nc", "tr-sign-c"], out="runs/demo", width=0.25, epochs=1,
                       train_subset=10000, test_subset=2000)
    # {"tr-none-nc": last metrics row, "tr-sign-c": ...}

Everything is checked before anything is written or trained: the presets (CIFAR-10 ones
only: the demo's table is about CIFAR-10), every setting of every run, the data (loaded
once, then shared by the runs), and each run's folder. A run's folder must be new, empty,
or made by an earlier demo — a folder holding the mark file :data:`DEMO_MARK`; those, and
only those, are replaced. A folder the demo did not make is never touched.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import UserError
from ..runs.build import build_data, resolve_data_dir
from ..runs.config import PRESETS, make_config
from ..runs.files import atomic_write_text
from ..runs.training import train

__all__ = ["run_demo", "demo_folders", "DEMO_MARK"]

DEMO_MARK = ".tinyproj-demo"
"""A file that marks a folder as made by the demo (the only folders the demo replaces)."""


def demo_folders(presets, out) -> dict:
    """``{preset: folder}`` after checking the presets and folders; nothing is written."""
    unknown = [p for p in presets if p not in PRESETS]
    if not presets or unknown:
        raise UserError(f"--presets: unknown preset(s) "
                        f"{', '.join(map(repr, unknown)) or '(none given)'}; give names from: "
                        f"{', '.join(p for p in PRESETS if _is_cifar(p))}", flag="--presets")
    other = [p for p in presets if not _is_cifar(p)]
    if other:
        raise UserError(f"--presets: the demo compares CIFAR-10 presets; {', '.join(other)} "
                        "trains on another dataset — run it with `tinyproj train --preset "
                        f"{other[0]}`", flag="--presets")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file; give a folder for the demo's runs",
                        flag="--out")
    folders = {}
    for preset in presets:
        folder = root / preset
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{folder} is a file; choose another --out", flag="--out")
        if folder.is_dir() and any(folder.iterdir()) and not (folder / DEMO_MARK).exists():
            raise UserError(f"{folder} exists and was not made by `tinyproj demo` (it may be "
                            "a run of yours); it is left as it is — choose another --out for "
                            "the demo", flag="--out")
        folders[preset] = folder
    return folders


def _is_cifar(preset: str) -> bool:
    return PRESETS[preset].get("dataset", "cifar10") == "cifar10"


def run_demo(presets, out, width=0.25, epochs=1, train_subset=10000, test_subset=2000,
             val_size=0, data_dir=None, seed=0, progress=True, log=print) -> dict:
    """Train each preset briefly into ``out/<preset>``; returns each run's last metrics row."""
    presets = [str(p).strip().lower() for p in presets if str(p).strip()]
    folders = demo_folders(presets, out)
    data_dir = resolve_data_dir(data_dir)
    configs = {p: make_config(p, width=width, epochs=epochs, train_subset=train_subset,
                              test_subset=test_subset or None, val_size=val_size,
                              data_dir=data_dir, out=str(folders[p]), seed=seed)
               for p in presets}                  # every setting checked before any run
    first = next(iter(configs.values()))
    data = build_data(first)                      # the same images for every preset
    results = {}
    for preset, cfg in configs.items():
        folder = folders[preset]
        if (folder / DEMO_MARK).exists():
            shutil.rmtree(folder)                 # made by an earlier demo: disposable
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / DEMO_MARK, "made by `tinyproj demo`, which may replace "
                          "this folder\n")
        log(f"\n=== {preset} ===")
        _, rows = train(cfg, progress=progress, log=log, data=data)
        results[preset] = rows[-1]
    return results
