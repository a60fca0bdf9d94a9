"""Helpers shared by several test files (imported as ``_helpers``: pytest puts ``tests/`` on
``sys.path``, as for ``training_spy`` and ``matv5_writer``)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

import tinyproj as tp
from tinyproj import backend, nn
from tinyproj.data.sources import ArraySource
from tinyproj.runs.config import make_config
from tinyproj.runs.training import train


def with_worker_threads(env: dict) -> dict:
    """``env`` of a child process that runs a lesson, under pytest-xdist: Numba's pool sized to
    the worker's share of the cores (``TINYPROJ_TEST_THREADS``, set by tests/conftest.py with
    the BLAS and OpenMP variables), unless NUMBA_NUM_THREADS is set already. A new process
    reads it before its pool starts; the worker itself cannot (tests/conftest.py)."""
    n = env.get("TINYPROJ_TEST_THREADS")
    if n:
        env.setdefault("NUMBA_NUM_THREADS", n)
    return env


def load_module(name: str, path: Path):
    """Import the Python file ``path`` (a script or lesson outside any package) as ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def class_means_source(n: int, seed: int = 0, shape=(1, 28, 28)):
    """A learnable 10-class dataset of ``n`` images: class means plus noise."""
    rng = np.random.default_rng(seed)
    means = rng.random((10, *shape)).astype(np.float32)
    y = np.arange(n) % 10
    x = (means[y] + 0.3 * rng.standard_normal((n, *shape))).astype(np.float32)
    return ArraySource(x, y.astype(np.int64))


def tiny_config(tmp_path: Path, name: str = "run", **overrides):
    """A validated config of a tiny training run (synthetic data, width 1/16, 120 training
    and 40 validation images, batches of 20) into ``tmp_path/name``; ``preset`` and any
    setting may be overridden (default: tr-sign-c, 2 epochs)."""
    values = dict(dataset="synthetic", model="bc_cifar10", width=1 / 16, train_subset=120,
                  val_size=40, batch_size=20, epochs=2, lr=0.01, bn_batches=2,
                  eval_batch_size=100, out=str(tmp_path / name))
    values.update(overrides)
    return make_config(values.pop("preset", "tr-sign-c"), **values)


QUIET = dict(progress=False, log=lambda *a: None)      # train(..., **QUIET): no bars, no lines


def tiny_mlp_config(tmp_path: Path, name: str = "run", **overrides):
    """An (unvalidated) config of a tiny mlp_tfc run on synthetic data: 60 training images in
    batches of 20 (3 steps an epoch), 40 test images, cross-entropy, into ``tmp_path/name``."""
    values = dict(dataset="synthetic", model="mlp_tfc", train_subset=60, val_size=0,
                  batch_size=20, epochs=1, lr=0.01, loss="cross_entropy", test_subset=40,
                  test_projections=["none"], out=str(tmp_path / name))
    values.update(overrides)
    return make_config(values.pop("preset", None), **values)


def train_tiny_run(out: Path, train_subset: int) -> Path:
    """Train a tiny tr-sign-c run (synthetic data, width 1/16, one epoch) into ``out``."""
    cfg = make_config("tr-sign-c", dataset="synthetic", width=1 / 16, train_subset=train_subset,
                      val_size=0, batch_size=20, epochs=1, bn_batches=2, out=str(out))
    train(cfg, progress=False, log=lambda *a: None)
    return out


def copy_run(src: Path, dst: Path) -> Path:
    """A fresh copy of a run folder's network (config.json, checkpoint.npz; no sweeps)."""
    dst.mkdir(parents=True)
    for name in ("config.json", "checkpoint.npz"):
        shutil.copy(src / name, dst / name)
    return dst


class FixedScores(nn.Module):
    """A "network" that returns the scores stored for each example (its first feature is its
    index): evaluation tests with exactly the scores they need (ties, top-5)."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def forward(self, x):
        idx = backend.to_numpy(x.data if hasattr(x, "data") else x)[:, 0].astype(int)
        return tp.tensor(backend.asarray(self.scores[idx]))
